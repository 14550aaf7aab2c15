#include "clients/packet.h"

#include <string.h>

#include <string>
#include <vector>

#include "base/addr.h"
#include "clients/libsnap.h"
#include "gtest/gtest.h"

namespace snap {
namespace {

uint64_t Mac(const char* s) {
  uint64_t m;
  EXPECT_TRUE(snapd::ParseMac(s, &m));
  return m;
}
uint32_t Ip(const char* s) {
  uint32_t ip;
  EXPECT_TRUE(snapd::ParseIpv4(s, &ip));
  return ip;
}
uint8_t* Bytes(std::string& s) { return reinterpret_cast<uint8_t*>(s.data()); }

TEST(PacketTest, UdpHeaderIsValid) {
  std::string f = UdpHeader(Mac("02:00:00:00:00:01"), Mac("02:00:00:00:00:02"), Ip("10.0.0.1"),
                            Ip("10.0.0.2"), 9000, 7, 100);
  f.resize(100, 'p');
  EXPECT_EQ(f.substr(12, 2), std::string("\x08\x00", 2));  // IPv4
  EXPECT_EQ(static_cast<uint8_t>(f[14]), 0x45);            // version 4, 20 bytes
  EXPECT_EQ(static_cast<uint8_t>(f[23]), 17);              // UDP
  EXPECT_EQ(InternetChecksum(Bytes(f) + 14, 20), 0);       // a valid header sums to zero
  EXPECT_EQ(static_cast<uint8_t>(f[38]) << 8 | static_cast<uint8_t>(f[39]), 66);  // UDP length
}

TEST(PacketTest, UdpIsEchoedBackWithAddressesSwapped) {
  uint64_t me = Mac("02:00:00:00:00:02");
  std::string f =
      UdpHeader(Mac("02:00:00:00:00:01"), me, Ip("10.0.0.1"), Ip("10.0.0.2"), 9000, 7, 64);
  f.resize(64, 'x');
  ASSERT_EQ(AnswerInPlace(Bytes(f), f.size(), me, Ip("10.0.0.2")), Reply::kUdpEcho);
  EXPECT_EQ(snapd::MacToString(snapd::MacFromBytes(Bytes(f))), "02:00:00:00:00:01");
  uint32_t dst;
  memcpy(&dst, Bytes(f) + 30, 4);
  EXPECT_EQ(snapd::Ipv4ToString(dst), "10.0.0.1");
  EXPECT_EQ(InternetChecksum(Bytes(f) + 14, 20), 0);
  EXPECT_EQ(static_cast<uint8_t>(f[36]), 9000 >> 8);  // destination port is the old source
  // Not for us: left alone.
  EXPECT_EQ(AnswerInPlace(Bytes(f), f.size(), me, Ip("10.0.0.2")), Reply::kNone);
}

TEST(PacketTest, ArpRequestGetsAReply) {
  uint64_t asker = Mac("02:00:00:00:00:01"), me = Mac("02:00:00:00:00:02");
  std::string f = ArpRequest(asker, Ip("10.0.0.1"), Ip("10.0.0.2"));
  ASSERT_EQ(AnswerInPlace(Bytes(f), f.size(), me, Ip("10.0.0.2")), Reply::kArp);
  uint64_t learned;
  ASSERT_TRUE(ParseArpReply(Bytes(f), f.size(), Ip("10.0.0.2"), &learned));
  EXPECT_EQ(learned, me);
  std::string other = ArpRequest(asker, Ip("10.0.0.1"), Ip("10.0.0.3"));
  EXPECT_EQ(AnswerInPlace(Bytes(other), other.size(), me, Ip("10.0.0.2")), Reply::kNone);
}

TEST(PacketTest, TaggedArpRequestGetsAReply) {
  uint64_t asker = Mac("02:00:00:00:00:01"), me = Mac("02:00:00:00:00:02");
  std::string f = ArpRequest(asker, Ip("10.0.0.1"), Ip("10.0.0.2"));
  f.insert(12, std::string("\x81\x00\x00\x1e", 4));  // VLAN 30
  ASSERT_EQ(AnswerInPlace(Bytes(f), f.size(), me, Ip("10.0.0.2")), Reply::kArp);
  uint64_t learned;
  ASSERT_TRUE(ParseArpReply(Bytes(f), f.size(), Ip("10.0.0.2"), &learned));
  EXPECT_EQ(learned, me);
}

// Frames come from the wire through snapd: any length, any header. None is answered nor read
// past its end (ASan runs this).
TEST(PacketTest, TruncatedAndBogusFramesAreLeftAlone) {
  uint64_t me = Mac("02:00:00:00:00:02");
  std::string udp =
      UdpHeader(Mac("02:00:00:00:00:01"), me, Ip("10.0.0.1"), Ip("10.0.0.2"), 1, 2, 64);
  udp.resize(64, 'x');
  std::string arp = ArpRequest(Mac("02:00:00:00:00:01"), Ip("10.0.0.1"), Ip("10.0.0.2"));
  for (const std::string& whole : {udp, arp}) {
    for (size_t len = 0; len < 34; ++len) {
      std::string cut = whole.substr(0, len);
      std::vector<uint8_t> f(cut.begin(), cut.end());
      EXPECT_EQ(AnswerInPlace(f.data(), len, me, Ip("10.0.0.2")), Reply::kNone) << len;
      uint64_t mac;
      EXPECT_FALSE(ParseArpReply(f.data(), len, Ip("10.0.0.2"), &mac)) << len;
    }
  }
  std::string bad_ihl = udp;
  bad_ihl[14] = 0x44;  // a header shorter than 20 bytes
  EXPECT_EQ(AnswerInPlace(Bytes(bad_ihl), bad_ihl.size(), me, Ip("10.0.0.2")), Reply::kNone);
  std::string long_total = udp;
  long_total[16] = 0x7f;  // claims more bytes than the frame has
  EXPECT_EQ(AnswerInPlace(Bytes(long_total), long_total.size(), me, Ip("10.0.0.2")), Reply::kNone);
}

TEST(PacketTest, IcmpEchoReplyKeepsAValidChecksum) {
  uint64_t me = Mac("02:00:00:00:00:02");
  std::string f = UdpHeader(Mac("02:00:00:00:00:01"), me, Ip("10.0.0.1"), Ip("10.0.0.2"), 0, 0, 64);
  f.resize(64, '\0');
  f[14 + 9] = 1;  // ICMP
  f[14 + 10] = f[14 + 11] = 0;
  uint16_t ipsum = InternetChecksum(Bytes(f) + 14, 20);
  f[14 + 10] = ipsum >> 8;
  f[14 + 11] = ipsum & 0xff;
  uint8_t* icmp = Bytes(f) + 34;
  icmp[0] = 8;
  for (int i = 8; i < 30; ++i) icmp[i] = static_cast<uint8_t>(i * 7);
  icmp[2] = icmp[3] = 0;
  uint16_t sum = InternetChecksum(icmp, 30);
  icmp[2] = sum >> 8;
  icmp[3] = sum & 0xff;
  ASSERT_EQ(AnswerInPlace(Bytes(f), f.size(), me, Ip("10.0.0.2")), Reply::kIcmpEcho);
  EXPECT_EQ(icmp[0], 0);
  EXPECT_EQ(InternetChecksum(icmp, 30), 0);
}

TEST(LibsnapTest, ConnectedNameCarriesTheAddresses) {
  uint64_t mac;
  uint32_t ip;
  ASSERT_TRUE(ParseConnectedName("snap/02000000000a/0a00000a", &mac, &ip));
  EXPECT_EQ(snapd::MacToString(mac), "02:00:00:00:00:0a");
  EXPECT_EQ(snapd::Ipv4ToString(ip), "10.0.0.10");
  EXPECT_FALSE(ParseConnectedName("snapd", &mac, &ip));
  EXPECT_FALSE(ParseConnectedName("snap/zz0000000000/0a00000a", &mac, &ip));
}

}  // namespace
}  // namespace snap
