#include "engines/frame.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "base/checksum.h"

namespace snapd {
namespace {

inline uint16_t Be16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
inline uint32_t Raw32(const uint8_t* p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}
inline uint32_t Be32(const uint8_t* p) { return ntohl(Raw32(p)); }

}  // namespace

namespace {

// The IpOption bits of the `len` bytes of IPv4 options at `opt`. Out of line: rare.
__attribute__((noinline)) uint8_t Ipv4Options(const uint8_t* opt, uint32_t len) {
  uint8_t seen = 0;
  for (uint32_t i = 0; i < len;) {  // at most 40 bytes
    const uint8_t type = opt[i];
    if (type == 0) break;  // end of the list: the rest is padding
    if (type == 1) {       // no operation (padding)
      ++i;
      continue;
    }
    if (len - i < 2 || opt[i + 1] < 2 || opt[i + 1] > len - i)
      return seen | FrameInfo::kIpOptMalformed;
    if (type == 0x94 && opt[i + 1] == 4) {
      seen |= FrameInfo::kIpOptRouterAlert;
    } else if (type == 0x83 || type == 0x89) {  // loose, strict source and record route
      seen |= FrameInfo::kIpOptSourceRoute;
    } else {
      seen |= FrameInfo::kIpOptOther;
    }
    i += opt[i + 1];
  }
  return seen;
}

// Reads the `len` bytes of neighbour discovery options at `opt` into info->nd_options and
// nd_link_addr (see FrameInfo).
void ParseNdOptions(const uint8_t* opt, uint32_t len, FrameInfo* info) {
  for (int n = 0; len > 0; ++n) {
    // Type, length in units of 8 bytes (0 is malformed: RFC 4861 4.6), data.
    if (n == FrameInfo::kMaxNdOptions || len < 8 || opt[1] == 0 || opt[1] * 8u > len) {
      info->nd_options = FrameInfo::kNdBadOptions;
      return;
    }
    const uint32_t bytes = opt[1] * 8u;
    if (opt[0] == 1 || opt[0] == 2) {  // source, target link-layer address
      const uint64_t mac = MacFromBytes(opt + 2);
      if (bytes != 8 || (info->nd_options == FrameInfo::kNdLinkAddr && mac != info->nd_link_addr)) {
        info->nd_options = FrameInfo::kNdBadOptions;
        return;
      }
      info->nd_options = FrameInfo::kNdLinkAddr;
      info->nd_link_addr = mac;
    }
    opt += bytes;
    len -= bytes;
  }
}

// Follows the extension headers of the IPv6 packet `ip` (`len` bytes from its fixed header to
// the end of its payload, the fixed header's 40 among them) to the upper layer, and reads the
// ICMPv6 fields a switch checks. Leaves ipv6_upper_known false where it cannot follow.
void ParseIpv6Chain(const uint8_t* ip, uint32_t len, FrameInfo* info) {
  constexpr int kMaxExtensionHeaders = 8;
  uint8_t next = ip[6];
  uint32_t off = 40;
  for (int n = 0;; ++n) {
    bool extension = next == 0 || next == 43 || next == 44 || next == 51 || next == 60 ||
                     next == 135 || next == 139 || next == 140;
    if (!extension) break;
    if (n == kMaxExtensionHeaders || off + 8 > len) return;  // every one is 8 bytes at least
    const uint8_t* h = ip + off;
    if (next == 43) info->ip_options |= FrameInfo::kIpOptSourceRoute;  // routing header
    if (next == 135) info->ip_options |= FrameInfo::kIpOptOther;       // mobility header
    if (next == 44) {  // fragment: 8 bytes; only the first fragment holds the upper layer
      info->ipv6_fragment = true;
      uint16_t offset = static_cast<uint16_t>(Be16(h + 2) & 0xfff8);
      next = h[0];
      off += 8;
      if (offset != 0) {  // a later fragment: the protocol its fragment header names
        info->ipv6_upper = next;
        info->ipv6_upper_known = true;
        return;
      }
    } else {
      uint32_t bytes = next == 51 ? (h[1] + 2u) * 4 : (h[1] + 1u) * 8;
      next = h[0];
      off += bytes;
    }
  }
  if (off > len) return;
  info->ipv6_upper = next;
  if (off + 4 <= len) info->l4_head = Be32(ip + off);
  if (next != kIpProtoIcmpv6) {
    info->ipv6_upper_known = true;
    return;
  }
  const uint8_t* icmp = ip + off;
  uint32_t icmp_len = len - off;
  if (icmp_len < 4) return;
  info->icmp6_type = icmp[0];
  if (icmp[0] >= 135 && icmp[0] <= 137) {  // NS, NA, redirect: 8 bytes, then the target
    if (icmp_len < 24) return;
    info->icmp6_target = Ipv6Address::FromBytes(icmp + 8);
  }
  if (icmp[0] == 133 && icmp_len >= 8) {  // RS: 8 bytes, then options
    ParseNdOptions(icmp + 8, icmp_len - 8, info);
  } else if (icmp[0] == 135 || icmp[0] == 136) {  // NS, NA: the target, then options
    ParseNdOptions(icmp + 24, icmp_len - 24, info);
  }
  info->ipv6_upper_known = true;
}

}  // namespace

ParseError ParseFrame(const uint8_t* f, uint32_t len, uint32_t max_len, FrameInfo* info) {
  if (len > max_len) return ParseError::kTooLong;
  if (len < kEthernetHeaderBytes) return ParseError::kTruncated;
  info->dst_mac = MacFromBytes(f);
  info->src_mac = MacFromBytes(f + 6);
  uint32_t off = 12;
  uint16_t type = Be16(f + off);
  // Up to two VLAN tags (802.1Q, 802.1ad, and the older QinQ types); a third is only noted.
  if (__builtin_expect(type != kEtherTypeIpv4 && IsVlanTpid(type), 0)) {
    if (off + 6 > len) return ParseError::kTruncated;
    info->outer_tpid = type;
    info->outer_tci = Be16(f + off + 2);
    int tags = 0;
    for (; tags < 2 && IsVlanTpid(type); ++tags) {
      off += 4;
      if (off + 2 > len) return ParseError::kTruncated;
      type = Be16(f + off);
    }
    info->vlan_tags = IsVlanTpid(type) ? FrameInfo::kTooManyTags : static_cast<uint8_t>(tags);
  }
  off += 2;
  info->ethertype = type;
  info->l3_offset = off;
  const uint8_t* l3 = f + off;
  const uint32_t l3_len = len - off;
  if (type == kEtherTypeIpv4) {
    if (l3_len < 20) return ParseError::kTruncated;
    if ((l3[0] >> 4) != 4) return ParseError::kBadIpv4;
    uint32_t ihl = (l3[0] & 0x0f) * 4u;
    uint32_t total = Be16(l3 + 2);
    if (ihl < 20 || total < ihl) return ParseError::kBadIpv4;
    if (ihl > l3_len || total > l3_len) return ParseError::kTruncated;
    info->ipv4_protocol = l3[9];
    info->ipv4_src = Raw32(l3 + 12);
    info->ipv4_dst = Raw32(l3 + 16);
    // The transport header is in the first fragment only (offset 0: in 8-byte units, so no later
    // fragment can overwrite its first 8 bytes either).
    const bool first = (Be16(l3 + 6) & 0x1fff) == 0;
    info->l4_head = first && total - ihl >= 4 ? Be32(l3 + ihl) : 0;
    info->ip_options = __builtin_expect(ihl == 20, 1) ? 0 : Ipv4Options(l3 + 20, ihl - 20);
  } else if (type == kEtherTypeArp) {
    if (l3_len < 28) return ParseError::kTruncated;
    if (Be16(l3) != 1 || Be16(l3 + 2) != kEtherTypeIpv4 || l3[4] != 6 || l3[5] != 4) {
      return ParseError::kBadArp;
    }
    info->arp_op = Be16(l3 + 6);
    info->arp_sender_mac = MacFromBytes(l3 + 8);
    info->arp_sender_ip = Raw32(l3 + 14);
    info->arp_target_ip = Raw32(l3 + 24);
  } else if (type == kEtherTypeIpv6) {
    if (l3_len < 40) return ParseError::kTruncated;
    if ((l3[0] >> 4) != 6) return ParseError::kBadIpv6;
    uint32_t total = 40 + Be16(l3 + 4);  // a jumbogram's 0 leaves just the fixed header
    if (total > l3_len) return ParseError::kTruncated;
    info->ipv6_src = Ipv6Address::FromBytes(l3 + 8);
    info->ipv6_dst = Ipv6Address::FromBytes(l3 + 24);
    info->ipv6_upper = 0;
    info->ipv6_upper_known = false;
    info->ipv6_fragment = false;
    info->l4_head = 0;
    info->ip_options = 0;
    info->icmp6_type = 0;
    info->icmp6_target = Ipv6Address();
    info->nd_options = FrameInfo::kNdNone;
    ParseIpv6Chain(l3, total, info);
  }
  return ParseError::kNone;
}

namespace {

// The verdict on each IPv4 protocol or IPv6 upper layer whatever its transport header says.
struct ProtocolVerdicts {
  EgressVerdict v[256] = {};
  constexpr ProtocolVerdicts() {
    // Tunnels: IP in IP, IPv6 in IPv4 (6in4, 6to4, ISATAP), GRE, IP in IP (KA9Q), EtherIP,
    // L2TPv3. Routing protocols: OSPF, PIM, VRRP (and CARP).
    for (int p : {4, 41, 47, 94, 97, 115}) v[p] = EgressVerdict::kTunnel;
    for (int p : {89, 103, 112}) v[p] = EgressVerdict::kRouter;
  }
};
constexpr ProtocolVerdicts kProtocolVerdicts;

EgressVerdict ProtocolVerdict(uint8_t protocol) { return kProtocolVerdicts.v[protocol]; }

}  // namespace

EgressVerdict CheckAppIpv6Egress(const AppIdentity& app, const FrameInfo& info) {
  if (app.ipv6_count == 0) return EgressVerdict::kIpv6;
  if (!info.ipv6_upper_known) return EgressVerdict::kIpv6Headers;
  if (info.ip_options != 0) return EgressVerdict::kIpOptions;  // routing, mobility headers
  const bool icmp = info.ipv6_upper == kIpProtoIcmpv6;
  if (icmp && info.ipv6_fragment) return EgressVerdict::kIpv6Headers;
  const uint8_t type = icmp ? info.icmp6_type : 0;
  // Router advertisement, redirect, router renumbering, multicast router advertisement and
  // termination: an app is never a router.
  if (type == 134 || type == 137 || type == 138 || type == 151 || type == 153) {
    return EgressVerdict::kRouter;
  }
  if (type == 130) return EgressVerdict::kQuerier;  // MLD query (v1 and v2)
  // RS, NS, NA (the parser reads no other's options): their link-layer address options name the
  // app's MAC, or they are refused; so are malformed options.
  if (info.nd_options != FrameInfo::kNdNone &&
      (info.nd_options == FrameInfo::kNdBadOptions || info.nd_link_addr != app.mac)) {
    return EgressVerdict::kNeighbor;
  }
  if (info.ipv6_src.IsUnspecified()) {
    // Duplicate address detection: a neighbour solicitation from :: for one of its addresses.
    return type == 135 && app.HasIpv6(info.icmp6_target) ? EgressVerdict::kAllow
                                                         : EgressVerdict::kIpv6Src;
  }
  if (!app.HasIpv6(info.ipv6_src)) return EgressVerdict::kIpv6Src;
  if (type == 136 && !app.HasIpv6(info.icmp6_target)) return EgressVerdict::kNeighbor;
  if (info.ipv6_upper == kIpProtoUdp && IsDhcpServerUdp(info.l4_head, 547, 546)) {
    return EgressVerdict::kDhcpServer;
  }
  return ProtocolVerdict(info.ipv6_upper);
}

EgressVerdict CheckAppIpv4Protocol(const FrameInfo& info) {
  const uint8_t type = static_cast<uint8_t>(info.l4_head >> 24);  // 0 without a transport header
  switch (info.ipv4_protocol) {
    case kIpProtoIcmp:
      // Redirect, router advertisement: an app is never a router.
      return type == 5 || type == 9 ? EgressVerdict::kRouter : EgressVerdict::kAllow;
    case kIpProtoIgmp:
      if (type == 0x11) return EgressVerdict::kQuerier;  // membership query (v1, v2, v3)
      // Multicast router advertisement and termination (RFC 4286).
      return type == 0x30 || type == 0x32 ? EgressVerdict::kRouter : EgressVerdict::kAllow;
    default:
      return ProtocolVerdict(info.ipv4_protocol);
  }
}

const char* EgressVerdictCounter(EgressVerdict v) {
  switch (v) {
    case EgressVerdict::kAllow:
      return "";
    case EgressVerdict::kSrcMac:
      return "egress_drop_src_mac";
    case EgressVerdict::kLinkLocal:
      return "egress_drop_link_local";
    case EgressVerdict::kVlan:
      return "egress_drop_vlan";
    case EgressVerdict::kEthertype:
      return "egress_drop_ethertype";
    case EgressVerdict::kIpv4Src:
      return "egress_drop_ipv4_src";
    case EgressVerdict::kArp:
      return "egress_drop_arp";
    case EgressVerdict::kIpv6:
      return "egress_drop_ipv6";
    case EgressVerdict::kIpv6Headers:
      return "egress_drop_ipv6_headers";
    case EgressVerdict::kRouter:
      return "egress_drop_ra";
    case EgressVerdict::kIpv6Src:
      return "egress_drop_ipv6_src";
    case EgressVerdict::kNeighbor:
      return "egress_drop_nd";
    case EgressVerdict::kDhcpServer:
      return "egress_drop_dhcp_server";
    case EgressVerdict::kQuerier:
      return "egress_drop_querier";
    case EgressVerdict::kTunnel:
      return "egress_drop_tunnel";
    case EgressVerdict::kIpOptions:
      return "egress_drop_ip_options";
  }
  return "egress_drop_unknown";
}

const char* ParseErrorName(ParseError e) {
  switch (e) {
    case ParseError::kNone:
      return "ok";
    case ParseError::kTruncated:
      return "truncated";
    case ParseError::kTooLong:
      return "too long";
    case ParseError::kBadIpv4:
      return "bad ipv4 header";
    case ParseError::kBadArp:
      return "bad arp";
    case ParseError::kBadIpv6:
      return "bad ipv6 header";
  }
  return "?";
}

bool FinishL4Checksum(uint8_t* frame, uint32_t len) {
  uint32_t off = 12;  // the ethertype, after the two MACs
  if (len < off + 2) return false;
  uint16_t type = static_cast<uint16_t>(frame[off] << 8 | frame[off + 1]);
  for (int tags = 0; IsVlanTpid(type) && tags < 2; ++tags) {
    off += 4;
    if (len < off + 2) return false;
    type = static_cast<uint16_t>(frame[off] << 8 | frame[off + 1]);
  }
  off += 2;  // the network header
  uint32_t sum, l4, l4_len;
  uint8_t proto;
  if (type == kEtherTypeIpv4) {
    if (len < off + 20) return false;
    const uint8_t* ip = frame + off;
    uint32_t ihl = (ip[0] & 0xfu) * 4;
    uint32_t total = static_cast<uint32_t>(ip[2] << 8 | ip[3]);
    bool fragment = ((ip[6] & 0x3f) | ip[7]) != 0;  // MF or an offset: not a whole datagram
    if ((ip[0] >> 4) != 4 || ihl < 20 || total < ihl || len < off + total || fragment) return false;
    proto = ip[9];
    l4 = off + ihl;
    l4_len = total - ihl;
    sum = ChecksumAdd(ip + 12, 8, 0);  // source and destination
  } else if (type == kEtherTypeIpv6) {
    if (len < off + 40) return false;
    const uint8_t* ip = frame + off;
    proto = ip[6];  // TCP or UDP right after the header: the only case a sender leaves unfinished
    l4 = off + 40;
    l4_len = static_cast<uint32_t>(ip[4] << 8 | ip[5]);
    if ((ip[0] >> 4) != 6 || len < l4 + l4_len) return false;
    sum = ChecksumAdd(ip + 8, 32, 0);
  } else {
    return false;
  }
  uint32_t at;
  if (proto == 6 && l4_len >= 20) {  // TCP
    at = l4 + 16;
  } else if (proto == 17 && l4_len >= 8) {  // UDP
    at = l4 + 6;
  } else {
    return false;
  }
  frame[at] = frame[at + 1] = 0;
  uint16_t c = ChecksumFinish(ChecksumAdd(frame + l4, l4_len, sum + proto + l4_len));
  if (proto == 17 && c == 0) c = 0xffff;  // 0 means "no checksum" in UDP
  frame[at] = static_cast<uint8_t>(c >> 8);
  frame[at + 1] = static_cast<uint8_t>(c);
  return true;
}

}  // namespace snapd
