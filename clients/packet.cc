#include "clients/packet.h"

#include <string.h>

#include <utility>

#include "engines/frame.h"

namespace snap {
namespace {

using snapd::FrameInfo;
using snapd::MacFromBytes;
using snapd::MacToBytes;

void PutBe16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}

void SwapBytes(uint8_t* a, uint8_t* b, size_t n) {
  for (size_t i = 0; i < n; ++i) std::swap(a[i], b[i]);
}

}  // namespace

uint16_t InternetChecksum(const uint8_t* data, size_t len) {
  uint32_t sum = 0;
  for (size_t i = 0; i + 1 < len; i += 2) sum += uint32_t{data[i]} << 8 | data[i + 1];
  if (len & 1) sum += uint32_t{data[len - 1]} << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

std::string UdpHeader(uint64_t src_mac, uint64_t dst_mac, uint32_t src_ip, uint32_t dst_ip,
                      uint16_t src_port, uint16_t dst_port, uint32_t frame_size) {
  std::string h(kUdpHeaderBytes, '\0');
  auto* p = reinterpret_cast<uint8_t*>(h.data());
  MacToBytes(dst_mac, p);
  MacToBytes(src_mac, p + 6);
  PutBe16(p + 12, snapd::kEtherTypeIpv4);
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
  FrameInfo info;
  if (snapd::ParseFrame(f, len, 65535, &info) != snapd::ParseError::kNone) return Reply::kNone;
  uint8_t my_mac[6];
  MacToBytes(mac, my_mac);
  if (info.ethertype == snapd::kEtherTypeArp) {
    if (info.arp_op != 1 || info.arp_target_ip != ip) return Reply::kNone;
    uint8_t* arp = f + info.l3_offset;
    memcpy(f, f + 6, 6);  // to the asker
    memcpy(f + 6, my_mac, 6);
    arp[7] = 2;                     // reply
    memcpy(arp + 18, arp + 8, 10);  // target = asker's MAC and IP
    memcpy(arp + 8, my_mac, 6);
    memcpy(arp + 14, &ip, 4);
    return Reply::kArp;
  }
  if (info.ethertype != snapd::kEtherTypeIpv4 || info.ipv4_dst != ip || info.dst_mac != mac) {
    return Reply::kNone;
  }
  uint8_t* iph = f + info.l3_offset;
  uint32_t ihl = (iph[0] & 0x0f) * 4u;
  uint32_t total = uint32_t{iph[2]} << 8 | iph[3];
  uint8_t* l4 = iph + ihl;
  uint32_t l4_len = total - ihl;
  // Swapping source and destination keeps the IPv4, UDP and ICMP checksums as they were.
  if (info.ipv4_protocol == 1) {  // ICMP
    if (l4_len < 8 || l4[0] != 8 || l4[1] != 0) return Reply::kNone;
    l4[0] = 0;  // echo reply; the checksum word changes by the same amount
    uint32_t sum = (uint32_t{l4[2]} << 8 | l4[3]) + 0x0800;
    sum = (sum & 0xffff) + (sum >> 16);
    PutBe16(l4 + 2, static_cast<uint16_t>(sum));
  } else if (info.ipv4_protocol == 17) {  // UDP
    if (l4_len < 8) return Reply::kNone;
    SwapBytes(l4, l4 + 2, 2);
  } else {
    return Reply::kNone;
  }
  SwapBytes(f, f + 6, 6);
  SwapBytes(iph + 12, iph + 16, 4);
  return info.ipv4_protocol == 1 ? Reply::kIcmpEcho : Reply::kUdpEcho;
}

std::string ArpRequest(uint64_t mac, uint32_t ip, uint32_t target_ip) {
  std::string f(42, '\0');
  auto* p = reinterpret_cast<uint8_t*>(f.data());
  memset(p, 0xff, 6);
  MacToBytes(mac, p + 6);
  PutBe16(p + 12, snapd::kEtherTypeArp);
  uint8_t* arp = p + 14;
  PutBe16(arp, 1);
  PutBe16(arp + 2, snapd::kEtherTypeIpv4);
  arp[4] = 6;
  arp[5] = 4;
  PutBe16(arp + 6, 1);
  MacToBytes(mac, arp + 8);
  memcpy(arp + 14, &ip, 4);
  memcpy(arp + 24, &target_ip, 4);
  return f;
}

bool ParseArpReply(const uint8_t* frame, uint32_t len, uint32_t target_ip, uint64_t* mac) {
  FrameInfo info;
  if (snapd::ParseFrame(frame, len, 65535, &info) != snapd::ParseError::kNone) return false;
  if (info.ethertype != snapd::kEtherTypeArp || info.arp_op != 2) return false;
  if (info.arp_sender_ip != target_ip) return false;
  *mac = info.arp_sender_mac;
  return true;
}

}  // namespace snap
