// Building and answering frames in an app: UDP/IPv4 headers with valid checksums, ARP replies and
// ICMP echo replies, in place. Pure functions over byte buffers; every length is checked first.
#ifndef SNAPD_CLIENTS_PACKET_H_
#define SNAPD_CLIENTS_PACKET_H_

#include <cstdint>
#include <string>

#include "base/checksum.h"

namespace snap {

// The internet checksum (RFC 1071) of `len` bytes (base/checksum.h).
using snapd::InternetChecksum;

// Ethernet + IPv4 + UDP headers (42 bytes) for a frame of `frame_size` bytes in all (lengths and
// the IPv4 checksum filled in; UDP checksum 0, which IPv4 allows). MACs as packed by
// snapd::MacFromBytes, addresses in network order, ports in host order.
std::string UdpHeader(uint64_t src_mac, uint64_t dst_mac, uint32_t src_ip, uint32_t dst_ip,
                      uint16_t src_port, uint16_t dst_port, uint32_t frame_size);
inline constexpr uint32_t kUdpHeaderBytes = 42;

// What an app does with a frame addressed to it.
enum class Reply {
  kNone,      // not for us, or nothing to answer
  kArp,       // an ARP request for our address: the frame now holds the reply
  kIcmpEcho,  // an ICMP echo request to us: the frame now holds the echo reply
  kUdpEcho,   // a UDP datagram to us: the frame now holds it back to its sender
};

// Turns `frame` into the answer an echo host gives (ARP reply, ICMP echo reply, the UDP datagram
// returned), in place, when it is for `mac`/`ip`. Checksums stay valid.
Reply AnswerInPlace(uint8_t* frame, uint32_t len, uint64_t mac, uint32_t ip);

// An ARP request from mac/ip asking for `target_ip` (42 bytes).
std::string ArpRequest(uint64_t mac, uint32_t ip, uint32_t target_ip);
// If `frame` is an ARP reply telling target_ip's MAC, returns true and sets *mac.
bool ParseArpReply(const uint8_t* frame, uint32_t len, uint32_t target_ip, uint64_t* mac);

}  // namespace snap

#endif  // SNAPD_CLIENTS_PACKET_H_
