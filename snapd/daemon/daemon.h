// Daemon: snapd's process, composed of its parts: the main loop (main_loop.h), the scheduler that
// owns the engines and their workers (scheduler.h), the NICs (dpdk.h), the memif server apps
// attach to (ipc/server.h) and the registry of app interfaces. It wires them together: an app
// that attaches becomes a port of its engine, a NIC's queues become ports of theirs; and it stops
// them in order on SIGTERM.
//
// Threads: Start, Run and the destructor run on the main thread; Stop may be called from any.
#ifndef SNAPD_SNAPD_DAEMON_DAEMON_H_
#define SNAPD_SNAPD_DAEMON_DAEMON_H_

#include <signal.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/log_limiter.h"
#include "base/unique_fd.h"
#include "control/proto/snapd.pb.h"
#include "engines/engine.h"
#include "ipc/server.h"
#include "snapd/daemon/config.pb.h"
#include "snapd/daemon/cursor_journal.h"
#include "snapd/daemon/dpdk.h"
#include "snapd/daemon/main_loop.h"
#include "snapd/daemon/scheduler.h"
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

class Daemon {
 public:
  // Brings everything up from a completed config (CompleteConfig): the memif socket first (so a
  // second snapd fails fast, before DPDK starts), then the EAL, engines, NICs, workers.
  static absl::StatusOr<std::unique_ptr<Daemon>> Start(const config::SnapdConfig& config);
  // Stops in order: apps detached, ports removed, workers joined, NICs closed, sockets removed.
  ~Daemon();

  // The main thread's loop (snapd/daemon/main_loop.h): Run serves until SIGTERM or SIGINT or
  // Stop(); the control plane posts its work with RunOnMain and watches its listener with Watch.
  MainLoop& loop() { return loop_; }
  void Run() { loop_.Run(); }
  void Stop() { loop_.Stop(); }
  absl::Status RunOnMain(const std::function<void()>& fn) { return loop_.RunOnMain(fn); }
  // The counters table, for SIGUSR1, --stats_interval_s and the exit log: main gives the function
  // that builds it (control/stats_table.h), which reads the daemon on the main thread.
  void set_stats_text(std::function<std::string()> stats_text) {
    stats_text_ = std::move(stats_text);
  }

  // Control operations, main thread only. Errors name the field (INVALID_ARGUMENT), or say
  // NOT_FOUND, ALREADY_EXISTS, FAILED_PRECONDITION; a failed operation changes nothing.
  absl::Status AddApp(config::App app);
  absl::Status RemoveApp(uint32_t id);
  absl::Status CreateEngine(config::Engine engine) { return scheduler_->CreateEngine(engine); }
  absl::Status DestroyEngine(const std::string& name);
  // Creates or changes an engine group; engines move live. Unset fields keep their values.
  absl::Status SetGroup(const std::string& name, const std::optional<std::string>& mode,
                        const std::optional<std::vector<int>>& cores,
                        const std::optional<int64_t>& slo_ns) {
    return scheduler_->SetGroup(name, mode, cores, slo_ns);
  }

  // What the control plane reads (control/wire.h turns it into the API's messages). Main thread.
  struct AppInfo {
    config::App config;
    uint64_t mac = 0;
    uint32_t ipv4 = 0;
  };
  // The service across live upgrades: since when it serves, how many upgrades, from which pid.
  struct History {
    int64_t serving_since_unix_ms = 0;
    uint32_t upgrades = 0;
    int32_t previous_pid = 0;
  };
  Scheduler& scheduler() { return *scheduler_; }
  const std::vector<std::unique_ptr<Nic>>& nics() const { return nics_; }  // null while closed
  const memif::MemifServer& memif() const { return *memif_; }
  const std::map<uint32_t, AppInfo>& apps() const { return apps_; }  // by memif interface id
  const History& history() const { return history_; }
  int64_t started_ns() const { return started_ns_; }  // when it began serving (MonotonicNs)
  const config::SnapdConfig& config() const { return config_; }

  // Upgrade, old side (takeover.cc): starts `binary` as the new snapd and moves everything
  // to it, engine by engine. Main thread (the RPC runs it there). On success the daemon has handed
  // everything over and its main loop ends; on failure it has taken back what moved and goes on
  // serving, and the error says in which phase and why. It holds the main thread throughout
  // (answering read-only RPCs while it waits: MainLoop::WaitReadable), so it is never re-entered;
  // the RPC refuses a second upgrade before it reaches here.
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

 private:
  Daemon();
  absl::Status Init();
  // The periodic work after each wake-up of the main loop: apps' connections, dropping apps that
  // broke the protocol, the scheduler's samples, the stats log. Returns when to come back.
  int64_t Tick();
  std::string StatsText() const { return stats_text_ ? stats_text_() : std::string(); }
  void OnAppConnected(memif::Connection& conn);
  void OnAppDisconnected(memif::Connection& conn, absl::string_view reason);
  // Opens the configured NICs and attaches their queues to their engines.
  absl::Status OpenNics();
  // One NIC of the config, by index (nics_[index]).
  absl::Status OpenNic(int index);
  // Closes NIC `index` and removes its queue ports from their engines, saving their counters in
  // *port_counters when given.
  void CloseNic(int index, std::vector<engines::PortCounters>* port_counters = nullptr);
  // Adds saved counters to the ports of those names, in whichever engine they are.
  void AddPortCounters(const std::vector<engines::PortCounters>& saved);
  // Registers a checked app interface with the memif server.
  absl::Status RegisterApp(const config::App& app);
  // The parts of Init after the config: shared by Start and Takeover.
  memif::ServerOptions MemifOptions() const;
  absl::Status InitMemif(std::unique_ptr<memif::MemifServer> server);
  absl::Status InitEngines();
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
  // The index of an engine (its area of an upgrade's cursor journal).
  uint32_t EngineIndex(const EngineSlot* slot) const;

  config::SnapdConfig config_;
  MainLoop loop_;
  UniqueFd overload_fd_;  // written by workers of compacting groups when an engine misses its SLO
  std::unique_ptr<memif::MemifServer> memif_;
  LogLimiter app_log_{20};                  // attach and detach lines: main thread
  std::vector<std::unique_ptr<Nic>> nics_;  // by config index; null while closed
  // New side of an upgrade: each moved engine's journal of its app rings' cursors, until the old
  // snapd let go. Declared before the scheduler (its engines' ports untrack themselves as they go).
  std::optional<JournalMemory> journal_;
  std::map<const Engine*, std::unique_ptr<CursorJournal>> journals_;
  std::unique_ptr<Scheduler> scheduler_;
  std::map<uint32_t, AppInfo> apps_;
  std::function<std::string()> stats_text_;
  int64_t next_tick_ns_ = 0;
  int64_t next_stats_ns_ = 0;
  bool eal_started_ = false;
  bool ready_ = false;
  bool handed_over_ = false;
  bool upgrading_ = false;
  int control_listener_fd_ = -1;
  UniqueFd adopted_control_listener_;
  int64_t started_ns_ = 0;  // Init finished: the daemon served, and says so when it stops
  History history_;
};

}  // namespace snapd

#endif  // SNAPD_SNAPD_DAEMON_DAEMON_H_
