#include "snapd/daemon/packet_nic.h"

#include <string>

#include "gtest/gtest.h"

namespace snapd {
namespace {

TEST(PacketNicArgsTest, ParsesInterfaceAndRingSizes) {
  auto args = ParsePacketNicArgs("af_packet:veth1");
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->iface, "veth1");
  EXPECT_EQ(args->rx_frames, 1024u);
  args = ParsePacketNicArgs("af_packet:eth0,rx_frames=4096");
  ASSERT_TRUE(args.ok()) << args.status();
  EXPECT_EQ(args->iface, "eth0");
  EXPECT_EQ(args->rx_frames, 4096u);
}

TEST(PacketNicArgsTest, RefusesWhatIsNotAnInterfaceOrOption) {
  const char* bad[] = {
      "af_packet:",                        // no interface
      "af_packet:a-name-longer-than-15",   // longer than IFNAMSIZ allows
      "af_packet:../x",                    // not a name
      "af_packet:eth0,tx_frames=64",       // unknown option
      "af_packet:eth0,rx_frames=8",        // too few
      "af_packet:eth0,rx_frames=1000000",  // too many
      "af_packet:eth0,rx_frames=lots",     // not a number
      "net_af_packet0,iface=eth0",         // DPDK's, not ours
  };
  for (const char* devargs : bad) {
    auto args = ParsePacketNicArgs(devargs);
    EXPECT_FALSE(args.ok()) << devargs;
    if (!args.ok()) EXPECT_NE(args.status().message().find(devargs), std::string::npos) << devargs;
  }
}

TEST(RingGeometryTest, SlotsHoldAFullFrameAndBlocksArePages) {
  struct Case {
    uint32_t mtu, frames, page;
  } cases[] = {{1500, 1024, 4096}, {9000, 512, 4096},   {9000, 100, 4096},
               {65000, 64, 4096},  {1500, 1000, 65536}, {4000, 77, 4096}};
  for (const Case& c : cases) {
    RingGeometry g = RingFor(c.mtu, c.frames, c.page);
    SCOPED_TRACE(testing::Message() << "mtu " << c.mtu << " frames " << c.frames);
    // The frame, one VLAN tag and an Ethernet header after the kernel's headers and alignment.
    EXPECT_GE(g.frame_size, 80u + c.mtu + 18u);
    EXPECT_EQ(g.frame_size % 16, 0u);  // TPACKET_ALIGNMENT
    EXPECT_EQ(g.block_size % c.page, 0u);
    EXPECT_EQ(g.block_size & (g.block_size - 1), 0u);  // the kernel allocates powers of two
    uint32_t per_block = g.block_size / g.frame_size;
    ASSERT_GE(per_block, 1u);
    EXPECT_LE(g.block_size - per_block * g.frame_size, g.block_size / 3);  // little waste
    EXPECT_GE(g.frames, c.frames);
    EXPECT_EQ(g.frames % per_block, 0u);
    EXPECT_LT(g.frames, c.frames + per_block);
  }
  EXPECT_EQ(RingFor(1500, 1024, 4096).frame_size, 2048u);
}

}  // namespace
}  // namespace snapd
