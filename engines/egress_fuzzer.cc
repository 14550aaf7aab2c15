// libFuzzer target for the app egress filter: a random frame and a random app identity (often
// built from the frame's own fields, so that allowed frames are common). For every frame the
// filter allows, the invariants are checked against the raw bytes, not against the parser's
// reading of them: the source MAC is the app's, the destination no link-local control address,
// one 802.1Q tag with the app's VLAN (priority and drop eligible 0) if it has one, else none, an
// IPv4 source the app's, an ARP sender the app (or 0.0.0.0 in a probe for the app's address), an
// IPv6 source one of the app's (or :: for duplicate address detection), no router advertisement or
// redirect, and no transport header of a server of the link (DHCP, DHCPv6, IGMP and MLD queries,
// ICMP redirects and router advertisements, multicast router messages), no neighbour discovery
// option naming another MAC or malformed, no tunnel or routing protocol, no IPv4 option but the
// router alert, and no IPv6 routing or mobility header.
//
// Input: byte 0 chooses how the identity is made (bit by bit, see below), bytes 1..30 feed it, the
// rest is the frame.
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cstdlib>
#include <vector>

#include "engines/frame.h"

namespace {

using snapd::AppIdentity;
using snapd::EgressVerdict;
using snapd::FrameInfo;
using snapd::Ipv6Address;

void Check(bool ok) {
  if (!ok) abort();
}

uint16_t Be16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }

// An IPv4 protocol or IPv6 upper layer an app may send: no tunnel, no routing protocol.
void CheckProtocol(uint8_t p) {
  Check(p != 4 && p != 41 && p != 47 && p != 94 && p != 97 && p != 115 && p != 89 && p != 103 &&
        p != 112);
}

// Checks the transport header `l4` (`n` bytes of it there) of IPv4 (`v6` false) or IPv6
// protocol `proto` that app `mac` was allowed to send: no server's; neighbour discovery options
// well formed, their link-layer addresses the app's.
void CheckTransport(bool v6, uint8_t proto, const uint8_t* l4, uint32_t n, uint64_t mac) {
  if (n < 4) return;
  if (v6 && proto == 58 && (l4[0] == 133 || l4[0] == 135 || l4[0] == 136)) {
    const uint32_t start = l4[0] == 133 ? 8 : 24;
    if (n < start) return;
    int options = 0;
    for (uint32_t at = start; at < n; at += l4[at + 1] * 8u, ++options) {
      Check(options < 64 && n - at >= 8 && l4[at + 1] != 0 && l4[at + 1] * 8u <= n - at);
      if (l4[at] == 1 || l4[at] == 2)
        Check(l4[at + 1] == 1 && snapd::MacFromBytes(l4 + at + 2) == mac);
    }
  }
  if (proto == 17) {
    Check(Be16(l4) != (v6 ? 547 : 67) && Be16(l4 + 2) != (v6 ? 546 : 68));
  } else if (!v6 && proto == 1) {
    Check(l4[0] != 5 && l4[0] != 9);
  } else if (!v6 && proto == 2) {
    Check(l4[0] != 0x11 && l4[0] != 0x30 && l4[0] != 0x32);
  } else if (v6 && proto == 58) {
    Check(l4[0] != 130 && l4[0] != 134 && l4[0] != 137 && l4[0] != 138 && l4[0] != 151 &&
          l4[0] != 153);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 31) return 0;
  const uint8_t mode = data[0];
  const uint8_t* seed = data + 1;
  // A copy of exactly the frame's bytes, so ASan sees any read past the end.
  std::vector<uint8_t> frame(data + 31, data + size);
  const uint32_t len = static_cast<uint32_t>(frame.size());
  FrameInfo info;
  if (snapd::ParseFrame(frame.data(), len, 9022, &info) != snapd::ParseError::kNone) return 0;

  AppIdentity app;
  app.mac = (mode & 1) ? info.src_mac : snapd::MacFromBytes(seed);
  memcpy(&app.ipv4, seed + 6, 4);
  if (mode & 2)
    app.ipv4 = info.ethertype == snapd::kEtherTypeArp ? info.arp_sender_ip : info.ipv4_src;
  if ((mode & 0x80) && info.ethertype == snapd::kEtherTypeArp) app.ipv4 = info.arp_target_ip;
  app.vlan = (mode & 4) && info.vlan_tags > 0 ? info.outer_tci : Be16(seed + 10) & 0x0fff;
  if (app.vlan > 4094) app.vlan = 0;
  app.ipv6_count = (mode >> 3) & 3;  // 0..3 addresses
  for (int i = 0; i < app.ipv6_count; ++i) app.ipv6[i] = Ipv6Address::FromBytes(seed + 12);
  const bool ipv6 = info.ethertype == snapd::kEtherTypeIpv6;  // the IPv6 fields are set
  if (ipv6 && app.ipv6_count > 0 && (mode & 0x20)) app.ipv6[0] = info.ipv6_src;
  if (ipv6 && app.ipv6_count > 1 && (mode & 0x40)) app.ipv6[1] = info.icmp6_target;

  EgressVerdict v = snapd::CheckAppEgress(app, info);
  Check(static_cast<int>(v) < snapd::kEgressVerdicts);
  Check(snapd::EgressVerdictCounter(v) != nullptr);
  if (v != EgressVerdict::kAllow) return 0;

  // Allowed: check what was allowed from the bytes themselves.
  const uint8_t* f = frame.data();
  Check(len >= 14);
  Check(snapd::MacFromBytes(f + 6) == app.mac);
  static const uint8_t kLinkLocal[5] = {0x01, 0x80, 0xc2, 0x00, 0x00};
  Check(!(memcmp(f, kLinkLocal, 5) == 0 && (f[5] & 0xf0) == 0));
  uint32_t l3 = 14;
  uint16_t type = Be16(f + 12);
  Check((type == 0x8100) == (app.vlan != 0));  // tagged exactly when it has a VLAN
  if (type == 0x8100) {
    Check(len >= 18);
    Check(Be16(f + 14) == app.vlan);  // its VLAN, priority 0, drop eligible 0
    type = Be16(f + 16);
    l3 = 18;
  }
  const uint8_t* ip = f + l3;
  if (type == 0x0800) {
    Check(len >= l3 + 20);
    uint32_t src;
    memcpy(&src, ip + 12, 4);
    Check(app.ipv4 != 0 && src == app.ipv4);
    const uint32_t ihl = (ip[0] & 0x0f) * 4u;
    const uint32_t total = Be16(ip + 2);
    Check(ihl >= 20 && total >= ihl && len >= l3 + total);
    CheckProtocol(ip[9]);
    // Options: padding, and the router alert (4 bytes) only.
    for (uint32_t at = 20; at < ihl && ip[at] != 0;) {
      if (ip[at] == 1) {
        ++at;
        continue;
      }
      Check(ip[at] == 0x94 && at + 4 <= ihl && ip[at + 1] == 4);
      at += 4;
    }
    if ((Be16(ip + 6) & 0x1fff) == 0) CheckTransport(false, ip[9], ip + ihl, total - ihl, app.mac);
  } else if (type == 0x0806) {
    Check(len >= l3 + 28);
    uint32_t sender, target;
    memcpy(&sender, ip + 14, 4);
    memcpy(&target, ip + 24, 4);
    Check(app.ipv4 != 0 && snapd::MacFromBytes(ip + 8) == app.mac);
    // Its address, or an address conflict probe: a request from 0.0.0.0 for its address.
    Check(sender == app.ipv4 || (sender == 0 && Be16(ip + 6) == 1 && target == app.ipv4));
  } else if (type == 0x86dd) {
    Check(len >= l3 + 40 && app.ipv6_count > 0);
    Ipv6Address src = Ipv6Address::FromBytes(ip + 8);
    Check(app.HasIpv6(src) || src.IsUnspecified());
    if (ip[6] == 58 && len >= l3 + 41) {  // ICMPv6 right after the fixed header
      uint8_t t = ip[40];
      Check(t != 134 && t != 137 && t != 138);
      if (src.IsUnspecified()) Check(t == 135);
      if (t == 136 && len >= l3 + 64) Check(app.HasIpv6(Ipv6Address::FromBytes(ip + 48)));
    } else if (src.IsUnspecified()) {  // :: only for duplicate address detection
      Check(info.ipv6_upper == 58 && info.icmp6_type == 135 && !info.ipv6_fragment);
    }
    // Hop-by-hop, destination options and fragment headers followed independently of the
    // parser: no routing nor mobility header, no tunnel, no server's transport header.
    const uint32_t end = l3 + 40 + Be16(ip + 4);
    Check(len >= end);
    uint8_t next = ip[6];
    uint32_t off = l3 + 40;
    bool later_fragment = false;
    for (int n = 0; n < 8 && (next == 0 || next == 60 || next == 44) && off + 8 <= end; ++n) {
      const bool fragment = next == 44;
      if (fragment) later_fragment = (Be16(f + off + 2) & 0xfff8) != 0;
      next = f[off];
      off += fragment ? 8 : (f[off + 1] + 1u) * 8;
      if (later_fragment) break;
    }
    // (A later fragment's header names the first's next header, which was checked with it.)
    if (!later_fragment) Check(next != 43 && next != 135);
    if (off <= end || later_fragment) CheckProtocol(next);
    if (off <= end && !later_fragment && next != 0 && next != 60 && next != 44) {
      CheckTransport(true, next, f + off, end - off, app.mac);
    }
  } else {
    Check(false);  // no other ethertype, no other tag
  }
  return 0;
}
