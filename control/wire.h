// The daemon's state as the v1 API's messages (control/proto/snapd.proto): what every read RPC,
// `snapctl` and the counters table show. Main thread (the daemon's state has one owner).
#ifndef SNAPD_CONTROL_WIRE_H_
#define SNAPD_CONTROL_WIRE_H_

#include <vector>

#include "control/proto/snapd.pb.h"
#include "snapd/daemon/daemon.h"

namespace snapd {

// Engines, ports, NICs, workers and app counters. Reads each engine's port list on the engine's
// thread.
v1::Stats StatsOf(Daemon& daemon);
std::vector<v1::Group> GroupsOf(Daemon& daemon);
std::vector<v1::App> AppsOf(const Daemon& daemon);
v1::DaemonInfo InfoOf(const Daemon& daemon);
v1::UpgradeReport ReportOf(const UpgradeReport& report);

}  // namespace snapd

#endif  // SNAPD_CONTROL_WIRE_H_
