#include "engines/frame.h"

#include <string>
#include <vector>

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

// A fixed IPv6 header: fd00::1 -> ff02::1, `next` and `payload` as given.
std::string Ipv6Header(int next, int payload, int version = 6) {
  std::string h = Bytes({version << 4, 0, 0, 0, payload >> 8, payload & 0xff, next, 255});
  h += Bytes({0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1});
  h += Bytes({0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1});
  return h;
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
      {"vlan tag without its type", vlan.substr(0, 17), ParseError::kTruncated},
      {"ipv6", Eth(0x86dd) + Ipv6Header(17, 8) + std::string(8, 'u'), ParseError::kNone},
      {"ipv6 header cut", Eth(0x86dd) + Ipv6Header(17, 0).substr(0, 39), ParseError::kTruncated},
      {"ipv6 payload past frame", Eth(0x86dd) + Ipv6Header(17, 9) + std::string(8, 'u'),
       ParseError::kTruncated},
      {"ipv6 version 4", Eth(0x86dd) + Ipv6Header(17, 0, 4), ParseError::kBadIpv6},
      {"ipv6 extension chain cut: not malformed, upper layer unknown",
       Eth(0x86dd) + Ipv6Header(0, 4) + std::string(4, '\0'), ParseError::kNone},
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

// --- the app egress filter ------------------------------------------------------------------

constexpr char kAppMac[] = "02:00:00:00:00:0a";
constexpr char kOtherMac[] = "02:00:00:00:00:0b";
constexpr char kAppIp[] = "10.0.0.10";
constexpr char kAppIp6[] = "fd00::a";
constexpr char kAppLinkLocal[] = "fe80::a";

std::string MacB(const char* text) {
  uint64_t mac;
  EXPECT_TRUE(ParseMac(text, &mac));
  std::string b(6, '\0');
  MacToBytes(mac, reinterpret_cast<uint8_t*>(b.data()));
  return b;
}
std::string IpB(const char* text) {
  uint32_t ip;
  EXPECT_TRUE(ParseIpv4(text, &ip));
  return std::string(reinterpret_cast<const char*>(&ip), 4);
}
std::string Ip6B(const char* text) {
  Ipv6Address ip;
  EXPECT_TRUE(ParseIpv6(text, &ip));
  return std::string(reinterpret_cast<const char*>(ip.w), 16);
}
std::string Be16B(int v) { return Bytes({v >> 8, v & 0xff}); }

// Ethernet from `src` to `dst` with the tags (TPID, VID) given, then `type`.
std::string EthB(const char* dst, const char* src, int type,
                 std::initializer_list<std::pair<int, int>> tags = {}) {
  std::string f = MacB(dst) + MacB(src);
  for (const auto& [tpid, vid] : tags) f += Be16B(tpid) + Be16B(vid);
  return f + Be16B(type);
}
std::string Ipv4B(const char* src, const char* dst = "10.0.0.99") {
  return Bytes({0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0}) + IpB(src) + IpB(dst) +
         std::string(8, 'u');
}
// IPv4 from `src` to `dst` of `protocol`, carrying `l4` (transport header and payload), as a
// fragment at `offset_bytes` (with more fragments to come if `more`) when those are given.
std::string Ipv4P(const char* src, const char* dst, int protocol, const std::string& l4,
                  int offset_bytes = 0, bool more = false) {
  int total = 20 + static_cast<int>(l4.size());
  int frag = (more ? 0x2000 : 0) | offset_bytes / 8;
  return Bytes({0x45, 0, total >> 8, total & 0xff, 0, 0, frag >> 8, frag & 0xff, 64, protocol, 0,
                0}) +
         IpB(src) + IpB(dst) + l4;
}
// IPv4 from the app's address with `options` (a multiple of 4 bytes) carrying UDP.
std::string Ipv4Opts(const std::string& options, int protocol = 17) {
  const int ihl = 5 + static_cast<int>(options.size()) / 4;
  const int total = ihl * 4 + 8;
  return Bytes({0x40 | ihl, 0, total >> 8, total & 0xff, 0, 0, 0, 0, 64, protocol, 0, 0}) +
         IpB(kAppIp) + IpB("10.0.0.99") + options + std::string(8, 'u');
}
std::string UdpB(int sport, int dport) {
  return Bytes({sport >> 8, sport & 0xff, dport >> 8, dport & 0xff, 0, 8, 0, 0});
}
// ICMP (or IGMP) of `type`: type, code, checksum and four more bytes.
std::string IcmpB(int type) { return Bytes({type, 0, 0, 0, 0, 0, 0, 0}); }
std::string ArpB(const char* sender_mac, const char* sender_ip, const char* target_ip = "10.0.0.99",
                 int op = 1) {
  return Bytes({0, 1, 8, 0, 6, 4, 0, op}) + MacB(sender_mac) + IpB(sender_ip) +
         std::string(6, '\0') + IpB(target_ip);
}
// IPv6 from `src` to `dst`: `ext` (extension headers, `next` the first's type) then `upper`.
std::string Ipv6B(const char* src, const char* dst, int next, const std::string& upper,
                  const std::string& ext = "") {
  int payload = static_cast<int>(ext.size() + upper.size());
  return Bytes({0x60, 0, 0, 0, payload >> 8, payload & 0xff, next, 255}) + Ip6B(src) + Ip6B(dst) +
         ext + upper;
}
// ICMPv6 of `type`; NS, NA and redirect carry `target`.
std::string Icmp6B(int type, const char* target = nullptr) {
  std::string m = Bytes({type, 0, 0, 0, 0, 0, 0, 0});
  if (target) m += Ip6B(target);
  return m;
}
// A source (1) or target (2) link-layer address option naming `mac`.
std::string LlaOpt(int type, const char* mac) { return Bytes({type, 1}) + MacB(mac); }
// A nonce option (14): 8 bytes.
std::string NonceOpt() { return Bytes({14, 1, 1, 2, 3, 4, 5, 6}); }
std::string Udp() { return std::string(8, 'u'); }
// An extension header of 8 bytes: its next header, length 0.
std::string Ext8(int next) { return Bytes({next, 0, 0, 0, 0, 0, 0, 0}); }
std::string Fragment(int next, int offset_bytes) {
  return Bytes({next, 0, (offset_bytes >> 8) & 0xff, offset_bytes & 0xf8, 0, 0, 0, 1});
}

AppIdentity App(uint16_t vlan = 0, bool ipv6 = false) {
  AppIdentity app;
  ParseMac(kAppMac, &app.mac);
  ParseIpv4(kAppIp, &app.ipv4);
  app.vlan = vlan;
  if (ipv6) {
    ParseIpv6(kAppIp6, &app.ipv6[app.ipv6_count++]);
    ParseIpv6(kAppLinkLocal, &app.ipv6[app.ipv6_count++]);
  }
  return app;
}

struct EgressCase {
  const char* name;
  AppIdentity app;
  std::string frame;
  EgressVerdict want;
};

TEST(EgressTest, Table) {
  const char* bcast = "ff:ff:ff:ff:ff:ff";
  const char* peer = "02:00:00:00:00:63";
  const AppIdentity plain = App();
  const AppIdentity vlan7 = App(7);
  const AppIdentity v6 = App(0, true);
  const EgressCase cases[] = {
      // IPv4 and ARP
      {"ipv4 from its address", plain, EthB(peer, kAppMac, 0x0800) + Ipv4B(kAppIp),
       EgressVerdict::kAllow},
      {"ipv4 from another MAC", plain, EthB(peer, kOtherMac, 0x0800) + Ipv4B(kAppIp),
       EgressVerdict::kSrcMac},
      {"ipv4 from another address", plain, EthB(peer, kAppMac, 0x0800) + Ipv4B("10.0.0.11"),
       EgressVerdict::kIpv4Src},
      {"ipv4 from 0.0.0.0 (DHCP discover)", plain,
       EthB(bcast, kAppMac, 0x0800) + Ipv4B("0.0.0.0", "255.255.255.255"), EgressVerdict::kIpv4Src},
      {"arp for itself", plain, EthB(bcast, kAppMac, 0x0806) + ArpB(kAppMac, kAppIp),
       EgressVerdict::kAllow},
      {"arp claiming another address", plain,
       EthB(bcast, kAppMac, 0x0806) + ArpB(kAppMac, "10.0.0.11"), EgressVerdict::kArp},
      {"arp with another sender MAC", plain, EthB(bcast, kAppMac, 0x0806) + ArpB(kOtherMac, kAppIp),
       EgressVerdict::kArp},
      {"arp announcement", plain, EthB(bcast, kAppMac, 0x0806) + ArpB(kAppMac, kAppIp, kAppIp),
       EgressVerdict::kAllow},
      {"arp probe for its address (RFC 5227)", plain,
       EthB(bcast, kAppMac, 0x0806) + ArpB(kAppMac, "0.0.0.0", kAppIp), EgressVerdict::kAllow},
      {"arp probe for another address", plain,
       EthB(bcast, kAppMac, 0x0806) + ArpB(kAppMac, "0.0.0.0", "10.0.0.11"), EgressVerdict::kArp},
      {"arp probe from another sender MAC", plain,
       EthB(bcast, kAppMac, 0x0806) + ArpB(kOtherMac, "0.0.0.0", kAppIp), EgressVerdict::kArp},
      {"arp reply from 0.0.0.0", plain,
       EthB(bcast, kAppMac, 0x0806) + ArpB(kAppMac, "0.0.0.0", kAppIp, 2), EgressVerdict::kArp},
      {"arp probe from an app without IPv4",
       [] {
         AppIdentity a = App();
         a.ipv4 = 0;
         return a;
       }(),
       EthB(bcast, kAppMac, 0x0806) + ArpB(kAppMac, "0.0.0.0", "0.0.0.0"), EgressVerdict::kArp},
      // Servers of the link: DHCP, multicast queriers, routers (IPv4)
      {"DHCP offer (UDP 67 -> 68)", plain,
       EthB(bcast, kAppMac, 0x0800) + Ipv4P(kAppIp, "255.255.255.255", 17, UdpB(67, 68)),
       EgressVerdict::kDhcpServer},
      {"DHCP relay to a server (UDP 67 -> 67)", plain,
       EthB(peer, kAppMac, 0x0800) + Ipv4P(kAppIp, "10.0.0.1", 17, UdpB(67, 67)),
       EgressVerdict::kDhcpServer},
      {"UDP to a DHCP client's port from another port", plain,
       EthB(bcast, kAppMac, 0x0800) + Ipv4P(kAppIp, "255.255.255.255", 17, UdpB(4000, 68)),
       EgressVerdict::kDhcpServer},
      {"DHCP offer, first fragment", plain,
       EthB(bcast, kAppMac, 0x0800) +
           Ipv4P(kAppIp, "255.255.255.255", 17, UdpB(67, 68) + std::string(8, 'd'), 0, true),
       EgressVerdict::kDhcpServer},
      {"later fragment: no transport header to check", plain,
       EthB(bcast, kAppMac, 0x0800) + Ipv4P(kAppIp, "255.255.255.255", 17, UdpB(67, 68), 8),
       EgressVerdict::kAllow},
      {"DHCP request as a client (68 -> 67)", plain,
       EthB(bcast, kAppMac, 0x0800) + Ipv4P(kAppIp, "255.255.255.255", 17, UdpB(68, 67)),
       EgressVerdict::kAllow},
      {"UDP cut before its ports", plain,
       EthB(peer, kAppMac, 0x0800) + Ipv4P(kAppIp, "10.0.0.99", 17, Bytes({0, 67, 0})),
       EgressVerdict::kAllow},
      {"TCP to port 68", plain,
       EthB(peer, kAppMac, 0x0800) + Ipv4P(kAppIp, "10.0.0.99", 6, UdpB(67, 68) + UdpB(0, 0)),
       EgressVerdict::kAllow},
      {"IGMP membership query", plain,
       EthB("01:00:5e:00:00:01", kAppMac, 0x0800) + Ipv4P(kAppIp, "224.0.0.1", 2, IcmpB(0x11)),
       EgressVerdict::kQuerier},
      {"IGMP group-specific query, first fragment", plain,
       EthB("01:00:5e:00:00:fb", kAppMac, 0x0800) +
           Ipv4P(kAppIp, "224.0.0.251", 2, IcmpB(0x11), 0, true),
       EgressVerdict::kQuerier},
      {"IGMPv2 report", plain,
       EthB("01:00:5e:00:00:fb", kAppMac, 0x0800) + Ipv4P(kAppIp, "224.0.0.251", 2, IcmpB(0x16)),
       EgressVerdict::kAllow},
      {"IGMPv3 report", plain,
       EthB("01:00:5e:00:00:16", kAppMac, 0x0800) + Ipv4P(kAppIp, "224.0.0.22", 2, IcmpB(0x22)),
       EgressVerdict::kAllow},
      {"IGMP multicast router advertisement", plain,
       EthB("01:00:5e:00:00:6a", kAppMac, 0x0800) + Ipv4P(kAppIp, "224.0.0.106", 2, IcmpB(0x30)),
       EgressVerdict::kRouter},
      {"ICMP redirect", plain,
       EthB(peer, kAppMac, 0x0800) + Ipv4P(kAppIp, "10.0.0.99", 1, IcmpB(5)),
       EgressVerdict::kRouter},
      {"ICMP router advertisement", plain,
       EthB(bcast, kAppMac, 0x0800) + Ipv4P(kAppIp, "224.0.0.1", 1, IcmpB(9)),
       EgressVerdict::kRouter},
      {"ICMP router solicitation", plain,
       EthB(bcast, kAppMac, 0x0800) + Ipv4P(kAppIp, "224.0.0.2", 1, IcmpB(10)),
       EgressVerdict::kAllow},
      {"ICMP echo request", plain,
       EthB(peer, kAppMac, 0x0800) + Ipv4P(kAppIp, "10.0.0.99", 1, IcmpB(8)),
       EgressVerdict::kAllow},
      {"ICMP redirect from another address", plain,
       EthB(peer, kAppMac, 0x0800) + Ipv4P("10.0.0.1", "10.0.0.99", 1, IcmpB(5)),
       EgressVerdict::kIpv4Src},
      // Tunnels, routing protocols, IPv4 options
      {"IP in IP", plain, EthB(peer, kAppMac, 0x0800) + Ipv4P(kAppIp, "10.0.0.99", 4, Ipv4B("10.0.0.11")),
       EgressVerdict::kTunnel},
      {"6in4", plain, EthB(peer, kAppMac, 0x0800) + Ipv4P(kAppIp, "10.0.0.99", 41, Udp()),
       EgressVerdict::kTunnel},
      {"GRE", plain, EthB(peer, kAppMac, 0x0800) + Ipv4P(kAppIp, "10.0.0.99", 47, Udp()),
       EgressVerdict::kTunnel},
      {"GRE, later fragment", plain,
       EthB(peer, kAppMac, 0x0800) + Ipv4P(kAppIp, "10.0.0.99", 47, Udp(), 1480),
       EgressVerdict::kTunnel},
      {"IP in IP (94)", plain, EthB(peer, kAppMac, 0x0800) + Ipv4P(kAppIp, "10.0.0.99", 94, Udp()),
       EgressVerdict::kTunnel},
      {"EtherIP", plain, EthB(peer, kAppMac, 0x0800) + Ipv4P(kAppIp, "10.0.0.99", 97, Udp()),
       EgressVerdict::kTunnel},
      {"L2TPv3", plain, EthB(peer, kAppMac, 0x0800) + Ipv4P(kAppIp, "10.0.0.99", 115, Udp()),
       EgressVerdict::kTunnel},
      {"OSPF", plain, EthB(peer, kAppMac, 0x0800) + Ipv4P(kAppIp, "224.0.0.5", 89, Udp()),
       EgressVerdict::kRouter},
      {"PIM", plain, EthB(peer, kAppMac, 0x0800) + Ipv4P(kAppIp, "224.0.0.13", 103, Udp()),
       EgressVerdict::kRouter},
      {"VRRP", plain, EthB(peer, kAppMac, 0x0800) + Ipv4P(kAppIp, "224.0.0.18", 112, Udp()),
       EgressVerdict::kRouter},
      {"ESP", plain, EthB(peer, kAppMac, 0x0800) + Ipv4P(kAppIp, "10.0.0.99", 50, Udp()),
       EgressVerdict::kAllow},
      {"SCTP", plain, EthB(peer, kAppMac, 0x0800) + Ipv4P(kAppIp, "10.0.0.99", 132, Udp()),
       EgressVerdict::kAllow},
      {"loose source route", plain,
       EthB(peer, kAppMac, 0x0800) + Ipv4Opts(Bytes({0x83, 7, 4, 10, 0, 0, 11, 1})),
       EgressVerdict::kIpOptions},
      {"strict source route after a NOP", plain,
       EthB(peer, kAppMac, 0x0800) + Ipv4Opts(Bytes({1, 0x89, 7, 4, 10, 0, 0, 11})),
       EgressVerdict::kIpOptions},
      {"source route in a TCP packet", plain,
       EthB(peer, kAppMac, 0x0800) + Ipv4Opts(Bytes({0x83, 7, 4, 10, 0, 0, 11, 1}), 6),
       EgressVerdict::kIpOptions},
      {"record route", plain,
       EthB(peer, kAppMac, 0x0800) + Ipv4Opts(Bytes({7, 7, 4, 0, 0, 0, 0, 1})),
       EgressVerdict::kIpOptions},
      {"router alert (IGMP report)", plain,
       EthB("01:00:5e:00:00:16", kAppMac, 0x0800) + Ipv4Opts(Bytes({0x94, 4, 0, 0}), 2),
       EgressVerdict::kAllow},
      {"router alert of 2 bytes", plain,
       EthB(peer, kAppMac, 0x0800) + Ipv4Opts(Bytes({0x94, 2, 1, 1})), EgressVerdict::kIpOptions},
      {"padding only", plain, EthB(peer, kAppMac, 0x0800) + Ipv4Opts(Bytes({1, 1, 1, 0})),
       EgressVerdict::kAllow},
      {"a source route after the end of the list is padding", plain,
       EthB(peer, kAppMac, 0x0800) + Ipv4Opts(Bytes({0, 0x83, 7, 4, 10, 0, 0, 11})),
       EgressVerdict::kAllow},
      {"option of length 1", plain, EthB(peer, kAppMac, 0x0800) + Ipv4Opts(Bytes({0x44, 1, 0, 0})),
       EgressVerdict::kIpOptions},
      {"option past the header", plain,
       EthB(peer, kAppMac, 0x0800) + Ipv4Opts(Bytes({1, 1, 0x44, 8})), EgressVerdict::kIpOptions},
      {"option type with no room for its length", plain,
       EthB(peer, kAppMac, 0x0800) + Ipv4Opts(Bytes({1, 1, 1, 0x83})), EgressVerdict::kIpOptions},
      // Other ethertypes and link-local control
      {"unknown ethertype", plain, EthB(peer, kAppMac, 0x88b5) + Udp(), EgressVerdict::kEthertype},
      {"802.3 length field (LLC, e.g. CDP)", plain, EthB(peer, kAppMac, 0x0040) + Udp(),
       EgressVerdict::kEthertype},
      {"PAUSE", plain, EthB("01:80:c2:00:00:01", kAppMac, 0x8808) + Udp(),
       EgressVerdict::kLinkLocal},
      {"STP BPDU", plain, EthB("01:80:c2:00:00:00", kAppMac, 0x0026) + Udp(),
       EgressVerdict::kLinkLocal},
      {"LLDP", plain, EthB("01:80:c2:00:00:0e", kAppMac, 0x88cc) + Udp(),
       EgressVerdict::kLinkLocal},
      {"LLDP as IPv4 to the link-local group", plain,
       EthB("01:80:c2:00:00:03", kAppMac, 0x0800) + Ipv4B(kAppIp), EgressVerdict::kLinkLocal},
      {"01:80:c2:00:00:10 is no link-local control address", plain,
       EthB("01:80:c2:00:00:10", kAppMac, 0x0800) + Ipv4B(kAppIp), EgressVerdict::kAllow},
      // VLAN tags
      {"tagged without a VLAN", plain, EthB(peer, kAppMac, 0x0800, {{0x8100, 7}}) + Ipv4B(kAppIp),
       EgressVerdict::kVlan},
      {"tagged with its VLAN", vlan7, EthB(peer, kAppMac, 0x0800, {{0x8100, 7}}) + Ipv4B(kAppIp),
       EgressVerdict::kAllow},
      {"tagged with its VLAN, priority 5", vlan7,
       EthB(peer, kAppMac, 0x0800, {{0x8100, 0xa007}}) + Ipv4B(kAppIp), EgressVerdict::kVlan},
      {"tagged with its VLAN, drop eligible", vlan7,
       EthB(peer, kAppMac, 0x0800, {{0x8100, 0x1007}}) + Ipv4B(kAppIp), EgressVerdict::kVlan},
      {"untagged with a VLAN", vlan7, EthB(peer, kAppMac, 0x0800) + Ipv4B(kAppIp),
       EgressVerdict::kVlan},
      {"untagged ARP with a VLAN", vlan7, EthB(bcast, kAppMac, 0x0806) + ArpB(kAppMac, kAppIp),
       EgressVerdict::kVlan},
      {"tagged ARP with its VLAN", vlan7,
       EthB(bcast, kAppMac, 0x0806, {{0x8100, 7}}) + ArpB(kAppMac, kAppIp), EgressVerdict::kAllow},
      {"priority tag (VLAN 0) without a VLAN", plain,
       EthB(peer, kAppMac, 0x0800, {{0x8100, 0}}) + Ipv4B(kAppIp), EgressVerdict::kVlan},
      {"another VLAN", vlan7, EthB(peer, kAppMac, 0x0800, {{0x8100, 8}}) + Ipv4B(kAppIp),
       EgressVerdict::kVlan},
      {"VLAN 0 (priority tag)", vlan7, EthB(peer, kAppMac, 0x0800, {{0x8100, 0}}) + Ipv4B(kAppIp),
       EgressVerdict::kVlan},
      {"its VLAN under 802.1ad", vlan7, EthB(peer, kAppMac, 0x0800, {{0x88a8, 7}}) + Ipv4B(kAppIp),
       EgressVerdict::kVlan},
      {"its VLAN under 0x9100", vlan7, EthB(peer, kAppMac, 0x0800, {{0x9100, 7}}) + Ipv4B(kAppIp),
       EgressVerdict::kVlan},
      {"its VLAN under 0x9200", vlan7, EthB(peer, kAppMac, 0x0800, {{0x9200, 7}}) + Ipv4B(kAppIp),
       EgressVerdict::kVlan},
      {"two tags", vlan7, EthB(peer, kAppMac, 0x0800, {{0x8100, 7}, {0x8100, 7}}) + Ipv4B(kAppIp),
       EgressVerdict::kVlan},
      {"three tags hiding a foreign source", vlan7,
       EthB(peer, kAppMac, 0x0800, {{0x8100, 7}, {0x8100, 7}, {0x8100, 7}}) + Ipv4B("10.0.0.11"),
       EgressVerdict::kVlan},
      {"0x9100 hiding a foreign source", plain,
       EthB(peer, kAppMac, 0x0800, {{0x9100, 5}}) + Ipv4B("10.0.0.11"), EgressVerdict::kVlan},
      {"tagged ipv4 from another address", vlan7,
       EthB(peer, kAppMac, 0x0800, {{0x8100, 7}}) + Ipv4B("10.0.0.11"), EgressVerdict::kIpv4Src},
      // IPv6
      {"ipv6 without IPv6 addresses", plain,
       EthB(peer, kAppMac, 0x86dd) + Ipv6B(kAppIp6, "fd00::99", 17, Udp()), EgressVerdict::kIpv6},
      {"router advertisement without IPv6 addresses", plain,
       EthB("33:33:00:00:00:01", kAppMac, 0x86dd) +
           Ipv6B(kAppLinkLocal, "ff02::1", 58, Icmp6B(134)),
       EgressVerdict::kIpv6},
      {"ipv6 udp from its address", v6,
       EthB(peer, kAppMac, 0x86dd) + Ipv6B(kAppIp6, "fd00::99", 17, Udp()), EgressVerdict::kAllow},
      {"ipv6 from its link-local address", v6,
       EthB(peer, kAppMac, 0x86dd) + Ipv6B(kAppLinkLocal, "fe80::99", 17, Udp()),
       EgressVerdict::kAllow},
      {"ipv6 from another address", v6,
       EthB(peer, kAppMac, 0x86dd) + Ipv6B("fd00::b", "fd00::99", 17, Udp()),
       EgressVerdict::kIpv6Src},
      {"ipv6 from ::", v6, EthB(peer, kAppMac, 0x86dd) + Ipv6B("::", "fd00::99", 17, Udp()),
       EgressVerdict::kIpv6Src},
      {"ipv6 behind two extension headers", v6,
       EthB(peer, kAppMac, 0x86dd) + Ipv6B(kAppIp6, "fd00::99", 0, Udp(), Ext8(60) + Ext8(17)),
       EgressVerdict::kAllow},
      {"ipv6 extension chain past the payload", v6,
       EthB(peer, kAppMac, 0x86dd) + Ipv6B(kAppIp6, "fd00::99", 0, "", Bytes({17, 1, 0, 0})),
       EgressVerdict::kIpv6Headers},
      {"ipv6 with nine extension headers", v6,
       EthB(peer, kAppMac, 0x86dd) + Ipv6B(kAppIp6, "fd00::99", 60, Udp(),
                                           Ext8(60) + Ext8(60) + Ext8(60) + Ext8(60) + Ext8(60) +
                                               Ext8(60) + Ext8(60) + Ext8(60) + Ext8(17)),
       EgressVerdict::kIpv6Headers},
      {"router advertisement", v6,
       EthB("33:33:00:00:00:01", kAppMac, 0x86dd) +
           Ipv6B(kAppLinkLocal, "ff02::1", 58, Icmp6B(134)),
       EgressVerdict::kRouter},
      {"router advertisement behind a destination options header", v6,
       EthB("33:33:00:00:00:01", kAppMac, 0x86dd) +
           Ipv6B(kAppLinkLocal, "ff02::1", 60, Icmp6B(134), Ext8(58)),
       EgressVerdict::kRouter},
      {"router advertisement from a foreign source", v6,
       EthB("33:33:00:00:00:01", kAppMac, 0x86dd) + Ipv6B("fe80::1", "ff02::1", 58, Icmp6B(134)),
       EgressVerdict::kRouter},
      {"redirect", v6,
       EthB(peer, kAppMac, 0x86dd) + Ipv6B(kAppLinkLocal, "fe80::99", 58, Icmp6B(137, "fd00::1")),
       EgressVerdict::kRouter},
      {"router solicitation", v6,
       EthB("33:33:00:00:00:02", kAppMac, 0x86dd) +
           Ipv6B(kAppLinkLocal, "ff02::2", 58, Icmp6B(133)),
       EgressVerdict::kAllow},
      {"neighbour solicitation for a peer", v6,
       EthB("33:33:ff:00:00:99", kAppMac, 0x86dd) +
           Ipv6B(kAppIp6, "ff02::1:ff00:99", 58, Icmp6B(135, "fd00::99")),
       EgressVerdict::kAllow},
      {"neighbour advertisement for itself", v6,
       EthB(peer, kAppMac, 0x86dd) + Ipv6B(kAppIp6, "fd00::99", 58, Icmp6B(136, kAppIp6)),
       EgressVerdict::kAllow},
      {"neighbour advertisement for another", v6,
       EthB(peer, kAppMac, 0x86dd) + Ipv6B(kAppIp6, "fd00::99", 58, Icmp6B(136, "fd00::1")),
       EgressVerdict::kNeighbor},
      {"neighbour advertisement cut before its target", v6,
       EthB(peer, kAppMac, 0x86dd) + Ipv6B(kAppIp6, "fd00::99", 58, Icmp6B(136)),
       EgressVerdict::kIpv6Headers},
      // Neighbour discovery options
      {"neighbour advertisement for itself, its MAC as target link-layer address", v6,
       EthB(peer, kAppMac, 0x86dd) +
           Ipv6B(kAppIp6, "fd00::99", 58, Icmp6B(136, kAppIp6) + LlaOpt(2, kAppMac)),
       EgressVerdict::kAllow},
      {"neighbour advertisement for itself naming another MAC", v6,
       EthB(peer, kAppMac, 0x86dd) +
           Ipv6B(kAppIp6, "fd00::99", 58, Icmp6B(136, kAppIp6) + LlaOpt(2, kOtherMac)),
       EgressVerdict::kNeighbor},
      {"neighbour advertisement naming its MAC, then another", v6,
       EthB(peer, kAppMac, 0x86dd) +
           Ipv6B(kAppIp6, "fd00::99", 58,
                 Icmp6B(136, kAppIp6) + LlaOpt(2, kAppMac) + LlaOpt(2, kOtherMac)),
       EgressVerdict::kNeighbor},
      {"neighbour solicitation, its MAC as source link-layer address, and a nonce", v6,
       EthB("33:33:ff:00:00:99", kAppMac, 0x86dd) +
           Ipv6B(kAppIp6, "ff02::1:ff00:99", 58,
                 Icmp6B(135, "fd00::99") + NonceOpt() + LlaOpt(1, kAppMac)),
       EgressVerdict::kAllow},
      {"neighbour solicitation naming another MAC", v6,
       EthB("33:33:ff:00:00:99", kAppMac, 0x86dd) +
           Ipv6B(kAppIp6, "ff02::1:ff00:99", 58, Icmp6B(135, "fd00::99") + LlaOpt(1, kOtherMac)),
       EgressVerdict::kNeighbor},
      {"neighbour solicitation, an option of length 0", v6,
       EthB("33:33:ff:00:00:99", kAppMac, 0x86dd) +
           Ipv6B(kAppIp6, "ff02::1:ff00:99", 58,
                 Icmp6B(135, "fd00::99") + Bytes({14, 0, 0, 0, 0, 0, 0, 0})),
       EgressVerdict::kNeighbor},
      {"neighbour solicitation, an option past the message", v6,
       EthB("33:33:ff:00:00:99", kAppMac, 0x86dd) +
           Ipv6B(kAppIp6, "ff02::1:ff00:99", 58,
                 Icmp6B(135, "fd00::99") + Bytes({1, 2}) + MacB(kAppMac)),
       EgressVerdict::kNeighbor},
      {"neighbour solicitation, four bytes after its options", v6,
       EthB("33:33:ff:00:00:99", kAppMac, 0x86dd) +
           Ipv6B(kAppIp6, "ff02::1:ff00:99", 58,
                 Icmp6B(135, "fd00::99") + LlaOpt(1, kAppMac) + Bytes({14, 1, 0, 0})),
       EgressVerdict::kNeighbor},
      {"neighbour solicitation, a link-layer address of 14 bytes", v6,
       EthB("33:33:ff:00:00:99", kAppMac, 0x86dd) +
           Ipv6B(kAppIp6, "ff02::1:ff00:99", 58,
                 Icmp6B(135, "fd00::99") + Bytes({1, 2}) + MacB(kAppMac) + MacB(kOtherMac) +
                     Bytes({0, 0})),
       EgressVerdict::kNeighbor},
      {"neighbour solicitation with 65 options", v6,
       [] {
         std::string opts;
         for (int i = 0; i < 65; ++i) opts += NonceOpt();
         return EthB("33:33:ff:00:00:99", kAppMac, 0x86dd) +
                Ipv6B(kAppIp6, "ff02::1:ff00:99", 58, Icmp6B(135, "fd00::99") + opts);
       }(),
       EgressVerdict::kNeighbor},
      {"router solicitation, its MAC as source link-layer address", v6,
       EthB("33:33:00:00:00:02", kAppMac, 0x86dd) +
           Ipv6B(kAppLinkLocal, "ff02::2", 58, Icmp6B(133) + LlaOpt(1, kAppMac)),
       EgressVerdict::kAllow},
      {"router solicitation naming another MAC", v6,
       EthB("33:33:00:00:00:02", kAppMac, 0x86dd) +
           Ipv6B(kAppLinkLocal, "ff02::2", 58, Icmp6B(133) + LlaOpt(1, kOtherMac)),
       EgressVerdict::kNeighbor},
      {"duplicate address detection naming another MAC", v6,
       EthB("33:33:ff:00:00:0a", kAppMac, 0x86dd) +
           Ipv6B("::", "ff02::1:ff00:a", 58, Icmp6B(135, kAppIp6) + LlaOpt(1, kOtherMac)),
       EgressVerdict::kNeighbor},
      {"echo request: its bytes are no options", v6,
       EthB(peer, kAppMac, 0x86dd) +
           Ipv6B(kAppIp6, "fd00::99", 58, Icmp6B(128) + Bytes({1, 0}) + MacB(kOtherMac)),
       EgressVerdict::kAllow},
      {"duplicate address detection", v6,
       EthB("33:33:ff:00:00:0a", kAppMac, 0x86dd) +
           Ipv6B("::", "ff02::1:ff00:a", 58, Icmp6B(135, kAppIp6)),
       EgressVerdict::kAllow},
      {"duplicate address detection for another's address", v6,
       EthB("33:33:ff:00:00:01", kAppMac, 0x86dd) +
           Ipv6B("::", "ff02::1:ff00:1", 58, Icmp6B(135, "fd00::1")),
       EgressVerdict::kIpv6Src},
      {"echo request from its address", v6,
       EthB(peer, kAppMac, 0x86dd) + Ipv6B(kAppIp6, "fd00::99", 58, Icmp6B(128)),
       EgressVerdict::kAllow},
      {"fragmented ICMPv6, first fragment", v6,
       EthB(peer, kAppMac, 0x86dd) +
           Ipv6B(kAppIp6, "fd00::99", 44, Icmp6B(136, "fd00::1"), Fragment(58, 0)),
       EgressVerdict::kIpv6Headers},
      {"fragmented ICMPv6, later fragment", v6,
       EthB(peer, kAppMac, 0x86dd) + Ipv6B(kAppIp6, "fd00::99", 44, Udp(), Fragment(58, 1280)),
       EgressVerdict::kIpv6Headers},
      {"fragmented UDP, later fragment", v6,
       EthB(peer, kAppMac, 0x86dd) + Ipv6B(kAppIp6, "fd00::99", 44, Udp(), Fragment(17, 1280)),
       EgressVerdict::kAllow},
      {"fragmented UDP from another address", v6,
       EthB(peer, kAppMac, 0x86dd) + Ipv6B("fd00::b", "fd00::99", 44, Udp(), Fragment(17, 1280)),
       EgressVerdict::kIpv6Src},
      // Servers of the link (IPv6)
      {"DHCPv6 advertise (UDP 547 -> 546)", v6,
       EthB(peer, kAppMac, 0x86dd) + Ipv6B(kAppLinkLocal, "fe80::99", 17, UdpB(547, 546)),
       EgressVerdict::kDhcpServer},
      {"DHCPv6 relay-reply (UDP 547 -> 547)", v6,
       EthB(peer, kAppMac, 0x86dd) + Ipv6B(kAppLinkLocal, "fe80::99", 17, UdpB(547, 547)),
       EgressVerdict::kDhcpServer},
      {"DHCPv6 reply behind a destination options header", v6,
       EthB(peer, kAppMac, 0x86dd) + Ipv6B(kAppLinkLocal, "fe80::99", 60, UdpB(547, 546), Ext8(17)),
       EgressVerdict::kDhcpServer},
      {"DHCPv6 reply, first fragment", v6,
       EthB(peer, kAppMac, 0x86dd) +
           Ipv6B(kAppLinkLocal, "fe80::99", 44, UdpB(547, 546), Fragment(17, 0)),
       EgressVerdict::kDhcpServer},
      {"DHCPv6 solicit as a client (546 -> 547)", v6,
       EthB("33:33:00:01:00:02", kAppMac, 0x86dd) +
           Ipv6B(kAppLinkLocal, "ff02::1:2", 17, UdpB(546, 547)),
       EgressVerdict::kAllow},
      {"MLD query", v6,
       EthB("33:33:00:00:00:01", kAppMac, 0x86dd) +
           Ipv6B(kAppLinkLocal, "ff02::1", 58, Icmp6B(130) + std::string(16, '\0')),
       EgressVerdict::kQuerier},
      {"MLD query behind a hop-by-hop header (router alert)", v6,
       EthB("33:33:00:00:00:01", kAppMac, 0x86dd) + Ipv6B(kAppLinkLocal, "ff02::1", 0,
                                                          Icmp6B(130) + std::string(16, '\0'),
                                                          Bytes({58, 0, 5, 2, 0, 0, 1, 0})),
       EgressVerdict::kQuerier},
      {"MLDv2 report behind a hop-by-hop header", v6,
       EthB("33:33:00:00:00:16", kAppMac, 0x86dd) +
           Ipv6B(kAppLinkLocal, "ff02::16", 0, Icmp6B(143), Bytes({58, 0, 5, 2, 0, 0, 1, 0})),
       EgressVerdict::kAllow},
      {"multicast router advertisement", v6,
       EthB("33:33:00:00:00:6a", kAppMac, 0x86dd) +
           Ipv6B(kAppLinkLocal, "ff02::6a", 58, Icmp6B(151)),
       EgressVerdict::kRouter},
      {"multicast router solicitation", v6,
       EthB("33:33:00:00:00:02", kAppMac, 0x86dd) +
           Ipv6B(kAppLinkLocal, "ff02::2", 58, Icmp6B(152)),
       EgressVerdict::kAllow},
      {"multicast router termination", v6,
       EthB("33:33:00:00:00:6a", kAppMac, 0x86dd) +
           Ipv6B(kAppLinkLocal, "ff02::6a", 58, Icmp6B(153)),
       EgressVerdict::kRouter},
      // Tunnels and routing headers (IPv6)
      {"IPv6 in IPv6", v6,
       EthB(peer, kAppMac, 0x86dd) + Ipv6B(kAppIp6, "fd00::99", 41, Ipv6B(kAppIp6, "fd00::99", 17, Udp())),
       EgressVerdict::kTunnel},
      {"IPv4 in IPv6", v6, EthB(peer, kAppMac, 0x86dd) + Ipv6B(kAppIp6, "fd00::99", 4, Ipv4B(kAppIp)),
       EgressVerdict::kTunnel},
      {"GRE behind a destination options header", v6,
       EthB(peer, kAppMac, 0x86dd) + Ipv6B(kAppIp6, "fd00::99", 60, Udp(), Ext8(47)),
       EgressVerdict::kTunnel},
      {"GRE, later fragment", v6,
       EthB(peer, kAppMac, 0x86dd) + Ipv6B(kAppIp6, "fd00::99", 44, Udp(), Fragment(47, 1280)),
       EgressVerdict::kTunnel},
      {"OSPFv3", v6, EthB(peer, kAppMac, 0x86dd) + Ipv6B(kAppLinkLocal, "ff02::5", 89, Udp()),
       EgressVerdict::kRouter},
      {"routing header (segment routing)", v6,
       EthB(peer, kAppMac, 0x86dd) +
           Ipv6B(kAppIp6, "fd00::99", 43, Udp(),
                 Bytes({17, 2, 4, 0, 0, 0, 0, 0}) + Ip6B("fd00::1")),
       EgressVerdict::kIpOptions},
      {"routing header type 0 after hop-by-hop", v6,
       EthB(peer, kAppMac, 0x86dd) +
           Ipv6B(kAppIp6, "fd00::99", 0, Udp(),
                 Ext8(43) + Bytes({17, 2, 0, 1, 0, 0, 0, 0}) + Ip6B("fd00::1")),
       EgressVerdict::kIpOptions},
      {"mobility header", v6,
       EthB(peer, kAppMac, 0x86dd) + Ipv6B(kAppIp6, "fd00::99", 135, Udp(), Ext8(59)),
       EgressVerdict::kIpOptions},
      {"tagged ipv6 with its VLAN", App(7, true),
       EthB(peer, kAppMac, 0x86dd, {{0x8100, 7}}) + Ipv6B(kAppIp6, "fd00::99", 17, Udp()),
       EgressVerdict::kAllow},
  };
  for (const EgressCase& c : cases) {
    SCOPED_TRACE(c.name);
    FrameInfo info;
    ASSERT_EQ(
        ParseFrame(reinterpret_cast<const uint8_t*>(c.frame.data()), c.frame.size(), 1518, &info),
        ParseError::kNone);
    EXPECT_STREQ(EgressVerdictCounter(CheckAppEgress(c.app, info)), EgressVerdictCounter(c.want));
  }
}

TEST(EgressTest, EveryVerdictHasACounterName) {
  for (int v = 1; v < kEgressVerdicts; ++v) {
    std::string name = EgressVerdictCounter(static_cast<EgressVerdict>(v));
    EXPECT_EQ(name.rfind("egress_drop_", 0), 0u) << v;
    EXPECT_NE(name, "egress_drop_unknown") << v;
  }
}

TEST(FrameTest, VlanAndIpv6Fields) {
  std::string f = EthB("33:33:00:00:00:01", kAppMac, 0x86dd, {{0x8100, 0x2005}}) +
                  Ipv6B(kAppIp6, "ff02::1", 0, Icmp6B(136, kAppIp6), Ext8(58));
  FrameInfo info;
  ASSERT_EQ(ParseFrame(reinterpret_cast<const uint8_t*>(f.data()), f.size(), 1518, &info),
            ParseError::kNone);
  EXPECT_EQ(info.vlan_tags, 1);
  EXPECT_EQ(info.outer_tpid, 0x8100);
  EXPECT_EQ(info.outer_tci, 0x2005);
  EXPECT_EQ(info.ethertype, kEtherTypeIpv6);
  EXPECT_EQ(info.l3_offset, 18u);
  EXPECT_EQ(Ipv6ToString(info.ipv6_src), kAppIp6);
  EXPECT_EQ(Ipv6ToString(info.ipv6_dst), "ff02::1");
  EXPECT_TRUE(info.ipv6_upper_known);
  EXPECT_EQ(info.ipv6_upper, kIpProtoIcmpv6);
  EXPECT_EQ(info.icmp6_type, 136);
  EXPECT_EQ(Ipv6ToString(info.icmp6_target), kAppIp6);
  EXPECT_EQ(info.nd_options, FrameInfo::kNdNone);
  std::string na = EthB("02:00:00:00:00:63", kAppMac, 0x86dd) +
                   Ipv6B(kAppIp6, "fd00::99", 58, Icmp6B(136, kAppIp6) + LlaOpt(2, kOtherMac));
  FrameInfo nd;
  ASSERT_EQ(ParseFrame(reinterpret_cast<const uint8_t*>(na.data()), na.size(), 1518, &nd),
            ParseError::kNone);
  EXPECT_EQ(nd.nd_options, FrameInfo::kNdLinkAddr);
  EXPECT_EQ(MacToString(nd.nd_link_addr), kOtherMac);
  std::string three =
      EthB(kOtherMac, kAppMac, 0x0800, {{0x88a8, 1}, {0x8100, 2}, {0x8100, 3}}) + Ipv4B(kAppIp);
  FrameInfo deep;
  ASSERT_EQ(ParseFrame(reinterpret_cast<const uint8_t*>(three.data()), three.size(), 1518, &deep),
            ParseError::kNone);
  EXPECT_EQ(deep.vlan_tags, FrameInfo::kTooManyTags);
  EXPECT_EQ(deep.outer_tpid, kEtherTypeQinQ);
  EXPECT_EQ(deep.outer_tci, 1);
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
  Ipv6Address ip6;
  EXPECT_TRUE(ParseIpv6("FD00:0::1", &ip6));
  EXPECT_EQ(Ipv6ToString(ip6), "fd00::1");
  EXPECT_FALSE(ParseIpv6("fd00::1::2", &ip6));
  EXPECT_FALSE(ParseIpv6("10.0.0.1", &ip6));
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

TEST(FinishL4ChecksumTest, FinishesTcpAndUdpOverIpv4AndIpv6) {
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
  ASSERT_TRUE(FinishL4Checksum(reinterpret_cast<uint8_t*>(udp4.data()), udp4.size()));
  ASSERT_TRUE(FinishL4Checksum(reinterpret_cast<uint8_t*>(tcp4.data()), tcp4.size()));
  ASSERT_TRUE(FinishL4Checksum(reinterpret_cast<uint8_t*>(udp6.data()), udp6.size()));
  EXPECT_EQ(Verify(udp4, 26, 8, 34, 21, 17), 0xffff);
  EXPECT_EQ(Verify(tcp4, 30, 8, 38, 28, 6), 0xffff);
  EXPECT_EQ(Verify(udp6, 22, 32, 54, 16, 17), 0xffff);
  // Finishing twice changes nothing: the field's old value does not count.
  std::string again = udp4;
  ASSERT_TRUE(FinishL4Checksum(reinterpret_cast<uint8_t*>(again.data()), again.size()));
  EXPECT_EQ(again, udp4);
}

TEST(FinishL4ChecksumTest, LeavesAnythingElseAloneAndNeverReadsPastTheFrame) {
  const std::string eth = Hex("020000000002020000000001");
  std::string arp = eth + Hex("0806") + std::string(28, '\0');
  std::string icmp =
      eth + Hex("0800") + Hex("4500001c00004000400100000a0000010a000002") + std::string(8, 'i');
  std::string fragment =
      eth + Hex("0800") + Hex("4500001c00002000401100000a0000010a000002") + Hex("3039000700080000");
  for (std::string f : {arp, icmp, fragment}) {
    std::string before = f;
    EXPECT_FALSE(FinishL4Checksum(reinterpret_cast<uint8_t*>(f.data()), f.size()));
    EXPECT_EQ(f, before);
  }
  // Every cut of a good frame: false or finished, and no read past the cut (ASan watches).
  std::string udp4 = eth + Hex("0800") + Hex("4500002900004000401100000a0000010a000002") +
                     Hex("3039000700151234") + "hello, world!";
  for (size_t n = 0; n < udp4.size(); ++n) {
    std::vector<uint8_t> cut(udp4.begin(), udp4.begin() + n);
    EXPECT_FALSE(FinishL4Checksum(cut.data(), static_cast<uint32_t>(cut.size()))) << n;
  }
}

}  // namespace
}  // namespace snapd
