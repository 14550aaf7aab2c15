#include "snapd/daemon/placement.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace snapd {

bool ParseSchedulingMode(const std::string& text, SchedulingMode* mode) {
  if (text == "dedicated") {
    *mode = SchedulingMode::kDedicated;
  } else if (text == "spreading") {
    *mode = SchedulingMode::kSpreading;
  } else if (text == "compacting") {
    *mode = SchedulingMode::kCompacting;
  } else {
    return false;
  }
  return true;
}

const char* SchedulingModeName(SchedulingMode mode) {
  switch (mode) {
    case SchedulingMode::kDedicated:
      return "dedicated";
    case SchedulingMode::kSpreading:
      return "spreading";
    case SchedulingMode::kCompacting:
      return "compacting";
  }
  return "?";
}

int Placement::WorkerOf(const std::string& engine) const {
  for (size_t w = 0; w < workers.size(); ++w) {
    if (std::find(workers[w].begin(), workers[w].end(), engine) != workers[w].end()) {
      return static_cast<int>(w);
    }
  }
  return -1;
}

namespace {

bool OverSlo(const EngineLoad& e, const GroupPolicy& p) {
  return p.slo_ns > 0 && e.queueing_delay_ns > p.slo_ns;
}

// First-fit decreasing: heaviest engines first, each onto the first worker with room; an engine
// over its SLO, or alone above the cap, gets a worker of its own.
Placement Compact(const std::vector<EngineLoad>& engines, const GroupPolicy& policy) {
  std::vector<const EngineLoad*> order;
  for (const EngineLoad& e : engines) order.push_back(&e);
  std::stable_sort(order.begin(), order.end(),
                   [](const EngineLoad* a, const EngineLoad* b) { return a->busy > b->busy; });
  Placement p;
  std::vector<double> load;
  std::vector<bool> exclusive;
  for (const EngineLoad* e : order) {
    bool alone = OverSlo(*e, policy) || e->busy >= policy.worker_cap;
    size_t w = 0;
    if (!alone) {
      while (w < p.workers.size() && (exclusive[w] || load[w] + e->busy > policy.worker_cap)) ++w;
    } else {
      w = p.workers.size();
    }
    if (w == p.workers.size()) {
      p.workers.emplace_back();
      load.push_back(0);
      exclusive.push_back(alone);
    }
    p.workers[w].push_back(e->name);
    load[w] += e->busy;
  }
  // Keep engine order within a worker stable (by name) so equal loads give equal placements.
  for (auto& w : p.workers) std::sort(w.begin(), w.end());
  p.cores.assign(p.workers.size(), -1);
  for (size_t w = 0; w < p.workers.size() && w < policy.cores.size(); ++w) {
    p.cores[w] = policy.cores[w];
  }
  return p;
}

}  // namespace

absl::StatusOr<Placement> Place(const std::vector<EngineLoad>& engines, const GroupPolicy& policy) {
  Placement p;
  switch (policy.mode) {
    case SchedulingMode::kDedicated:
      if (policy.cores.size() < engines.size()) {
        return absl::FailedPreconditionError(
            absl::StrCat("dedicated mode needs a core per engine: ", engines.size(), " engines, ",
                         policy.cores.size(), " cores allowed"));
      }
      for (size_t i = 0; i < engines.size(); ++i) {
        p.workers.push_back({engines[i].name});
        p.cores.push_back(policy.cores[i]);
      }
      return p;
    case SchedulingMode::kSpreading:
      for (const EngineLoad& e : engines) {
        p.workers.push_back({e.name});
        p.cores.push_back(-1);
      }
      return p;
    case SchedulingMode::kCompacting:
      return Compact(engines, policy);
  }
  return absl::InvalidArgumentError("unknown mode");
}

absl::StatusOr<Placement> Rebalance(const std::vector<EngineLoad>& engines,
                                    const GroupPolicy& policy, const Placement& current,
                                    int64_t since_last_change_ns, int64_t since_last_overload_ns) {
  absl::StatusOr<Placement> wanted = Place(engines, policy);
  if (!wanted.ok() || policy.mode != SchedulingMode::kCompacting) return wanted;
  // Every engine must be placed: a current placement that lost or lacks one is replaced at once.
  size_t placed = 0;
  for (const auto& w : current.workers) placed += w.size();
  bool complete = placed == engines.size();
  for (const EngineLoad& e : engines) complete = complete && current.WorkerOf(e.name) >= 0;
  if (!complete) return wanted;
  if (since_last_change_ns < policy.min_interval_ns) return current;
  // An engine over its SLO that shares a worker must move out now.
  for (const EngineLoad& e : engines) {
    if (OverSlo(e, policy) && current.workers[current.WorkerOf(e.name)].size() > 1) return wanted;
  }
  // Otherwise change only for a different number of workers: a scale-out at once, a scale-in only
  // when it is safe for a while.
  if (wanted->workers.size() > current.workers.size()) return wanted;
  if (wanted->workers.size() < current.workers.size() &&
      since_last_change_ns >= policy.scale_in_interval_ns &&
      since_last_overload_ns >= policy.scale_in_interval_ns) {
    std::map<std::string, double> busy;
    for (const EngineLoad& e : engines) busy[e.name] = e.busy;
    double heaviest = 0;
    for (const auto& w : wanted->workers) {
      double load = 0;
      for (const std::string& e : w) load += busy[e];
      heaviest = std::max(heaviest, load);
    }
    if (heaviest <= policy.scale_in_cap) return wanted;
  }
  return current;
}

}  // namespace snapd
