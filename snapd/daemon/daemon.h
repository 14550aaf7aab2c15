// Daemon: snapd's process. It owns the NICs, the engines, the workers that run them and the memif
// server apps attach to, and runs the control loop on the main thread: app attach and detach,
// dropping apps that break the protocol, periodic stats, and an orderly stop on SIGTERM.
//
// Threads: Start, Run and the destructor run on the main thread; Stop may be called from any.
#ifndef SNAPD_SNAPD_DAEMON_DAEMON_H_
#define SNAPD_SNAPD_DAEMON_DAEMON_H_

#include <signal.h>

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "snapd/daemon/placement.h"
#include "control/proto/snapd.pb.h"
#include "engines/engine.h"
#include "ipc/server.h"
#include "base/unique_fd.h"
#include "snapd/daemon/config.pb.h"
#include "snapd/daemon/cursor_journal.h"
#include "snapd/daemon/dpdk.h"
#include "base/log_limiter.h"
#include "snapd/daemon/worker.h"

namespace snapd {
namespace upgrade::wire {
class Brownout;
class MoveEngine;
}  // namespace upgrade::wire

// The interface name snapd sends an app in memif's connected message: "snap/<12 hex digits of
// MAC>/<8 hex digits of IPv4, network order>". libsnap reads the app's addresses from it.
std::string AppConnectedName(uint64_t mac, uint32_t ipv4);

inline constexpr char kSnapdVersion[] = "0.3.0";
// "snapd 0.3.0 (/usr/sbin/snapd, written 2026-11-26 14:00:00 UTC)": which binary runs (upgrade
// reports); BinaryIdentity() is the part in parentheses (snapctl info).
std::string BuildString();
std::string BinaryIdentity();

// SIGTERM, SIGINT and SIGUSR1 reach the daemon through a signalfd; they must be blocked before any
// thread starts (DPDK's and the workers inherit the mask), so main() calls this first.
sigset_t DaemonSignals();
void BlockDaemonSignals();

class Daemon {
 public:
  // Brings everything up from a completed config (CompleteConfig): the memif socket first (so a
  // second snapd fails fast, before DPDK starts), then the EAL, NICs, engines, workers.
  static absl::StatusOr<std::unique_ptr<Daemon>> Start(const config::SnapdConfig& config);
  // Stops in order: apps detached, ports removed, workers joined, NICs closed, sockets removed.
  ~Daemon();

  // Serves until SIGTERM or SIGINT (or Stop()). SIGUSR1 logs the stats table.
  void Run();
  void Stop();

  // A human-readable table of every engine, port and NIC counter. Main thread.
  std::string StatsText();

  // Runs `fn` on the main thread, between control events, and returns when it has run. Any thread
  // but the main one (the control plane's RPC threads); UNAVAILABLE once the daemon stops.
  absl::Status RunOnMain(const std::function<void()>& fn);
  // From now on RunOnMain refuses new work; work already queued runs now. Main thread, after Run
  // and before the control plane's RPC threads are stopped.
  void StopServingTasks();
  // Adds `fd` to the main loop; `on_readable` runs on the main thread whenever it is readable.
  // Main thread, before Run.
  void Watch(int fd, std::function<void()> on_readable);

  // Control operations, main thread only. Errors name the field (INVALID_ARGUMENT), or say
  // NOT_FOUND, ALREADY_EXISTS, FAILED_PRECONDITION; a failed operation changes nothing.
  absl::Status AddApp(config::App app);
  absl::Status RemoveApp(uint32_t id);
  absl::Status CreateEngine(config::Engine engine);
  absl::Status DestroyEngine(const std::string& name);
  // Creates or changes an engine group; engines move live. Unset fields keep their values.
  absl::Status SetGroup(const std::string& name, const std::optional<std::string>& mode,
                        const std::optional<std::vector<int>>& cores,
                        const std::optional<int64_t>& slo_ns);
  std::vector<v1::Group> Groups() const;

  // Upgrade, old side (snapd/takeover.cc): starts `binary` as the new snapd and moves everything
  // to it, engine by engine. Main thread (the RPC runs it there). On success the daemon has handed
  // everything over and its main loop ends; on failure it has taken back what moved and goes on
  // serving, and the error says in which phase and why. It holds the main thread throughout
  // (answering read-only RPCs while it waits: WaitServing), so it is never re-entered; the RPC
  // refuses a second upgrade before it reaches here.
  absl::StatusOr<v1::UpgradeReport> Upgrade(const std::string& binary,
                                            const std::vector<std::string>& extra_args,
                                            const std::vector<std::string>& order = {});
  // Upgrade, new side: a daemon built from the old snapd at the other end of `channel`.
  static absl::StatusOr<std::unique_ptr<Daemon>> Takeover(UniqueFd channel);
  // The control listener: main gives it to the daemon (an upgrade passes it on); a daemon built by
  // Takeover hands out the one it received.
  void set_control_listener(int fd) { control_listener_fd_ = fd; }
  UniqueFd TakeControlListener() { return std::move(adopted_control_listener_); }
  // True once an upgrade handed everything to a new snapd: nothing may be removed on exit.
  bool handed_over() const { return handed_over_; }
  // Main thread: an upgrade runs (Upgrade serves read-only RPCs while it waits for the new snapd).
  bool upgrading() const { return upgrading_; }
  // Everything an operator can read: engines, ports, NICs, workers, app counters.
  v1::Stats Snapshot();
  std::vector<v1::App> Apps() const;
  v1::DaemonInfo Info() const;
  const config::SnapdConfig& config() const { return config_; }

 private:
  struct EngineSlot {
    config::Engine config;
    // New side of an upgrade, once the engine moved: journals its app rings' cursors until the
    // old snapd let go. Declared before `engine`, whose ports untrack themselves as they go.
    std::unique_ptr<CursorJournal> journal;
    std::unique_ptr<Engine> engine;
    Worker* worker = nullptr;     // the worker it runs on; owned by the engine's group
    bool polled = false;          // `worker` polls it now (else the main thread may touch it)
    int64_t polled_since_ns = 0;  // when `worker` took it (MonotonicNs, on the worker)
    bool ready = true;            // placed by its group (a takeover holds engines back until moved)
    // The rebalancer's last sample of the engine's busy time, and the load it computed.
    uint64_t sampled_busy_ns = 0;
    uint64_t sampled_frames = 0;
    int64_t sampled_at_ns = 0;
    double busy = 0;
    double frames_per_s = 0;
    std::vector<int64_t> delays;  // the last kDelaySamples queueing delays, a ring
    size_t next_delay = 0;
  };
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
  struct AppInfo {
    config::App config;
    uint64_t mac = 0;
    uint32_t ipv4 = 0;
  };

  Daemon() = default;
  absl::Status Init();
  void OnAppConnected(memif::Connection& conn);
  void OnAppDisconnected(memif::Connection& conn, absl::string_view reason);
  EngineSlot* FindEngine(const std::string& name);
  // Creates the engine `e` describes and appends its slot to engines_ (not yet polled).
  absl::StatusOr<EngineSlot*> NewEngineSlot(const config::Engine& e);
  // Runs fn on the engine's thread if a worker polls it, else here.
  void OnEngine(EngineSlot& slot, const std::function<void()>& fn);
  // Opens the configured NICs and attaches their queues to their engines; CloseNics detaches and
  // closes them.
  absl::Status OpenNics();
  void CloseNics();
  // One NIC of the config, by index (nics_[index]).
  absl::Status OpenNic(int index);
  // Closes NIC `index` and removes its queue ports from their engines, saving their counters in
  // *port_counters when given.
  void CloseNic(int index, std::vector<engines::PortCounters>* port_counters = nullptr);
  // Adds saved counters to the ports of those names, in whichever engine they are.
  void AddPortCounters(const std::vector<engines::PortCounters>& saved);
  // Registers a checked app interface with the memif server.
  absl::Status RegisterApp(const config::App& app);
  void RunTasks();
  // The parts of Init after the config: shared by Start and Takeover.
  memif::ServerOptions MemifOptions() const;
  absl::Status InitMemif(std::unique_ptr<memif::MemifServer> server);
  absl::Status InitEngines();
  void InitLoopFds();
  // The configuration as it stands now (apps, engines and groups as RPCs left them).
  config::SnapdConfig CurrentConfig() const;
  // NICs the old side of an upgrade closed for the new one to open (devices that cannot be open
  // in two processes), with their counters and their queue ports' counters.
  struct ClosedNics {
    std::vector<int> indices;
    std::map<int, NicStats> stats;
    std::vector<engines::PortCounters> ports;
  };
  // Old side: gives back to the workers every engine that stopped for an upgrade that failed,
  // completing first the batch the new snapd committed in `journal` but may not have published,
  // and reopens the NICs it closed, their counters continuing.
  void TakeBack(const std::vector<EngineSlot*>& stopped, const ClosedNics& closed,
                const JournalMemory* journal);
  // Old side of an upgrade: waits until `fd` is readable or `deadline` passes, serving meanwhile
  // what the main loop would: new control connections and queued RPCs (those that would change
  // snapd are refused while upgrading_). True when `fd` is readable.
  bool WaitServing(int fd, absl::Time deadline);
  // New side of an upgrade: Takeover's steps; *phase says where it failed (sent to the old snapd).
  static absl::StatusOr<std::unique_ptr<Daemon>> TakeoverSteps(int channel, std::string* phase);
  // Old side of an upgrade, its steps (takeover.cc): the engines in the order they move (those
  // named first); the brownout message and its fds (the cursor journal is made here); the NICs'
  // part of a move (closing those the new snapd cannot open beside us, the counters of those we
  // stop using); notes on taps the new snapd had to create anew.
  absl::StatusOr<std::vector<EngineSlot*>> MoveOrder(const std::vector<std::string>& order);
  absl::Status PrepareBrownout(upgrade::wire::Brownout* b, std::vector<UniqueFd>* fds,
                               std::optional<JournalMemory>* journal);
  void HandOverNics(const std::vector<int>& deferred, ClosedNics* closed,
                    std::vector<int>* nics_left, upgrade::wire::MoveEngine* move);
  void NoteMovedTaps(v1::UpgradeReport* report) const;
  // Lets go of everything without a word: no app is told, no socket file removed, no NIC stopped,
  // no EAL cleanup; another snapd serves them (the new one after an upgrade, the old one after a
  // failed takeover). Main thread.
  void Withdraw();
  // New side of an upgrade, its steps: takes in one engine (its NICs, counters, state, rings and
  // journal) and starts polling it, returning when its worker took it; discards the frames our
  // packet sockets copied beside the old snapd's; journals the engine's app rings; stops
  // journaling once the old snapd let go.
  absl::StatusOr<int64_t> MoveIn(const upgrade::wire::MoveEngine& m,
                                 const std::vector<int>& deferred_nics);
  void DiscardNicCopies(EngineSlot& slot, const std::vector<int>& deferred_nics);
  absl::Status StartJournal(EngineSlot& slot, uint32_t area_index);
  void StopJournals();
  // The index of an engine in engines_ (its area of an upgrade's cursor journal).
  uint32_t EngineIndex(const EngineSlot* slot) const;
  // Moves the group's engines onto the workers `placement` asks for (creating, re-pinning and
  // dropping workers as needed), each move at a batch boundary.
  void ApplyPlacement(Group& group, const Placement& placement);
  // Places the group's engines anew from their current loads (after engines come or go, or the
  // policy changes).
  absl::Status Replace(Group& group);
  // Samples every engine's load and lets compacting groups rebalance. Main thread, every few ms.
  void RebalanceTick();
  std::vector<EngineLoad> LoadsOf(const Group& group);

  config::SnapdConfig config_;
  std::unique_ptr<memif::MemifServer> memif_;
  LogLimiter app_log_{20};                  // attach and detach lines: main thread
  std::vector<std::unique_ptr<Nic>> nics_;  // by config index; null while closed
  std::vector<std::unique_ptr<EngineSlot>> engines_;
  std::map<std::string, Group> groups_;
  std::map<uint32_t, AppInfo> apps_;  // by memif interface id
  UniqueFd signals_;
  UniqueFd wake_;
  UniqueFd tasks_fd_;     // readable when tasks_ has work
  UniqueFd overload_fd_;  // written by workers of compacting groups when an engine misses its SLO
  std::mutex tasks_mu_;
  std::vector<std::function<void()>> tasks_;  // guarded by tasks_mu_
  bool stopping_ = false;                     // guarded by tasks_mu_
  std::map<int, std::function<void()>> watched_;
  bool eal_started_ = false;
  bool ready_ = false;
  bool taking_over_ = false;  // new side of an upgrade: workers are kept until every engine moved
  bool handed_over_ = false;
  bool upgrading_ = false;
  int control_listener_fd_ = -1;
  UniqueFd adopted_control_listener_;
  std::optional<JournalMemory> journal_;  // new side of an upgrade, until the old snapd let go
  int64_t started_ns_ = 0;  // Init finished: the daemon served, and says so when it stops
  // The service across live upgrades (DaemonInfo): since when, how many upgrades, and from whom.
  int64_t serving_since_unix_ms_ = 0;
  uint32_t upgrades_ = 0;
  int32_t previous_pid_ = 0;
};

}  // namespace snapd

#endif  // SNAPD_SNAPD_DAEMON_DAEMON_H_
