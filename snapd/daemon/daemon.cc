#include "snapd/daemon/daemon.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <future>
#include <limits>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "control/stats_table.h"
#include "engines/frame.h"
#include "engines/registry.h"
#include "glog/logging.h"
#include "ipc/socket.h"
#include "snapd/daemon/app_port.h"
#include "snapd/daemon/config.h"
#include "base/log_limiter.h"
#include "snapd/daemon/trusted_path.h"

namespace snapd {
namespace {

std::string AppPortName(uint32_t id) { return absl::StrCat("app", id); }

// How often engine loads and queueing delays are sampled and compacting groups looked at (scale-ins
// decided). Scale-outs do not wait for it: a worker whose engine misses the SLO wakes the main
// thread at once.
constexpr int kRebalanceMs = 20;
// The sampling period when no compacting group has traffic.
constexpr int kIdleSampleMs = 200;
// Queueing-delay samples kept per engine: at most five seconds' worth.
constexpr size_t kDelaySamples = 5000 / kRebalanceMs;

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
  // Ours and closed to others (SECURITY.md), or snapd does not start.
  absl::Status status = PrepareRunDir(config_.run_dir(), geteuid());
  if (!status.ok()) return status;

  // The memif socket first: a second snapd stops here, before DPDK says a word.
  auto server = memif::MemifServer::Create(MemifOptions());
  if (!server.ok()) {
    if (absl::IsAlreadyExists(server.status())) {
      return absl::AlreadyExistsError(
          absl::StrCat("another snapd is already serving ", config_.memif_socket()));
    }
    return server.status();
  }
  // Apps may run as any user; an interface id (and its secret) is what admits them.
  status = memif::SetSocketFileAccess(config_.memif_socket(), 0666);
  if (!status.ok()) return status;
  status = InitMemif(std::move(*server));
  if (!status.ok()) return status;

  status = InitEal(config_);
  if (!status.ok()) return status;
  eal_started_ = true;
  status = InitEngines();
  if (!status.ok()) return status;
  status = OpenNics();
  if (!status.ok()) return status;
  InitLoopFds();
  for (auto& [name, group] : groups_) {
    status = Replace(group);
    if (!status.ok())
      return absl::Status(status.code(), absl::StrCat("group ", name, ": ", status.message()));
  }
  for (const auto& slot : engines_) {
    LOG(INFO) << "engine " << slot->engine->name() << " (" << slot->engine->kind() << ") in group "
              << slot->config.group() << " on worker " << slot->worker->name()
              << (slot->worker->core() >= 0 ? absl::StrCat(" pinned to core ", slot->worker->core())
                                            : std::string());
  }
  ready_ = true;
  started_ns_ = MonotonicNs();
  serving_since_unix_ms_ = absl::ToUnixMillis(absl::Now());
  LOG(INFO) << "snapd ready: apps attach at " << config_.memif_socket() << " (" << apps_.size()
            << " interface(s) registered)";
  return absl::OkStatus();
}

memif::ServerOptions Daemon::MemifOptions() const {
  memif::ServerOptions options;
  options.socket_path = config_.memif_socket();
  options.name = "snapd";
  options.limits.max_queue_pairs = 1;  // one queue pair per app port for now
  return options;
}

absl::Status Daemon::InitMemif(std::unique_ptr<memif::MemifServer> server) {
  memif_ = std::move(server);
  for (const config::App& app : config_.apps()) {
    absl::Status status = RegisterApp(app);
    if (!status.ok()) return status;
  }
  memif_->set_on_connected([this](memif::Connection& c) { OnAppConnected(c); });
  memif_->set_on_disconnected(
      [this](memif::Connection& c, absl::string_view reason) { OnAppDisconnected(c, reason); });
  // Anyone who can open the socket can be refused thousands of times a second: the counters carry
  // every refusal, the log a sample.
  memif_->set_on_refused(
      [limiter = LogLimiter(10)](const ucred& peer, absl::string_view reason) mutable {
        std::string left_out;
        if (!limiter.Allow(MonotonicNs(), &left_out)) return;
        LOG(WARNING) << "app refused (pid " << peer.pid << ", uid " << peer.uid << "): " << reason
                     << left_out;
      });
  return absl::OkStatus();
}

absl::Status Daemon::InitEngines() {
  for (const config::Group& g : config_.groups()) {
    Group& group = groups_[g.name()];
    group.config = g;
    ParseSchedulingMode(g.mode(), &group.policy.mode);
    group.policy.cores.assign(g.cores().begin(), g.cores().end());
    group.policy.slo_ns = int64_t{g.slo_us()} * 1000;
  }
  for (const config::Engine& e : config_.engines()) {
    auto slot = NewEngineSlot(e);
    if (!slot.ok()) return slot.status();
  }
  return absl::OkStatus();
}

void Daemon::InitLoopFds() {
  sigset_t mask = DaemonSignals();
  signals_.reset(signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK));
  wake_.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  tasks_fd_.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  overload_fd_.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
}

void Daemon::OnEngine(EngineSlot& slot, const std::function<void()>& fn) {
  if (slot.polled) {
    slot.worker->RunSync(fn);
  } else {
    fn();  // no worker polls it: the main thread may touch it
  }
}

absl::Status Daemon::OpenNics() {
  for (int i = 0; i < config_.nics_size(); ++i) {
    absl::Status status = OpenNic(i);
    if (!status.ok()) return status;
  }
  return absl::OkStatus();
}

absl::Status Daemon::OpenNic(int index) {
  const config::Nic& cfg = config_.nics(index);
  auto nic = Nic::Open(cfg, index);
  if (!nic.ok()) return nic.status();
  for (uint16_t q = 0; q < (*nic)->queues(); ++q) {
    EngineSlot* slot = FindEngine(cfg.engines(q % cfg.engines_size()));
    std::unique_ptr<Port> port = (*nic)->TakeQueuePort(q);
    absl::Status status;
    OnEngine(*slot, [&] { status = slot->engine->AddPort(std::move(port), {}); });
    if (!status.ok()) return status;
  }
  if (nics_.size() <= static_cast<size_t>(index)) nics_.resize(index + 1);
  nics_[index] = std::move(*nic);
  return absl::OkStatus();
}

void Daemon::CloseNic(int index, std::vector<engines::PortCounters>* port_counters) {
  if (static_cast<size_t>(index) >= nics_.size() || !nics_[index]) return;
  const std::string link = nics_[index]->name();
  for (auto& slot : engines_) {
    OnEngine(*slot, [&] {
      std::vector<std::string> queues;
      slot->engine->ForEachPort([&](Port& p) {
        if (p.kind() == PortKind::kNic && p.link() == link) queues.push_back(p.name());
      });
      for (const std::string& name : queues) {
        std::unique_ptr<Port> port = slot->engine->RemovePort(name);
        if (port && port_counters) SavePortCounters(*port, &port_counters->emplace_back());
      }
    });
  }
  nics_[index].reset();
}

void Daemon::AddPortCounters(const std::vector<engines::PortCounters>& saved) {
  if (saved.empty()) return;
  for (auto& slot : engines_) {
    OnEngine(*slot, [&] {
      slot->engine->ForEachPort([&](Port& p) {
        for (const engines::PortCounters& pc : saved) {
          if (pc.name() == p.name()) snapd::AddPortCounters(pc, p);
        }
      });
    });
  }
}

void Daemon::CloseNics() {
  for (size_t i = 0; i < nics_.size(); ++i) CloseNic(static_cast<int>(i));
  nics_.clear();
}

absl::StatusOr<Daemon::EngineSlot*> Daemon::NewEngineSlot(const config::Engine& e) {
  auto engine = EngineRegistry::Global().Create(e.kind(), e.name(), e.config());
  if (!engine.ok()) return engine.status();
  auto slot = std::make_unique<EngineSlot>();
  slot->config = e;
  slot->engine = std::move(*engine);
  engines_.push_back(std::move(slot));
  return engines_.back().get();
}

Daemon::EngineSlot* Daemon::FindEngine(const std::string& name) {
  for (auto& slot : engines_) {
    if (slot->engine->name() == name) return slot.get();
  }
  return nullptr;
}

std::vector<EngineLoad> Daemon::LoadsOf(const Group& group) {
  std::vector<EngineLoad> loads;
  int64_t now = MonotonicNs();
  for (const auto& slot : engines_) {
    // A takeover places every engine from the start, moved or not, so that each move only adds
    // its engine to the worker made for it (re-pinning workers would cost every blackout).
    if (slot->config.group() != group.config.name() || (!slot->ready && !taking_over_)) continue;
    loads.push_back({slot->engine->name(), slot->busy, slot->engine->QueueingDelayNs(now)});
  }
  return loads;
}

absl::Status Daemon::Replace(Group& group) {
  absl::StatusOr<Placement> placement = Place(LoadsOf(group), group.policy);
  if (!placement.ok()) return placement.status();
  ApplyPlacement(group, *placement);
  return absl::OkStatus();
}

void Daemon::ApplyPlacement(Group& group, const Placement& placement) {
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
  for (const auto& w : group.workers) w->SetOverloadAlarm(alarm, overload_fd_.get());
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
  // Workers beyond the placement have no engine left (a takeover keeps them for the engines
  // still to come).
  while (!taking_over_ && group.workers.size() > placement.workers.size()) group.workers.pop_back();
  group.placement = placement;
  group.last_change_ns = MonotonicNs();
}

void Daemon::RebalanceTick() {
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
  }
  for (auto& [name, group] : groups_) {
    if (group.policy.mode != SchedulingMode::kCompacting) continue;
    std::vector<EngineLoad> loads = LoadsOf(group);
    for (const EngineLoad& e : loads) {
      if (e.queueing_delay_ns > group.policy.slo_ns) group.last_overload_ns = now;
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
  }
}

void Daemon::OnAppConnected(memif::Connection& conn) {
  const AppInfo& app = apps_.at(conn.id());
  EngineSlot* slot = FindEngine(app.config.engine());
  engines::PortAttachment attach;
  uint8_t mac[6];
  MacToBytes(app.mac, mac);
  attach.set_mac(std::string(reinterpret_cast<char*>(mac), 6));
  attach.set_ipv4(app.ipv4);
  for (const std::string& text : app.config.ipv6()) {
    Ipv6Address ip6;
    if (ParseIpv6(text, &ip6)) attach.add_ipv6(std::string(reinterpret_cast<char*>(ip6.w), 16));
  }
  attach.set_vlan(app.config.vlan());
  auto port = std::make_unique<AppPort>(AppPortName(conn.id()), conn, 0);
  absl::Status status;
  OnEngine(*slot, [&] { status = slot->engine->AddPort(std::move(port), attach); });
  std::string left_out;
  const bool log = app_log_.Allow(MonotonicNs(), &left_out);  // an app may churn at will
  if (!status.ok()) {
    if (log) LOG(ERROR) << "app " << conn.id() << ": cannot attach: " << status << left_out;
    memif_->Disconnect(conn.id(), status.message());
    return;
  }
  if (log) {
    LOG(INFO) << "app " << conn.id() << " ('" << conn.peer_name() << "', pid "
              << conn.peer_cred().pid << ") attached to " << slot->engine->name() << " as "
              << app.config.mac() << " " << app.config.ipv4() << left_out;
  }
}

void Daemon::OnAppDisconnected(memif::Connection& conn, absl::string_view reason) {
  auto it = apps_.find(conn.id());
  if (it == apps_.end()) return;
  EngineSlot* slot = FindEngine(it->second.config.engine());
  // The port must be gone from the engine before the server unmaps the app's memory.
  OnEngine(*slot, [&] { slot->engine->RemovePort(AppPortName(conn.id())); });
  std::string left_out;
  if (!app_log_.Allow(MonotonicNs(), &left_out)) return;
  LOG(INFO) << "app " << conn.id() << " detached: " << reason << left_out;
}

absl::Status Daemon::RunOnMain(const std::function<void()>& fn) {
  std::promise<void> done;
  {
    std::lock_guard<std::mutex> lock(tasks_mu_);
    if (stopping_) return absl::UnavailableError("snapd is stopping");
    tasks_.push_back([&] {
      fn();
      done.set_value();
    });
  }
  uint64_t one = 1;
  (void)!write(tasks_fd_.get(), &one, sizeof(one));
  done.get_future().wait();
  return absl::OkStatus();
}

void Daemon::RunTasks() {
  uint64_t count;
  (void)!read(tasks_fd_.get(), &count, sizeof(count));
  std::vector<std::function<void()>> tasks;
  {
    std::lock_guard<std::mutex> lock(tasks_mu_);
    tasks.swap(tasks_);
  }
  for (auto& task : tasks) task();
}

void Daemon::Watch(int fd, std::function<void()> on_readable) {
  watched_[fd] = std::move(on_readable);
}

void Daemon::Stop() {
  uint64_t one = 1;
  (void)!write(wake_.get(), &one, sizeof(one));
}

void Daemon::Run() {
  UniqueFd ep(epoll_create1(EPOLL_CLOEXEC));
  std::vector<int> fds = {memif_->epoll_fd(), signals_.get(), wake_.get(), tasks_fd_.get(),
                          overload_fd_.get()};
  for (const auto& [fd, fn] : watched_) fds.push_back(fd);
  for (int fd : fds) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    epoll_ctl(ep.get(), EPOLL_CTL_ADD, fd, &ev);
  }
  int64_t next_stats = config_.stats_interval_s() > 0
                           ? MonotonicNs() + config_.stats_interval_s() * 1000000000ll
                           : 0;
  int64_t next_tick = 0;
  while (true) {
    epoll_event events[8];
    int64_t wait_ms = std::max<int64_t>(0, (next_tick - MonotonicNs() + 999999) / 1000000);
    int n = epoll_wait(ep.get(), events, 8, static_cast<int>(std::min<int64_t>(wait_ms, 100)));
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
      } else if (fd == tasks_fd_.get()) {
        RunTasks();
      } else if (fd == overload_fd_.get()) {
        uint64_t count;
        (void)!read(overload_fd_.get(), &count, sizeof(count));
        next_tick = 0;  // rebalance now
      } else if (auto it = watched_.find(fd); it != watched_.end()) {
        it->second();
      }
    }
    if (stop) break;
    memif_->Poll(0);
    // Apps whose rings broke the protocol: their ports stopped themselves; disconnect them.
    memif_->DropFailedConnections();
    if (MonotonicNs() >= next_tick) {
      RebalanceTick();
      // A compacting group with traffic is looked at every kRebalanceMs; otherwise only the delay
      // percentiles need samples, five a second (an idle compacting group has nothing to scale
      // in sooner, and an overload wakes us at once through overload_fd_).
      bool compacting_with_traffic = false;
      for (const auto& slot : engines_) {
        auto g = groups_.find(slot->config.group());
        compacting_with_traffic |= g != groups_.end() &&
                                   g->second.policy.mode == SchedulingMode::kCompacting &&
                                   slot->frames_per_s > 0;
      }
      next_tick =
          MonotonicNs() + (compacting_with_traffic ? kRebalanceMs : kIdleSampleMs) * 1000000ll;
    }
    if (next_stats != 0 && MonotonicNs() >= next_stats) {
      LOG(INFO) << "stats\n" << StatsText();
      next_stats = MonotonicNs() + config_.stats_interval_s() * 1000000000ll;
    }
  }
}

v1::Stats Daemon::Snapshot() {
  v1::Stats out;
  int64_t now = MonotonicNs();
  double uptime_ns = std::max<int64_t>(1, now - started_ns_);
  for (auto& slot_ptr : engines_) {
    EngineSlot& slot = *slot_ptr;
    v1::Engine* e = out.add_engines();
    e->set_name(slot.engine->name());
    e->set_kind(std::string(slot.engine->kind()));
    e->set_config(slot.config.config());
    e->set_group(slot.config.group());
    e->set_worker(slot.worker != nullptr ? slot.worker->name() : "");
    e->set_core(slot.worker != nullptr ? slot.worker->core() : -1);
    const EngineStats& s = slot.engine->stats();
    v1::EngineStats* es = e->mutable_stats();
    es->set_frames(s.frames.Get());
    es->set_bytes(s.bytes.Get());
    es->set_batches(s.batches.Get());
    es->set_polls(s.polls.Get());
    es->set_empty_polls(s.empty_polls.Get());
    es->set_drops(s.drops.Get());
    es->set_busy_percent(100.0 * s.busy_ns.Get() / uptime_ns);
    es->set_queueing_delay_ns(slot.engine->QueueingDelayNs(now));
    std::vector<int64_t> delays = slot.delays;
    if (!delays.empty()) {
      std::sort(delays.begin(), delays.end());
      es->set_queueing_delay_p50_ns(delays[delays.size() / 2]);
      es->set_queueing_delay_p99_ns(delays[std::min(delays.size() - 1, delays.size() * 99 / 100)]);
    }
    es->set_frames_per_s(slot.frames_per_s);
    slot.engine->ForEachKindCounter([&](absl::string_view name, uint64_t value) {
      (*es->mutable_kind_counters())[std::string(name)] = value;
    });
    // The port list belongs to the engine's thread.
    OnEngine(slot, [&] {
      slot.engine->ForEachPort([&](Port& p) {
        e->add_ports(p.name());
        v1::Port* port = out.add_ports();
        port->set_name(p.name());
        port->set_engine(slot.engine->name());
        port->set_kind(p.kind() == PortKind::kNic ? "nic" : "app");
        port->set_link(p.link());
        const PortStats& ps = p.stats();
        v1::PortStats* st = port->mutable_stats();
        st->set_rx_frames(ps.rx_frames.Get());
        st->set_rx_bytes(ps.rx_bytes.Get());
        st->set_tx_frames(ps.tx_frames.Get());
        st->set_tx_bytes(ps.tx_bytes.Get());
        st->set_tx_dropped(ps.tx_dropped.Get());
        uint64_t rx_err = ps.rx_errors.Get();
        if (auto* app = dynamic_cast<AppPort*>(&p)) rx_err += app->ring_drops();
        st->set_rx_errors(rx_err);
        st->set_drop_malformed(ps.drop_malformed.Get());
        st->set_drop_spoofed(ps.drop_spoofed.Get());
        st->set_drop_takeover(ps.drop_takeover.Get());
      });
    });
  }
  for (auto& [name, group] : groups_) {
    for (const auto& worker : group.workers) {
      v1::Worker* w = out.add_workers();
      w->set_name(worker->name());
      w->set_core(worker->core());
      for (Engine* we : worker->engines()) w->add_engines(we->name());
      w->set_loops(worker->stats().loops.Get());
      w->set_sleeps(worker->stats().sleeps.Get());
      w->set_port_wakeups(worker->stats().port_wakeups.Get());
      w->set_stalls(worker->stats().stalls.Get());
      w->set_busy_percent(100.0 * worker->stats().busy_ns.Get() / uptime_ns);
    }
  }
  for (const auto& nic : nics_) {
    if (!nic) continue;
    NicStats s = nic->Stats();
    v1::Nic* n = out.add_nics();
    n->set_name(nic->name());
    n->set_device(nic->device());
    n->set_link_up(s.link_up);
    n->set_speed_mbps(s.speed_mbps);
    n->set_queues(nic->queues());
    n->set_rss(nic->rss());
    n->set_rx_interrupts(nic->rx_interrupts());
    n->set_rx_frames(s.rx_frames);
    n->set_tx_frames(s.tx_frames);
    n->set_rx_missed(s.rx_missed);
    n->set_rx_errors(s.rx_errors);
    n->set_tx_errors(s.tx_errors);
    n->set_rx_nombuf(s.rx_nombuf);
  }
  const memif::ServerStats& ms = memif_->stats();
  out.set_apps_attached(memif_->connections().size());
  out.set_apps_refused(ms.refused.Get());
  out.set_apps_detached(ms.disconnected.Get());
  return out;
}

std::string Daemon::StatsText() { return StatsTable(Snapshot()); }

std::vector<v1::App> Daemon::Apps() const {
  std::vector<v1::App> out;
  std::map<uint32_t, memif::Connection*> attached;
  for (memif::Connection* c : memif_->connections()) attached[c->id()] = c;
  for (const auto& [id, info] : apps_) {
    v1::App a;
    a.set_id(id);
    a.set_mac(info.config.mac());
    a.set_ipv4(info.config.ipv4());
    a.set_engine(info.config.engine());
    a.set_has_secret(!info.config.secret().empty());
    *a.mutable_ipv6() = info.config.ipv6();
    a.set_vlan(info.config.vlan());
    if (info.config.has_uid()) a.set_uid(info.config.uid());
    auto it = attached.find(id);
    if (it != attached.end()) {
      a.set_attached(true);
      a.set_pid(it->second->peer_cred().pid);
      a.set_app_name(it->second->peer_name());
    }
    out.push_back(std::move(a));
  }
  return out;
}

// The running binary, as an operator tells builds apart: its path and when it was written (Bazel
// redacts __DATE__ and __TIME__).
std::string BinaryIdentity() {
  char path[4096];
  ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
  if (n <= 0) return "binary unknown";
  path[n] = '\0';
  struct stat st;
  if (stat(path, &st) != 0) return path;
  return absl::StrCat(
      path, ", written ",
      absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", absl::FromTimeT(st.st_mtime), absl::UTCTimeZone()));
}

std::string BuildString() {
  static const std::string build =
      absl::StrCat("snapd ", kSnapdVersion, " (", BinaryIdentity(), ")");
  return build;
}

v1::DaemonInfo Daemon::Info() const {
  v1::DaemonInfo info;
  info.set_version(kSnapdVersion);
  info.set_build(BinaryIdentity());
  info.set_serving_since_unix_ms(serving_since_unix_ms_);
  info.set_upgrades(upgrades_);
  info.set_previous_pid(previous_pid_);
  info.set_uptime_ms((MonotonicNs() - started_ns_) / 1000000);
  info.set_pid(getpid());
  info.set_memif_socket(config_.memif_socket());
  info.set_control_socket(config_.control_socket());
  for (const std::string& kind : EngineRegistry::Global().Kinds()) info.add_engine_kinds(kind);
  return info;
}

absl::Status Daemon::RegisterApp(const config::App& app) {
  AppInfo info{app};
  ParseMac(app.mac(), &info.mac);
  ParseIpv4(app.ipv4(), &info.ipv4);
  memif::InterfaceConfig interface {
    app.id(), app.secret(), AppConnectedName(info.mac, info.ipv4)
  };
  if (app.has_uid()) interface.uid = app.uid();
  absl::Status status = memif_->AddInterface(interface);
  if (!status.ok()) return status;
  apps_.emplace(app.id(), info);
  return absl::OkStatus();
}

absl::Status Daemon::AddApp(config::App app) {
  if (app.engine().empty()) app.set_engine(engines_.front()->config.name());
  std::vector<const config::App*> others;
  for (const auto& [id, info] : apps_) others.push_back(&info.config);
  std::vector<std::string> engine_names;
  for (const auto& slot : engines_) engine_names.push_back(slot->config.name());
  absl::Status status = CheckApp(app, "", others, engine_names);
  if (!status.ok()) return status;
  status = RegisterApp(app);
  if (!status.ok()) return status;
  LOG(INFO) << "app " << app.id() << " registered: " << app.mac() << " " << app.ipv4() << " on "
            << app.engine();
  return absl::OkStatus();
}

absl::Status Daemon::RemoveApp(uint32_t id) {
  if (!apps_.count(id)) return absl::NotFoundError(absl::StrCat("no app with id ", id));
  // Detaches a connected app first (its port leaves the engine), then forgets the interface.
  absl::Status status = memif_->RemoveInterface(id, "removed by operator");
  apps_.erase(id);
  LOG(INFO) << "app " << id << " removed";
  return status;
}

absl::Status Daemon::CreateEngine(config::Engine e) {
  if (e.name().empty()) return absl::InvalidArgumentError("name: must not be empty");
  if (FindEngine(e.name()) != nullptr) {
    return absl::AlreadyExistsError(absl::StrCat("an engine named '", e.name(), "' exists"));
  }
  if (e.group().empty()) e.set_group(kDefaultGroup);
  auto group = groups_.find(e.group());
  if (group == groups_.end()) {
    return absl::InvalidArgumentError(absl::StrCat("group: no group named '", e.group(), "'"));
  }
  auto slot = NewEngineSlot(e);
  if (!slot.ok()) return slot.status();
  absl::Status status = Replace(group->second);
  if (!status.ok()) {  // e.g. a dedicated group without a core for it: undo
    engines_.pop_back();
    return status;
  }
  LOG(INFO) << "engine " << e.name() << " (" << e.kind() << ") created in group " << e.group();
  return absl::OkStatus();
}

absl::Status Daemon::SetGroup(const std::string& name, const std::optional<std::string>& mode,
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
  GroupPolicy policy;
  ParseSchedulingMode(cfg.mode(), &policy.mode);
  policy.cores.assign(cfg.cores().begin(), cfg.cores().end());
  policy.slo_ns = int64_t{cfg.slo_us()} * 1000;
  if (existing == groups_.end()) {
    groups_[name].config = cfg;
    groups_[name].policy = policy;
    LOG(INFO) << "group " << name << " created: " << cfg.mode();
    return absl::OkStatus();
  }
  Group& group = existing->second;
  // Check the new policy can place the engines before anything changes.
  absl::StatusOr<Placement> placement = Place(LoadsOf(group), policy);
  if (!placement.ok()) return placement.status();
  group.config = cfg;
  group.policy = policy;
  ApplyPlacement(group, *placement);
  LOG(INFO) << "group " << name << " is now " << cfg.mode() << " on "
            << group.placement.workers.size() << " worker(s)";
  return absl::OkStatus();
}

std::vector<v1::Group> Daemon::Groups() const {
  std::vector<v1::Group> out;
  int64_t now = MonotonicNs();
  for (const auto& [name, group] : groups_) {
    v1::Group g;
    g.set_name(name);
    g.set_mode(group.config.mode());
    for (int c : group.config.cores()) g.add_cores(c);
    g.set_slo_ns(int64_t{group.config.slo_us()} * 1000);
    for (const auto& slot : engines_) {
      if (slot->config.group() == name) g.add_engines(slot->engine->name());
    }
    g.set_workers(group.workers.size());
    g.set_scale_outs(group.scale_outs);
    g.set_scale_ins(group.scale_ins);
    g.set_last_change_ms_ago(group.last_change_ns == 0 ? -1
                                                       : (now - group.last_change_ns) / 1000000);
    g.set_last_rebalance_us(group.last_rebalance_us);
    out.push_back(std::move(g));
  }
  return out;
}

absl::Status Daemon::DestroyEngine(const std::string& name) {
  auto it = std::find_if(engines_.begin(), engines_.end(),
                         [&](const auto& s) { return s->config.name() == name; });
  if (it == engines_.end())
    return absl::NotFoundError(absl::StrCat("no engine named '", name, "'"));
  std::vector<std::string> ports;
  EngineSlot& slot = **it;
  OnEngine(slot, [&] { ports = slot.engine->PortNames(); });
  std::vector<std::string> apps;
  for (const auto& [id, info] : apps_) {
    if (info.config.engine() == name) apps.push_back(absl::StrCat(id));
  }
  if (!ports.empty() || !apps.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("engine '", name, "' still serves", ports.empty() ? "" : " ports ",
                     absl::StrJoin(ports, ","), apps.empty() ? "" : " apps ",
                     absl::StrJoin(apps, ","), "; remove them first"));
  }
  if (slot.polled) slot.worker->RemoveEngine(slot.engine.get());
  std::string group = slot.config.group();
  engines_.erase(it);
  (void)Replace(groups_.at(group));  // fewer engines always fit
  LOG(INFO) << "engine " << name << " destroyed";
  return absl::OkStatus();
}

void Daemon::StopServingTasks() {
  {
    std::lock_guard<std::mutex> lock(tasks_mu_);
    stopping_ = true;
  }
  if (tasks_fd_) RunTasks();  // anyone still waiting gets an answer
}

Daemon::~Daemon() {
  StopServingTasks();
  if (ready_) LOG(INFO) << "final stats\n" << StatsText();
  // Apps first: each detach removes its port from its engine while the worker still runs.
  memif_.reset();
  for (auto& slot : engines_) {
    OnEngine(*slot, [&] {
      for (const std::string& name : slot->engine->PortNames()) slot->engine->RemovePort(name);
    });
    if (slot->polled) slot->worker->RemoveEngine(slot->engine.get());
    slot->polled = false;
  }
  groups_.clear();  // joins the workers
  engines_.clear();
  nics_.clear();
  // Handed over: EAL's cleanup closes every device still probed, and closing a tap takes its
  // kernel interface down under the new snapd. Our memory (no hugepages) goes with the process.
  if (eal_started_ && !handed_over_) CleanupEal();
  if (ready_) LOG(INFO) << "snapd stopped";
}

}  // namespace snapd
