#include "ipc/handshake.h"

#include <vector>

#include "gtest/gtest.h"

namespace snapd::memif {
namespace {

// One message a client sends, with whether an fd came along.
struct Step {
  WireMessage msg;
  bool fd;
};

WireMessage Init(uint16_t version = kVersion, InterfaceMode mode = InterfaceMode::kEthernet) {
  WireMessage m = MakeInit(1, mode, "", "app");
  m.init.version = version;
  return m;
}

// A complete, valid handshake: init, two regions, one ring each way, connect.
std::vector<Step> Good() {
  return {{Init(), false},
          {MakeAddRegion(0, 4096), true},
          {MakeAddRegion(1, 65536), true},
          {MakeAddRing(true, 0, 0, 0, 4), true},
          {MakeAddRing(false, 0, 0, 2048, 4), true},
          {MakeConnect("eth0"), false}};
}

struct Case {
  const char* name;
  std::vector<Step> steps;
  const char* error;  // substring of the refusal, or nullptr when the handshake must succeed
};

std::vector<Step> With(std::vector<Step> steps, size_t at, Step replacement) {
  steps[at] = replacement;
  return steps;
}

std::vector<Step> Without(std::vector<Step> steps, size_t at) {
  steps.erase(steps.begin() + at);
  return steps;
}

TEST(HandshakeTest, Table) {
  WireMessage bad_type = MakeAck();
  bad_type.type = 77;
  WireMessage bad_flags = MakeAddRing(true, 0, 0, 0, 4);
  bad_flags.add_ring.flags = 0x8001;
  WireMessage private_hdr = MakeAddRing(true, 0, 0, 0, 4);
  private_hdr.add_ring.private_hdr_size = 8;
  const Case cases[] = {
      {"good", Good(), nullptr},
      {"rings before second region",
       {Good()[0], Good()[1], Good()[3], Good()[2], Good()[4], Good()[5]},
       nullptr},
      {"connect first", {{MakeConnect(""), false}}, "unexpected connect"},
      {"unknown type", {{bad_type, false}}, "unexpected type 77"},
      {"wrong version", {{Init(0x0100), false}}, "incompatible memif version 1.0"},
      {"ip mode", {{Init(kVersion, InterfaceMode::kIp), false}}, "only ethernet"},
      {"init twice", With(Good(), 1, {Init(), false}), "unexpected init"},
      {"fd with init", {{Init(), true}}, "unexpected fd"},
      {"region without fd", With(Good(), 1, {MakeAddRegion(0, 4096), false}), "missing region fd"},
      {"region index skips", With(Good(), 2, {MakeAddRegion(2, 4096), true}),
       "invalid region index 2"},
      {"region index repeats", With(Good(), 2, {MakeAddRegion(0, 4096), true}),
       "invalid region index 0"},
      {"region size zero", With(Good(), 1, {MakeAddRegion(0, 0), true}), "size 0"},
      {"region too large", With(Good(), 1, {MakeAddRegion(0, uint64_t{1} << 40), true}), "outside"},
      {"ring without fd", With(Good(), 3, {MakeAddRing(true, 0, 0, 0, 4), false}),
       "missing interrupt fd"},
      {"ring flags", With(Good(), 3, {bad_flags, true}), "unknown ring flags"},
      {"ring index too big", With(Good(), 3, {MakeAddRing(true, 500, 0, 0, 4), true}),
       "invalid ring index 500"},
      {"ring log2 zero", With(Good(), 3, {MakeAddRing(true, 0, 0, 0, 0), true}), "log2 size 0"},
      {"ring log2 too big", With(Good(), 3, {MakeAddRing(true, 0, 0, 0, 15), true}),
       "log2 size 15"},
      {"private header", With(Good(), 3, {private_hdr, true}), "private header"},
      {"ring added twice", With(Good(), 4, {MakeAddRing(true, 0, 0, 0, 4), true}), "added twice"},
      {"no s2c ring", Without(Good(), 4), "at least one ring in each direction"},
      {"gap in ring indices", With(Good(), 4, {MakeAddRing(false, 1, 0, 2048, 4), true}),
       "s2c ring 0 missing"},
      {"ring in missing region", With(Good(), 3, {MakeAddRing(true, 0, 5, 0, 4), true}),
       "names region 5"},
      {"ring past region end", With(Good(), 3, {MakeAddRing(true, 0, 0, 4000, 4), true}),
       "does not fit"},
      {"ring offset wraps", With(Good(), 3, {MakeAddRing(true, 0, 0, 0xffffff00, 4), true}),
       "does not fit"},
      {"ring misaligned", With(Good(), 3, {MakeAddRing(true, 0, 0, 3, 4), true}), "does not fit"},
      {"no region", {{Init(), false}, {MakeConnect(""), false}}, "without a region"},
      {"message after connect",
       [] {
         auto s = Good();
         s.push_back({MakeAddRegion(2, 4096), true});
         return s;
       }(),
       "unexpected add-region"},
      {"peer disconnect", {{Init(), false}, {MakeDisconnect(0, "bye now"), false}}, "bye now"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    ServerHandshake hs(HandshakeLimits{4, 4, 14, 1 << 20});
    absl::Status last = absl::OkStatus();
    for (const Step& step : c.steps) {
      absl::StatusOr<MessageType> reply = hs.OnMessage(step.msg, step.fd);
      if (!reply.ok()) {
        last = reply.status();
        break;
      }
    }
    if (c.error == nullptr) {
      EXPECT_TRUE(last.ok()) << last;
      EXPECT_EQ(hs.phase(), ServerHandshake::Phase::kConnected);
      EXPECT_EQ(hs.queue_pairs(), 1u);
    } else {
      EXPECT_FALSE(last.ok());
      EXPECT_NE(last.message().find(c.error), std::string::npos) << last;
      EXPECT_EQ(hs.phase(), ServerHandshake::Phase::kFailed);
      // Nothing moves after a failure.
      EXPECT_FALSE(hs.OnMessage(Init(), false).ok());
    }
  }
}

TEST(HandshakeTest, RepliesFollowTheProtocol) {
  ServerHandshake hs(HandshakeLimits{});
  std::vector<MessageType> replies;
  for (const Step& s : Good()) replies.push_back(*hs.OnMessage(s.msg, s.fd));
  EXPECT_EQ(replies, (std::vector<MessageType>{MessageType::kAck, MessageType::kAck,
                                               MessageType::kAck, MessageType::kAck,
                                               MessageType::kAck, MessageType::kConnected}));
  EXPECT_EQ(+hs.init().id, 1u);
  EXPECT_EQ(hs.region_sizes(), (std::vector<uint64_t>{4096, 65536}));
  EXPECT_EQ(hs.s2c_rings()[0].offset, 2048u);
}

TEST(HandshakeTest, HelloAdvertisesLimits) {
  ServerHandshake hs(HandshakeLimits{3, 2, 12, 1 << 20});
  WireMessage hello = hs.Hello("srv");
  EXPECT_EQ(+hello.hello.max_region, 2);
  EXPECT_EQ(+hello.hello.max_c2s_ring, 1);
  EXPECT_EQ(+hello.hello.max_s2c_ring, 1);
  EXPECT_EQ(+hello.hello.max_log2_ring_size, 12);
  EXPECT_EQ(+hello.hello.min_version, kVersion);
}

}  // namespace
}  // namespace snapd::memif
