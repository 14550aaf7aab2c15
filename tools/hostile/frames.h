// The frames hostile_app's attacks send (each marked "HOSTILE:kind;") and the helpers that send
// them through a RawApp; HostileKind reads the marker back (victim, wire_watch).
#ifndef SNAPD_TOOLS_HOSTILE_FRAMES_H_
#define SNAPD_TOOLS_HOSTILE_FRAMES_H_

#include "tools/hostile/raw_app.h"

namespace hostile {

inline void PutMac(std::string* f, size_t at, uint64_t mac) {
  uint8_t b[6];
  MacToBytes(mac, b);
  f->replace(at, 6, reinterpret_cast<char*>(b), 6);
}

inline uint64_t MacOf(const char* text) {
  uint64_t m = 0;
  snapd::ParseMac(text, &m);
  return m;
}

// Pads `f` to at least 96 bytes with the marker for `kind` (twice, so that a receiver that sees
// only part of the frame still finds one).
inline std::string Marked(std::string f, const std::string& kind) {
  std::string mark = absl::StrCat(kMarker, kind, ";");
  f += mark;
  while (f.size() < 96) f += mark;
  return f;
}

// A UDP/IPv4 frame with the marker as payload.
inline std::string UdpFrame(uint64_t src_mac, uint64_t dst_mac, uint32_t src_ip, uint32_t dst_ip,
                            const std::string& kind) {
  std::string mark = absl::StrCat(kMarker, kind, ";");
  std::string payload;
  while (payload.size() < 54) payload += mark;
  std::string f = snap::UdpHeader(src_mac, dst_mac, src_ip, dst_ip, 9999, 7,
                                  static_cast<uint32_t>(snap::kUdpHeaderBytes + payload.size()));
  return f + payload;
}

// `f` with a VLAN tag (tpid, vid) inserted after the MACs.
inline std::string Tagged(const std::string& f, uint16_t tpid, uint16_t vid) {
  char tag[4] = {static_cast<char>(tpid >> 8), static_cast<char>(tpid & 0xff),
                 static_cast<char>(vid >> 8), static_cast<char>(vid & 0xff)};
  return f.substr(0, 12) + std::string(tag, 4) + f.substr(12);
}

inline std::string EthHeader(uint64_t dst, uint64_t src, uint16_t type) {
  std::string h(14, '\0');
  PutMac(&h, 0, dst);
  PutMac(&h, 6, src);
  h[12] = static_cast<char>(type >> 8);
  h[13] = static_cast<char>(type & 0xff);
  return h;
}

// An IPv6 frame: ICMPv6 router advertisement from fe80::66 to ff02::1 (multicast dst 33:33:0:0:0:1)
// when dst_mac is 0, else a UDP datagram to fe80::2 at dst_mac.
inline std::string Ipv6Frame(uint64_t src_mac, uint64_t dst_mac, const std::string& kind) {
  std::string payload = Marked("", kind);
  bool ra = dst_mac == 0;
  std::string l4;
  if (ra) {
    l4 = std::string("\x86\x00\x00\x00\x40\x00\x07\x08\x00\x00\x00\x00\x00\x00\x00\x00", 16);
  } else {
    l4 = std::string("\x27\x0f\x00\x07", 4);
    uint16_t len = static_cast<uint16_t>(8 + payload.size());
    l4 += static_cast<char>(len >> 8);
    l4 += static_cast<char>(len & 0xff);
    l4 += std::string("\x00\x00", 2);
  }
  l4 += payload;
  std::string ip6(40, '\0');
  ip6[0] = 0x60;
  ip6[4] = static_cast<char>(l4.size() >> 8);
  ip6[5] = static_cast<char>(l4.size() & 0xff);
  ip6[6] = ra ? 58 : 17;
  ip6[7] = static_cast<char>(255);
  const char src[16] = {'\xfe', '\x80', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x66};
  const char all[16] = {'\xff', 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01};
  const char one[16] = {'\xfe', '\x80', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02};
  ip6.replace(8, 16, src, 16);
  ip6.replace(24, 16, ra ? all : one, 16);
  uint64_t dst = ra ? MacOf("33:33:00:00:00:01") : dst_mac;
  return EthHeader(dst, src_mac, 0x86dd) + ip6 + l4;
}

struct Spoof {
  std::string kind;
  std::string frame;
};

// Every frame the spoofing class names (and a few neighbours), from `app`, each to `dst`
// (broadcast or a victim's MAC) unless the kind has its own destination.
inline std::vector<Spoof> SpoofFrames(const RawApp& app, uint64_t dst, uint32_t victim_ip) {
  const uint64_t me = app.mac();
  const uint32_t my_ip = app.ip();
  uint32_t other_ip;
  snapd::ParseIpv4("10.85.0.66", &other_ip);
  std::vector<Spoof> out;
  out.push_back(
      {"src_mac", UdpFrame(MacOf("02:66:66:66:66:66"), dst, my_ip, victim_ip, "src_mac")});
  out.push_back({"src_ip", UdpFrame(me, dst, other_ip, victim_ip, "src_ip")});
  {
    // ARP claiming the victim's address (gratuitous reply to everyone).
    std::string arp = snap::ArpRequest(me, victim_ip, victim_ip);
    PutMac(&arp, 0, dst);
    out.push_back({"arp_claim", Marked(arp, "arp_claim")});
  }
  out.push_back({"ipv6_ra", Ipv6Frame(me, 0, "ipv6_ra")});
  out.push_back({"ipv6_udp", Ipv6Frame(me, dst, "ipv6_udp")});
  // LLDP: TLVs chassis id, port id, ttl, end.
  out.push_back({"lldp", Marked(EthHeader(MacOf("01:80:c2:00:00:0e"), me, 0x88cc) +
                                    std::string("\x02\x07\x04\x02\x00\x00\x00\x00\x09"
                                                "\x04\x03\x02\x70\x31\x06\x02\x00\x78\x00\x00",
                                                20),
                                "lldp")});
  {
    // STP configuration BPDU: 802.3 length, LLC 42 42 03, claiming root with priority 0.
    std::string bpdu(
        "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
        "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80\x01\x00\x14\x00\x02\x00\x0f\x00",
        35);
    std::string llc("\x42\x42\x03", 3);
    uint16_t len = static_cast<uint16_t>(llc.size() + bpdu.size());
    out.push_back(
        {"stp", Marked(EthHeader(MacOf("01:80:c2:00:00:00"), me, len) + llc + bpdu, "stp")});
  }
  out.push_back({"pause", Marked(EthHeader(MacOf("01:80:c2:00:00:01"), me, 0x8808) +
                                     std::string("\x00\x01\xff\xff", 4),
                                 "pause")});
  out.push_back({"vlan1", Tagged(UdpFrame(me, dst, my_ip, victim_ip, "vlan1"), 0x8100, 10)});
  out.push_back(
      {"vlan3", Tagged(Tagged(Tagged(UdpFrame(me, dst, other_ip, victim_ip, "vlan3"), 0x8100, 30),
                              0x8100, 20),
                       0x8100, 10)});
  out.push_back(
      {"tpid9100", Tagged(UdpFrame(me, dst, other_ip, victim_ip, "tpid9100"), 0x9100, 10)});
  out.push_back(
      {"qinq88a8",
       Tagged(Tagged(UdpFrame(me, dst, other_ip, victim_ip, "qinq88a8"), 0x8100, 20), 0x88a8, 10)});
  out.push_back({"ethertype_other", Marked(EthHeader(dst, me, 0x88b5), "ethertype_other")});
  return out;
}

// Sends `f` on `app`'s ring (retrying while the ring is full, up to 100 ms). Returns whether it
// went.
inline bool SendFrame(RawApp& app, const std::string& f) {
  Frame frame{reinterpret_cast<uint8_t*>(const_cast<char*>(f.data())),
              static_cast<uint32_t>(f.size())};
  absl::Time until = absl::Now() + absl::Milliseconds(100);
  while (app.tx().Transmit(&frame, 1) == 0) {
    if (absl::Now() > until) return false;
    app.DrainRx();
    absl::SleepFor(absl::Microseconds(200));
  }
  return true;
}

// A UDP datagram from the app's own addresses to udp_echo, which answers it: makes snapd send to
// the app.
inline bool SendToEcho(RawApp& app, const std::string& kind) {
  uint64_t dst_mac;
  uint32_t dst_ip;
  if (!snapd::ParseMac(absl::GetFlag(FLAGS_dst_mac), &dst_mac) ||
      !snapd::ParseIpv4(absl::GetFlag(FLAGS_dst_ip), &dst_ip)) {
    return false;
  }
  return SendFrame(app, UdpFrame(app.mac(), dst_mac, app.ip(), dst_ip, kind));
}

inline bool HaveEcho() {
  uint64_t m;
  uint32_t i;
  return snapd::ParseMac(absl::GetFlag(FLAGS_dst_mac), &m) &&
         snapd::ParseIpv4(absl::GetFlag(FLAGS_dst_ip), &i);
}

inline bool ClearNonBlock(int fd) {
  int flags = ::fcntl(fd, F_GETFL);
  return flags >= 0 && ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) == 0;
}

inline absl::Time Deadline() {
  return absl::Now() + absl::Seconds(absl::GetFlag(FLAGS_duration_s));
}

// Holds the connection until the deadline, saying when snapd detaches us.
inline void HoldUntil(RawApp& app, absl::Time until) {
  do {
    absl::Status s = app.CheckControl();
    if (!s.ok()) {
      Say(absl::StrCat("RESULT: detached: ", s.message()));
      return;
    }
    app.DrainRx();
    absl::SleepFor(absl::Milliseconds(20));
  } while (absl::Now() < until && !g_stop);
  Say("RESULT: still attached at the end");
}

// Finds "HOSTILE:kind;" in a frame; returns the kind, or "" when the marker is not there.
inline std::string HostileKind(const uint8_t* data, uint32_t len) {
  const void* at = memmem(data, len, kMarker, sizeof(kMarker) - 1);
  if (at == nullptr) return "";
  const char* k = static_cast<const char*>(at) + sizeof(kMarker) - 1;
  const char* end = reinterpret_cast<const char*>(data) + len;
  std::string kind;
  while (k < end && *k != ';' && kind.size() < 24) kind += *k++;
  return kind.empty() ? "?" : kind;
}

inline std::string KindsText(const std::map<std::string, uint64_t>& kinds) {
  std::vector<std::string> parts;
  for (const auto& [k, n] : kinds) parts.push_back(absl::StrCat(k, ":", n));
  return parts.empty() ? "none" : absl::StrJoin(parts, ",");
}

}  // namespace hostile

#endif  // SNAPD_TOOLS_HOSTILE_FRAMES_H_
