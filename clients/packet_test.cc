#include "clients/packet.h"

#include <string>

#include "clients/libsnap.h"
#include "engines/frame.h"
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
  snapd::FrameInfo info;
  ASSERT_EQ(snapd::ParseFrame(Bytes(f), f.size(), 1518, &info), snapd::ParseError::kNone);
  EXPECT_EQ(info.ipv4_protocol, 17);
  EXPECT_EQ(InternetChecksum(Bytes(f) + 14, 20), 0);  // a valid header sums to zero
  EXPECT_EQ(static_cast<uint8_t>(f[38]) << 8 | static_cast<uint8_t>(f[39]), 66);  // UDP length
}

TEST(PacketTest, UdpIsEchoedBackWithAddressesSwapped) {
  uint64_t me = Mac("02:00:00:00:00:02");
  std::string f =
      UdpHeader(Mac("02:00:00:00:00:01"), me, Ip("10.0.0.1"), Ip("10.0.0.2"), 9000, 7, 64);
  f.resize(64, 'x');
  ASSERT_EQ(AnswerInPlace(Bytes(f), f.size(), me, Ip("10.0.0.2")), Reply::kUdpEcho);
  snapd::FrameInfo info;
  ASSERT_EQ(snapd::ParseFrame(Bytes(f), f.size(), 1518, &info), snapd::ParseError::kNone);
  EXPECT_EQ(snapd::MacToString(info.dst_mac), "02:00:00:00:00:01");
  EXPECT_EQ(snapd::Ipv4ToString(info.ipv4_dst), "10.0.0.1");
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
