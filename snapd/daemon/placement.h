// Placement: which worker (and core) each engine of a group runs on, as a pure function of the
// engines' loads, the group's mode and its allowed cores. The rebalancer calls it every few
// milliseconds with fresh loads; the daemon moves engines whose worker changed (at a batch
// boundary, losing nothing). Table-tested in placement_test.cc.
//
//   dedicated   each engine on a worker of its own, pinned to a core of its own, spinning.
//   spreading   each engine on a worker of its own that blocks when idle; workers may run on any
//               allowed core.
//   compacting  engines packed onto as few blocking workers as their loads allow (first-fit
//               decreasing under a per-worker load cap); an engine whose queueing delay exceeds the
//               group's SLO gets a worker of its own (scale out); when loads fall the engines are
//               packed back in (scale in). Hysteresis (the care OVS's pmd-auto-lb takes, in
//               milliseconds): a new placement replaces the current one only if it changes the
//               worker count or fixes an SLO breach, and not sooner than min_interval after the
//               last change.
#ifndef SNAPD_SNAPD_DAEMON_PLACEMENT_H_
#define SNAPD_SNAPD_DAEMON_PLACEMENT_H_

#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace snapd {

enum class SchedulingMode { kDedicated, kSpreading, kCompacting };

// "dedicated" | "spreading" | "compacting"; false for anything else.
bool ParseSchedulingMode(const std::string& text, SchedulingMode* mode);
const char* SchedulingModeName(SchedulingMode mode);

struct EngineLoad {
  std::string name;
  double busy = 0;                // fraction of one core the engine used lately (0..1)
  int64_t queueing_delay_ns = 0;  // how long its work has been waiting, now
};

struct GroupPolicy {
  SchedulingMode mode = SchedulingMode::kSpreading;
  std::vector<int> cores;             // allowed cores; empty: any
  int64_t slo_ns = 0;                 // compacting: queueing delay that triggers a scale-out
  double worker_cap = 0.8;            // compacting: most load packed onto one worker
  int64_t min_interval_ns = 5000000;  // compacting: least time between two changes
  // Compacting: packing back in waits longer, and only while every packed worker would stay
  // under this load: an engine that just got a core of its own looks lightly loaded there, and
  // must not be packed straight back into the overload it left (flapping).
  int64_t scale_in_interval_ns = 50000000;
  double scale_in_cap = 0.5;
};

// Engines grouped by worker: workers[i] lists the engines worker i runs; core[i] is the core it is
// pinned to (-1: not pinned).
struct Placement {
  std::vector<std::vector<std::string>> workers;
  std::vector<int> cores;
  bool operator==(const Placement& other) const {
    return workers == other.workers && cores == other.cores;
  }
  // The worker index of `engine`, or -1.
  int WorkerOf(const std::string& engine) const;
};

// The placement the policy wants for these engines, from scratch. FAILED_PRECONDITION when the
// dedicated mode has fewer allowed cores than engines.
absl::StatusOr<Placement> Place(const std::vector<EngineLoad>& engines, const GroupPolicy& policy);

// Compacting with hysteresis: returns `current` unless the placement the loads call for relieves an
// engine over its SLO or changes the number of workers, and `since_last_change_ns` is at least the
// policy's min_interval; a scale-in also needs scale_in_interval and every packed worker under
// scale_in_cap. Other modes: Place().
// `since_last_overload_ns` is how long ago an engine of the group last missed its SLO: a scale-in
// waits for scale_in_interval after that too.
absl::StatusOr<Placement> Rebalance(
    const std::vector<EngineLoad>& engines, const GroupPolicy& policy, const Placement& current,
    int64_t since_last_change_ns,
    int64_t since_last_overload_ns = std::numeric_limits<int64_t>::max());

}  // namespace snapd

#endif  // SNAPD_SNAPD_DAEMON_PLACEMENT_H_
