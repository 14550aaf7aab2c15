// Daemon: snapd's process, composed of its parts: the main loop (main_loop.h), the scheduler that
// owns the engines and their workers (scheduler.h), the NICs (nic.h; host_nics.h opens them), the
// memif server apps attach to (ipc/server.h) and the registry of app interfaces. It wires them
// together: an app that attaches becomes a port of its engine, a NIC's queues become ports of
// theirs; and it stops them in order on SIGTERM.
//
// Threads: Start, Run and the destructor run on the main thread; Stop may be called from any.
#ifndef SNAPD_SNAPD_DAEMON_DAEMON_H_
#define SNAPD_SNAPD_DAEMON_DAEMON_H_

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "base/log_limiter.h"
#include "base/unique_fd.h"
#include "engines/engine.h"
#include "ipc/server.h"
#include "snapd/daemon/capture.h"
#include "snapd/daemon/config.pb.h"
#include "snapd/daemon/host_nics.h"
#include "snapd/daemon/main_loop.h"
#include "snapd/daemon/scheduler.h"
#include "snapd/daemon/upgrade_host.h"
#include "snapd/daemon/worker.h"

namespace snapd {

// The interface name snapd sends an app in memif's connected message: "snap/<12 hex digits of
// MAC>/<8 hex digits of IPv4, network order>". libsnap reads the app's addresses from it.
std::string AppConnectedName(uint64_t mac, uint32_t ipv4);

inline constexpr char kSnapdVersion[] = "0.3.0";
// "snapd 0.3.0 (/usr/sbin/snapd, written 2026-11-26 14:00:00 UTC)": which binary runs (upgrade
// reports); BinaryIdentity() is the part in parentheses (snapctl info).
std::string BuildString();
std::string BinaryIdentity();

// Whoever keeps the daemon's state outside its process (upgrade/crash_store.h) hears of each
// change. Main thread.
class StateObserver {
 public:
  virtual ~StateObserver() = default;
  // An app's connection became a port of its engine.
  virtual void AppAttached(uint32_t id) = 0;
  // An app's connection goes away; its fds close after this returns.
  virtual void AppDetached(uint32_t id) = 0;
  // Apps, engines or groups changed (CurrentConfig).
  virtual void ConfigChanged() = 0;
};

class Daemon : public UpgradeHost {
 public:
  // Brings everything up from a completed config (CompleteConfig): the memif socket first (so a
  // second snapd fails fast, before DPDK starts), then the EAL, engines, NICs, workers.
  // NICs come from `nics` (DPDK's unless a test gives fakes).
  static absl::StatusOr<std::unique_ptr<Daemon>> Start(const config::SnapdConfig& config,
                                                       NicDriver& nics = HostNicDriver());
  // The same after a crash (upgrade/crash_store.h), on the memif listener the dead snapd left (no
  // bind, the socket file stays; invalid: bind anew), adopting its apps' connections
  // (memif().AdoptConnection) before any engine is polled, so that no app's frames find its
  // engine before their destination's port. *adopted gets each app's id and outcome.
  // `prepare` is called for each engine as it is made, before any is polled (the journals the dead
  // snapd's engines left: upgrade/engine_journals.h).
  using Adopted = std::vector<std::pair<uint32_t, absl::Status>>;
  using EnginePrep = std::function<void(const std::string& name, Engine& engine)>;
  static absl::StatusOr<std::unique_ptr<Daemon>> Restart(
      const config::SnapdConfig& config, UniqueFd memif_listener,
      std::vector<memif::ConnectionHandoff> connections, Adopted* adopted,
      const EnginePrep& prepare = {}, NicDriver& nics = HostNicDriver());
  // Stops in order: apps detached, ports removed, workers joined, NICs closed, sockets removed.
  ~Daemon();

  // The main thread's loop (snapd/daemon/main_loop.h): Run serves until SIGTERM or SIGINT or
  // Stop(); the control plane posts its work with RunOnMain and watches its listener with Watch.
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
  absl::Status CreateEngine(config::Engine engine) {
    return Changed(scheduler_->CreateEngine(engine));
  }
  absl::Status DestroyEngine(const std::string& name);
  // Creates or changes an engine group; engines move live. Unset fields keep their values.
  // Captures (snapd/daemon/capture.h). Starts `spec` on its ports, tapping each on its engine's
  // thread; NOT_FOUND names a port no engine has. *descriptions: what each port is, for its
  // pcapng interface. At most kMaxCaptures at once (RESOURCE_EXHAUSTED).
  // `filter`: spec.filter compiled (off this thread); nullptr for none.
  absl::StatusOr<std::shared_ptr<Capture>> StartCapture(CaptureSpec spec,
                                                        std::unique_ptr<CaptureFilter> filter,
                                                        std::vector<std::string>* descriptions);
  // Takes the capture's taps off; after it no engine thread touches the capture.
  void StopCapture(const std::shared_ptr<Capture>& capture);
  // The ports of NIC `nic` (its queues: "nic0/q0", ...), for a capture of a whole NIC.
  std::vector<std::string> NicPorts(const std::string& nic);
  // The tap a running capture has for the port of this name (attached or not yet); nullptr: none.
  PortCapture* CaptureOf(const std::string& port) const;
  // Every running capture (a live upgrade carries them on).
  const std::vector<std::shared_ptr<Capture>>& captures() const override { return captures_; }
  // A capture a live upgrade carried here, the old snapd's going on: its ports are tapped as
  // their engines move in (StartEngine) and as its apps attach, and it waits kResumeWithinNs for
  // snapctl to take it up (ResumeCapture) from when this snapd serves; else it ends. The limits
  // are StartCapture's.
  absl::Status AdoptCapture(CaptureSpec spec, std::unique_ptr<CaptureFilter> filter, uint64_t id,
                            int64_t started_unix_ns);
  // The carried capture `id`, for its stream to go on from here (once), after `written` frames
  // and the old snapd's `prior` figures (Capture::Resume). NOT_FOUND: none waits here under that
  // id; INVALID_ARGUMENT: figures that do not add up (the capture waits on).
  absl::StatusOr<std::shared_ptr<Capture>> ResumeCapture(uint64_t id, uint64_t written,
                                                         std::vector<PortTotals> prior);
  // Capture streams running (the Capture RPC's): an old snapd that handed over waits for them to
  // send their last frames and the resume id before its control plane stops. Any thread.
  std::atomic<int>& capture_streams() { return capture_streams_; }
  static constexpr int64_t kResumeWithinNs = int64_t{30} * 1000000000;
  static constexpr size_t kMaxCaptures = 4;
  // The rings of all captures together, at most (each port has its own).
  static constexpr size_t kMaxCaptureBytes = size_t{256} << 20;

  absl::Status SetGroup(const std::string& name, const std::optional<std::string>& mode,
                        const std::optional<std::vector<int>>& cores,
                        const std::optional<int64_t>& slo_ns) {
    return Changed(scheduler_->SetGroup(name, mode, cores, slo_ns));
  }

  // What the control plane reads (control/wire.h turns it into the API's messages). Main thread.
  struct AppInfo {
    config::App config;
    uint64_t mac = 0;
    uint32_t ipv4 = 0;
  };
  Scheduler& scheduler() { return *scheduler_; }
  const std::vector<std::unique_ptr<Nic>>& nics() const { return nics_; }  // null while closed
  const memif::MemifServer& memif() const { return *memif_; }
  const std::map<uint32_t, AppInfo>& apps() const { return apps_; }  // by memif interface id
  int64_t started_ns() const { return started_ns_; }  // when it began serving (MonotonicNs)
  const config::SnapdConfig& config() const { return config_; }

  // Told of every change from now on (nullptr: no one). Main thread.
  void set_state_observer(StateObserver* observer) { observer_ = observer; }

  // The control listener: main gives it to the daemon, which hands it over in an upgrade.
  void set_control_listener(int fd) { control_listener_fd_ = fd; }
  // The same for the metrics endpoint (nullptr: none).
  void set_metrics_listener(HandedListener* l) { metrics_listener_ = l; }
  // Main thread: an upgrade runs (its old side serves read-only RPCs while it waits).
  bool upgrading() const { return upgrading_; }

  // New side of an upgrade (upgrade/new_snapd.h): a daemon built from the old snapd's config,
  // serving the memif listener it handed over, with its engines built and their workers made but
  // none polled (each moves in: StartEngine), and the NICs open that can be open beside the old
  // snapd's (the others, and all with `defer_nics`, are listed in *deferred_nics and opened as
  // engines move). Apps' connections are adopted through memif().
  static absl::StatusOr<std::unique_ptr<Daemon>> Adopt(const config::SnapdConfig& config,
                                                       UniqueFd memif_listener, bool defer_nics,
                                                       std::vector<int>* deferred_nics,
                                                       NicDriver& nics = HostNicDriver());
  // Every engine moved in: workers no engine needs go.
  absl::Status FinishUpgrade();
  // The old snapd let go: the daemon serves on its own, carrying the service's history on.
  void BeginServing(const ServiceHistory& history);
  // The service's lineage as a crash restart found it (upgrade/crash_store.h). Main thread.
  void set_history(const ServiceHistory& history) { history_ = history; }

  // UpgradeHost (snapd/daemon/upgrade_host.h): main thread.
  MainLoop& loop() override { return loop_; }
  config::SnapdConfig CurrentConfig() const override;
  const ServiceHistory& history() const override { return history_; }
  memif::MemifServer& memif() override { return *memif_; }
  int control_listener() const override { return control_listener_fd_; }
  HandedListener* metrics_listener() const override { return metrics_listener_; }
  EventLog& events() override { return events_; }
  std::vector<std::string> EngineNames() const override;
  Engine* FindEngine(const std::string& name) override;
  void OnEngine(const std::string& name, const std::function<void()>& fn) override;
  int64_t StopEngine(const std::string& name) override;
  void ResumeEngine(const std::string& name) override;
  absl::StatusOr<int64_t> StartEngine(const std::string& name) override;
  int NicCount() const override { return static_cast<int>(nics_.size()); }
  Nic* nic(int index) override;
  bool NicPolled(int index) override;
  absl::Status OpenNic(int index) override;
  void CloseNic(int index, std::vector<engines::PortCounters>* ports) override;
  void AddPortCounters(const std::vector<engines::PortCounters>& saved) override;
  void Withdraw() override;
  bool handed_over() const override { return handed_over_; }
  void set_upgrading(bool upgrading) override { upgrading_ = upgrading; }

 private:
  explicit Daemon(NicDriver& driver);
  // Listens on memif_listener if one is given, else binds the configured socket; adopts
  // `connections` before placing the engines.
  absl::Status Init(UniqueFd memif_listener, std::vector<memif::ConnectionHandoff> connections,
                    Adopted* adopted, const EnginePrep& prepare);
  // Tells the observer the configuration changed, when `status` says it did; returns `status`.
  absl::Status Changed(absl::Status status) {
    if (status.ok() && observer_ != nullptr) observer_->ConfigChanged();
    return status;
  }
  // The periodic work after each wake-up of the main loop: apps' connections, dropping apps that
  // broke the protocol, the scheduler's samples, the stats log. Returns when to come back.
  int64_t Tick();
  // Notes in the event log each engine that dropped more than drop_event_per_s a second since
  // the last look. Main thread, once a second.
  void NoteDrops(int64_t now);
  std::string StatsText() const { return stats_text_ ? stats_text_() : std::string(); }
  void OnAppConnected(memif::Connection& conn);
  void OnAppDisconnected(memif::Connection& conn, absl::string_view reason);
  // Opens the configured NICs and attaches their queues to their engines.
  absl::Status OpenNics();
  // Registers a checked app interface with the memif server.
  absl::Status RegisterApp(const config::App& app);
  // The parts of Init after the config: shared by Start and Adopt.
  memif::ServerOptions MemifOptions() const;
  absl::Status InitMemif(std::unique_ptr<memif::MemifServer> server);
  absl::Status InitEngines();
  // The engine `name`; nullptr if none.
  EngineSlot* Slot(const std::string& name) { return scheduler_->Find(name); }

  NicDriver& driver_;
  config::SnapdConfig config_;
  MainLoop loop_;
  UniqueFd overload_fd_;  // written by workers of compacting groups when an engine misses its SLO
  // Running captures. Before the engines (and their ports, which may point to a capture's taps):
  // destroyed after them.
  std::vector<std::shared_ptr<Capture>> captures_;
  // Carried captures not resumed yet: their ids, and until when they wait (MonotonicNs; the
  // clock starts when this snapd serves).
  std::map<uint64_t, int64_t> awaiting_resume_;
  std::atomic<int> capture_streams_{0};
  // RESOURCE_EXHAUSTED if one more capture, or `spec`'s rings, would pass the limits.
  absl::Status CaptureRoomFor(const CaptureSpec& spec) const;
  // Ends the carried captures snapctl did not take up in time.
  void ExpireCarriedCaptures(int64_t now);
  std::unique_ptr<memif::MemifServer> memif_;
  LogLimiter app_log_{20};  // attach and detach lines: main thread
  EventLog events_;
  std::vector<std::unique_ptr<Nic>> nics_;  // by config index; null while closed
  std::unique_ptr<Scheduler> scheduler_;
  std::map<uint32_t, AppInfo> apps_;
  std::function<std::string()> stats_text_;
  int64_t next_tick_ns_ = 0;
  int64_t next_stats_ns_ = 0;
  int64_t next_drop_check_ns_ = 0;
  std::map<std::string, uint64_t> drops_seen_;  // each engine's drops at the last look
  int64_t drops_seen_ns_ = 0;
  bool driver_started_ = false;
  bool ready_ = false;
  bool handed_over_ = false;
  bool upgrading_ = false;
  int control_listener_fd_ = -1;
  HandedListener* metrics_listener_ = nullptr;
  StateObserver* observer_ = nullptr;
  int64_t started_ns_ = 0;  // Init finished: the daemon served, and says so when it stops
  ServiceHistory history_;
};

}  // namespace snapd

#endif  // SNAPD_SNAPD_DAEMON_DAEMON_H_
