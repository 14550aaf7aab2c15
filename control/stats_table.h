// The counters tables snapd logs (SIGUSR1, at exit) and `snapctl stats` and `snapctl ports`
// print: engines, ports, NICs and app counters, aligned columns. The port and NIC columns come
// from the counter lists (SNAPD_PORT_COUNTERS in engines/port.h, SNAPD_NIC_COUNTERS in
// snapd/daemon/nic_stats.h). Tests read the columns by position: new ones go at the end.
#ifndef SNAPD_CONTROL_STATS_TABLE_H_
#define SNAPD_CONTROL_STATS_TABLE_H_

#include <string>

#include "control/proto/snapd.pb.h"

namespace snapd {

std::string StatsTable(const v1::Stats& stats);
// One line per port; `with_kind` adds a column saying "nic" or "app" (snapctl ports).
std::string PortTable(const google::protobuf::RepeatedPtrField<v1::Port>& ports, bool with_kind);
// One line per NIC; `with_setup` adds its queues, RSS and rx interrupts (snapctl ports).
std::string NicTable(const google::protobuf::RepeatedPtrField<v1::Nic>& nics, bool with_setup);

}  // namespace snapd

#endif  // SNAPD_CONTROL_STATS_TABLE_H_
