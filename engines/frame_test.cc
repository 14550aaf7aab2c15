#include "engines/frame.h"

#include <string>

#include "gtest/gtest.h"

namespace snapd {
namespace {

std::string Bytes(std::initializer_list<int> b) {
  std::string s;
  for (int v : b) s.push_back(static_cast<char>(v));
  return s;
}

std::string Eth(uint16_t type) {
  return Bytes({0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 1, type >> 8, type & 0xff});
}

std::string Ipv4(int ihl_words = 5, int total = 20, int version = 4) {
  std::string h = Bytes({(version << 4) | ihl_words,
                         0,
                         total >> 8,
                         total & 0xff,
                         0,
                         0,
                         0,
                         0,
                         64,
                         17,
                         0,
                         0,
                         10,
                         0,
                         0,
                         1,
                         10,
                         0,
                         0,
                         2});
  h.resize(std::max<size_t>(h.size(), ihl_words * 4), '\0');
  return h;
}

std::string Arp(int htype = 1, int ptype = 0x0800, int hlen = 6, int plen = 4) {
  return Bytes({0,    htype, ptype >> 8, ptype & 0xff,
                hlen, plen,  0,          1,
                0x02, 0,     0,          0,
                0,    1,     10,         0,
                0,    1,     0,          0,
                0,    0,     0,          0,
                10,   0,     0,          2});
}

struct Case {
  const char* name;
  std::string frame;
  ParseError want;
};

TEST(FrameTest, Table) {
  std::string vlan =
      Bytes({0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 1, 0x81, 0, 0, 5, 0x08, 0x00});
  const Case cases[] = {
      {"empty", "", ParseError::kTruncated},
      {"13 bytes", Eth(0x0800).substr(0, 13), ParseError::kTruncated},
      {"bare ethernet, unknown type", Eth(0x88b5), ParseError::kNone},
      {"ipv4", Eth(0x0800) + Ipv4(), ParseError::kNone},
      {"ipv4 with options", Eth(0x0800) + Ipv4(6, 24), ParseError::kNone},
      {"ipv4 plus padding", Eth(0x0800) + Ipv4() + std::string(26, '\0'), ParseError::kNone},
      {"ipv4 header cut", Eth(0x0800) + Ipv4().substr(0, 19), ParseError::kTruncated},
      {"ipv4 version 6", Eth(0x0800) + Ipv4(5, 20, 6), ParseError::kBadIpv4},
      {"ipv4 ihl 4", Eth(0x0800) + Ipv4(4, 20), ParseError::kBadIpv4},
      {"ipv4 total < ihl", Eth(0x0800) + Ipv4(5, 19), ParseError::kBadIpv4},
      {"ipv4 total past frame", Eth(0x0800) + Ipv4(5, 60), ParseError::kTruncated},
      {"ipv4 ihl past frame", Eth(0x0800) + Ipv4(15, 60).substr(0, 40), ParseError::kTruncated},
      {"arp", Eth(0x0806) + Arp(), ParseError::kNone},
      {"arp cut", Eth(0x0806) + Arp().substr(0, 27), ParseError::kTruncated},
      {"arp not ethernet", Eth(0x0806) + Arp(6), ParseError::kBadArp},
      {"arp not ipv4", Eth(0x0806) + Arp(1, 0x86dd), ParseError::kBadArp},
      {"arp hlen 8", Eth(0x0806) + Arp(1, 0x0800, 8), ParseError::kBadArp},
      {"vlan ipv4", vlan + Ipv4(), ParseError::kNone},
      {"vlan tag cut", vlan.substr(0, 16), ParseError::kTruncated},
      {"too long", Eth(0x88b5) + std::string(2000, 'x'), ParseError::kTooLong},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    FrameInfo info;
    EXPECT_EQ(ParseErrorName(ParseFrame(reinterpret_cast<const uint8_t*>(c.frame.data()),
                                        c.frame.size(), 1518, &info)),
              std::string(ParseErrorName(c.want)));
  }
}

TEST(FrameTest, FieldsOfAnIpv4FrameBehindAVlanTag) {
  std::string f =
      Bytes({0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x81, 0, 0, 5, 0x08, 0x00}) + Ipv4();
  FrameInfo info;
  ASSERT_EQ(ParseFrame(reinterpret_cast<const uint8_t*>(f.data()), f.size(), 1518, &info),
            ParseError::kNone);
  EXPECT_EQ(MacToString(info.dst_mac), "02:00:00:00:00:02");
  EXPECT_EQ(MacToString(info.src_mac), "02:00:00:00:00:01");
  EXPECT_EQ(info.ethertype, kEtherTypeIpv4);
  EXPECT_EQ(info.l3_offset, 18u);
  EXPECT_EQ(Ipv4ToString(info.ipv4_src), "10.0.0.1");
  EXPECT_EQ(Ipv4ToString(info.ipv4_dst), "10.0.0.2");
  EXPECT_EQ(info.ipv4_protocol, 17);
}

TEST(FrameTest, ArpFields) {
  std::string f = Eth(0x0806) + Arp();
  FrameInfo info;
  ASSERT_EQ(ParseFrame(reinterpret_cast<const uint8_t*>(f.data()), f.size(), 1518, &info),
            ParseError::kNone);
  EXPECT_EQ(info.arp_op, 1);
  EXPECT_EQ(MacToString(info.arp_sender_mac), "02:00:00:00:00:01");
  EXPECT_EQ(Ipv4ToString(info.arp_sender_ip), "10.0.0.1");
  EXPECT_EQ(Ipv4ToString(info.arp_target_ip), "10.0.0.2");
  EXPECT_TRUE(IsMulticast(info.dst_mac));
}

TEST(FrameTest, MacAndIpText) {
  uint64_t mac;
  EXPECT_TRUE(ParseMac("02:aB:00:00:00:ff", &mac));
  EXPECT_EQ(MacToString(mac), "02:ab:00:00:00:ff");
  EXPECT_FALSE(ParseMac("02:ab:00:00:00", &mac));
  EXPECT_FALSE(ParseMac("02:ab:00:00:00:ff:11", &mac));
  EXPECT_FALSE(ParseMac("zz:ab:00:00:00:ff", &mac));
  uint32_t ip;
  EXPECT_TRUE(ParseIpv4("10.1.2.3", &ip));
  EXPECT_EQ(Ipv4ToString(ip), "10.1.2.3");
  EXPECT_FALSE(ParseIpv4("10.1.2", &ip));
  EXPECT_FALSE(ParseIpv4("300.1.2.3", &ip));
}

}  // namespace
}  // namespace snapd
