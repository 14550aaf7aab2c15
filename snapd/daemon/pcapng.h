// Pcapng blocks, appended to a buffer: the section header, an interface per captured port, a
// packet, and an interface's statistics (what a capture saw and dropped). What Wireshark, tshark
// and tcpdump read (https://www.ietf.org/archive/id/draft-ietf-opsawg-pcapng-01.html).
//
// Why not DPDK's rte_pcapng: in DPDK 22.11 (Debian 12's) it writes an interface block for every
// ethdev port when the file opens, numbers interfaces by ethdev port id, and refuses statistics for
// anything else; snapd's app ports are not ethdev ports (DPDK 23.11 adds
// rte_pcapng_add_interface). Nor libpcap: 1.10 writes pcap, which has no interface names,
// directions or drop counts.
#ifndef SNAPD_SNAPD_DAEMON_PCAPNG_H_
#define SNAPD_SNAPD_DAEMON_PCAPNG_H_

#include <cstdint>
#include <string>

namespace snapd::pcapng {

// The section header: once, first.
void SectionHeader(const std::string& application, std::string* out);
// Interface `index` (numbered from 0 in the order they are written): Ethernet, nanosecond
// timestamps.
void Interface(const std::string& name, const std::string& description, uint32_t snaplen,
               std::string* out);

enum class Direction : uint32_t { kUnknown = 0, kIn = 1, kOut = 2 };

// One frame: its first `captured` bytes at `data` of `original` on the wire. `dropped`: frames
// the capture lost on this interface since the one before (0: none; epb_dropcount).
void Packet(uint32_t interface, int64_t unix_ns, const uint8_t* data, uint32_t captured,
            uint32_t original, Direction direction, uint64_t dropped, std::string* out);

// What the capture of interface `interface` saw from `start_ns` to `end_ns` (Unix ns): frames on
// it in the directions captured (isb_ifrecv), those the filter let through (isb_filteraccept),
// those the capture lost because its reader fell behind (isb_osdrop: lost in the capturing
// software, not by the interface) and those it delivered (isb_usrdeliv).
void Statistics(uint32_t interface, int64_t start_ns, int64_t end_ns, uint64_t seen,
                uint64_t accepted, uint64_t dropped, uint64_t delivered, const std::string& comment,
                std::string* out);

}  // namespace snapd::pcapng

#endif  // SNAPD_SNAPD_DAEMON_PCAPNG_H_
