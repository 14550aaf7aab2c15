// HostNicDriver: the NIC driver snapd runs with. It opens "af_packet:IFACE" NICs itself, through
// packet sockets (packet_nic.h), and every other device through DPDK (dpdk.h); DPDK's EAL starts
// either way (its mbuf pool serves DPDK NICs, its thread registry every worker).
//
// Threads: the main thread.
#ifndef SNAPD_SNAPD_DAEMON_HOST_NICS_H_
#define SNAPD_SNAPD_DAEMON_HOST_NICS_H_

#include "snapd/daemon/nic.h"

namespace snapd {

NicDriver& HostNicDriver();

}  // namespace snapd

#endif  // SNAPD_SNAPD_DAEMON_HOST_NICS_H_
