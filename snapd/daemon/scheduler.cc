#include "snapd/daemon/scheduler.h"

#include <algorithm>
#include <limits>

#include "absl/strings/str_cat.h"
#include "base/clock.h"
#include "engines/registry.h"
#include "glog/logging.h"
#include "snapd/daemon/config.h"

namespace snapd {
namespace {

// How often engine loads are sampled and compacting groups looked at (scale-ins decided).
// Scale-outs do not wait for it: a worker whose engine misses the SLO wakes the main thread at
// once.
constexpr int64_t kRebalanceNs = 20 * 1000000;
// The sampling period when no compacting group has traffic.
constexpr int64_t kIdleSampleNs = 200 * 1000000;

}  // namespace

int64_t EngineSlot::DelayPercentile(int p) const {
  if (delays.empty()) return 0;
  std::vector<int64_t> sorted = delays;
  const size_t i = std::min(sorted.size() - 1, sorted.size() * p / 100);
  std::nth_element(sorted.begin(), sorted.begin() + i, sorted.end());
  return sorted[i];
}

GroupPolicy PolicyOf(const config::Group& group) {
  GroupPolicy policy;
  ParseSchedulingMode(group.mode(), &policy.mode);
  policy.cores.assign(group.cores().begin(), group.cores().end());
  policy.slo_ns = int64_t{group.slo_us()} * 1000;
  return policy;
}

Scheduler::~Scheduler() {
  for (auto& slot : engines_) {
    if (slot->polled) slot->worker->RemoveEngine(slot->engine.get());
    slot->polled = false;
  }
  groups_.clear();  // joins the workers
  engines_.clear();
}

void Scheduler::AddGroup(const config::Group& g) {
  Group& group = groups_[g.name()];
  group.config = g;
  group.policy = PolicyOf(g);
}

absl::StatusOr<EngineSlot*> Scheduler::AddEngine(const config::Engine& e) {
  auto engine = EngineRegistry::Global().Create(e.kind(), e.name(), e.config());
  if (!engine.ok()) return engine.status();
  auto slot = std::make_unique<EngineSlot>();
  slot->config = e;
  slot->engine = std::move(*engine);
  engines_.push_back(std::move(slot));
  return engines_.back().get();
}

absl::Status Scheduler::PlaceAll() {
  for (auto& [name, group] : groups_) {
    absl::Status status = Replace(group);
    if (!status.ok()) {
      return absl::Status(status.code(), absl::StrCat("group ", name, ": ", status.message()));
    }
  }
  return absl::OkStatus();
}

absl::Status Scheduler::ReplaceAll() {
  for (auto& [name, group] : groups_) {
    absl::Status status = Replace(group);
    if (!status.ok()) return status;
  }
  return absl::OkStatus();
}

absl::Status Scheduler::Replace(const std::string& group) {
  auto it = groups_.find(group);
  if (it == groups_.end()) return absl::NotFoundError(absl::StrCat("no group named ", group));
  return Replace(it->second);
}

EngineSlot* Scheduler::Find(const std::string& name) {
  for (auto& slot : engines_) {
    if (slot->engine->name() == name) return slot.get();
  }
  return nullptr;
}

void Scheduler::OnEngine(EngineSlot& slot, const std::function<void()>& fn) {
  if (slot.polled) {
    slot.worker->RunSync(fn);
  } else {
    fn();  // no worker polls it: the main thread may touch it
  }
}

std::vector<EngineLoad> Scheduler::LoadsOf(const Group& group) {
  std::vector<EngineLoad> loads;
  int64_t now = MonotonicNs();
  for (const auto& slot : engines_) {
    // Holding for an upgrade, every engine is placed from the start, moved or not, so that each
    // move only adds its engine to the worker made for it (re-pinning workers would cost every
    // blackout).
    if (slot->config.group() != group.config.name() || (!slot->ready && !holding_)) continue;
    loads.push_back({slot->engine->name(), slot->busy, slot->engine->QueueingDelayNs(now)});
  }
  return loads;
}

absl::Status Scheduler::Replace(Group& group) {
  absl::StatusOr<Placement> placement = Place(LoadsOf(group), group.policy);
  if (!placement.ok()) return placement.status();
  ApplyPlacement(group, *placement);
  return absl::OkStatus();
}

void Scheduler::ApplyPlacement(Group& group, const Placement& placement) {
  const Worker::Mode mode = group.policy.mode == SchedulingMode::kDedicated
                                ? Worker::Mode::kDedicated
                                : Worker::Mode::kBlocking;
  for (size_t i = 0; i < placement.workers.size(); ++i) {
    if (i == group.workers.size()) {
      group.workers.push_back(std::make_unique<Worker>(
          absl::StrCat("w-", group.config.name(), "-", i), placement.cores[i], mode));
      continue;
    }
    Worker& w = *group.workers[i];
    if (w.core() != placement.cores[i]) w.SetCore(placement.cores[i]);
    if (w.mode() != mode) w.SetMode(mode);
  }
  // Compacting workers raise an alarm when an engine misses the SLO; the main thread then
  // rebalances at once instead of waiting for its next tick.
  int64_t alarm = group.policy.mode == SchedulingMode::kCompacting ? group.policy.slo_ns : 0;
  for (const auto& w : group.workers) w->SetOverloadAlarm(alarm, overload_fd_);
  for (auto& slot : engines_) {
    if (slot->config.group() != group.config.name() || !slot->ready) continue;
    int target_index = placement.WorkerOf(slot->engine->name());
    Worker* target = group.workers[target_index].get();
    if (slot->worker == target && slot->polled) continue;
    if (slot->polled) {
      MoveEngine(slot->engine.get(), *slot->worker, *target);
    } else {
      slot->polled_since_ns = target->AddEngine(slot->engine.get());
    }
    slot->worker = target;
    slot->polled = true;
  }
  // Workers beyond the placement have no engine left (holding, they wait for engines to come).
  while (!holding_ && group.workers.size() > placement.workers.size()) group.workers.pop_back();
  group.placement = placement;
  group.last_change_ns = MonotonicNs();
  // A dedicated worker's core is its own: the rest of snapd moves off it.
  std::vector<int> dedicated;
  for (const auto& [name, g] : groups_) {
    if (g.policy.mode != SchedulingMode::kDedicated) continue;
    for (const auto& w : g.workers) {
      if (w->core() >= 0) dedicated.push_back(w->core());
    }
  }
  Worker::ReserveCores(dedicated);
}

int64_t Scheduler::Tick() {
  int64_t now = MonotonicNs();
  for (auto& slot : engines_) {
    uint64_t busy = slot->engine->stats().busy_ns.Get();
    uint64_t frames = slot->engine->stats().frames.Get();
    if (slot->sampled_at_ns != 0 && now > slot->sampled_at_ns) {
      const double elapsed_ns = now - slot->sampled_at_ns;
      slot->busy = std::min(1.0, double(busy - slot->sampled_busy_ns) / elapsed_ns);
      slot->frames_per_s = double(frames - slot->sampled_frames) * 1e9 / elapsed_ns;
    }
    slot->sampled_busy_ns = busy;
    slot->sampled_frames = frames;
    slot->sampled_at_ns = now;
    const int64_t delay = slot->engine->QueueingDelayNs(now);
    if (slot->delays.size() < EngineSlot::kDelaySamples) {
      slot->delays.push_back(delay);
    } else {
      slot->delays[slot->next_delay] = delay;
      slot->next_delay = (slot->next_delay + 1) % EngineSlot::kDelaySamples;
    }
  }
  bool compacting_with_traffic = false;
  for (auto& [name, group] : groups_) {
    if (group.policy.mode != SchedulingMode::kCompacting) continue;
    std::vector<EngineLoad> loads = LoadsOf(group);
    for (const EngineLoad& e : loads) {
      if (e.queueing_delay_ns > group.policy.slo_ns) group.last_overload_ns = now;
    }
    for (const auto& slot : engines_) {
      compacting_with_traffic |= slot->config.group() == name && slot->frames_per_s > 0;
    }
    absl::StatusOr<Placement> next =
        Rebalance(loads, group.policy, group.placement, now - group.last_change_ns,
                  group.last_overload_ns == 0 ? std::numeric_limits<int64_t>::max()
                                              : now - group.last_overload_ns);
    if (!next.ok() || *next == group.placement) continue;
    size_t before = group.placement.workers.size();
    ApplyPlacement(group, *next);
    size_t after = group.placement.workers.size();
    if (after > before) ++group.scale_outs;
    if (after < before) ++group.scale_ins;
    group.last_rebalance_us = (MonotonicNs() - now) / 1000;
    LOG(INFO) << "group " << name << " rebalanced: " << before << " -> " << after
              << " worker(s) in " << group.last_rebalance_us << " us";
    Note("rebalance", absl::StrCat("group ", name),
         absl::StrCat(before, " -> ", after, " worker(s) in ", group.last_rebalance_us, " us"));
  }
  // A compacting group with traffic is looked at every kRebalanceNs; otherwise only the loads
  // need samples, five a second (an idle compacting group has nothing to scale in sooner, and an
  // overload wakes the main thread at once).
  return MonotonicNs() + (compacting_with_traffic ? kRebalanceNs : kIdleSampleNs);
}

absl::Status Scheduler::CreateEngine(config::Engine e) {
  if (e.name().empty()) return absl::InvalidArgumentError("name: must not be empty");
  if (Find(e.name()) != nullptr) {
    return absl::AlreadyExistsError(absl::StrCat("an engine named '", e.name(), "' exists"));
  }
  if (e.group().empty()) e.set_group(kDefaultGroup);
  auto group = groups_.find(e.group());
  if (group == groups_.end()) {
    return absl::InvalidArgumentError(absl::StrCat("group: no group named '", e.group(), "'"));
  }
  auto slot = AddEngine(e);
  if (!slot.ok()) return slot.status();
  absl::Status status = Replace(group->second);
  if (!status.ok()) {  // e.g. a dedicated group without a core for it: undo
    engines_.pop_back();
    return status;
  }
  LOG(INFO) << "engine " << e.name() << " (" << e.kind() << ") created in group " << e.group();
  return absl::OkStatus();
}

absl::Status Scheduler::DestroyEngine(const std::string& name) {
  auto it = std::find_if(engines_.begin(), engines_.end(),
                         [&](const auto& s) { return s->config.name() == name; });
  if (it == engines_.end()) {
    return absl::NotFoundError(absl::StrCat("no engine named '", name, "'"));
  }
  EngineSlot& slot = **it;
  if (slot.polled) slot.worker->RemoveEngine(slot.engine.get());
  std::string group = slot.config.group();
  engines_.erase(it);
  (void)Replace(groups_.at(group));  // fewer engines always fit
  LOG(INFO) << "engine " << name << " destroyed";
  return absl::OkStatus();
}

absl::Status Scheduler::SetGroup(const std::string& name, const std::optional<std::string>& mode,
                                 const std::optional<std::vector<int>>& cores,
                                 const std::optional<int64_t>& slo_ns) {
  if (name.empty()) return absl::InvalidArgumentError("name: must not be empty");
  auto existing = groups_.find(name);
  config::Group cfg;
  if (existing != groups_.end()) {
    cfg = existing->second.config;
  } else {
    cfg.set_name(name);
  }
  if (mode) cfg.set_mode(*mode);
  if (cores) {
    cfg.clear_cores();
    for (int c : *cores) cfg.add_cores(c);
  }
  if (slo_ns) {
    if (*slo_ns <= 0) return absl::InvalidArgumentError("slo_ns: must be positive");
    cfg.set_slo_us(static_cast<uint32_t>(std::max<int64_t>(1, *slo_ns / 1000)));
  }
  absl::Status status = CheckGroup(&cfg, "");
  if (!status.ok()) return status;
  if (existing == groups_.end()) {
    AddGroup(cfg);
    LOG(INFO) << "group " << name << " created: " << cfg.mode();
    Note("mode", absl::StrCat("group ", name), absl::StrCat("created: ", cfg.mode()));
    return absl::OkStatus();
  }
  Group& group = existing->second;
  const GroupPolicy policy = PolicyOf(cfg);
  // Check the new policy can place the engines before anything changes.
  absl::StatusOr<Placement> placement = Place(LoadsOf(group), policy);
  if (!placement.ok()) return placement.status();
  group.config = cfg;
  group.policy = policy;
  ApplyPlacement(group, *placement);
  LOG(INFO) << "group " << name << " is now " << cfg.mode() << " on "
            << group.placement.workers.size() << " worker(s)";
  Note("mode", absl::StrCat("group ", name),
       absl::StrCat(cfg.mode(), " on ", group.placement.workers.size(), " worker(s), SLO ",
                    cfg.slo_us(), " us"));
  return absl::OkStatus();
}

std::vector<GroupView> Scheduler::Groups() const {
  std::vector<GroupView> out;
  for (const auto& [name, group] : groups_) {
    out.push_back({&group.config, group.workers.size(), group.scale_outs, group.scale_ins,
                   group.last_change_ns, group.last_rebalance_us});
  }
  return out;
}

std::vector<const config::Group*> Scheduler::GroupConfigs() const {
  std::vector<const config::Group*> out;
  for (const auto& [name, group] : groups_) out.push_back(&group.config);
  return out;
}

void Scheduler::ForEachWorker(const std::function<void(Worker&)>& fn) const {
  for (const auto& [name, group] : groups_) {
    for (const auto& worker : group.workers) fn(*worker);
  }
}

int64_t Scheduler::Stop(EngineSlot& slot) {
  const int64_t stopped =
      slot.polled ? slot.worker->RemoveEngine(slot.engine.get()) : MonotonicNs();
  slot.polled = false;
  return stopped;
}

void Scheduler::Resume(EngineSlot& slot) {
  slot.polled_since_ns = slot.worker->AddEngine(slot.engine.get());
  slot.polled = true;
}

}  // namespace snapd
