#include "engines/frame.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

namespace snapd {
namespace {

inline uint16_t Be16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
inline uint32_t Raw32(const uint8_t* p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}

}  // namespace

uint64_t MacFromBytes(const uint8_t* b) {
  uint64_t mac = 0;
  for (int i = 5; i >= 0; --i) mac = mac << 8 | b[i];
  return mac;
}

void MacToBytes(uint64_t mac, uint8_t* b) {
  for (int i = 0; i < 6; ++i) b[i] = static_cast<uint8_t>(mac >> (8 * i));
}

bool ParseMac(const std::string& text, uint64_t* mac) {
  unsigned v[6];
  char tail;
  if (sscanf(text.c_str(), "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
             &tail) != 6 ||
      text.size() != 17) {
    return false;
  }
  uint8_t b[6];
  for (int i = 0; i < 6; ++i) b[i] = static_cast<uint8_t>(v[i]);
  *mac = MacFromBytes(b);
  return true;
}

std::string MacToString(uint64_t mac) {
  uint8_t b[6];
  MacToBytes(mac, b);
  char buf[18];
  snprintf(buf, sizeof(buf), "%02x:%02x:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3], b[4], b[5]);
  return buf;
}

bool ParseIpv4(const std::string& text, uint32_t* ip) {
  in_addr addr;
  if (inet_pton(AF_INET, text.c_str(), &addr) != 1) return false;
  *ip = addr.s_addr;
  return true;
}

std::string Ipv4ToString(uint32_t ip) {
  char buf[INET_ADDRSTRLEN];
  in_addr addr{ip};
  inet_ntop(AF_INET, &addr, buf, sizeof(buf));
  return buf;
}

ParseError ParseFrame(const uint8_t* f, uint32_t len, uint32_t max_len, FrameInfo* info) {
  if (len > max_len) return ParseError::kTooLong;
  if (len < kEthernetHeaderBytes) return ParseError::kTruncated;
  info->dst_mac = MacFromBytes(f);
  info->src_mac = MacFromBytes(f + 6);
  uint32_t off = 12;
  uint16_t type = Be16(f + off);
  // Up to two VLAN tags (802.1Q, 802.1ad).
  for (int tags = 0; tags < 2 && (type == kEtherTypeVlan || type == kEtherTypeQinQ); ++tags) {
    off += 4;
    if (off + 2 > len) return ParseError::kTruncated;
    type = Be16(f + off);
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
  } else if (type == kEtherTypeArp) {
    if (l3_len < 28) return ParseError::kTruncated;
    if (Be16(l3) != 1 || Be16(l3 + 2) != kEtherTypeIpv4 || l3[4] != 6 || l3[5] != 4) {
      return ParseError::kBadArp;
    }
    info->arp_op = Be16(l3 + 6);
    info->arp_sender_mac = MacFromBytes(l3 + 8);
    info->arp_sender_ip = Raw32(l3 + 14);
    info->arp_target_ip = Raw32(l3 + 24);
  }
  return ParseError::kNone;
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
  }
  return "?";
}

}  // namespace snapd
