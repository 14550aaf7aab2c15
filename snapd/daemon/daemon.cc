#include "snapd/daemon/daemon.h"

#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <limits>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "base/addr.h"
#include "base/clock.h"
#include "glog/logging.h"
#include "ipc/socket.h"
#include "snapd/daemon/app_port.h"
#include "snapd/daemon/config.h"
#include "snapd/daemon/trusted_path.h"

namespace snapd {
namespace {

std::string AppPortName(uint32_t id) { return absl::StrCat("app", id); }

}  // namespace

std::string AppConnectedName(uint64_t mac, uint32_t ipv4) {
  uint8_t b[6];
  MacToBytes(mac, b);
  const auto* ip = reinterpret_cast<const uint8_t*>(&ipv4);
  return absl::StrFormat("snap/%02x%02x%02x%02x%02x%02x/%02x%02x%02x%02x", b[0], b[1], b[2], b[3],
                         b[4], b[5], ip[0], ip[1], ip[2], ip[3]);
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

Daemon::Daemon(NicDriver& driver)
    : driver_(driver),
      overload_fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)),
      scheduler_(std::make_unique<Scheduler>(overload_fd_.get())) {
  scheduler_->set_events(&events_);
  loop_.set_on_tick([this] { return Tick(); });
  loop_.set_on_usr1([this] { LOG(INFO) << "stats\n" << StatsText(); });
  // An engine over its SLO in a compacting group: rebalance now, not at the next tick.
  loop_.Watch(overload_fd_.get(), [this] {
    uint64_t count;
    (void)!read(overload_fd_.get(), &count, sizeof(count));
    next_tick_ns_ = 0;
  });
}

absl::StatusOr<std::unique_ptr<Daemon>> Daemon::Start(const config::SnapdConfig& config,
                                                      NicDriver& nics) {
  return Restart(config, UniqueFd(), {}, nullptr, {}, nics);
}

absl::StatusOr<std::unique_ptr<Daemon>> Daemon::Restart(
    const config::SnapdConfig& config, UniqueFd memif_listener,
    std::vector<memif::ConnectionHandoff> connections, Adopted* adopted, const EnginePrep& prepare,
    NicDriver& nics) {
  std::unique_ptr<Daemon> daemon(new Daemon(nics));
  daemon->config_ = config;
  absl::Status status =
      daemon->Init(std::move(memif_listener), std::move(connections), adopted, prepare);
  if (!status.ok()) return status;
  return daemon;
}

absl::Status Daemon::Init(UniqueFd memif_listener,
                          std::vector<memif::ConnectionHandoff> connections, Adopted* adopted,
                          const EnginePrep& prepare) {
  // Ours and closed to others (SECURITY.md), or snapd does not start.
  absl::Status status = PrepareRunDir(config_.run_dir(), geteuid());
  if (!status.ok()) return status;
  // A snapd taking over a listener or apps (after a crash) that fails to start leaves them as it
  // found them: no app told to go, the socket file in place. The service manager's next try
  // takes them from its store again.
  const bool taking_over = static_cast<bool>(memif_listener) || !connections.empty();
  absl::Cleanup leave_as_found = [&] {
    if (!status.ok() && taking_over && memif_ != nullptr) memif_->Relinquish();
  };

  // The memif socket first: a second snapd stops here, before DPDK says a word.
  auto server = memif_listener
                    ? memif::MemifServer::Adopt(MemifOptions(), std::move(memif_listener))
                    : memif::MemifServer::Create(MemifOptions());
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

  status = driver_.Start(config_);
  if (!status.ok()) return status;
  driver_started_ = true;
  status = InitEngines();
  if (!status.ok()) return status;
  if (prepare) {
    for (const auto& slot : scheduler_->engines()) prepare(slot->config.name(), *slot->engine);
  }
  status = OpenNics();
  if (!status.ok()) return status;
  for (memif::ConnectionHandoff& c : connections) {
    const uint32_t id = c.id;
    absl::Status outcome = memif_->AdoptConnection(std::move(c));
    if (adopted != nullptr) adopted->emplace_back(id, std::move(outcome));
  }
  status = scheduler_->PlaceAll();
  if (!status.ok()) return status;
  for (const auto& slot : scheduler_->engines()) {
    LOG(INFO) << "engine " << slot->engine->name() << " (" << slot->engine->kind() << ") in group "
              << slot->config.group() << " on worker " << slot->worker->name()
              << (slot->worker->core() >= 0 ? absl::StrCat(" pinned to core ", slot->worker->core())
                                            : std::string());
  }
  ready_ = true;
  started_ns_ = MonotonicNs();
  history_.serving_since_unix_ms = absl::ToUnixMillis(absl::Now());
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
      [this, limiter = LogLimiter(10)](const ucred& peer, absl::string_view reason) mutable {
        events_.Add("app_refused", absl::StrCat("pid ", peer.pid),
                    absl::StrCat("uid ", peer.uid, ": ", reason), /*limited=*/true);
        std::string left_out;
        if (!limiter.Allow(MonotonicNs(), &left_out)) return;
        LOG(WARNING) << "app refused (pid " << peer.pid << ", uid " << peer.uid << "): " << reason
                     << left_out;
      });
  // The memif server's fds wake the loop; Tick serves them (never during an upgrade's waits: no
  // app attaches while one runs).
  loop_.Watch(memif_->epoll_fd(), [] {});
  return absl::OkStatus();
}

absl::Status Daemon::InitEngines() {
  for (const config::Group& g : config_.groups()) scheduler_->AddGroup(g);
  for (const config::Engine& e : config_.engines()) {
    auto slot = scheduler_->AddEngine(e);
    if (!slot.ok()) return slot.status();
  }
  return absl::OkStatus();
}

int64_t Daemon::Tick() {
  // Handed over (the loop ends at its next wake-up): the apps and engines are the new snapd's.
  if (handed_over_) return MonotonicNs() + 100000000;
  memif_->Poll(0);
  // Apps whose rings broke the protocol: their ports stopped themselves; disconnect them.
  memif_->DropFailedConnections();
  const int64_t now = MonotonicNs();
  if (now >= next_tick_ns_) next_tick_ns_ = scheduler_->Tick();
  if (now >= next_drop_check_ns_) {
    NoteDrops(now);
    ExpireCarriedCaptures(now);
    next_drop_check_ns_ = now + 1000000000;
  }
  if (config_.stats_interval_s() > 0) {
    if (next_stats_ns_ == 0) next_stats_ns_ = now + config_.stats_interval_s() * 1000000000ll;
    if (now >= next_stats_ns_) {
      LOG(INFO) << "stats\n" << StatsText();
      next_stats_ns_ = now + config_.stats_interval_s() * 1000000000ll;
    }
  }
  const int64_t next = std::min(next_tick_ns_, next_drop_check_ns_);
  return next_stats_ns_ != 0 ? std::min(next, next_stats_ns_) : next;
}

absl::StatusOr<std::shared_ptr<Capture>> Daemon::StartCapture(
    CaptureSpec spec, std::unique_ptr<CaptureFilter> filter,
    std::vector<std::string>* descriptions) {
  std::sort(spec.ports.begin(), spec.ports.end());
  spec.ports.erase(std::unique(spec.ports.begin(), spec.ports.end()), spec.ports.end());
  absl::Status room = CaptureRoomFor(spec);
  if (!room.ok()) return room;
  // Where each port is, what it is, and whether a capture has it already.
  std::vector<EngineSlot*> where(spec.ports.size(), nullptr);
  descriptions->assign(spec.ports.size(), "");
  std::string busy;
  for (const auto& slot : scheduler_->engines()) {
    scheduler_->OnEngine(*slot, [&] {
      slot->engine->ForEachPort([&](Port& p) {
        for (size_t i = 0; i < spec.ports.size(); ++i) {
          if (p.name() != spec.ports[i]) continue;
          where[i] = slot.get();
          (*descriptions)[i] =
              absl::StrCat(p.kind() == PortKind::kNic ? "queue of NIC " : "app port ", p.link(),
                           ", engine ", slot->config.name(), " (", slot->engine->kind(), ")");
          if (p.tap() != nullptr) busy = p.name();
        }
      });
    });
  }
  for (size_t i = 0; i < spec.ports.size(); ++i) {
    if (where[i] != nullptr) continue;
    // A registered app that is not attached: its port gets the tap when it attaches.
    const bool app = std::any_of(apps_.begin(), apps_.end(), [&](const auto& a) {
      return AppPortName(a.first) == spec.ports[i];
    });
    if (!app) {
      return absl::NotFoundError(absl::StrCat(
          "port '", spec.ports[i], "': no engine has it, nor is it an app's (snapctl ports)"));
    }
    (*descriptions)[i] =
        absl::StrCat("app port ", spec.ports[i], " (not attached when the capture began)");
    if (CaptureOf(spec.ports[i]) != nullptr) busy = spec.ports[i];
  }
  if (!busy.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("port '", busy, "' is being captured already: one capture a port"));
  }
  auto made = Capture::Create(std::move(spec), std::move(filter));
  if (!made.ok()) return made.status();
  std::shared_ptr<Capture> capture(std::move(*made));
  for (size_t i = 0; i < capture->ports().size(); ++i) {
    PortCapture* tap = capture->ports()[i].get();
    if (where[i] == nullptr) continue;  // an app's, tapped as it attaches (OnAppConnected)
    scheduler_->OnEngine(*where[i], [&] {
      where[i]->engine->ForEachPort([&](Port& p) {
        if (p.name() == tap->port()) p.set_tap(tap);
      });
    });
  }
  captures_.push_back(capture);
  return capture;
}

absl::Status Daemon::CaptureRoomFor(const CaptureSpec& spec) const {
  if (captures_.size() >= kMaxCaptures) {
    return absl::ResourceExhaustedError(
        absl::StrCat(kMaxCaptures, " captures run already: try again when one has ended"));
  }
  size_t ring_bytes = Capture::RingBytes(spec);
  for (const auto& c : captures_) ring_bytes += Capture::RingBytes(c->spec());
  if (ring_bytes > kMaxCaptureBytes) {
    return absl::ResourceExhaustedError(absl::StrCat("buffer_kb: the captures' rings would take ",
                                                     ring_bytes >> 20, " MiB, more than ",
                                                     kMaxCaptureBytes >> 20, " MiB"));
  }
  return absl::OkStatus();
}

absl::Status Daemon::AdoptCapture(CaptureSpec spec, std::unique_ptr<CaptureFilter> filter,
                                  uint64_t id, int64_t started_unix_ns) {
  if (id == 0) return absl::InvalidArgumentError("a carried capture without an id");
  std::sort(spec.ports.begin(), spec.ports.end());
  spec.ports.erase(std::unique(spec.ports.begin(), spec.ports.end()), spec.ports.end());
  absl::Status room = Capture::Check(spec);
  if (room.ok()) room = CaptureRoomFor(spec);
  if (!room.ok()) return room;
  for (const std::string& port : spec.ports) {
    if (CaptureOf(port) != nullptr) {
      return absl::FailedPreconditionError(absl::StrCat("port '", port, "' is captured twice"));
    }
  }
  for (const auto& c : captures_) {
    if (c->id() == id) return absl::AlreadyExistsError(absl::StrCat("capture ", id, " twice"));
  }
  auto made = Capture::Create(std::move(spec), std::move(filter), id, started_unix_ns);
  if (!made.ok()) return made.status();
  // No engine here is polled yet: StartEngine taps the ports as their engines move in.
  captures_.push_back(std::move(*made));
  awaiting_resume_[id] = std::numeric_limits<int64_t>::max();  // until we serve (BeginServing)
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<Capture>> Daemon::ResumeCapture(uint64_t id, uint64_t written,
                                                               std::vector<PortTotals> prior) {
  auto waiting = awaiting_resume_.find(id);
  auto capture = std::find_if(captures_.begin(), captures_.end(),
                              [id](const auto& c) { return c->id() == id; });
  if (waiting == awaiting_resume_.end() || capture == captures_.end()) {
    return absl::NotFoundError(
        absl::StrCat("no capture ", id, " waits here to go on (it ended, or is going on already)"));
  }
  absl::Status status = (*capture)->Resume(written, std::move(prior));
  if (!status.ok()) return status;
  awaiting_resume_.erase(waiting);
  return *capture;
}

void Daemon::ExpireCarriedCaptures(int64_t now) {
  for (auto it = awaiting_resume_.begin(); it != awaiting_resume_.end();) {
    if (now < it->second) {
      ++it;
      continue;
    }
    const uint64_t id = it->first;
    it = awaiting_resume_.erase(it);
    for (const auto& c : captures_) {
      if (c->id() != id) continue;
      std::shared_ptr<Capture> capture = c;  // StopCapture erases it from captures_
      events_.Add("capture", absl::StrCat("port ", absl::StrJoin(capture->spec().ports, ",")),
                  absl::StrCat("ended: carried by the upgrade, not taken up within ",
                               kResumeWithinNs / 1000000000, " s of it; ", capture->Unread(),
                               " frame(s) taken since were not read, ", capture->dropped(),
                               " dropped in all as its ring was full"));
      StopCapture(capture);
      break;
    }
  }
}

PortCapture* Daemon::CaptureOf(const std::string& port) const {
  for (const auto& capture : captures_) {
    for (const auto& tap : capture->ports()) {
      if (tap->port() == port) return tap.get();
    }
  }
  return nullptr;
}

void Daemon::StopCapture(const std::shared_ptr<Capture>& capture) {
  auto it = std::find(captures_.begin(), captures_.end(), capture);
  if (it == captures_.end()) return;
  for (const auto& slot : scheduler_->engines()) {
    scheduler_->OnEngine(*slot, [&] {
      slot->engine->ForEachPort([&](Port& p) {
        for (const auto& tap : capture->ports()) {
          if (p.tap() == tap.get()) p.set_tap(nullptr);
        }
      });
    });
  }
  captures_.erase(it);
}

std::vector<std::string> Daemon::NicPorts(const std::string& nic) {
  std::vector<std::string> out;
  for (const auto& slot : scheduler_->engines()) {
    scheduler_->OnEngine(*slot, [&] {
      slot->engine->ForEachPort([&](Port& p) {
        if (p.kind() == PortKind::kNic && p.link() == nic) out.push_back(p.name());
      });
    });
  }
  return out;
}

void Daemon::NoteDrops(int64_t now) {
  const uint64_t per_s = config_.drop_event_per_s() > 0 ? config_.drop_event_per_s() : 1000;
  std::map<std::string, uint64_t> seen;
  for (const auto& slot : scheduler_->engines()) {
    const std::string& name = slot->config.name();
    const uint64_t drops = slot->engine->stats().drops.Get();
    seen[name] = drops;
    auto before = drops_seen_.find(name);
    if (before == drops_seen_.end() || drops < before->second || drops_seen_ns_ == 0) continue;
    const double seconds = (now - drops_seen_ns_) / 1e9;
    const uint64_t dropped = drops - before->second;
    if (seconds > 0 && dropped > per_s * seconds) {
      events_.Add("drops", absl::StrCat("engine ", name),
                  absl::StrFormat("dropped %u frames in %.1f s, over the threshold of %u a second "
                                  "(snapctl stats: the ports' counters say why)",
                                  dropped, seconds, per_s));
    }
  }
  drops_seen_ = std::move(seen);
  drops_seen_ns_ = now;
}

absl::Status Daemon::OpenNics() {
  for (int i = 0; i < config_.nics_size(); ++i) {
    absl::Status status = OpenNic(i);
    if (!status.ok()) return status;
  }
  return absl::OkStatus();
}

absl::Status Daemon::OpenNic(int index) {
  if (index < 0 || index >= config_.nics_size()) {
    return absl::InvalidArgumentError(absl::StrCat("no NIC ", index));
  }
  if (nic(index) != nullptr)
    return absl::FailedPreconditionError(absl::StrCat("NIC ", index, " is open"));
  const config::Nic& cfg = config_.nics(index);
  auto nic = driver_.Open(cfg, index);
  if (!nic.ok()) return nic.status();
  if (nics_.size() <= static_cast<size_t>(index)) nics_.resize(index + 1);
  nics_[index] = std::move(*nic);
  for (uint16_t q = 0; q < nics_[index]->queues(); ++q) {
    EngineSlot* slot = scheduler_->Find(cfg.engines(q % cfg.engines_size()));
    std::unique_ptr<Port> port = nics_[index]->TakeQueuePort(q);
    absl::Status status;
    scheduler_->OnEngine(*slot, [&] { status = slot->engine->AddPort(std::move(port), {}); });
    if (!status.ok()) {
      CloseNic(index, nullptr);  // the queues attached so far leave their engines with it
      return status;
    }
  }
  return absl::OkStatus();
}

void Daemon::CloseNic(int index, std::vector<engines::PortCounters>* port_counters) {
  if (static_cast<size_t>(index) >= nics_.size() || !nics_[index]) return;
  const std::string link = nics_[index]->name();
  for (auto& slot : scheduler_->engines()) {
    scheduler_->OnEngine(*slot, [&] {
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
  for (auto& slot : scheduler_->engines()) {
    scheduler_->OnEngine(*slot, [&] {
      for (const engines::PortCounters& pc : saved) slot->engine->ContinuePortCounters(pc);
    });
  }
}

void Daemon::OnAppConnected(memif::Connection& conn) {
  const AppInfo& app = apps_.at(conn.id());
  EngineSlot* slot = scheduler_->Find(app.config.engine());
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
  attach.set_app_id(conn.id());
  auto port = std::make_unique<AppPort>(AppPortName(conn.id()), conn, 0);
  // An app that attaches again while its port is captured: the capture goes on on the new port.
  port->set_tap(CaptureOf(port->name()));
  absl::Status status;
  scheduler_->OnEngine(*slot, [&] { status = slot->engine->AddPort(std::move(port), attach); });
  std::string left_out;
  const bool log = app_log_.Allow(MonotonicNs(), &left_out);  // an app may churn at will
  if (!status.ok()) {
    if (log) LOG(ERROR) << "app " << conn.id() << ": cannot attach: " << status << left_out;
    events_.Add("app_refused", absl::StrCat("app ", conn.id()),
                absl::StrCat("cannot attach to ", slot->engine->name(), ": ", status.message()),
                /*limited=*/true);
    memif_->Disconnect(conn.id(), status.message());
    return;
  }
  events_.Add("app_attached", absl::StrCat("app ", conn.id()),
              absl::StrCat("'", conn.peer_name(), "' (pid ", conn.peer_cred().pid, ", uid ",
                           conn.peer_cred().uid, ") to ", slot->engine->name(), " as ",
                           app.config.mac(), " ", app.config.ipv4()),
              /*limited=*/true);
  if (log) {
    LOG(INFO) << "app " << conn.id() << " ('" << conn.peer_name() << "', pid "
              << conn.peer_cred().pid << ") attached to " << slot->engine->name() << " as "
              << app.config.mac() << " " << app.config.ipv4() << left_out;
  }
  if (observer_ != nullptr) observer_->AppAttached(conn.id());
}

void Daemon::OnAppDisconnected(memif::Connection& conn, absl::string_view reason) {
  auto it = apps_.find(conn.id());
  if (it == apps_.end()) return;
  EngineSlot* slot = scheduler_->Find(it->second.config.engine());
  // The port must be gone from the engine before the server unmaps the app's memory.
  scheduler_->OnEngine(*slot, [&] { slot->engine->RemovePort(AppPortName(conn.id())); });
  if (observer_ != nullptr) observer_->AppDetached(conn.id());
  events_.Add("app_detached", absl::StrCat("app ", conn.id()), std::string(reason),
              /*limited=*/true);
  std::string left_out;
  if (!app_log_.Allow(MonotonicNs(), &left_out)) return;
  LOG(INFO) << "app " << conn.id() << " detached: " << reason << left_out;
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
  if (app.engine().empty()) app.set_engine(scheduler_->engines().front()->config.name());
  std::vector<const config::App*> others;
  for (const auto& [id, info] : apps_) others.push_back(&info.config);
  std::vector<std::string> engine_names;
  for (const auto& slot : scheduler_->engines()) engine_names.push_back(slot->config.name());
  absl::Status status = CheckApp(app, "", others, engine_names);
  if (!status.ok()) return status;
  status = RegisterApp(app);
  if (!status.ok()) return status;
  LOG(INFO) << "app " << app.id() << " registered: " << app.mac() << " " << app.ipv4() << " on "
            << app.engine();
  return Changed(absl::OkStatus());
}

absl::Status Daemon::RemoveApp(uint32_t id) {
  if (!apps_.count(id)) return absl::NotFoundError(absl::StrCat("no app with id ", id));
  // Detaches a connected app first (its port leaves the engine), then forgets the interface.
  absl::Status status = memif_->RemoveInterface(id, "removed by operator");
  apps_.erase(id);
  LOG(INFO) << "app " << id << " removed";
  (void)Changed(absl::OkStatus());  // removed whether or not a connection was there to drop
  return status;
}

absl::Status Daemon::DestroyEngine(const std::string& name) {
  EngineSlot* slot = scheduler_->Find(name);
  if (slot == nullptr) return absl::NotFoundError(absl::StrCat("no engine named '", name, "'"));
  std::vector<std::string> ports;
  scheduler_->OnEngine(*slot, [&] { ports = slot->engine->PortNames(); });
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
  return Changed(scheduler_->DestroyEngine(name));
}

absl::StatusOr<std::unique_ptr<Daemon>> Daemon::Adopt(const config::SnapdConfig& config,
                                                      UniqueFd memif_listener, bool defer_nics,
                                                      std::vector<int>* deferred_nics,
                                                      NicDriver& nics) {
  std::unique_ptr<Daemon> daemon(new Daemon(nics));
  Daemon& d = *daemon;
  d.config_ = config;
  // Failing, let go without a word: the old snapd still serves everything.
  absl::Cleanup withdraw = [&d] { d.Withdraw(); };
  absl::Status status = d.driver_.Start(d.config_);
  if (!status.ok()) return status;
  d.driver_started_ = true;
  status = d.InitEngines();
  if (!status.ok()) return status;
  for (auto& slot : d.scheduler_->engines()) slot->ready = false;  // polled only once moved
  // Workers and NICs now, so that moving an engine in only adds it to its worker: each group's
  // workers as its placement of all its engines asks, and every NIC that can be open in two
  // processes at once (a packet socket, a multi-queue tap; a PCI device cannot).
  d.scheduler_->set_holding(true);
  status = d.scheduler_->ReplaceAll();  // creates the workers; no engine is ready to add yet
  if (!status.ok()) return status;
  for (int i = 0; i < d.config_.nics_size(); ++i) {
    absl::Status opened =
        defer_nics ? absl::UnavailableError("deferred by the upgrade's faults") : d.OpenNic(i);
    if (!opened.ok()) {
      LOG(INFO) << "upgrade: NIC " << i << " opens as the first engine moves in ("
                << opened.message() << ")";
      deferred_nics->push_back(i);
    }
  }
  auto server = memif::MemifServer::Adopt(d.MemifOptions(), std::move(memif_listener));
  if (!server.ok()) return server.status();
  status = d.InitMemif(std::move(*server));
  if (!status.ok()) return status;
  std::move(withdraw).Cancel();
  return daemon;
}

absl::Status Daemon::FinishUpgrade() {
  scheduler_->set_holding(false);
  return scheduler_->ReplaceAll();  // drops the workers no engine needs
}

void Daemon::BeginServing(const ServiceHistory& history) {
  ready_ = true;
  started_ns_ = MonotonicNs();
  history_ = history;
  // Captures an upgrade carried here wait for snapctl from now on.
  for (auto& [id, until] : awaiting_resume_) until = started_ns_ + kResumeWithinNs;
}

config::SnapdConfig Daemon::CurrentConfig() const {
  config::SnapdConfig cfg = config_;
  cfg.clear_apps();
  for (const auto& [id, info] : apps_) *cfg.add_apps() = info.config;
  cfg.clear_engines();
  for (const auto& slot : scheduler_->engines()) *cfg.add_engines() = slot->config;
  cfg.clear_groups();
  for (const config::Group* g : scheduler_->GroupConfigs()) *cfg.add_groups() = *g;
  return cfg;
}

std::vector<std::string> Daemon::EngineNames() const {
  std::vector<std::string> names;
  for (const auto& slot : scheduler_->engines()) names.push_back(slot->config.name());
  return names;
}

Engine* Daemon::FindEngine(const std::string& name) {
  EngineSlot* slot = Slot(name);
  return slot != nullptr ? slot->engine.get() : nullptr;
}

void Daemon::OnEngine(const std::string& name, const std::function<void()>& fn) {
  EngineSlot* slot = Slot(name);
  if (slot != nullptr) scheduler_->OnEngine(*slot, fn);
}

int64_t Daemon::StopEngine(const std::string& name) {
  EngineSlot* slot = Slot(name);
  return slot != nullptr ? scheduler_->Stop(*slot) : MonotonicNs();
}

void Daemon::ResumeEngine(const std::string& name) {
  EngineSlot* slot = Slot(name);
  if (slot != nullptr && slot->worker != nullptr && !slot->polled) scheduler_->Resume(*slot);
}

absl::StatusOr<int64_t> Daemon::StartEngine(const std::string& name) {
  EngineSlot* slot = Slot(name);
  if (slot == nullptr) return absl::NotFoundError(absl::StrCat("no engine named ", name));
  if (slot->ready) {
    return absl::FailedPreconditionError(absl::StrCat("engine ", name, " moved in already"));
  }
  // Captures carried by the upgrade go on on the engine's ports from its first poll here.
  slot->engine->ForEachPort([&](Port& p) { p.set_tap(CaptureOf(p.name())); });
  slot->ready = true;
  absl::Status status = scheduler_->Replace(slot->config.group());
  if (!status.ok()) return status;
  return slot->polled_since_ns;
}

Nic* Daemon::nic(int index) {
  return index >= 0 && static_cast<size_t>(index) < nics_.size() ? nics_[index].get() : nullptr;
}

bool Daemon::NicPolled(int index) {
  if (index < 0 || index >= config_.nics_size() || nic(index) == nullptr) return false;
  const config::Nic& cfg = config_.nics(index);
  for (uint16_t q = 0; q < nics_[index]->queues(); ++q) {
    EngineSlot* owner = Slot(cfg.engines(q % cfg.engines_size()));
    if (owner != nullptr && owner->polled) return true;
  }
  return false;
}

void Daemon::Withdraw() {
  for (auto& slot : scheduler_->engines()) {
    scheduler_->Stop(*slot);
    for (const std::string& name : slot->engine->PortNames()) slot->engine->RemovePort(name);
  }
  if (memif_) memif_->Relinquish();
  for (auto& nic : nics_) {
    if (nic) nic->Abandon();
  }
  // No engine here touches their rings again; the snapd serving now goes on with them.
  for (const auto& c : captures_) c->set_handed_over();
  handed_over_ = true;
}

Daemon::~Daemon() {
  loop_.StopServingTasks();
  if (ready_) LOG(INFO) << "final stats\n" << StatsText();
  // Apps first: each detach removes its port from its engine while the worker still runs.
  memif_.reset();
  for (auto& slot : scheduler_->engines()) {
    scheduler_->OnEngine(*slot, [&] {
      for (const std::string& name : slot->engine->PortNames()) slot->engine->RemovePort(name);
    });
  }
  scheduler_.reset();  // joins the workers
  nics_.clear();
  // Handed over: EAL's cleanup closes every device still probed, and closing a tap takes its
  // kernel interface down under the new snapd. Our memory (no hugepages) goes with the process.
  if (driver_started_ && !handed_over_) driver_.Stop();
  if (ready_) LOG(INFO) << "snapd stopped";
}

}  // namespace snapd
