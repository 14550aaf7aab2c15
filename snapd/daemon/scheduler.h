// Scheduler: where engines run. It owns the engines, their groups and the groups' workers; places
// each group's engines on workers as the group's policy asks (snapd/daemon/placement.h), moves
// them live when the policy or the loads change (at a batch boundary: no frame is lost), and
// samples every engine's load for the rebalancer and the counters.
//
// Threads: main thread only. It needs neither DPDK nor root (scheduler_test.cc).
#ifndef SNAPD_SNAPD_DAEMON_SCHEDULER_H_
#define SNAPD_SNAPD_DAEMON_SCHEDULER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engines/engine.h"
#include "snapd/daemon/config.pb.h"
#include "snapd/daemon/event_log.h"
#include "snapd/daemon/placement.h"
#include "snapd/daemon/worker.h"

namespace snapd {

// A group's policy, from its config: the one place its mode and SLO are read.
GroupPolicy PolicyOf(const config::Group& group);

// One engine and where it runs.
struct EngineSlot {
  config::Engine config;
  std::unique_ptr<Engine> engine;
  Worker* worker = nullptr;     // the worker it runs on; owned by the engine's group
  bool polled = false;          // `worker` polls it now (else the main thread may touch it)
  int64_t polled_since_ns = 0;  // when `worker` took it (MonotonicNs, on the worker)
  bool ready = true;            // placed by its group (an upgrade holds engines back until moved)
  // The last sample of the engine's busy time and frames, and the load computed from it.
  uint64_t sampled_busy_ns = 0;
  uint64_t sampled_frames = 0;
  int64_t sampled_at_ns = 0;
  double busy = 0;
  double frames_per_s = 0;
  // The queueing delay at each of the last kDelaySamples samples, a ring (snapctl top's
  // percentiles): the last 5 s while a compacting group has traffic (a sample every 20 ms), up to
  // the last 50 s otherwise (every 200 ms).
  static constexpr size_t kDelaySamples = 250;
  std::vector<int64_t> delays;
  size_t next_delay = 0;
  // The p-th percentile (0..100) of the sampled delays; 0 before the first sample.
  int64_t DelayPercentile(int p) const;
};

// A group as the counters show it.
struct GroupView {
  const config::Group* config;
  size_t workers;
  uint64_t scale_outs;
  uint64_t scale_ins;
  int64_t last_change_ns;  // 0: never placed
  int64_t last_rebalance_us;
};

class Scheduler {
 public:
  // `overload_fd`: an eventfd that workers of compacting groups write when an engine misses the
  // group's SLO (the daemon then calls Tick at once).
  explicit Scheduler(int overload_fd) : overload_fd_(overload_fd) {}
  // Modes changed and rebalances go to `events` too (nullptr: nowhere). Main thread.
  void set_events(EventLog* events) { events_ = events; }
  // Stops every engine and joins the workers; the engines' ports must be gone first.
  ~Scheduler();

  // Adds a group from a checked config (CheckGroup); no engine placed yet.
  void AddGroup(const config::Group& group);
  // Creates the engine `e` describes (its kind from the registry) in its group, not yet placed.
  absl::StatusOr<EngineSlot*> AddEngine(const config::Engine& e);
  // Places every group's engines (at start). Errors name the group.
  absl::Status PlaceAll();
  // AddEngine and place it; on failure (a dedicated group without a core for it) nothing changed.
  absl::Status CreateEngine(config::Engine e);
  // Stops and destroys an engine; the caller checked it has no port and serves no app.
  absl::Status DestroyEngine(const std::string& name);
  // Creates or changes a group; its engines move live. Unset fields keep their values. Errors
  // name the field; a failed change changes nothing.
  absl::Status SetGroup(const std::string& name, const std::optional<std::string>& mode,
                        const std::optional<std::vector<int>>& cores,
                        const std::optional<int64_t>& slo_ns);

  EngineSlot* Find(const std::string& name);
  const std::vector<std::unique_ptr<EngineSlot>>& engines() const { return engines_; }
  std::vector<GroupView> Groups() const;
  std::vector<const config::Group*> GroupConfigs() const;
  // Every worker of every group.
  void ForEachWorker(const std::function<void(Worker&)>& fn) const;
  // Runs fn on the engine's thread if a worker polls it, else here.
  void OnEngine(EngineSlot& slot, const std::function<void()>& fn);

  // Samples every engine's load and lets compacting groups rebalance. Returns when it wants to
  // run again (MonotonicNs): soon for a compacting group with traffic, else a few times a second.
  int64_t Tick();

  // An upgrade's new side builds every engine before any of them moves in: while holding, each
  // group's placement counts the engines not yet ready (so that a move only adds its engine to
  // the worker made for it) and no worker is dropped.
  void set_holding(bool holding) { holding_ = holding; }
  // Places an engine made ready (an upgrade's move) or every engine again (holding ended).
  absl::Status Replace(const std::string& group);
  absl::Status ReplaceAll();
  // Stops polling the engine at a batch boundary; returns when its worker let go of it
  // (MonotonicNs). Starts polling it again on its worker.
  int64_t Stop(EngineSlot& slot);
  void Resume(EngineSlot& slot);

 private:
  struct Group {
    config::Group config;
    GroupPolicy policy;
    Placement placement;
    std::vector<std::unique_ptr<Worker>> workers;  // workers[i] runs placement.workers[i]
    int64_t last_change_ns = 0;
    int64_t last_overload_ns = 0;  // when an engine of the group last missed the SLO
    int64_t last_rebalance_us = 0;
    uint64_t scale_outs = 0;
    uint64_t scale_ins = 0;
  };
  std::vector<EngineLoad> LoadsOf(const Group& group);
  absl::Status Replace(Group& group);
  // Moves the group's engines onto the workers `placement` asks for (creating, re-pinning and
  // dropping workers as needed), each move at a batch boundary.
  void ApplyPlacement(Group& group, const Placement& placement);

  const int overload_fd_;
  EventLog* events_ = nullptr;
  void Note(const std::string& kind, const std::string& subject, const std::string& message) {
    if (events_ != nullptr) events_->Add(kind, subject, message);
  }
  std::vector<std::unique_ptr<EngineSlot>> engines_;
  std::map<std::string, Group> groups_;
  bool holding_ = false;
};

}  // namespace snapd

#endif  // SNAPD_SNAPD_DAEMON_SCHEDULER_H_
