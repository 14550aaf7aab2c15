// Addresses as text and as bytes: MAC, IPv4 and IPv6 (parsing flags, configs and RPC fields;
// printing counters and logs). Shared by snapd and by the app library (clients/).
#ifndef SNAPD_BASE_ADDR_H_
#define SNAPD_BASE_ADDR_H_

#include <cstdint>
#include <cstring>
#include <string>

namespace snapd {

// An IPv6 address: its 16 bytes in wire order, as two words for cheap comparison. Left
// uninitialized by default (a frame parser fills it); Ipv6Address() is ::.
struct Ipv6Address {
  uint64_t w[2];
  static Ipv6Address FromBytes(const uint8_t* b) {
    Ipv6Address a;
    memcpy(a.w, b, 16);
    return a;
  }
  bool IsUnspecified() const { return (w[0] | w[1]) == 0; }
  bool operator==(const Ipv6Address& o) const { return w[0] == o.w[0] && w[1] == o.w[1]; }
  bool operator!=(const Ipv6Address& o) const { return !(*this == o); }
};

// The 6 bytes of a MAC in wire order packed into an integer (byte 0 in the low bits), and back.
uint64_t MacFromBytes(const uint8_t* b);
void MacToBytes(uint64_t mac, uint8_t* b);
// "02:00:00:00:00:01" <-> integer; ParseMac returns false on a malformed string.
bool ParseMac(const std::string& text, uint64_t* mac);
std::string MacToString(uint64_t mac);
// Dotted quad <-> network-order integer.
bool ParseIpv4(const std::string& text, uint32_t* ip);
std::string Ipv4ToString(uint32_t ip);
// IPv6 text ("fd00::1") <-> address; ParseIpv6 returns false on a malformed string.
bool ParseIpv6(const std::string& text, Ipv6Address* ip);
std::string Ipv6ToString(const Ipv6Address& ip);

}  // namespace snapd

#endif  // SNAPD_BASE_ADDR_H_
