#include "engines/pony/wire.h"

#include <cstring>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace snapd::pony {
namespace {

PonyHeader Data(uint32_t msg_len, uint32_t offset) {
  PonyHeader h;
  h.type = PacketType::kData;
  h.flags = kFlagAckNow;
  h.src_app = 7;
  h.dst_app = 9;
  h.src_conn = 0x11223344;
  h.dst_conn = 0x55667788;
  h.seq = 1000;
  h.ack = 42;
  h.credit = 1 << 20;
  h.ts = 0xdeadbeef;
  h.ts_echo = 0xfeedface;
  h.hold_ns = 1234;
  h.msg_id = 3;
  h.msg_len = msg_len;
  h.msg_offset = offset;
  return h;
}

// The packet: `h` written, then `payload` bytes.
std::vector<uint8_t> Packet(const PonyHeader& h, uint32_t payload = 0) {
  std::vector<uint8_t> p(PonyHeaderBytes(h) + payload, 'x');
  EXPECT_EQ(WritePonyHeader(h, p.data(), static_cast<uint32_t>(p.size())), PonyHeaderBytes(h));
  return p;
}

WireError Parse(const std::vector<uint8_t>& p, PonyHeader* h = nullptr,
                uint32_t* payload = nullptr) {
  PonyHeader scratch;
  uint32_t off = 0;
  return ParsePonyHeader(p.data(), static_cast<uint32_t>(p.size()), h ? h : &scratch,
                         payload ? payload : &off);
}

TEST(PonyWireTest, EveryTypeRoundTrips) {
  PonyHeader syn = Data(1, 0);
  syn.type = PacketType::kSyn;
  syn.dst_conn = 0;
  PonyHeader syn_ack = Data(1, 0);
  syn_ack.type = PacketType::kSynAck;
  PonyHeader ack = Data(1, 0);
  ack.type = PacketType::kAck;
  ack.sack_count = 2;
  ack.sack[0] = {50, 60};
  ack.sack[1] = {70, 71};
  PonyHeader fin = Data(1, 0);
  fin.type = PacketType::kFin;
  PonyHeader rst = Data(1, 0);
  rst.type = PacketType::kRst;
  rst.src_conn = 0;  // from a host with no connection
  rst.reason = ResetReason::kNoSuchApp;
  PonyHeader resync = Data(1, 0);
  resync.type = PacketType::kResync;
  resync.msg_id = 77;
  resync.msg_len = 0;
  resync.msg_offset = 0;
  // A SACK block at the cumulative ack: received, held for the app (kCapResync).
  PonyHeader held = ack;
  held.sack[1] = {held.ack, held.ack + 5};
  for (const PonyHeader& want : {syn, syn_ack, ack, fin, rst, resync, held}) {
    PonyHeader got;
    uint32_t payload = 0;
    std::vector<uint8_t> p = Packet(want);
    ASSERT_EQ(Parse(p, &got, &payload), WireError::kNone) << static_cast<int>(want.type);
    EXPECT_EQ(got.type, want.type);
    EXPECT_EQ(got.flags, want.flags);
    EXPECT_EQ(got.src_app, want.src_app);
    EXPECT_EQ(got.dst_app, want.dst_app);
    EXPECT_EQ(got.src_conn, want.src_conn);
    EXPECT_EQ(got.dst_conn, want.dst_conn);
    EXPECT_EQ(got.seq, want.seq);
    EXPECT_EQ(got.ack, want.ack);
    EXPECT_EQ(got.credit, want.credit);
    EXPECT_EQ(got.ts, want.ts);
    EXPECT_EQ(got.ts_echo, want.ts_echo);
    EXPECT_EQ(got.hold_ns, want.hold_ns);
    EXPECT_EQ(payload, p.size());
  }
  PonyHeader got;
  ASSERT_EQ(Parse(Packet(ack), &got), WireError::kNone);
  ASSERT_EQ(got.sack_count, 2);
  EXPECT_EQ(got.sack[1].start, 70u);
  EXPECT_EQ(got.sack[1].end, 71u);
  ASSERT_EQ(Parse(Packet(rst), &got), WireError::kNone);
  EXPECT_EQ(got.reason, ResetReason::kNoSuchApp);
  ASSERT_EQ(Parse(Packet(resync), &got), WireError::kNone);
  EXPECT_EQ(got.msg_id, 77u);
}

TEST(PonyWireTest, DataCarriesItsSegment) {
  PonyHeader got;
  uint32_t payload = 0;
  std::vector<uint8_t> p = Packet(Data(5000, 1400), 1400);
  ASSERT_EQ(Parse(p, &got, &payload), WireError::kNone);
  EXPECT_EQ(payload, kCommonBytes + kMessageBytes);
  EXPECT_EQ(p.size() - payload, 1400u);
  EXPECT_EQ(got.msg_id, 3u);
  EXPECT_EQ(got.msg_len, 5000u);
  EXPECT_EQ(got.msg_offset, 1400u);
  // The last segment may be short; one byte messages are fine.
  EXPECT_EQ(Parse(Packet(Data(5000, 4999), 1)), WireError::kNone);
  EXPECT_EQ(Parse(Packet(Data(1, 0), 1)), WireError::kNone);
}

TEST(PonyWireTest, RefusesWhatTheSpecForbidsAndSaysWhy) {
  struct Case {
    const char* what;
    std::vector<uint8_t> packet;
    WireError want;
  };
  std::vector<Case> cases;
  auto with = [](std::vector<uint8_t> p, size_t at, uint8_t v) {
    p[at] = v;
    return p;
  };
  std::vector<uint8_t> good = Packet(Data(100, 0), 100);
  cases.push_back({"shorter than the common header",
                   std::vector<uint8_t>(good.begin(), good.begin() + 39), WireError::kTooShort});
  cases.push_back({"shorter than its header length",
                   std::vector<uint8_t>(good.begin(), good.begin() + 45), WireError::kTooShort});
  cases.push_back({"version 2", with(good, 0, 2), WireError::kBadVersion});
  cases.push_back({"type 0", with(good, 1, 0), WireError::kBadType});
  cases.push_back({"type 8", with(good, 1, 8), WireError::kBadType});
  cases.push_back({"an unknown flag", with(good, 2, 0x80), WireError::kBadFlags});
  cases.push_back(
      {"header length below the common header", with(good, 3, 9), WireError::kBadHeaderLength});
  cases.push_back(
      {"DATA with an ACK's header length", with(good, 3, 10), WireError::kBadHeaderLength});
  PonyHeader h = Data(100, 0);
  h.src_conn = 0;
  cases.push_back({"DATA from connection 0", Packet(h, 10), WireError::kBadConnection});
  h = Data(100, 0);
  h.dst_conn = 0;
  cases.push_back({"DATA to connection 0", Packet(h, 10), WireError::kBadConnection});
  h = Data(100, 0);
  h.type = PacketType::kSyn;
  cases.push_back(
      {"a SYN that names the receiver's connection", Packet(h), WireError::kBadConnection});
  cases.push_back({"DATA without a segment", Packet(Data(100, 0)), WireError::kEmptySegment});
  cases.push_back(
      {"a segment past its message", Packet(Data(100, 50), 51), WireError::kBadMessage});
  cases.push_back(
      {"an offset at the message's end", Packet(Data(100, 100), 1), WireError::kBadMessage});
  cases.push_back(
      {"an offset that would wrap", Packet(Data(100, 0xffffffff), 2), WireError::kBadMessage});
  cases.push_back({"a message of 0 bytes", Packet(Data(0, 0), 1), WireError::kBadMessage});
  cases.push_back({"a message past the maximum", Packet(Data(kMaxMessageBytes + 1, 0), 1),
                   WireError::kBadMessage});
  h = Data(100, 0);
  h.msg_id = 0;
  cases.push_back({"message id 0", Packet(h, 1), WireError::kBadMessage});
  h = Data(1, 0);
  h.type = PacketType::kFin;
  cases.push_back({"a FIN with payload", Packet(h, 1), WireError::kPayloadNotAllowed});
  h.type = PacketType::kAck;
  h.sack_count = 1;
  h.sack[0] = {60, 50};
  cases.push_back({"a reversed SACK block", Packet(h), WireError::kBadSack});
  h.sack[0] = {60, 60};
  cases.push_back({"an empty SACK block", Packet(h), WireError::kBadSack});
  h.sack[0] = {10, 20};  // ack is 42
  cases.push_back({"a SACK block below the cumulative ack", Packet(h), WireError::kBadSack});
  h.sack[0] = {41, 50};
  cases.push_back({"a SACK block across the cumulative ack", Packet(h), WireError::kBadSack});
  h.sack_count = 4;
  for (int i = 0; i < 4; ++i) h.sack[i] = {uint32_t(100 + 10 * i), uint32_t(105 + 10 * i)};
  std::vector<uint8_t> five = Packet(h);
  five.insert(five.end(), 8, 0);
  five[3] = static_cast<uint8_t>(five.size() / 4);
  cases.push_back({"five SACK blocks", five, WireError::kBadHeaderLength});
  h = Data(1, 0);
  h.type = PacketType::kResync;
  h.msg_len = 0;
  h.msg_offset = 0;
  h.msg_id = 0;
  cases.push_back({"a RESYNC for message 0", Packet(h), WireError::kBadMessage});
  h.msg_id = 5;
  h.msg_len = 3;
  cases.push_back({"a RESYNC with a message length", Packet(h), WireError::kBadMessage});
  h.msg_len = 0;
  cases.push_back({"a RESYNC with payload", Packet(h, 1), WireError::kPayloadNotAllowed});
  h = Data(1, 0);
  h.type = PacketType::kRst;
  h.reason = static_cast<ResetReason>(99);
  cases.push_back({"a RST with an unknown reason", Packet(h), WireError::kBadReason});
  for (const Case& c : cases) {
    EXPECT_EQ(Parse(c.packet), c.want) << c.what;
    EXPECT_STRNE(WireErrorName(c.want), "") << c.what;
  }
}

TEST(PonyWireTest, NeverReadsPastTheBuffer) {
  // Every cut of every kind of packet, each in a buffer of exactly its length (ASan watches).
  PonyHeader ack = Data(1, 0);
  ack.type = PacketType::kAck;
  ack.sack_count = 4;
  for (int i = 0; i < 4; ++i) ack.sack[i] = {uint32_t(100 + 10 * i), uint32_t(105 + 10 * i)};
  for (const std::vector<uint8_t>& full : {Packet(Data(3000, 0), 1400), Packet(ack)}) {
    for (size_t n = 0; n < full.size(); ++n) {
      std::vector<uint8_t> cut(full.begin(), full.begin() + n);
      PonyHeader h;
      uint32_t off = 0;
      WireError e = ParsePonyHeader(cut.data(), static_cast<uint32_t>(n), &h, &off);
      if (e == WireError::kNone) {
        EXPECT_LE(off, n);
      }
    }
  }
}

TEST(PonyWireTest, SequenceOrderWraps) {
  EXPECT_TRUE(SeqBefore(1, 2));
  EXPECT_FALSE(SeqBefore(2, 1));
  EXPECT_FALSE(SeqBefore(5, 5));
  EXPECT_TRUE(SeqBefore(0xfffffff0u, 0x10));
  EXPECT_FALSE(SeqBefore(0x10, 0xfffffff0u));
  // A SACK block across the wrap is a block.
  PonyHeader ack = Data(1, 0);
  ack.type = PacketType::kAck;
  ack.ack = 0xfffffff0u;
  ack.sack_count = 1;
  ack.sack[0] = {0xfffffffau, 0x5};
  EXPECT_EQ(Parse(Packet(ack)), WireError::kNone);
}

TEST(PonyWireTest, WriteNeedsRoom) {
  PonyHeader h = Data(10, 0);
  uint8_t small[kCommonBytes + kMessageBytes - 1];
  EXPECT_EQ(WritePonyHeader(h, small, sizeof(small)), 0u);
}

}  // namespace
}  // namespace snapd::pony
