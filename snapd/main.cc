// snapd: the host networking daemon. See --help, README.md and docs/design.md.
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "base/clock.h"
#include "control/control_server.h"
#include "control/metrics_server.h"
#include "control/stats_table.h"
#include "control/wire.h"
#include "glog/logging.h"
#include "ipc/peer_fd.h"
#include "snapd/daemon/config.h"
#include "snapd/daemon/daemon.h"
#include "snapd/daemon/dpdk.h"
#include "snapd/daemon/service_manager.h"
#include "snapd/daemon/watchdog.h"
#include "snapd/daemon/worker.h"
#include "upgrade/crash_store.h"
#include "upgrade/engine_journals.h"
#include "upgrade/new_snapd.h"
#include "upgrade/protocol.h"

ABSL_FLAG(std::string, config, "",
          "Configuration file (text-format snapd.config.SnapdConfig). Flags below add to it.");
ABSL_FLAG(std::vector<std::string>, nic, {},
          "A NIC, as DPDK device arguments with an optional queue count: DEVARGS[@QUEUES], e.g. "
          "net_af_packet0,iface=veth1@2 or net_tap0 or 0000:03:00.0. Repeatable. Default: "
          "net_null0,no-rx=1 (a virtual NIC that needs nothing).");
ABSL_FLAG(std::vector<std::string>, app, {},
          "Register an app interface: id=N,mac=02:00:00:00:00:01,ip=10.0.0.1[,secret=S][,engine=E]."
          " Repeatable.");
ABSL_FLAG(std::string, run_dir, "",
          "Directory for snapd's sockets (default $XDG_RUNTIME_DIR/snapd, /run/snapd as root).");
ABSL_FLAG(std::string, memif_socket, "",
          "memif socket apps attach to (default RUN_DIR/memif.sock).");
ABSL_FLAG(std::string, control_socket, "",
          "gRPC control socket for snapctl (default RUN_DIR/control.sock; mode 0660).");
ABSL_FLAG(std::string, metrics_address, "",
          "HOST:PORT where GET /metrics serves snapd's counters for Prometheus (default: off).");
ABSL_FLAG(std::string, control_group, "",
          "Group whose members may use the control socket, besides root and snapd's own user.");
ABSL_FLAG(std::string, mode, "",
          "Scheduling mode of the default engine group: dedicated, spreading (the default) or "
          "compacting.");
ABSL_FLAG(std::vector<std::string>, cores, {},
          "Cores the default group's workers are pinned to, e.g. 1 or 0,1 (default: not pinned).");
// Its name is part of the upgrade protocol: every snapd since 0.3.0 starts its successor with it,
// and a downgrade must find it.
ABSL_FLAG(int, takeover_fd, -1,
          "Internal: started by an old snapd to take over from it over this fd (snapctl "
          "upgrade).");
// Testing hooks for the new binary of an upgrade (snapctl upgrade --new_args=...): see
// upgrade::Faults.
ABSL_FLAG(std::string, upgrade_fault, "",
          "Testing: in an upgrade's new snapd, die in this phase (brownout, blackout, half, "
          "publish), refuse the first move (error), or take 300 ms more over each move (slow).");
ABSL_FLAG(int, upgrade_version, 0, "Testing: claim this upgrade protocol version.");
ABSL_FLAG(bool, upgrade_defer_nics, false,
          "Testing: open no NIC beside the old snapd, as with a PCI device that cannot be open in "
          "two processes: each moves in the first blackout.");
ABSL_FLAG(int, watchdog_ms, 100,
          "A worker in one batch for longer than this is reported (log, stalls counter, snapctl "
          "top).");
ABSL_FLAG(int, stats_interval_s, 0,
          "Log a stats table this often (0: at exit only; SIGUSR1: now).");
ABSL_FLAG(bool, fd_store, true,
          "Under a service manager ($NOTIFY_SOCKET), keep what apps' connections are made of in "
          "its file descriptor store (systemd: FileDescriptorStoreMax=), so that a snapd it "
          "restarts after a crash serves them on, unnoticed (docs/operations.md).");
ABSL_FLAG(int, crash_loop_window_ms, 1000,
          "A snapd restarted after a crash that dies again within this long of serving makes the "
          "next restart drop the frames waiting in the apps' rings (docs/operations.md).");

namespace snapd {
namespace {

// --nic and --app repeat, and DPDK device arguments contain commas, so their values are taken
// from argv here, whole, before the flags library (which would split at commas) sees the rest.
std::vector<char*> TakeRepeated(int argc, char** argv, std::vector<std::string>* nics,
                                std::vector<std::string>* apps) {
  std::vector<char*> rest;
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    for (auto [name, out] : {std::pair{"nic", nics}, std::pair{"app", apps}}) {
      for (const std::string& prefix : {std::string("--") + name, std::string("-") + name}) {
        if (a == prefix && i + 1 < argc) {
          out->push_back(argv[++i]);
          a.clear();
        } else if (absl::StartsWith(a, prefix + "=")) {
          out->push_back(a.substr(prefix.size() + 1));
          a.clear();
        }
      }
    }
    if (!a.empty() || argv[i][0] == '\0') rest.push_back(argv[i]);
  }
  return rest;
}

// Apps hand snapd up to ~50 fds each while they attach: the soft limit of 1024 is too few.
void RaiseFdLimit() {
  rlimit lim;
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &lim) != 0) PLOG(WARNING) << "cannot raise RLIMIT_NOFILE";
  }
}

int Fail(const absl::Status& status) {
  fprintf(stderr, "snapd: %s\n", std::string(status.message()).c_str());
  return 2;
}

// How a snapd came to serve: what its fd store holds already.
struct Origin {
  bool took_over = false;             // a live upgrade started it
  bool restarted = false;             // it took its apps back from the fd store after a crash
  std::vector<uint32_t> stored_apps;  // apps whose fds the store holds already
  std::vector<std::string> stale;     // names to remove from the store
  // The engines' journals a crash restart gave them (upgrade/engine_journals.h); else none yet.
  std::unique_ptr<upgrade::EngineJournals> journals;
  UniqueFd metrics_listener;  // the metrics endpoint's socket, handed over by an upgrade
};

// Runs the daemon with its control plane until it stops, then takes them down in order.
int Serve(std::unique_ptr<Daemon> daemon, std::unique_ptr<ControlServer> control, Origin origin) {
  // Outlives the daemon: its engines write into the journals' memory.
  std::unique_ptr<upgrade::EngineJournals> journals = std::move(origin.journals);
  ControlServer* cs = control.get();
  daemon->set_control_listener(cs->listen_fd());
  // Served also while an upgrade waits for the new snapd (read-only RPCs keep working).
  daemon->loop().Watch(
      cs->listen_fd(), [cs] { cs->OnAcceptable(); }, MainLoop::DuringWaits::kServe);
  Daemon* d = daemon.get();
  daemon->set_stats_text([d] { return StatsTable(StatsOf(*d)); });
  std::unique_ptr<upgrade::CrashStore> store;
  if (absl::GetFlag(FLAGS_fd_store) && UnderServiceManager()) {
    if (!journals) journals = std::make_unique<upgrade::EngineJournals>();
    store = std::make_unique<upgrade::CrashStore>(*daemon, *journals);
    if (origin.restarted || (origin.took_over && daemon->history().store_generation > 0)) {
      store->Continue(origin.stored_apps, origin.stale);
      // Served a while, it was no crash loop (MarkRestarting; a live upgrade inherits it).
      upgrade::UnmarkRestartingAfter(absl::Milliseconds(absl::GetFlag(FLAGS_crash_loop_window_ms)));
    } else {
      store->Begin();
    }
    daemon->set_state_observer(store.get());
  }
  // The Prometheus endpoint, on the socket an upgrade handed over if it did. Else, after an
  // upgrade from a snapd that did not hand it over, the old one may still hold the port for a
  // moment: tried again for a few seconds.
  std::unique_ptr<MetricsServer> metrics;
  std::thread metrics_retry;
  absl::Mutex metrics_mu;
  const std::string metrics_address = daemon->config().metrics_address();
  // One try: the endpoint once it listens (the daemon is to hand its socket over in an upgrade),
  // else nullptr.
  auto start_metrics = [d = daemon.get(), &metrics_address, &metrics,
                        &metrics_mu](UniqueFd fd) -> MetricsServer* {
    std::string refused;
    const bool handed = static_cast<bool>(fd);
    auto m = MetricsServer::Start(d, metrics_address, std::move(fd), &refused);
    if (!refused.empty()) LOG(WARNING) << "metrics: the socket handed over is refused: " << refused;
    if (!m.ok()) return nullptr;
    LOG(INFO) << "metrics: http://" << (*m)->address() << "/metrics"
              << (handed && refused.empty() ? " (the socket the old snapd handed over)" : "");
    absl::MutexLock lock(&metrics_mu);
    metrics = std::move(*m);
    return metrics.get();
  };
  MetricsServer* first =
      metrics_address.empty() ? nullptr : start_metrics(std::move(origin.metrics_listener));
  if (first != nullptr) {
    daemon->set_metrics_listener(first);
  } else if (!metrics_address.empty()) {
    metrics_retry = std::thread([d = daemon.get(), &metrics_address, start_metrics] {
      for (int i = 0; i < 100; ++i) {
        absl::SleepFor(absl::Milliseconds(100));
        if (MetricsServer* m = start_metrics(UniqueFd())) {
          (void)d->RunOnMain([d, m] { d->set_metrics_listener(m); });
          return;
        }
      }
      LOG(WARNING) << "metrics: cannot listen on " << metrics_address;
    });
  }
  if (origin.restarted) {
    daemon->events().Add("started", "",
                         absl::StrCat("restarted from the fd store after a crash: ",
                                      origin.stored_apps.size(), " app(s) kept"));
  } else if (!origin.took_over) {
    daemon->events().Add("started", "", BuildString());
  }
  // Started by an upgrade, the old snapd tells the service manager our pid as it leaves.
  if (!origin.took_over) NotifyServiceManager("READY=1\nSTATUS=serving");
  if (const int64_t interval = WatchdogIntervalNs(); interval > 0) {
    daemon->loop().EnableWatchdog(interval, [] { NotifyServiceManager("WATCHDOG=1"); });
  }
  daemon->Run();
  const bool handed_over = daemon->handed_over();
  if (!handed_over) NotifyServiceManager("STOPPING=1");
  // RPCs in flight wait on the main thread: answer them before stopping the RPC threads.
  daemon->loop().StopServingTasks();
  // A scrape waiting on the main thread has its answer (or UNAVAILABLE) by now.
  if (metrics_retry.joinable()) metrics_retry.join();
  // Handed over, a capture's stream sends what is left in its rings and the id the new snapd
  // goes on with it by; snapctl reads it at its own pace (bounded: a stuck reader loses that).
  if (handed_over) {
    const absl::Time until = absl::Now() + absl::Seconds(10);
    while (daemon->capture_streams().load() > 0 && absl::Now() < until) {
      absl::SleepFor(absl::Milliseconds(10));
    }
  }
  {
    absl::MutexLock lock(&metrics_mu);
    daemon->set_metrics_listener(nullptr);
    metrics.reset();
  }
  if (handed_over) control->Relinquish();  // the socket is the new snapd's
  control.reset();
  // After the control plane, whose RPCs run on the daemon. A clean stop detaches every app (each
  // leaves the store as it goes) and empties the store: the next start reads the configuration
  // anew. Handed over, the store is the new snapd's.
  daemon.reset();
  if (store && !handed_over) store->Clear();
  return 0;
}

// Started by a service manager whose fd store held a dead snapd's state: serve its apps on.
// `cfg` is what the flags and the config file say; `cfg_status` why they do not make a config.
int RunRestart(std::vector<StoredFd> stored, config::SnapdConfig cfg, absl::Status cfg_status) {
  const int64_t t_start = MonotonicNs();
  upgrade::Recovered recovered = upgrade::Recover(std::move(stored));
  ServiceHistory history;
  if (!recovered.checkpoint && !cfg_status.ok()) return Fail(cfg_status);
  if (!cfg_status.ok()) {
    LOG(WARNING) << "serving the configuration the snapd that died served; the config file is "
                    "not usable: "
                 << cfg_status.message();
  }
  if (recovered.checkpoint) {
    // What the dead snapd served, with the RPCs' changes, not the file it started from.
    cfg = recovered.checkpoint->config();
    history.serving_since_unix_ms = recovered.checkpoint->serving_since_unix_ms();
    history.upgrades = recovered.checkpoint->upgrades();
    history.restarts = recovered.checkpoint->restarts() + 1;
    history.store_generation = recovered.checkpoint->generation();
    if (!upgrade::BlackoutsFromWire(recovered.checkpoint->blackouts(), &history.blackouts)) {
      recovered.dropped.push_back("the blackout histogram: not this build's shape");
    }
  } else {
    recovered.dropped.push_back("no checkpoint: configuration from the flags");
  }
  auto refuse_listener = [&](UniqueFd* fd, int type, const std::string& path, const char* what) {
    if (!*fd) return;
    std::string why = upgrade::CheckListener(fd->get(), type, path);
    if (why.empty()) return;
    recovered.dropped.push_back(absl::StrCat(what, " listener: ", why));
    // Out of the store before a listener is bound anew: the manager's copy would still listen.
    RemoveStoredFds(what);
    fd->reset();
  };
  refuse_listener(&recovered.memif_listener, SOCK_SEQPACKET, cfg.memif_socket(), "memif");
  refuse_listener(&recovered.control_listener, SOCK_STREAM, cfg.control_socket(), "control");
  // On this thread only, before the EAL starts on it: for the configuration served.
  HideUnusedPmdPlugins(cfg);
  if (recovered.crash_loop) {
    LOG(WARNING) << "the snapd before this one died soon after taking its apps back (within "
                 << absl::GetFlag(FLAGS_crash_loop_window_ms)
                 << " ms): the frames waiting in their rings are dropped, not served again (one of "
                    "them may be what killed it)";
    for (memif::ConnectionHandoff& h : recovered.connections) h.discard_pending = true;
    // The engines' journals too: what one of them holds may be what killed it.
    if (!recovered.journals.empty()) {
      LOG(WARNING) << "the engines' journals are not picked up either ("
                   << recovered.journals.size() << "): their connections start afresh";
      recovered.journals.clear();
    }
  }
  if (absl::GetFlag(FLAGS_fd_store)) upgrade::MarkRestarting();
  // A start that fails leaves the store as it found it (the mark too, if it was there).
  auto leave_store_as_found = [&] {
    if (!recovered.crash_loop) upgrade::UnmarkRestarting();
  };
  Daemon::Adopted adopted;
  // Before the daemon: its engines write into the journals' memory.
  std::unique_ptr<upgrade::EngineJournals> journals;
  Daemon::EnginePrep prepare;
  if (absl::GetFlag(FLAGS_fd_store)) {
    journals = std::make_unique<upgrade::EngineJournals>(std::move(recovered.journals));
    prepare = [&journals](const std::string& name, Engine& engine) {
      journals->Attach(name, engine);
    };
  }
  auto daemon = Daemon::Restart(cfg, std::move(recovered.memif_listener),
                                std::move(recovered.connections), &adopted, prepare);
  if (!daemon.ok()) {
    leave_store_as_found();
    return Fail(daemon.status());
  }
  if (history.serving_since_unix_ms > 0) (*daemon)->set_history(history);
  auto control =
      recovered.control_listener
          ? ControlServer::Adopt(daemon->get(), cfg.control_socket(), cfg.control_group(),
                                 std::move(recovered.control_listener))
          : ControlServer::Start(daemon->get(), cfg.control_socket(), cfg.control_group());
  if (!control.ok()) {
    (*daemon)->memif().Relinquish();  // the apps stay in the store for the next try
    leave_store_as_found();
    return Fail(control.status());
  }
  Origin origin;
  origin.restarted = true;
  origin.stale = std::move(recovered.stale);
  origin.journals = std::move(journals);
  const std::vector<memif::Connection*> connected = (*daemon)->memif().connections();
  for (const auto& [id, status] : adopted) {
    const bool serving =
        std::any_of(connected.begin(), connected.end(),
                    [id = id](const memif::Connection* c) { return c->id() == id; });
    if (status.ok() && serving) {
      origin.stored_apps.push_back(id);
      continue;
    }
    // Refused, or adopted and then detached (an engine that would not take its port).
    recovered.dropped.push_back(absl::StrCat(
        "app ", id, ": ", status.ok() ? "detached as it was adopted" : status.message()));
    for (std::string& name : recovered.names[id]) origin.stale.push_back(std::move(name));
  }
  LOG(INFO) << "snapd restarted from the fd store (" << recovered.fds << " fds) in "
            << (MonotonicNs() - t_start) / 1000000 << " ms: " << origin.stored_apps.size()
            << " app(s) kept, restart " << history.restarts << " of the service";
  for (const std::string& why : recovered.dropped) LOG(WARNING) << "fd store: dropped " << why;
  if (recovered.crash_loop) {
    LOG(WARNING) << "dropped " << (*daemon)->memif().stats().discarded.Get()
                 << " ring slot(s) that were waiting in the apps' rings (frames, or parts of "
                    "chained ones)";
  }
  return Serve(std::move(*daemon), std::move(*control), std::move(origin));
}

// Testing: a binary whose file ends in the line "#snapd-test-fault=FAULT@PATH" is, as an upgrade's
// new snapd, run as with --upgrade_fault=FAULT on a host where PATH (relative to the binary's
// directory) exists: a release that fails on some hosts only (tests/fleet_rollout_test stamps one
// so). Appended bytes do not change what an ELF file runs. "" if there is no such line or PATH.
std::string FaultStampedOnBinary() {
  UniqueFd exe(open("/proc/self/exe", O_RDONLY | O_CLOEXEC));
  struct stat st;
  if (!exe || fstat(exe.get(), &st) != 0 || st.st_size < 512) return "";
  char tail[512];
  if (pread(exe.get(), tail, sizeof(tail), st.st_size - sizeof(tail)) != sizeof(tail)) return "";
  absl::string_view t(tail, sizeof(tail));
  constexpr absl::string_view kStamp = "\n#snapd-test-fault=";
  size_t at = t.rfind(kStamp);
  if (at == absl::string_view::npos) return "";
  absl::string_view line = t.substr(at + kStamp.size());
  line = line.substr(0, line.find('\n'));
  size_t sep = line.find('@');
  if (sep == absl::string_view::npos) return "";
  char exe_path[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe_path, sizeof(exe_path) - 1);
  if (n <= 0) return "";
  std::string path(exe_path, n);
  path = absl::StrCat(path.substr(0, path.rfind('/') + 1), line.substr(sep + 1));
  if (access(path.c_str(), F_OK) != 0) return "";
  LOG(WARNING) << "upgrade: this binary is stamped to fail on hosts with " << path
               << ", and this is one: --upgrade_fault=" << line.substr(0, sep);
  return std::string(line.substr(0, sep));
}

// The new side of an upgrade: everything comes from the old snapd over the channel.
int RunUpgrade(int fd) {
  upgrade::Faults faults;
  faults.fault = absl::GetFlag(FLAGS_upgrade_fault);
  if (faults.fault.empty()) faults.fault = FaultStampedOnBinary();
  faults.claim_version = static_cast<uint32_t>(absl::GetFlag(FLAGS_upgrade_version));
  faults.defer_nics = absl::GetFlag(FLAGS_upgrade_defer_nics);
  upgrade::NewSnapd upgrade(faults);
  auto daemon = upgrade.Run(UniqueFd(fd));
  if (!daemon.ok()) return Fail(daemon.status());
  const config::SnapdConfig& cfg = (*daemon)->config();
  UniqueFd listener = upgrade.TakeControlListener();
  auto control =
      listener ? ControlServer::Adopt(daemon->get(), cfg.control_socket(), cfg.control_group(),
                                      std::move(listener))
               : ControlServer::Start(daemon->get(), cfg.control_socket(), cfg.control_group());
  if (!control.ok()) return Fail(control.status());
  Origin origin;
  origin.took_over = true;
  origin.metrics_listener = upgrade.TakeMetricsListener();
  for (memif::Connection* c : (*daemon)->memif().connections()) {
    origin.stored_apps.push_back(c->id());
  }
  return Serve(std::move(*daemon), std::move(*control), std::move(origin));
}

int Main(int argc, char** argv) {
  (void)Worker::ProcessCpus();  // every CPU snapd was given, before any thread is kept off some
  absl::SetProgramUsageMessage(
      "snapd: the host networking daemon.\n"
      "Usage: snapd [--config=FILE] [--nic=DEVARGS[@QUEUES]]... [--app=id=N,mac=M,ip=A]...\n"
      "With no arguments it starts on an embedded default: a virtual NIC, one vswitch engine, its\n"
      "sockets under $XDG_RUNTIME_DIR/snapd (or /run/snapd as root). SIGTERM stops it cleanly.");
  // --help lists the flags of this file (absl looks for files named after the program).
  absl::FlagsUsageConfig usage;
  usage.contains_help_flags = [](absl::string_view file) {
    return absl::EndsWith(file, "snapd/main.cc");
  };
  // --version: "snapd 0.3.0 (/usr/sbin/snapd, written ...)", exit 0. A rollout runs it on each host
  // before the upgrade: a binary that cannot start there (a library missing) fails it.
  usage.version_string = [] { return BuildString() + "\n"; };
  absl::SetFlagsUsageConfig(usage);
  std::vector<std::string> nic_flags, app_flags;
  std::vector<char*> rest = TakeRepeated(argc, argv, &nic_flags, &app_flags);
  absl::ParseCommandLine(static_cast<int>(rest.size()), rest.data());

  BlockDaemonSignals();
  FLAGS_logtostderr = true;
  google::InitGoogleLogging("snapd");
  RaiseFdLimit();
  // From before the first worker to after the last: workers stuck in a batch are reported, and a
  // call on an app's fd that blocks, on a worker or on this thread, is interrupted.
  Watchdog watchdog(absl::Milliseconds(20), absl::Milliseconds(absl::GetFlag(FLAGS_watchdog_ms)),
                    absl::Milliseconds(10));
  memif::PeerFdCalls main_calls;
  memif::WatchPeerFdCalls(&main_calls);
  watchdog.WatchThread(&main_calls, "main thread");

  if (absl::GetFlag(FLAGS_takeover_fd) >= 0) return RunUpgrade(absl::GetFlag(FLAGS_takeover_fd));

  // A service manager's fd store that holds anything: a snapd died, and its apps wait. Its
  // checkpoint is what snapd serves then, not the config file (which may have been edited since,
  // even broken).
  std::vector<StoredFd> stored = TakeStoredFds();
  absl::Status file_status;
  config::SnapdConfig cfg;
  if (!absl::GetFlag(FLAGS_config).empty()) {
    auto loaded = LoadConfigFile(absl::GetFlag(FLAGS_config));
    if (loaded.ok()) {
      cfg = std::move(*loaded);
    } else if (stored.empty()) {
      return Fail(loaded.status());
    } else {
      file_status = loaded.status();
    }
  }
  for (const std::string& f : nic_flags) {
    auto nic = ParseNicFlag(f);
    if (!nic.ok()) return Fail(nic.status());
    *cfg.add_nics() = *nic;
  }
  for (const std::string& f : app_flags) {
    auto app = ParseAppFlag(f);
    if (!app.ok()) return Fail(app.status());
    *cfg.add_apps() = *app;
  }
  if (!absl::GetFlag(FLAGS_run_dir).empty()) cfg.set_run_dir(absl::GetFlag(FLAGS_run_dir));
  if (!absl::GetFlag(FLAGS_memif_socket).empty()) {
    cfg.set_memif_socket(absl::GetFlag(FLAGS_memif_socket));
  }
  if (!absl::GetFlag(FLAGS_metrics_address).empty()) {
    cfg.set_metrics_address(absl::GetFlag(FLAGS_metrics_address));
  }
  if (!absl::GetFlag(FLAGS_control_socket).empty()) {
    cfg.set_control_socket(absl::GetFlag(FLAGS_control_socket));
  }
  if (!absl::GetFlag(FLAGS_control_group).empty()) {
    cfg.set_control_group(absl::GetFlag(FLAGS_control_group));
  }
  if (absl::GetFlag(FLAGS_stats_interval_s) > 0) {
    cfg.set_stats_interval_s(absl::GetFlag(FLAGS_stats_interval_s));
  }
  if (!absl::GetFlag(FLAGS_mode).empty() || !absl::GetFlag(FLAGS_cores).empty()) {
    config::Group* group = nullptr;
    for (config::Group& g : *cfg.mutable_groups()) {
      if (g.name() == kDefaultGroup) group = &g;
    }
    if (group == nullptr) {
      group = cfg.add_groups();
      group->set_name(kDefaultGroup);
    }
    if (!absl::GetFlag(FLAGS_mode).empty()) group->set_mode(absl::GetFlag(FLAGS_mode));
    for (const std::string& c : absl::GetFlag(FLAGS_cores)) {
      int core;
      if (!absl::SimpleAtoi(c, &core))
        return Fail(absl::InvalidArgumentError(absl::StrCat("--cores: '", c, "' is not a number")));
      group->add_cores(core);
    }
  }
  absl::Status status = CompleteConfig(&cfg);
  if (!status.ok() && stored.empty()) return Fail(status);
  if (!stored.empty()) {
    return RunRestart(std::move(stored), std::move(cfg), status.ok() ? file_status : status);
  }
  // On this thread only (the watchdog's stays where it is), before the EAL starts on it.
  HideUnusedPmdPlugins(cfg);

  auto daemon = Daemon::Start(cfg);
  if (!daemon.ok()) return Fail(daemon.status());
  auto control = ControlServer::Start(daemon->get(), cfg.control_socket(), cfg.control_group());
  if (!control.ok()) return Fail(control.status());
  return Serve(std::move(*daemon), std::move(*control), Origin());
}

}  // namespace
}  // namespace snapd

// A new snapd started by an upgrade (--takeover_fd=N, always N = 3) keeps stdin, stdout, stderr
// and the channel, nothing else: a script that started it (its interpreter read it from /dev/fd/4)
// may have left more open. Closed before anything here opens an fd of its own.
static void CloseInheritedFds(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const char* arg = argv[i];
    if (strncmp(arg, "--takeover_fd=", 14) != 0) continue;
    const int n = atoi(arg + 14);
    if (n >= 3) close_range(static_cast<unsigned>(n) + 1, ~0U, 0);
  }
}

int main(int argc, char** argv) {
  CloseInheritedFds(argc, argv);
  return snapd::Main(argc, argv);
}
