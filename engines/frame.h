// Parsing the headers a switch looks at (Ethernet, up to two VLAN tags, IPv4, ARP, IPv6 and its
// extension headers, and the first bytes of the transport header) out of frames that come from
// untrusted sources: the NIC and apps; and the decision on what an app may send (CheckAppEgress).
// Pure functions, no allocation; every length is checked before a byte is read.
#ifndef SNAPD_ENGINES_FRAME_H_
#define SNAPD_ENGINES_FRAME_H_

#include <cstdint>
#include <cstring>
#include <string>

#include "base/addr.h"

namespace snapd {

inline constexpr uint16_t kEtherTypeIpv4 = 0x0800;
inline constexpr uint16_t kEtherTypeArp = 0x0806;
inline constexpr uint16_t kEtherTypeIpv6 = 0x86dd;
inline constexpr uint16_t kEtherTypeVlan = 0x8100;
inline constexpr uint16_t kEtherTypeQinQ = 0x88a8;
// Pre-standard QinQ tag types some switches still take for a tag.
inline constexpr uint16_t kEtherTypeQinQ9100 = 0x9100;
inline constexpr uint16_t kEtherTypeQinQ9200 = 0x9200;
inline constexpr uint32_t kEthernetHeaderBytes = 14;
inline constexpr uint8_t kIpProtoIcmp = 1;
inline constexpr uint8_t kIpProtoIgmp = 2;
inline constexpr uint8_t kIpProtoTcp = 6;
inline constexpr uint8_t kIpProtoUdp = 17;
inline constexpr uint8_t kIpProtoIcmpv6 = 58;

inline bool IsVlanTpid(uint16_t type) {
  return type == kEtherTypeVlan || type == kEtherTypeQinQ || type == kEtherTypeQinQ9100 ||
         type == kEtherTypeQinQ9200;
}

struct FrameInfo {
  uint64_t dst_mac = 0;  // the 6 bytes in wire order, in the low 48 bits (see MacFromBytes)
  uint64_t src_mac = 0;
  uint16_t ethertype = 0;  // after the VLAN tags parsed; a tag type itself if there are more
  uint32_t l3_offset = 0;
  // VLAN tags (TPID 0x8100, 0x88a8, 0x9100 or 0x9200) before `ethertype`: 0, 1 or 2 parsed, and
  // kTooManyTags when a third follows (the frame's L3 is then not parsed).
  static constexpr uint8_t kTooManyTags = 3;
  uint8_t vlan_tags = 0;
  // Only when vlan_tags > 0: the first tag's type, and its TCI (priority << 13 | drop eligible
  // << 12 | VLAN id).
  uint16_t outer_tpid;
  uint16_t outer_tci;
  // IPv4 (ethertype 0x0800): addresses in network byte order.
  uint32_t ipv4_src = 0;
  uint32_t ipv4_dst = 0;
  uint8_t ipv4_protocol = 0;
  // IPv4 and IPv6 (only then set, by the parser): the first four bytes of the transport header
  // in host order, when the packet is unfragmented or its first fragment and has them; else 0.
  // UDP and TCP: source port << 16 | destination port; ICMP, IGMP, ICMPv6: type << 24 | code << 16.
  // (0 reads as ports 0 -> 0 or type 0, neither of which CheckAppEgress refuses: a later fragment
  // has no transport header to check.)
  uint32_t l4_head;
  // IPv4 and IPv6 (only then set): what the IPv4 options (IPv4 header longer than 20 bytes) or the
  // IPv6 extension headers hold that CheckAppEgress looks at, as IpOption bits.
  enum IpOption : uint8_t {
    kIpOptRouterAlert = 1,  // IPv4 router alert (RFC 2113), 4 bytes (IGMP carries it)
    kIpOptSourceRoute = 2,  // IPv4 loose or strict source route; an IPv6 routing header
    kIpOptOther = 4,        // any other IPv4 option; an IPv6 mobility header
    kIpOptMalformed = 8,    // an IPv4 option shorter than 2 bytes or past the header
  };
  uint8_t ip_options;
  // ARP (ethertype 0x0806) for IPv4 over Ethernet.
  uint16_t arp_op = 0;
  uint64_t arp_sender_mac = 0;
  uint32_t arp_sender_ip = 0;
  uint32_t arp_target_ip = 0;
  // IPv6 (ethertype 0x86dd). Only then set, by the parser: every frame pays for clearing the
  // fields above, so these are left out of it.
  Ipv6Address ipv6_src;
  Ipv6Address ipv6_dst;
  // The upper-layer protocol after the extension headers (hop-by-hop, routing, fragment,
  // destination options, AH, mobility, HIP, shim6), when ipv6_upper_known: for a later fragment
  // (no upper-layer header in it), the protocol its fragment header names. Not known when the
  // chain is longer than 8 headers or runs past the payload, nor for ICMPv6 cut before the
  // fields below.
  uint8_t ipv6_upper;
  bool ipv6_upper_known;
  bool ipv6_fragment;  // a fragment header was seen
  // ICMPv6, when ipv6_upper_known and ipv6_upper is 58: its type, and the target address of a
  // neighbour solicitation (135), advertisement (136) or redirect (137).
  uint8_t icmp6_type;
  Ipv6Address icmp6_target;
  // The options of a router solicitation (133), neighbour solicitation (135) or advertisement
  // (136): kNdLinkAddr when they carry source or target link-layer address options, all of which
  // name nd_link_addr; kNdBadOptions when an option is malformed (length 0, past the message, more
  // than kMaxNdOptions of them), a link-layer address option is not one Ethernet address long, or
  // two of them name different addresses.
  enum NdOptions : uint8_t { kNdNone = 0, kNdLinkAddr, kNdBadOptions };
  static constexpr int kMaxNdOptions = 64;
  uint8_t nd_options;
  uint64_t nd_link_addr;
};

enum class ParseError {
  kNone = 0,
  kTruncated,  // shorter than its headers say
  kTooLong,    // longer than the largest frame allowed (e.g. offload super-frames)
  kBadIpv4,    // version, header length or total length inconsistent
  kBadArp,     // not Ethernet/IPv4 ARP, or wrong address lengths
  kBadIpv6,    // version not 6
};

// Parses `frame`; returns kNone and fills *info, or the first thing wrong. Frames longer than
// `max_len` are refused.
ParseError ParseFrame(const uint8_t* frame, uint32_t len, uint32_t max_len, FrameInfo* info);

inline bool IsMulticast(uint64_t mac) { return (mac & 0x01) != 0; }  // I/G bit of first byte

// What an app may send from: its own addresses and VLAN. Fixed size, so that checking a frame
// never allocates.
struct AppIdentity {
  static constexpr int kMaxIpv6 = 8;
  uint64_t mac = 0;
  uint32_t ipv4 = 0;       // network order; 0: the app may send no IPv4 nor ARP
  uint16_t vlan = 0;       // 1..4094: the app must tag with this VLAN id; 0: untagged only
  uint8_t ipv6_count = 0;  // 0: the app may send no IPv6
  Ipv6Address ipv6[kMaxIpv6] = {};
  bool HasIpv6(const Ipv6Address& a) const {
    for (int i = 0; i < ipv6_count; ++i) {
      if (ipv6[i] == a) return true;
    }
    return false;
  }
};

// Why CheckAppEgress refuses a frame from an app (or kAllow). Default-deny: a frame passes only if
//  - its source MAC is the app's (else kSrcMac);
//  - its destination is not a link-local control address 01:80:c2:00:00:0X (STP, PAUSE, LACP,
//    802.1X, LLDP, ...: kLinkLocal);
//  - it is untagged if the app has no VLAN, and carries exactly one 802.1Q (0x8100) tag with the
//    app's VLAN id, priority 0 and drop eligible 0 if it has one (no tag, any other tag, TPID,
//    depth or priority: kVlan);
//  - and it is one of:
//    IPv4 from the app's address (kIpv4Src; 0.0.0.0, DHCP's, too: apps are given their address);
//    ARP whose sender MAC and IP are the app's, or an address conflict probe (RFC 5227: a
//      request from the app's MAC and 0.0.0.0 for the app's address) (kArp);
//    IPv6, if the app has IPv6 addresses (kIpv6), whose header chain can be followed to the
//      upper layer and is not a fragmented ICMPv6 (kIpv6Headers; neighbour discovery is never
//      fragmented, RFC 6980), that is no router advertisement, redirect or router renumbering
//      (kRouter, whatever the source), from one of the app's addresses, or from :: only as a
//      duplicate address detection solicitation for one of them (kIpv6Src), and that is no
//      neighbour advertisement for an address not the app's, nor a router solicitation or
//      neighbour solicitation or advertisement whose link-layer address options name another MAC
//      than the app's or are malformed (kNeighbor).
//    Any other ethertype: kEthertype.
//  - and, IPv4 or IPv6, whose transport header (when the packet has one: unfragmented, or the
//    first fragment) is not that of a server of the link: an app is no DHCP server or relay
//    (UDP from port 67 or to 68; DHCPv6: from 547 or to 546: kDhcpServer), no multicast querier
//    (IGMP membership query 0x11, MLD query 130: kQuerier) and no router (ICMP redirect 5, router
//    advertisement 9; ICMPv6 multicast router advertisement 151 and termination 153; IGMP
//    multicast router advertisement 0x30 and termination 0x32; the routing protocols OSPF 89,
//    PIM 103, VRRP 112: kRouter);
//  - and, IPv4 or IPv6, that is no tunnel (IP in IP 4, IPv6 in IPv4 41, GRE 47, EtherIP 97, 94,
//    L2TPv3 115 as the IPv4 protocol or the IPv6 upper layer: kTunnel; UDP encapsulations such as
//    VXLAN and Geneve are not looked at), and carries no IPv4 option but the router alert (and
//    padding), and no IPv6 routing or mobility header (kIpOptions).
enum class EgressVerdict : uint8_t {
  kAllow = 0,
  kSrcMac,
  kLinkLocal,
  kVlan,
  kEthertype,
  kIpv4Src,
  kArp,
  kIpv6,
  kIpv6Headers,
  kRouter,
  kIpv6Src,
  kNeighbor,
  kDhcpServer,
  kQuerier,
  kTunnel,
  kIpOptions,
};
inline constexpr int kEgressVerdicts = 16;

// UDP from a DHCP server or relay (`server` port: 67, DHCPv6 547) or to a client (`client`: 68,
// 546), given a UDP packet's FrameInfo::l4_head.
inline bool IsDhcpServerUdp(uint32_t l4_head, uint32_t server, uint32_t client) {
  return (l4_head >> 16) == server || (l4_head & 0xffff) == client;
}

// The verdicts on an IPv6 frame, and on an IPv4 packet from the app's address that is neither
// TCP nor UDP, from `app` once its MAC and tags passed (the out-of-line parts of CheckAppEgress).
EgressVerdict CheckAppIpv6Egress(const AppIdentity& app, const FrameInfo& info);
EgressVerdict CheckAppIpv4Protocol(const FrameInfo& info);

// The verdict on a frame `info` (parsed by ParseFrame without error) that app `app` sent. Pure:
// any thread. Inline: it runs for every frame an app sends.
inline EgressVerdict CheckAppEgress(const AppIdentity& app, const FrameInfo& info) {
  if (info.src_mac != app.mac) return EgressVerdict::kSrcMac;
  // 01:80:c2:00:00:0X, bytes in wire order from the low bits (see MacFromBytes).
  if ((info.dst_mac & 0xf0ffffffffffull) == 0x00000000c28001ull) return EgressVerdict::kLinkLocal;
  if ((info.vlan_tags | app.vlan) != 0) {  // a tag, or an app that must tag
    if (info.vlan_tags != 1 || info.outer_tpid != kEtherTypeVlan || app.vlan == 0 ||
        info.outer_tci != app.vlan) {  // the TCI: VLAN id, priority 0, drop eligible 0
      return EgressVerdict::kVlan;
    }
  }
  switch (info.ethertype) {
    case kEtherTypeIpv4:
      if (app.ipv4 == 0 || info.ipv4_src != app.ipv4) return EgressVerdict::kIpv4Src;
      if (info.ip_options > FrameInfo::kIpOptRouterAlert) return EgressVerdict::kIpOptions;
      if (info.ipv4_protocol == kIpProtoUdp) {
        return IsDhcpServerUdp(info.l4_head, 67, 68) ? EgressVerdict::kDhcpServer
                                                     : EgressVerdict::kAllow;
      }
      if (info.ipv4_protocol == kIpProtoTcp) return EgressVerdict::kAllow;
      return CheckAppIpv4Protocol(info);
    case kEtherTypeArp:
      if (app.ipv4 == 0 || info.arp_sender_mac != app.mac) return EgressVerdict::kArp;
      if (info.arp_sender_ip == app.ipv4) return EgressVerdict::kAllow;
      // An address conflict probe (RFC 5227): a request from 0.0.0.0 for its own address.
      return info.arp_sender_ip == 0 && info.arp_op == 1 && info.arp_target_ip == app.ipv4
                 ? EgressVerdict::kAllow
                 : EgressVerdict::kArp;
    case kEtherTypeIpv6:
      return CheckAppIpv6Egress(app, info);
    default:
      return EgressVerdict::kEthertype;
  }
}
// The counter name of a refusal: "egress_drop_src_mac", "egress_drop_vlan", ... ("" for kAllow).
const char* EgressVerdictCounter(EgressVerdict v);

const char* ParseErrorName(ParseError e);

// Finishes the TCP or UDP checksum of `frame` (Ethernet, up to two VLAN tags, IPv4 or IPv6 with
// TCP or UDP right after the header) in place, whatever its checksum field holds: for frames a
// host sent with the checksum left to its NIC (an af_packet NIC sees TP_STATUS_CSUMNOTREADY).
// False, and the frame untouched, for anything else or anything cut short.
bool FinishL4Checksum(uint8_t* frame, uint32_t len);

}  // namespace snapd

#endif  // SNAPD_ENGINES_FRAME_H_
