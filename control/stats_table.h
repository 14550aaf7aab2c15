// The counters table snapd logs (SIGUSR1, at exit) and `snapctl stats` prints: engines, ports,
// NICs and app counters, aligned columns. Tests read its columns by name.
#ifndef SNAPD_CONTROL_STATS_TABLE_H_
#define SNAPD_CONTROL_STATS_TABLE_H_

#include <string>

#include "control/proto/snapd.pb.h"

namespace snapd {

std::string StatsTable(const v1::Stats& stats);

}  // namespace snapd

#endif  // SNAPD_CONTROL_STATS_TABLE_H_
