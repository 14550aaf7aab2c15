#include "snapd/daemon.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "engines/frame.h"
#include "engines/registry.h"
#include "glog/logging.h"
#include "snapd/app_port.h"

namespace snapd {
namespace {

absl::Status MakeDirs(const std::string& path) {
  std::string partial;
  for (size_t i = 1; i <= path.size(); ++i) {
    if (i == path.size() || path[i] == '/') {
      partial = path.substr(0, i);
      if (mkdir(partial.c_str(), 0755) != 0 && errno != EEXIST) {
        return absl::PermissionDeniedError(
            absl::StrCat("cannot create ", partial, ": ", strerror(errno)));
      }
    }
  }
  return absl::OkStatus();
}

std::string AppPortName(uint32_t id) { return absl::StrCat("app", id); }

}  // namespace

sigset_t DaemonSignals() {
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGUSR1);
  return mask;
}

void BlockDaemonSignals() {
  sigset_t mask = DaemonSignals();
  pthread_sigmask(SIG_BLOCK, &mask, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

std::string AppConnectedName(uint64_t mac, uint32_t ipv4) {
  uint8_t b[6];
  MacToBytes(mac, b);
  const auto* ip = reinterpret_cast<const uint8_t*>(&ipv4);
  return absl::StrFormat("snap/%02x%02x%02x%02x%02x%02x/%02x%02x%02x%02x", b[0], b[1], b[2], b[3],
                         b[4], b[5], ip[0], ip[1], ip[2], ip[3]);
}

absl::StatusOr<std::unique_ptr<Daemon>> Daemon::Start(const config::SnapdConfig& config) {
  std::unique_ptr<Daemon> daemon(new Daemon());
  daemon->config_ = config;
  absl::Status status = daemon->Init();
  if (!status.ok()) return status;
  return daemon;
}

absl::Status Daemon::Init() {
  absl::Status status = MakeDirs(config_.run_dir());
  if (!status.ok()) return status;

  // The memif socket first: a second snapd stops here, before DPDK says a word.
  memif::ServerOptions options;
  options.socket_path = config_.memif_socket();
  options.name = "snapd";
  options.limits.max_queue_pairs = 1;  // one queue pair per app port for now
  auto server = memif::MemifServer::Create(options);
  if (!server.ok()) {
    if (absl::IsAlreadyExists(server.status())) {
      return absl::AlreadyExistsError(
          absl::StrCat("another snapd is already serving ", config_.memif_socket()));
    }
    return server.status();
  }
  memif_ = std::move(*server);
  // Apps may run as any user; an interface id (and its secret) is what admits them.
  chmod(config_.memif_socket().c_str(), 0666);

  for (const config::App& app : config_.apps()) {
    AppInfo info{app};
    ParseMac(app.mac(), &info.mac);
    ParseIpv4(app.ipv4(), &info.ipv4);
    status = memif_->AddInterface({app.id(), app.secret(), AppConnectedName(info.mac, info.ipv4)});
    if (!status.ok()) return status;
    apps_.emplace(app.id(), info);
  }
  memif_->set_on_connected([this](memif::Connection& c) { OnAppConnected(c); });
  memif_->set_on_disconnected(
      [this](memif::Connection& c, absl::string_view reason) { OnAppDisconnected(c, reason); });
  memif_->set_on_refused([](const ucred& peer, absl::string_view reason) {
    LOG(WARNING) << "app refused (pid " << peer.pid << ", uid " << peer.uid << "): " << reason;
  });

  status = InitEal(config_);
  if (!status.ok()) return status;
  eal_started_ = true;

  for (const config::Engine& e : config_.engines()) {
    auto engine = EngineRegistry::Global().Create(e.kind(), e.name(), e.config());
    if (!engine.ok()) return engine.status();
    EngineSlot slot;
    slot.engine = std::move(*engine);
    slot.worker =
        std::make_unique<Worker>(absl::StrCat("w-", e.name()), e.has_core() ? e.core() : -1);
    engines_.push_back(std::move(slot));
  }
  for (int i = 0; i < config_.nics_size(); ++i) {
    const config::Nic& cfg = config_.nics(i);
    auto nic = Nic::Open(cfg, i);
    if (!nic.ok()) return nic.status();
    for (uint16_t q = 0; q < (*nic)->queues(); ++q) {
      EngineSlot* slot = FindEngine(cfg.engines(q % cfg.engines_size()));
      std::unique_ptr<Port> port = (*nic)->TakeQueuePort(q);
      // Not polled yet: attach directly; the worker starts polling below.
      status = slot->engine->AddPort(std::move(port), engines::PortAttachment());
      if (!status.ok()) return status;
    }
    nics_.push_back(std::move(*nic));
  }
  for (EngineSlot& slot : engines_) {
    slot.worker->AddEngine(slot.engine.get());
    LOG(INFO) << "engine " << slot.engine->name() << " (" << slot.engine->kind() << ") on worker "
              << slot.worker->name()
              << (slot.worker->core() >= 0 ? absl::StrCat(" pinned to core ", slot.worker->core())
                                           : std::string());
  }

  sigset_t mask = DaemonSignals();
  signals_.reset(signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK));
  wake_.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  ready_ = true;
  started_ns_ = MonotonicNs();
  LOG(INFO) << "snapd ready: apps attach at " << config_.memif_socket() << " (" << apps_.size()
            << " interface(s) registered)";
  return absl::OkStatus();
}

Daemon::EngineSlot* Daemon::FindEngine(const std::string& name) {
  for (EngineSlot& slot : engines_) {
    if (slot.engine->name() == name) return &slot;
  }
  return nullptr;
}

void Daemon::OnAppConnected(memif::Connection& conn) {
  const AppInfo& app = apps_.at(conn.id());
  EngineSlot* slot = FindEngine(app.config.engine());
  engines::PortAttachment attach;
  uint8_t mac[6];
  MacToBytes(app.mac, mac);
  attach.set_mac(std::string(reinterpret_cast<char*>(mac), 6));
  attach.set_ipv4(app.ipv4);
  auto port = std::make_unique<AppPort>(AppPortName(conn.id()), conn, 0);
  absl::Status status;
  slot->worker->RunSync([&] { status = slot->engine->AddPort(std::move(port), attach); });
  if (!status.ok()) {
    LOG(ERROR) << "app " << conn.id() << ": cannot attach: " << status;
    memif_->Disconnect(conn.id(), status.message());
    return;
  }
  LOG(INFO) << "app " << conn.id() << " ('" << conn.peer_name() << "', pid " << conn.peer_cred().pid
            << ") attached to " << slot->engine->name() << " as " << app.config.mac() << " "
            << app.config.ipv4();
}

void Daemon::OnAppDisconnected(memif::Connection& conn, absl::string_view reason) {
  auto it = apps_.find(conn.id());
  if (it == apps_.end()) return;
  EngineSlot* slot = FindEngine(it->second.config.engine());
  // The port must be gone from the engine before the server unmaps the app's memory.
  slot->worker->RunSync([&] { slot->engine->RemovePort(AppPortName(conn.id())); });
  LOG(INFO) << "app " << conn.id() << " detached: " << reason;
}

void Daemon::Stop() {
  uint64_t one = 1;
  (void)!write(wake_.get(), &one, sizeof(one));
}

void Daemon::Run() {
  UniqueFd ep(epoll_create1(EPOLL_CLOEXEC));
  for (int fd : {memif_->epoll_fd(), signals_.get(), wake_.get()}) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    epoll_ctl(ep.get(), EPOLL_CTL_ADD, fd, &ev);
  }
  int64_t next_stats = config_.stats_interval_s() > 0
                           ? MonotonicNs() + config_.stats_interval_s() * 1000000000ll
                           : 0;
  while (true) {
    epoll_event events[8];
    int n = epoll_wait(ep.get(), events, 8, 100);
    bool stop = false;
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      if (fd == signals_.get()) {
        signalfd_siginfo si;
        while (read(signals_.get(), &si, sizeof(si)) == sizeof(si)) {
          if (si.ssi_signo == SIGUSR1) {
            LOG(INFO) << "stats\n" << StatsText();
          } else {
            LOG(INFO) << "signal " << si.ssi_signo << ": stopping";
            stop = true;
          }
        }
      } else if (fd == wake_.get()) {
        stop = true;
      }
    }
    if (stop) break;
    memif_->Poll(0);
    // Apps whose rings broke the protocol: their ports stopped themselves; disconnect them.
    memif_->DropFailedConnections();
    if (next_stats != 0 && MonotonicNs() >= next_stats) {
      LOG(INFO) << "stats\n" << StatsText();
      next_stats = MonotonicNs() + config_.stats_interval_s() * 1000000000ll;
    }
  }
}

std::string Daemon::StatsText() {
  std::string out;
  absl::StrAppendFormat(&out, "%-12s %-8s %12s %14s %10s %9s %7s %6s %10s %10s\n", "engine", "kind",
                        "frames", "bytes", "batches", "avg_batch", "empty%", "busy%", "drops",
                        "delay_us");
  int64_t now = MonotonicNs();
  double uptime_ns = std::max<int64_t>(1, now - started_ns_);
  for (EngineSlot& slot : engines_) {
    const EngineStats& s = slot.engine->stats();
    uint64_t polls = s.polls.Get(), batches = s.batches.Get();
    absl::StrAppendFormat(&out, "%-12s %-8s %12d %14d %10d %9.1f %7.1f %6.1f %10d %10d\n",
                          slot.engine->name(), slot.engine->kind(), s.frames.Get(), s.bytes.Get(),
                          batches, batches ? double(s.frames.Get()) / batches : 0.0,
                          polls ? 100.0 * s.empty_polls.Get() / polls : 0.0,
                          100.0 * s.busy_ns.Get() / uptime_ns, s.drops.Get(),
                          slot.engine->QueueingDelayNs(now) / 1000);
  }
  absl::StrAppendFormat(&out, "%-12s %-12s %12s %12s %10s %10s %9s %9s\n", "port", "engine",
                        "rx_frames", "tx_frames", "tx_drop", "malformed", "spoofed", "rx_err");
  for (EngineSlot& slot : engines_) {
    slot.worker->RunSync([&] {
      slot.engine->ForEachPort([&](Port& p) {
        const PortStats& ps = p.stats();
        uint64_t rx_err = ps.rx_errors.Get();
        if (auto* app = dynamic_cast<AppPort*>(&p)) rx_err += app->ring_drops();
        absl::StrAppendFormat(&out, "%-12s %-12s %12d %12d %10d %10d %9d %9d\n", p.name(),
                              slot.engine->name(), ps.rx_frames.Get(), ps.tx_frames.Get(),
                              ps.tx_dropped.Get(), ps.drop_malformed.Get(), ps.drop_spoofed.Get(),
                              rx_err);
      });
    });
  }
  absl::StrAppendFormat(&out, "%-12s %-16s %5s %12s %12s %9s %9s %9s %9s\n", "nic", "device",
                        "link", "rx_frames", "tx_frames", "missed", "rx_err", "tx_err", "nombuf");
  for (const auto& nic : nics_) {
    NicStats s = nic->Stats();
    absl::StrAppendFormat(&out, "%-12s %-16s %5s %12d %12d %9d %9d %9d %9d\n", nic->name(),
                          nic->device(), s.link_up ? "up" : "down", s.rx_frames, s.tx_frames,
                          s.rx_missed, s.rx_errors, s.tx_errors, s.rx_nombuf);
  }
  const memif::ServerStats& ms = memif_->stats();
  absl::StrAppendFormat(&out, "apps: connected=%d refused=%d disconnected=%d\n",
                        memif_->connections().size(), ms.refused.Get(), ms.disconnected.Get());
  return out;
}

Daemon::~Daemon() {
  if (ready_) LOG(INFO) << "final stats\n" << StatsText();
  // Apps first: each detach removes its port from its engine while the worker still runs.
  memif_.reset();
  for (EngineSlot& slot : engines_) {
    slot.worker->RunSync([&] {
      for (const std::string& name : slot.engine->PortNames()) slot.engine->RemovePort(name);
    });
    slot.worker->RemoveEngine(slot.engine.get());
  }
  engines_.clear();  // joins workers, destroys engines
  nics_.clear();
  if (eal_started_) CleanupEal();
  if (ready_) LOG(INFO) << "snapd stopped";
}

}  // namespace snapd
