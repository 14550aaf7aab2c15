#include "base/addr.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

namespace snapd {

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

bool ParseIpv6(const std::string& text, Ipv6Address* ip) {
  in6_addr addr;
  if (inet_pton(AF_INET6, text.c_str(), &addr) != 1) return false;
  *ip = Ipv6Address::FromBytes(addr.s6_addr);
  return true;
}

std::string Ipv6ToString(const Ipv6Address& ip) {
  char buf[INET6_ADDRSTRLEN];
  in6_addr addr;
  memcpy(addr.s6_addr, ip.w, 16);
  inet_ntop(AF_INET6, &addr, buf, sizeof(buf));
  return buf;
}

}  // namespace snapd
