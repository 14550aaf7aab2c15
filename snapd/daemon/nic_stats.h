// NicStats: a NIC's counters, as the driver reports them (dpdk.h, packet_nic.h).
#ifndef SNAPD_SNAPD_DAEMON_NIC_STATS_H_
#define SNAPD_SNAPD_DAEMON_NIC_STATS_H_

#include <cstdint>

namespace snapd {

// Every NIC counter, declared once: X(name, column, meaning). NicStats, an upgrade's carried
// counters (NicCounters in upgrade/upgrade.proto), the API's (v1::Nic in
// control/proto/snapd.proto) and the counters tables (column; "" for none) come from this list: a
// new counter is one line here (and in DeviceStats) and a field of the same name in those messages.
#define SNAPD_NIC_COUNTERS(X)                                           \
  X(rx_frames, "rx_frames", "frames received")                          \
  X(tx_frames, "tx_frames", "frames sent")                              \
  X(rx_bytes, "", "bytes received")                                     \
  X(tx_bytes, "", "bytes sent")                                         \
  X(rx_missed, "missed", "dropped by the NIC: no room in the rx queue") \
  X(rx_errors, "rx_err", "frames the NIC received in error")            \
  X(tx_errors, "tx_err", "frames the NIC failed to send")               \
  X(rx_nombuf, "nombuf", "dropped: the mbuf pool was empty")            \
  X(rx_wait_ns, "", "summed over frames received: time each waited in the rx ring")

struct NicStats {
  bool link_up = false;
  uint32_t speed_mbps = 0;
#define SNAPD_NIC_COUNTER_FIELD(name, column, meaning) uint64_t name = 0;
  SNAPD_NIC_COUNTERS(SNAPD_NIC_COUNTER_FIELD)
#undef SNAPD_NIC_COUNTER_FIELD
};

}  // namespace snapd

#endif  // SNAPD_SNAPD_DAEMON_NIC_STATS_H_
