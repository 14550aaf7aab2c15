#include "clients/packet.h"

#include <string.h>

#include <utility>

#include "base/addr.h"

namespace snap {
namespace {

using snapd::MacFromBytes;
using snapd::MacToBytes;

constexpr uint16_t kEtherTypeIpv4 = 0x0800;
constexpr uint16_t kEtherTypeArp = 0x0806;
constexpr uint32_t kArpBytes = 28;  // Ethernet and IPv4 ARP

uint16_t Be16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }

void PutBe16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}

void SwapBytes(uint8_t* a, uint8_t* b, size_t n) {
  for (size_t i = 0; i < n; ++i) std::swap(a[i], b[i]);
}

// Where the network header of the Ethernet frame `f` starts, past up to two VLAN tags, and its
// ethertype; 0 if the frame is too short for the headers it claims. An app library reads only what
// it answers (ARP, IPv4), so this is all the parsing it needs.
uint32_t L3Offset(const uint8_t* f, uint32_t len, uint16_t* ethertype) {
  uint32_t off = 12;
  for (int tags = 0; tags <= 2; ++tags) {
    if (len < off + 2) return 0;
    const uint16_t type = Be16(f + off);
    if (tags < 2 && (type == 0x8100 || type == 0x88a8)) {
      off += 4;
      continue;
    }
    *ethertype = type;
    return off + 2;
  }
  return 0;
}

}  // namespace

std::string UdpHeader(uint64_t src_mac, uint64_t dst_mac, uint32_t src_ip, uint32_t dst_ip,
                      uint16_t src_port, uint16_t dst_port, uint32_t frame_size) {
  std::string h(kUdpHeaderBytes, '\0');
  auto* p = reinterpret_cast<uint8_t*>(h.data());
  MacToBytes(dst_mac, p);
  MacToBytes(src_mac, p + 6);
  PutBe16(p + 12, kEtherTypeIpv4);
  uint8_t* ip = p + 14;
  ip[0] = 0x45;
  PutBe16(ip + 2, static_cast<uint16_t>(frame_size - 14));
  ip[8] = 64;  // TTL
  ip[9] = 17;  // UDP
  memcpy(ip + 12, &src_ip, 4);
  memcpy(ip + 16, &dst_ip, 4);
  PutBe16(ip + 10, InternetChecksum(ip, 20));
  uint8_t* udp = ip + 20;
  PutBe16(udp, src_port);
  PutBe16(udp + 2, dst_port);
  PutBe16(udp + 4, static_cast<uint16_t>(frame_size - 34));
  return h;
}

Reply AnswerInPlace(uint8_t* f, uint32_t len, uint64_t mac, uint32_t ip) {
  uint16_t ethertype = 0;
  const uint32_t l3 = L3Offset(f, len, &ethertype);
  if (l3 == 0) return Reply::kNone;
  uint8_t my_mac[6];
  MacToBytes(mac, my_mac);
  if (ethertype == kEtherTypeArp) {
    uint8_t* arp = f + l3;
    if (len < l3 + kArpBytes || Be16(arp + 6) != 1 || memcmp(arp + 24, &ip, 4) != 0) {
      return Reply::kNone;
    }
    memcpy(f, f + 6, 6);  // to the asker
    memcpy(f + 6, my_mac, 6);
    arp[7] = 2;                     // reply
    memcpy(arp + 18, arp + 8, 10);  // target = asker's MAC and IP
    memcpy(arp + 8, my_mac, 6);
    memcpy(arp + 14, &ip, 4);
    return Reply::kArp;
  }
  uint8_t* iph = f + l3;
  if (ethertype != kEtherTypeIpv4 || len < l3 + 20 || (iph[0] >> 4) != 4 ||
      memcmp(iph + 16, &ip, 4) != 0 || MacFromBytes(f) != mac) {
    return Reply::kNone;
  }
  uint32_t ihl = (iph[0] & 0x0f) * 4u;
  uint32_t total = Be16(iph + 2);
  if (ihl < 20 || total < ihl || total > len - l3) return Reply::kNone;
  uint8_t* l4 = iph + ihl;
  uint32_t l4_len = total - ihl;
  // Swapping source and destination keeps the IPv4, UDP and ICMP checksums as they were.
  const uint8_t protocol = iph[9];
  if (protocol == 1) {  // ICMP
    if (l4_len < 8 || l4[0] != 8 || l4[1] != 0) return Reply::kNone;
    l4[0] = 0;  // echo reply; the checksum word changes by the same amount
    uint32_t sum = (uint32_t{l4[2]} << 8 | l4[3]) + 0x0800;
    sum = (sum & 0xffff) + (sum >> 16);
    PutBe16(l4 + 2, static_cast<uint16_t>(sum));
  } else if (protocol == 17) {  // UDP
    if (l4_len < 8) return Reply::kNone;
    SwapBytes(l4, l4 + 2, 2);
  } else {
    return Reply::kNone;
  }
  SwapBytes(f, f + 6, 6);
  SwapBytes(iph + 12, iph + 16, 4);
  return protocol == 1 ? Reply::kIcmpEcho : Reply::kUdpEcho;
}

std::string ArpRequest(uint64_t mac, uint32_t ip, uint32_t target_ip) {
  std::string f(42, '\0');
  auto* p = reinterpret_cast<uint8_t*>(f.data());
  memset(p, 0xff, 6);
  MacToBytes(mac, p + 6);
  PutBe16(p + 12, kEtherTypeArp);
  uint8_t* arp = p + 14;
  PutBe16(arp, 1);
  PutBe16(arp + 2, kEtherTypeIpv4);
  arp[4] = 6;
  arp[5] = 4;
  PutBe16(arp + 6, 1);
  MacToBytes(mac, arp + 8);
  memcpy(arp + 14, &ip, 4);
  memcpy(arp + 24, &target_ip, 4);
  return f;
}

bool ParseArpReply(const uint8_t* frame, uint32_t len, uint32_t target_ip, uint64_t* mac) {
  uint16_t ethertype = 0;
  const uint32_t l3 = L3Offset(frame, len, &ethertype);
  if (l3 == 0 || ethertype != kEtherTypeArp || len < l3 + kArpBytes) return false;
  const uint8_t* arp = frame + l3;
  if (Be16(arp + 6) != 2 || memcmp(arp + 14, &target_ip, 4) != 0) return false;
  *mac = MacFromBytes(arp + 8);
  return true;
}

}  // namespace snap
