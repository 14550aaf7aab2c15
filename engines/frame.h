// Parsing the headers a switch looks at (Ethernet, up to two VLAN tags, IPv4, ARP) out of frames
// that come from untrusted sources: the NIC and apps. Pure functions, no allocation; every length
// is checked before a byte is read.
#ifndef SNAPD_ENGINES_FRAME_H_
#define SNAPD_ENGINES_FRAME_H_

#include <cstdint>
#include <string>

namespace snapd {

inline constexpr uint16_t kEtherTypeIpv4 = 0x0800;
inline constexpr uint16_t kEtherTypeArp = 0x0806;
inline constexpr uint16_t kEtherTypeVlan = 0x8100;
inline constexpr uint16_t kEtherTypeQinQ = 0x88a8;
inline constexpr uint32_t kEthernetHeaderBytes = 14;

struct FrameInfo {
  uint64_t dst_mac = 0;  // the 6 bytes in wire order, in the low 48 bits (see MacFromBytes)
  uint64_t src_mac = 0;
  uint16_t ethertype = 0;  // after any VLAN tags
  uint32_t l3_offset = 0;
  // IPv4 (ethertype 0x0800): addresses in network byte order.
  uint32_t ipv4_src = 0;
  uint32_t ipv4_dst = 0;
  uint8_t ipv4_protocol = 0;
  // ARP (ethertype 0x0806) for IPv4 over Ethernet.
  uint16_t arp_op = 0;
  uint64_t arp_sender_mac = 0;
  uint32_t arp_sender_ip = 0;
  uint32_t arp_target_ip = 0;
};

enum class ParseError {
  kNone = 0,
  kTruncated,  // shorter than its headers say
  kTooLong,    // longer than the largest frame allowed (e.g. offload super-frames)
  kBadIpv4,    // version, header length or total length inconsistent
  kBadArp,     // not Ethernet/IPv4 ARP, or wrong address lengths
};

// Parses `frame`; returns kNone and fills *info, or the first thing wrong. Frames longer than
// `max_len` are refused.
ParseError ParseFrame(const uint8_t* frame, uint32_t len, uint32_t max_len, FrameInfo* info);

inline bool IsMulticast(uint64_t mac) { return (mac & 0x01) != 0; }  // I/G bit of first byte

// The 6 bytes of a MAC in wire order packed into an integer (byte 0 in the low bits), and back.
uint64_t MacFromBytes(const uint8_t* b);
void MacToBytes(uint64_t mac, uint8_t* b);
// "02:00:00:00:00:01" <-> integer; ParseMac returns false on a malformed string.
bool ParseMac(const std::string& text, uint64_t* mac);
std::string MacToString(uint64_t mac);
// Dotted quad <-> network-order integer.
bool ParseIpv4(const std::string& text, uint32_t* ip);
std::string Ipv4ToString(uint32_t ip);

const char* ParseErrorName(ParseError e);

}  // namespace snapd

#endif  // SNAPD_ENGINES_FRAME_H_
