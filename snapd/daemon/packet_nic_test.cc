#include "snapd/daemon/packet_nic.h"

#include <string>
#include <vector>

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

// The one's-complement sum of the pseudo-header and the TCP/UDP segment at `l4` (of `l4_len`
// bytes, protocol `proto`) of an IPv4 (src/dst at `addrs`, 8 bytes) or IPv6 (32 bytes) packet:
// 0xffff when the checksum in it is right.
uint16_t Verify(const std::string& f, size_t addrs, size_t addr_len, size_t l4, uint32_t l4_len,
                uint8_t proto) {
  uint32_t sum = proto + l4_len;
  auto add = [&](size_t from, size_t n) {
    for (size_t i = 0; i < n; i += 2) {
      sum += static_cast<uint8_t>(f[from + i]) << 8;
      if (i + 1 < n) sum += static_cast<uint8_t>(f[from + i + 1]);
    }
  };
  add(addrs, addr_len);
  add(l4, l4_len);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}

std::string Hex(const char* hex) {
  std::string out;
  for (size_t i = 0; hex[i] && hex[i + 1]; i += 2) {
    out.push_back(static_cast<char>(std::stoi(std::string(hex + i, 2), nullptr, 16)));
  }
  return out;
}

TEST(FinishChecksumTest, FinishesTcpAndUdpOverIpv4AndIpv6) {
  const std::string eth = Hex("020000000002020000000001");
  // IPv4 + UDP (checksum field holding a partial sum), 13 bytes of payload (an odd length).
  std::string udp4 = eth + Hex("0800") + Hex("4500002900004000401100000a0000010a000002") +
                     Hex("3039000700151234") + "hello, world!";
  // IPv4 + TCP, with a VLAN tag before it.
  std::string tcp4 = eth + Hex("81000007") + Hex("0800") +
                     Hex("450000300000400040060000c0a80001c0a80002") +
                     Hex("d4310050000000010000000050182000beef0000") + "payload!";
  // IPv6 + UDP.
  std::string udp6 = eth + Hex("86dd") + Hex("6000000000101140") +
                     Hex("fd000000000000000000000000000001fd000000000000000000000000000002") +
                     Hex("303900070010ffff") + "12345678";
  ASSERT_TRUE(FinishChecksum(reinterpret_cast<uint8_t*>(udp4.data()), udp4.size()));
  ASSERT_TRUE(FinishChecksum(reinterpret_cast<uint8_t*>(tcp4.data()), tcp4.size()));
  ASSERT_TRUE(FinishChecksum(reinterpret_cast<uint8_t*>(udp6.data()), udp6.size()));
  EXPECT_EQ(Verify(udp4, 26, 8, 34, 21, 17), 0xffff);
  EXPECT_EQ(Verify(tcp4, 30, 8, 38, 28, 6), 0xffff);
  EXPECT_EQ(Verify(udp6, 22, 32, 54, 16, 17), 0xffff);
  // Finishing twice changes nothing: the field's old value does not count.
  std::string again = udp4;
  ASSERT_TRUE(FinishChecksum(reinterpret_cast<uint8_t*>(again.data()), again.size()));
  EXPECT_EQ(again, udp4);
}

TEST(FinishChecksumTest, LeavesAnythingElseAloneAndNeverReadsPastTheFrame) {
  const std::string eth = Hex("020000000002020000000001");
  std::string arp = eth + Hex("0806") + std::string(28, '\0');
  std::string icmp =
      eth + Hex("0800") + Hex("4500001c00004000400100000a0000010a000002") + std::string(8, 'i');
  std::string fragment =
      eth + Hex("0800") + Hex("4500001c00002000401100000a0000010a000002") + Hex("3039000700080000");
  for (std::string f : {arp, icmp, fragment}) {
    std::string before = f;
    EXPECT_FALSE(FinishChecksum(reinterpret_cast<uint8_t*>(f.data()), f.size()));
    EXPECT_EQ(f, before);
  }
  // Every cut of a good frame: false or finished, and no read past the cut (ASan watches).
  std::string udp4 = eth + Hex("0800") + Hex("4500002900004000401100000a0000010a000002") +
                     Hex("3039000700151234") + "hello, world!";
  for (size_t n = 0; n < udp4.size(); ++n) {
    std::vector<uint8_t> cut(udp4.begin(), udp4.begin() + n);
    EXPECT_FALSE(FinishChecksum(cut.data(), static_cast<uint32_t>(cut.size()))) << n;
  }
}

}  // namespace
}  // namespace snapd
