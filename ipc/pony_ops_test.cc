#include "ipc/pony_ops.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace snapd::pony {
namespace {

constexpr uint32_t kMax = 1 << 20;

std::vector<uint8_t> Frame(const AppOp& op, uint32_t payload = 0) {
  std::vector<uint8_t> f(kAppOpBytes + payload, 'm');
  EXPECT_EQ(WriteAppOp(op, f.data(), static_cast<uint32_t>(f.size())), kAppOpBytes);
  return f;
}

AppOpError Parse(const std::vector<uint8_t>& f, Direction dir, AppOp* op = nullptr,
                 uint32_t* payload = nullptr) {
  AppOp scratch;
  uint32_t off = 0;
  return ParseAppOp(f.data(), static_cast<uint32_t>(f.size()), dir, kMax, op ? op : &scratch,
                    payload ? payload : &off);
}

AppOp Op(AppOpCode code, uint32_t conn) {
  AppOp op;
  op.op = code;
  op.conn = conn;
  op.token = 77;
  return op;
}

TEST(PonyAppOpTest, TheAppsOperationsRoundTrip) {
  AppOp connect = Op(AppOpCode::kConnect, 0);
  connect.addr = 0x0a000002;  // 10.0.0.2
  connect.app = 9;
  AppOp got;
  ASSERT_EQ(Parse(Frame(connect), Direction::kFromApp, &got), AppOpError::kNone);
  EXPECT_EQ(got.op, AppOpCode::kConnect);
  EXPECT_EQ(got.addr, 0x0a000002u);
  EXPECT_EQ(got.app, 9);
  EXPECT_EQ(got.token, 77u);
  AppOp send = Op(AppOpCode::kSend, 5);
  send.length = 100000;
  send.offset = 65000;
  uint32_t payload = 0;
  std::vector<uint8_t> f = Frame(send, 35000);
  ASSERT_EQ(Parse(f, Direction::kFromApp, &got, &payload), AppOpError::kNone);
  EXPECT_EQ(payload, kAppOpBytes);
  EXPECT_EQ(got.length, 100000u);
  EXPECT_EQ(got.offset, 65000u);
  for (AppOpCode c : {AppOpCode::kClose, AppOpCode::kAccept, AppOpCode::kRefuse}) {
    EXPECT_EQ(Parse(Frame(Op(c, 5)), Direction::kFromApp), AppOpError::kNone);
  }
}

TEST(PonyAppOpTest, TheEnginesOperationsRoundTrip) {
  for (AppOpCode c : {AppOpCode::kConnected, AppOpCode::kIncoming, AppOpCode::kSent,
                      AppOpCode::kClosed, AppOpCode::kCredit}) {
    EXPECT_EQ(Parse(Frame(Op(c, 5)), Direction::kFromEngine), AppOpError::kNone);
  }
  EXPECT_EQ(Parse(Frame(Op(AppOpCode::kRefused, 0)), Direction::kFromEngine), AppOpError::kNone);
  AppOp received = Op(AppOpCode::kReceived, 5);
  received.length = 10;
  EXPECT_EQ(Parse(Frame(received, 10), Direction::kFromEngine), AppOpError::kNone);
}

TEST(PonyAppOpTest, RefusesWhatAnAppMayNotSendAndSaysWhy) {
  struct Case {
    const char* what;
    std::vector<uint8_t> frame;
    AppOpError want;
  };
  std::vector<Case> cases;
  AppOp send = Op(AppOpCode::kSend, 5);
  send.length = 100;
  std::vector<uint8_t> good = Frame(send, 100);
  auto with = [](std::vector<uint8_t> f, size_t at, uint8_t v) {
    f[at] = v;
    return f;
  };
  cases.push_back(
      {"27 bytes", std::vector<uint8_t>(good.begin(), good.begin() + 27), AppOpError::kTooShort});
  cases.push_back({"version 0", with(good, 0, 0), AppOpError::kBadVersion});
  cases.push_back({"op 0", with(good, 1, 0), AppOpError::kBadOp});
  cases.push_back({"an engine's op", with(good, 1, 19), AppOpError::kBadOp});
  cases.push_back({"op 200", with(good, 1, 200), AppOpError::kBadOp});
  cases.push_back({"the reserved field set", with(good, 3, 1), AppOpError::kReservedNotZero});
  cases.push_back(
      {"a send on connection 0", Frame(Op(AppOpCode::kSend, 0), 1), AppOpError::kBadConnection});
  cases.push_back(
      {"a close of connection 0", Frame(Op(AppOpCode::kClose, 0)), AppOpError::kBadConnection});
  cases.push_back({"a connect that names a connection", Frame(Op(AppOpCode::kConnect, 3)),
                   AppOpError::kBadConnection});
  cases.push_back({"a send without bytes", Frame(send), AppOpError::kEmptySegment});
  send.length = 0;
  cases.push_back({"a message of 0 bytes", Frame(send, 1), AppOpError::kBadMessage});
  send.length = kMax + 1;
  cases.push_back({"a message past the maximum", Frame(send, 1), AppOpError::kBadMessage});
  send.length = 100;
  send.offset = 60;
  cases.push_back({"bytes past the message", Frame(send, 41), AppOpError::kBadMessage});
  send.offset = 0xfffffff0u;
  cases.push_back({"an offset that would wrap", Frame(send, 32), AppOpError::kBadMessage});
  cases.push_back(
      {"a close with bytes", Frame(Op(AppOpCode::kClose, 5), 1), AppOpError::kPayloadNotAllowed});
  for (uint32_t addr : {0u, 0x7f000001u, 0xe0000001u, 0xffffffffu}) {
    AppOp connect = Op(AppOpCode::kConnect, 0);
    connect.addr = addr;
    connect.app = 1;
    cases.push_back(
        {"a connect to an address no host has", Frame(connect), AppOpError::kBadAddress});
  }
  AppOp to_app0 = Op(AppOpCode::kConnect, 0);
  to_app0.addr = 0x0a000002;
  cases.push_back({"a connect to app 0", Frame(to_app0), AppOpError::kBadAddress});
  for (const Case& c : cases) {
    EXPECT_EQ(Parse(c.frame, Direction::kFromApp), c.want) << c.what;
    EXPECT_STRNE(AppOpErrorName(c.want), "") << c.what;
  }
  // An app's op is no engine's, and the other way round.
  EXPECT_EQ(Parse(Frame(Op(AppOpCode::kClose, 5)), Direction::kFromEngine), AppOpError::kBadOp);
}

TEST(PonyAppOpTest, NeverReadsPastTheFrame) {
  AppOp send = Op(AppOpCode::kSend, 5);
  send.length = 64;
  std::vector<uint8_t> full = Frame(send, 64);
  for (size_t n = 0; n < full.size(); ++n) {
    std::vector<uint8_t> cut(full.begin(), full.begin() + n);
    AppOp op;
    uint32_t off = 0;
    if (ParseAppOp(cut.data(), static_cast<uint32_t>(n), Direction::kFromApp, kMax, &op, &off) ==
        AppOpError::kNone) {
      EXPECT_LE(off, n);
    }
  }
}

}  // namespace
}  // namespace snapd::pony
