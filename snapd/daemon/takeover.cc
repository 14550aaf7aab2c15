// Transparent upgrade: the old snapd starts the new binary, hands it the apps' connections and
// the control socket while it keeps serving (brownout), then moves the engines one at a time
// (each one's blackout), and exits. See upgrade/README.md for the plan and upgrade/takeover.proto
// for the messages.
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>

#include "absl/cleanup/cleanup.h"
#include "absl/flags/flag.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "glog/logging.h"
#include "snapd/daemon/app_port.h"
#include "snapd/daemon/daemon.h"
#include "snapd/daemon/service_manager.h"
#include "snapd/daemon/trusted_path.h"
#include "upgrade/fd_channel.h"
#include "upgrade/memif_handoff.h"
#include "upgrade/takeover.pb.h"

// Testing hooks for the new binary (snapctl upgrade --new_args=...): die as a kill -9 would at a
// phase (brownout, blackout, half: after half the engines moved; publish: in a worker, in the
// middle of publishing a batch, once engines moved), fail the first move with an error (error),
// or claim another protocol version.
ABSL_FLAG(std::string, takeover_fault, "", "Testing: die during this phase of a takeover.");
ABSL_FLAG(int, takeover_version, 0, "Testing: claim this takeover protocol version.");
ABSL_FLAG(bool, takeover_defer_nics, false,
          "Testing: open no NIC beside the old snapd, as with a PCI device that cannot be open in "
          "two processes: each moves in the first blackout.");

namespace snapd {
namespace {

namespace wire = upgrade::wire;

constexpr uint32_t kTakeoverVersion = 1;
constexpr absl::Duration kStartTimeout = absl::Seconds(30);  // the new binary's EAL and engines
constexpr absl::Duration kStepTimeout = absl::Seconds(10);

absl::Status Send(int sock, const wire::Envelope& e, const std::vector<UniqueFd>& fds = {}) {
  std::vector<int> raw;
  for (const UniqueFd& fd : fds) raw.push_back(fd.get());
  return upgrade::SendFdMessage(sock, e.SerializeAsString(), raw);
}

struct Received {
  wire::Envelope envelope;
  std::vector<UniqueFd> fds;
};

absl::StatusOr<Received> Receive(int sock, absl::Duration timeout) {
  auto raw = upgrade::ReceiveFdMessage(sock, timeout);
  if (!raw.ok()) return raw.status();
  Received r;
  if (!r.envelope.ParseFromString(raw->bytes)) {
    return absl::InvalidArgumentError("takeover message does not parse");
  }
  r.fds = std::move(raw->fds);
  if (r.envelope.has_failed()) {
    return absl::AbortedError(absl::StrCat("the other snapd failed in ",
                                           r.envelope.failed().phase(), ": ",
                                           r.envelope.failed().reason()));
  }
  return r;
}

int64_t ElapsedUs(int64_t since_ns) { return (MonotonicNs() - since_ns) / 1000; }

// Takes the cursors of the engine's app rings from their shared headers again, after the other
// snapd served them.
void ResyncAppRings(Engine& engine) {
  ForEachAppPort(engine, [](AppPort& app) { app.Resync(); });
}

// NicStats <-> its wire form.
void NicCountersToWire(int index, const NicStats& s, wire::NicCounters* out) {
  out->set_index(index);
#define SNAPD_TO_WIRE(name, column, meaning) out->set_##name(s.name);
  SNAPD_NIC_COUNTERS(SNAPD_TO_WIRE)
#undef SNAPD_TO_WIRE
}
NicStats NicCountersFromWire(const wire::NicCounters& in) {
  NicStats s;
#define SNAPD_FROM_WIRE(name, column, meaning) s.name = in.name();
  SNAPD_NIC_COUNTERS(SNAPD_FROM_WIRE)
#undef SNAPD_FROM_WIRE
  return s;
}

// Starts the checked executable `exe` as the new snapd (argv[0] `name`, then `extra_args`), at
// nice value `nice`, the upgrade channel on its fd 3 and *channel our end. It runs from the fd that
// was checked (fexecve), never from the path again; a script's interpreter is run the same way,
// from its own checked fd, on /dev/fd/4 (ExecArgv): the kernel never looks a path up. Returns its
// pid.
absl::StatusOr<pid_t> StartNewSnapd(const TrustedExecutable& exe, const std::string& name,
                                    const std::vector<std::string>& extra_args, int nice,
                                    UniqueFd* channel) {
  // In the child: the channel at 3, the executable (an ELF binary or a script) at 4, a script's
  // interpreter at 5. Our copies go at 6 or above first, so that no dup2 below lands on one.
  constexpr int kExeFd = 4, kInterpreterFd = 5, kFirstFree = 6;
  UniqueFd exe_fd(fcntl(exe.fd.get(), F_DUPFD_CLOEXEC, kFirstFree));
  if (!exe_fd) return absl::InternalError(absl::StrCat("dup: ", strerror(errno)));
  UniqueFd interpreter_fd;
  if (exe.is_script()) {
    interpreter_fd.reset(fcntl(exe.interpreter.get(), F_DUPFD_CLOEXEC, kFirstFree));
    if (!interpreter_fd) return absl::InternalError(absl::StrCat("dup: ", strerror(errno)));
  }
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
    return absl::InternalError(absl::StrCat("socketpair: ", strerror(errno)));
  }
  *channel = UniqueFd(sv[0]);
  // Built before fork: the child of a threaded process may only make async-signal-safe calls.
  std::vector<std::string> snapd_args = {"--takeover_fd=3"};
  snapd_args.insert(snapd_args.end(), extra_args.begin(), extra_args.end());
  std::vector<std::string> args = ExecArgv(exe, name, kExeFd, snapd_args);
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  sigset_t none;
  sigemptyset(&none);
  pid_t child = fork();
  if (child == 0) {
    // The new snapd: stdin, stdout, stderr and the channel on fd 3, nothing else of ours. Not
    // every fd is close-on-exec (DPDK's tap and packet sockets are not): a leaked one would keep
    // an old NIC alive in the new process, one more with every upgrade.
    if (sv[1] == 3) {
      fcntl(3, F_SETFD, 0);
    } else {
      dup2(sv[1], 3);
    }
    // dup2 clears close-on-exec: the executable and the interpreter get it back, so that the exec
    // closes them; a script stays open for its interpreter to read from /dev/fd/4 (the new snapd
    // closes it first thing, see main.cc).
    dup2(exe_fd.get(), kExeFd);
    int run = kExeFd;
    if (exe.is_script()) {
      dup2(interpreter_fd.get(), kInterpreterFd);
      fcntl(kInterpreterFd, F_SETFD, FD_CLOEXEC);
      run = kInterpreterFd;
    } else {
      fcntl(kExeFd, F_SETFD, FD_CLOEXEC);
    }
    close_range(kFirstFree, ~0U, 0);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    setpriority(PRIO_PROCESS, 0, nice);  // not the raised priority of the thread that forked
    fexecve(run, argv.data(), environ);
    _exit(127);
  }
  close(sv[1]);
  if (child < 0) return absl::InternalError(absl::StrCat("fork: ", strerror(errno)));
  return child;
}

// The blackout of a move, from the old worker's last poll to the new worker's first, and the
// hand-over around it (see EngineMove in control/proto/snapd.proto).
v1::EngineMove TimeMove(const std::string& name, int64_t t_asked, int64_t t_stopped, int64_t t_sent,
                        int64_t t_polling, int64_t t_acked) {
  v1::EngineMove m;
  m.set_name(name);
  m.set_handover_us((t_acked - t_asked) / 1000);
  // The new snapd's worker clock is ours (CLOCK_MONOTONIC); a peer that does not say when it
  // started polling is charged the whole hand-over.
  m.set_blackout_us(t_polling > t_stopped && t_polling <= t_acked ? (t_polling - t_stopped) / 1000
                                                                  : m.handover_us());
  LOG(INFO) << "upgrade: " << name << " blackout " << m.blackout_us() << " us (save+send "
            << (t_sent - t_stopped) / 1000 << ", new snapd " << (t_polling - t_sent) / 1000
            << "); hand-over " << m.handover_us() << " us (stop " << (t_stopped - t_asked) / 1000
            << ", ack " << (t_acked - t_polling) / 1000 << ")";
  return m;
}

// A takeover's threads run at kTakeoverNice: on a machine whose cores the apps and the old snapd
// keep busy, a woken thread of the new snapd (its main thread reading a move, a worker taking an
// engine) otherwise waits up to milliseconds for a core, and every such wait is blackout. Threads
// created meanwhile (workers, EAL's) inherit it; all go back to the usual once the takeover ends.
constexpr int kTakeoverNice = -10;

// Sets the nice value of every thread of this process (Linux keeps it per thread).
void SetAllThreadsNice(int nice) {
  DIR* dir = opendir("/proc/self/task");
  if (dir == nullptr) return;
  while (dirent* e = readdir(dir)) {
    int tid = atoi(e->d_name);
    if (tid > 0) setpriority(PRIO_PROCESS, tid, nice);
  }
  closedir(dir);
}

void MaybeDie(const std::string& phase) {
  if (absl::GetFlag(FLAGS_takeover_fault) == phase) {
    LOG(WARNING) << "takeover: dying in " << phase << " (--takeover_fault)";
    raise(SIGKILL);
  }
}

}  // namespace

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

uint32_t Daemon::EngineIndex(const EngineSlot* slot) const {
  const auto& engines = scheduler_->engines();
  for (size_t i = 0; i < engines.size(); ++i) {
    if (engines[i].get() == slot) return static_cast<uint32_t>(i);
  }
  return UINT32_MAX;
}

void Daemon::TakeBack(const std::vector<EngineSlot*>& stopped, const ClosedNics& closed,
                      const JournalMemory* journal) {
  for (EngineSlot* slot : stopped) {
    // The new snapd may have served the rings meanwhile, and died mid-batch: complete the batch
    // it committed, then pick the cursors up from the rings.
    const JournalArea* area = journal ? journal->area(EngineIndex(slot)) : nullptr;
    if (area != nullptr) {
      int moved = RollForward(*area, journal->capacity(), [&](uint32_t app) -> AppPort* {
        AppPort* found = nullptr;
        ForEachAppPort(*slot->engine, [&](AppPort& a) {
          if (a.app() == app) found = &a;
        });
        return found;
      });
      if (moved > 0) {
        LOG(INFO) << "upgrade rollback: " << slot->config.name() << ": published " << moved
                  << " ring cursor(s) of the batch the new snapd committed as it died";
      }
    }
    ResyncAppRings(*slot->engine);
  }
  for (int i : closed.indices) {
    absl::Status status = OpenNic(i);
    if (!status.ok()) {
      LOG(ERROR) << "upgrade rollback: cannot reopen NIC " << i << ": " << status;
      continue;
    }
    nics_[i]->ContinueFrom(closed.stats.at(i));
  }
  AddPortCounters(closed.ports);
  for (EngineSlot* slot : stopped) scheduler_->Resume(*slot);
}

absl::StatusOr<std::vector<EngineSlot*>> Daemon::MoveOrder(const std::vector<std::string>& order) {
  std::vector<EngineSlot*> sequence;
  for (const std::string& name : order) {
    EngineSlot* slot = scheduler_->Find(name);
    if (slot == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("engines: no engine named '", name, "'"));
    }
    if (std::find(sequence.begin(), sequence.end(), slot) == sequence.end()) {
      sequence.push_back(slot);
    }
  }
  for (auto& slot : scheduler_->engines()) {
    if (std::find(sequence.begin(), sequence.end(), slot.get()) == sequence.end()) {
      sequence.push_back(slot.get());
    }
  }
  return sequence;
}

absl::Status Daemon::PrepareBrownout(wire::Brownout* b, std::vector<UniqueFd>* fds,
                                     std::optional<JournalMemory>* journal) {
  config::SnapdConfig* cfg = b->mutable_config();
  *cfg = CurrentConfig();
  // DPDK gives a tap a random MAC unless told one, and sets it on the kernel interface too: the
  // new snapd's would change the MAC of an interface the host has been using. Pin it to ours.
  for (int i = 0; i < cfg->nics_size() && i < static_cast<int>(nics_.size()); ++i) {
    const std::string& devargs = cfg->nics(i).devargs();
    if (nics_[i] && nics_[i]->IsTap() && !absl::StrContains(devargs, "mac=")) {
      cfg->mutable_nics(i)->set_devargs(absl::StrCat(devargs, ",mac=", nics_[i]->mac()));
    }
  }
  absl::Status status = upgrade::ExportMemifHandoff(*memif_, b->mutable_memif(), fds);
  if (!status.ok()) return status;
  b->set_control_listener_fd(UINT32_MAX);
  if (control_listener_fd_ >= 0) {
    fds->emplace_back(fcntl(control_listener_fd_, F_DUPFD_CLOEXEC, 0));
    b->set_control_listener_fd(fds->size() - 1);
  }
  // The cursor journal: an area per engine, room in each for every app there is (no app attaches
  // until the upgrade ends).
  auto memory = JournalMemory::Create(
      static_cast<uint32_t>(scheduler_->engines().size()),
      std::max<uint32_t>(1, static_cast<uint32_t>(memif_->connections().size())));
  if (!memory.ok()) return memory.status();
  *journal = std::move(*memory);
  fds->emplace_back(fcntl((*journal)->fd(), F_DUPFD_CLOEXEC, 0));
  b->set_journal_fd(fds->size() - 1);
  b->set_journal_areas((*journal)->areas());
  b->set_journal_capacity((*journal)->capacity());
  b->set_serving_since_unix_ms(history_.serving_since_unix_ms);
  b->set_upgrades(history_.upgrades);
  b->set_pid(getpid());
  return absl::OkStatus();
}

void Daemon::HandOverNics(const std::vector<int>& deferred, ClosedNics* closed,
                          std::vector<int>* nics_left, wire::MoveEngine* move) {
  // NICs the new snapd could not open beside us move with the first engine, their counters and
  // their ports' with them (the ports go from every engine: saved before the engine's state).
  if (closed->indices.empty() && !deferred.empty()) {
    for (int i : deferred) {
      closed->stats[i] = nics_[i]->Stats();
      CloseNic(i, &closed->ports);
      closed->indices.push_back(i);
    }
    for (const engines::PortCounters& pc : closed->ports) *move->add_closed_ports() = pc;
    move->set_open_nics(true);
  }
  // The counters of every NIC we stop using with this move go with it.
  for (int i = 0; i < static_cast<int>(nics_.size()); ++i) {
    if (std::find(nics_left->begin(), nics_left->end(), i) != nics_left->end()) continue;
    auto was_closed = closed->stats.find(i);
    if (was_closed != closed->stats.end()) {
      NicCountersToWire(i, was_closed->second, move->add_nics());
      nics_left->push_back(i);
      continue;
    }
    if (!nics_[i]) continue;
    bool still_polled = false;
    const config::Nic& cfg = config_.nics(i);
    for (uint16_t q = 0; q < nics_[i]->queues(); ++q) {
      EngineSlot* owner = scheduler_->Find(cfg.engines(q % cfg.engines_size()));
      if (owner != nullptr && owner->polled) still_polled = true;
    }
    if (still_polled) continue;
    NicCountersToWire(i, nics_[i]->Stats(), move->add_nics());
    nics_left->push_back(i);
  }
}

void Daemon::NoteMovedTaps(v1::UpgradeReport* report) const {
  // A tap interface lives as long as the fds that hold it. One still in our namespace, the new
  // snapd attached its queues to (a multi-queue tap): it is kept as it is. One moved out of our
  // namespace, the new snapd could not see: it made one anew, and ours goes when we exit.
  for (const auto& nic : nics_) {
    if (nic && nic->IsTap() && !nic->KernelInterfaceHere()) {
      report->add_notes(absl::StrCat(
          nic->name(), " (", nic->device(), "): its interface ", nic->kernel_interface(),
          " was moved out of snapd's network namespace, where the new snapd created it anew: "
          "without the addresses, routes or namespace the old one had, which goes with the old "
          "snapd (a tap left in snapd's namespace is kept across upgrades)"));
      LOG(WARNING) << "upgrade: " << report->notes(report->notes_size() - 1);
    }
  }
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
  handed_over_ = true;
}

absl::StatusOr<v1::UpgradeReport> Daemon::Upgrade(const std::string& binary,
                                                  const std::vector<std::string>& extra_args,
                                                  const std::vector<std::string>& order) {
  upgrading_ = true;
  absl::Cleanup not_upgrading = [this] { upgrading_ = false; };
  // (Raising this thread's priority too, as the new snapd's are, made blackouts longer here:
  // tried.)
  const int usual_nice = getpriority(PRIO_PROCESS, 0);
  if (handed_over_) {
    return absl::FailedPreconditionError("this snapd has handed over to a new one already");
  }
  // Opened once and checked (SECURITY.md): only root and snapd's own user can change the file or
  // a directory above it; what runs is that open file.
  absl::StatusOr<TrustedExecutable> exe = OpenTrustedExecutable(binary, geteuid());
  if (!exe.ok()) return exe.status();
  absl::Status args_ok = CheckNewSnapdArgs(extra_args);
  if (!args_ok.ok()) return args_ok;
  absl::StatusOr<std::vector<EngineSlot*>> sequence = MoveOrder(order);
  if (!sequence.ok()) return sequence.status();
  const int64_t start = MonotonicNs();
  UniqueFd channel;
  absl::StatusOr<pid_t> started = StartNewSnapd(*exe, binary, extra_args, usual_nice, &channel);
  if (!started.ok()) return started.status();
  const pid_t child = *started;

  std::string phase = "start";
  std::optional<JournalMemory> journal;
  std::vector<EngineSlot*> stopped;
  std::vector<int> deferred_nics;  // the new snapd opens these only once we closed them
  ClosedNics closed;
  std::vector<int> nics_left;  // NICs whose counters went with a move: no engine of ours polls them
  v1::UpgradeReport report;
  report.set_old_pid(getpid());
  report.set_new_pid(child);
  report.set_old_build(BuildString());
  auto fail = [&](const absl::Status& why) -> absl::Status {
    kill(child, SIGKILL);
    waitpid(child, nullptr, 0);
    TakeBack(stopped, closed, journal ? &*journal : nullptr);
    LOG(ERROR) << "upgrade to " << binary << " failed during " << phase << ": " << why.message()
               << "; this snapd goes on serving everything";
    return absl::Status(why.code() == absl::StatusCode::kFailedPrecondition
                            ? absl::StatusCode::kFailedPrecondition
                            : absl::StatusCode::kAborted,
                        absl::StrCat("upgrade failed during ", phase, ": ", why.message(),
                                     "; the old snapd goes on serving"));
  };

  // While the new binary starts (its EAL, seconds at worst) and adopts the apps, nothing has moved
  // and we still own the control plane: go on answering RPCs that only read (a second upgrade is
  // refused at once, on the gRPC thread; changes are refused until the upgrade ends).
  (void)loop_.WaitReadable(channel.get(), absl::Now() + kStartTimeout);
  // Handshake: refuse an incompatible new snapd before anything moves.
  auto hello = Receive(channel.get(), kStepTimeout);
  if (!hello.ok()) return fail(hello.status());
  if (!hello->envelope.has_hello()) return fail(absl::InvalidArgumentError("no hello"));
  report.set_new_build(hello->envelope.hello().build());
  if (hello->envelope.hello().version() != kTakeoverVersion) {
    wire::Envelope refuse;
    refuse.mutable_refuse()->set_reason(
        absl::StrCat("this snapd speaks takeover version ", kTakeoverVersion));
    (void)Send(channel.get(), refuse);
    return fail(absl::FailedPreconditionError(
        absl::StrCat("incompatible takeover version ", hello->envelope.hello().version(),
                     " (this snapd speaks ", kTakeoverVersion, ")")));
  }

  // Brownout: we keep serving; the new snapd adopts the apps and builds the engines.
  phase = "brownout";
  wire::Envelope brownout;
  std::vector<UniqueFd> fds;
  absl::Status status = PrepareBrownout(brownout.mutable_brownout(), &fds, &journal);
  if (!status.ok()) return fail(status);
  status = Send(channel.get(), brownout, fds);
  if (!status.ok()) return fail(status);
  fds.clear();
  (void)loop_.WaitReadable(channel.get(), absl::Now() + kStartTimeout);
  auto ready = Receive(channel.get(), kStepTimeout);
  if (!ready.ok()) return fail(ready.status());
  if (!ready->envelope.has_ready()) return fail(absl::InvalidArgumentError("expected ready"));
  for (uint32_t i : ready->envelope.ready().deferred_nics()) {
    if (i < nics_.size()) deferred_nics.push_back(static_cast<int>(i));
  }
  for (const wire::DetachedApp& a : ready->envelope.ready().detached_apps()) {
    report.add_notes(absl::StrCat(
        "app ", a.id(), " detached: the new snapd refused its rings: ", a.reason().substr(0, 200)));
    LOG(WARNING) << "upgrade: " << report.notes(report.notes_size() - 1);
  }
  report.set_brownout_us(ElapsedUs(start));

  // Blackouts, one engine at a time.
  for (EngineSlot* slot : *sequence) {
    phase = absl::StrCat("blackout of ", slot->config.name());
    const int64_t t_asked = MonotonicNs();
    // At a batch boundary; the blackout starts when the worker drops the engine.
    const int64_t t_stopped = scheduler_->Stop(*slot);
    stopped.push_back(slot);
    wire::Envelope move;
    wire::MoveEngine* m = move.mutable_move_engine();
    m->set_name(slot->config.name());
    m->set_journal_area(EngineIndex(slot));
    HandOverNics(deferred_nics, &closed, &nics_left, m);
    status = slot->engine->SaveState(m->mutable_state());
    if (!status.ok()) return fail(status);
    m->set_sent_ns(MonotonicNs());
    status = Send(channel.get(), move);
    if (!status.ok()) return fail(status);
    const int64_t t_sent = MonotonicNs();
    auto moved = Receive(channel.get(), kStepTimeout);
    if (!moved.ok()) return fail(moved.status());
    if (!moved->envelope.has_moved() || moved->envelope.moved().name() != slot->config.name()) {
      return fail(absl::InvalidArgumentError("expected moved"));
    }
    *report.add_engines() = TimeMove(slot->config.name(), t_asked, t_stopped, t_sent,
                                     moved->envelope.moved().polling_since_ns(), MonotonicNs());
  }
  NoteMovedTaps(&report);

  phase = "finish";
  wire::Envelope done;
  done.mutable_done();
  status = Send(channel.get(), done);
  if (!status.ok()) return fail(status);
  (void)loop_.WaitReadable(channel.get(), absl::Now() + kStepTimeout);
  auto serving = Receive(channel.get(), kStepTimeout);
  if (!serving.ok()) return fail(serving.status());
  if (!serving->envelope.has_serving()) return fail(absl::InvalidArgumentError("expected serving"));
  Withdraw();  // everything is the new snapd's
  // We are the service's main process: hand that over too, before we exit.
  NotifyServiceManager(
      absl::StrCat("MAINPID=", child, "\nSTATUS=upgraded: serving as pid ", child));
  LOG(INFO) << "upgrade: everything moved to pid " << child << " (brownout " << report.brownout_us()
            << " us); this snapd exits";
  Stop();
  return report;
}

void Daemon::DiscardNicCopies(EngineSlot& slot, const std::vector<int>& deferred_nics) {
  // A packet socket opened beside the old snapd's got a copy of every frame the old one handled:
  // discard what ours gathered, counted. (A tap shares its frames among the queues of both
  // snapds instead: those in ours are for us to handle now; a NIC opened just now holds only
  // frames that came after the old snapd let go.)
  std::vector<std::string> copies;
  for (int i = 0; i < static_cast<int>(nics_.size()); ++i) {
    if (nics_[i] && nics_[i]->ReceivesCopies() &&
        std::find(deferred_nics.begin(), deferred_nics.end(), i) == deferred_nics.end()) {
      copies.push_back(nics_[i]->name());
    }
  }
  slot.engine->ForEachPort([&](Port& p) {
    if (p.kind() != PortKind::kNic ||
        std::find(copies.begin(), copies.end(), p.link()) == copies.end()) {
      return;
    }
    Packet pkts[64];
    uint16_t n;
    while ((n = p.Receive(pkts, 64)) > 0) {
      p.Release();
      p.stats().drop_takeover.Add(n);
    }
  });
}

absl::Status Daemon::StartJournal(EngineSlot& slot, uint32_t area_index) {
  JournalArea* area = journal_ ? journal_->area(area_index) : nullptr;
  if (area == nullptr) return absl::OkStatus();  // an old snapd without a journal
  auto& journal = journals_[slot.engine.get()];
  journal = std::make_unique<CursorJournal>(area, journal_->capacity());
  absl::Status status;
  ForEachAppPort(*slot.engine, [&](AppPort& app) {
    if (status.ok()) status = journal->Track(&app);
  });
  if (!status.ok()) return status;
  if (absl::GetFlag(FLAGS_takeover_fault) == "publish") journal->DieMidPublishAfter(100);
  slot.engine->set_batch_observer(journal.get());
  return absl::OkStatus();
}

void Daemon::StopJournals() {
  for (auto& slot : scheduler_->engines()) {
    auto journal = journals_.find(slot->engine.get());
    if (journal == journals_.end()) continue;
    scheduler_->OnEngine(*slot, [&] {
      slot->engine->set_batch_observer(nullptr);
      journal->second->Close();
    });
    journals_.erase(journal);
  }
  journal_.reset();
}

absl::StatusOr<int64_t> Daemon::MoveIn(const wire::MoveEngine& m,
                                       const std::vector<int>& deferred_nics) {
  const int64_t t_got = MonotonicNs();
  EngineSlot* slot = scheduler_->Find(m.name());
  if (slot == nullptr) return absl::NotFoundError(absl::StrCat("no engine named ", m.name()));
  if (m.open_nics()) {
    for (int i : deferred_nics) {
      absl::Status status = OpenNic(i);
      if (!status.ok()) return status;
    }
    AddPortCounters({m.closed_ports().begin(), m.closed_ports().end()});
  }
  DiscardNicCopies(*slot, deferred_nics);
  for (const wire::NicCounters& nc : m.nics()) {
    if (nc.index() < nics_.size() && nics_[nc.index()]) {
      nics_[nc.index()]->ContinueFrom(NicCountersFromWire(nc));
    }
  }
  absl::Status status = slot->engine->RestoreState(m.state());
  if (!status.ok()) return status;
  // The old snapd served these rings until a moment ago: start where it stopped, and journal
  // every batch's cursors until it lets go.
  ResyncAppRings(*slot->engine);
  status = StartJournal(*slot, m.journal_area());
  if (!status.ok()) return status;
  const int64_t t_restored = MonotonicNs();
  slot->ready = true;
  status = scheduler_->Replace(slot->config.group());
  if (!status.ok()) return status;
  // Where the new side's part of a blackout goes: reading the move (waking this thread), restoring,
  // and the worker taking the engine (waking it).
  LOG(INFO) << "takeover: " << m.name() << " read " << (t_got - m.sent_ns()) / 1000
            << " us after it was sent, restored in " << (t_restored - t_got) / 1000
            << " us, polled " << (slot->polled_since_ns - t_restored) / 1000 << " us later";
  return slot->polled_since_ns;
}

absl::StatusOr<std::unique_ptr<Daemon>> Daemon::Takeover(UniqueFd channel) {
  std::string phase = "start";
  auto daemon = TakeoverSteps(channel.get(), &phase);
  if (!daemon.ok()) {
    // Tell the old snapd why, so that snapctl upgrade can (it takes everything back).
    wire::Envelope failed;
    failed.mutable_failed()->set_phase(phase);
    failed.mutable_failed()->set_reason(std::string(daemon.status().message()));
    (void)Send(channel.get(), failed);
  }
  return daemon;
}

absl::StatusOr<std::unique_ptr<Daemon>> Daemon::TakeoverSteps(int channel, std::string* phase) {
  const int usual_nice = getpriority(PRIO_PROCESS, 0);
  if (setpriority(PRIO_PROCESS, 0, kTakeoverNice) != 0) {
    LOG(INFO) << "takeover: at the usual priority (" << strerror(errno) << ")";
  }
  absl::Cleanup usual_priority = [usual_nice] { SetAllThreadsNice(usual_nice); };
  std::unique_ptr<Daemon> daemon(new Daemon());
  // Failing, we leave without a word: the old snapd takes back the apps, the NICs, the rings.
  absl::Cleanup withdraw = [&] { daemon->Withdraw(); };
  wire::Envelope hello;
  uint32_t version = kTakeoverVersion;
  if (absl::GetFlag(FLAGS_takeover_version) != 0) version = absl::GetFlag(FLAGS_takeover_version);
  hello.mutable_hello()->set_version(version);
  hello.mutable_hello()->set_pid(getpid());
  hello.mutable_hello()->set_build(BuildString());
  absl::Status status = Send(channel, hello);
  if (!status.ok()) return status;
  auto brownout = Receive(channel, kStepTimeout);
  if (!brownout.ok()) return brownout.status();
  if (brownout->envelope.has_refuse()) {
    return absl::FailedPreconditionError(
        absl::StrCat("the old snapd refused the takeover: ", brownout->envelope.refuse().reason()));
  }
  if (!brownout->envelope.has_brownout()) return absl::InvalidArgumentError("expected brownout");
  *phase = "brownout";
  MaybeDie("brownout");
  const wire::Brownout& b = brownout->envelope.brownout();
  Daemon& d = *daemon;
  d.config_ = b.config();
  auto handoff = upgrade::TakeMemifHandoff(b.memif(), &brownout->fds);
  if (!handoff.ok()) return handoff.status();
  if (b.control_listener_fd() < brownout->fds.size()) {
    d.adopted_control_listener_ = std::move(brownout->fds[b.control_listener_fd()]);
  }
  if (b.journal_fd() < brownout->fds.size()) {
    auto journal = JournalMemory::Map(std::move(brownout->fds[b.journal_fd()]), b.journal_areas(),
                                      b.journal_capacity());
    if (!journal.ok()) return journal.status();
    d.journal_ = std::move(*journal);
  }
  status = InitEal(d.config_);
  if (!status.ok()) return status;
  d.eal_started_ = true;
  status = d.InitEngines();
  if (!status.ok()) return status;
  for (auto& slot : d.scheduler_->engines()) slot->ready = false;  // polled only once moved
  // Workers and NICs now, during brownout, so that a blackout only moves an engine: each group's
  // workers as its placement of all its engines asks (while taking over, the placement counts the
  // engines not moved yet: see LoadsOf), and every NIC that can be open in two processes at once
  // (a packet socket, a multi-queue tap; a PCI device cannot: those come at the first blackout).
  d.scheduler_->set_holding(true);
  status = d.scheduler_->ReplaceAll();  // creates the workers; no engine is ready to add yet
  if (!status.ok()) return status;
  std::vector<int> deferred_nics;
  for (int i = 0; i < d.config_.nics_size(); ++i) {
    absl::Status opened = absl::GetFlag(FLAGS_takeover_defer_nics)
                              ? absl::UnavailableError("--takeover_defer_nics")
                              : d.OpenNic(i);
    if (!opened.ok()) {
      LOG(INFO) << "takeover: NIC " << i << " opens at the first blackout (" << opened.message()
                << ")";
      deferred_nics.push_back(i);
    }
  }
  auto server = memif::MemifServer::Adopt(d.MemifOptions(), std::move(handoff->listener));
  if (!server.ok()) return server.status();
  status = d.InitMemif(std::move(*server));
  if (!status.ok()) return status;
  // One app that broke its rings (say, overwrote a cookie) must not hold back an upgrade that
  // everyone else needs: it is told why and left out; it may connect again.
  wire::Envelope ready;
  wire::Ready* r = ready.mutable_ready();
  for (memif::ConnectionHandoff& c : handoff->connections) {
    uint32_t id = c.id;
    status = d.memif_->AdoptConnection(std::move(c));
    if (!status.ok()) {
      LOG(WARNING) << "takeover: app " << id << " detached: " << status.message();
      wire::DetachedApp* detached = r->add_detached_apps();
      detached->set_id(id);
      detached->set_reason(std::string(status.message()));
    }
  }
  for (int i : deferred_nics) r->add_deferred_nics(i);
  status = Send(channel, ready);
  if (!status.ok()) return status;

  size_t moved = 0;
  while (true) {
    auto msg = Receive(channel, kStepTimeout);
    if (!msg.ok()) return msg.status();
    if (msg->envelope.has_done()) break;
    if (!msg->envelope.has_move_engine()) return absl::InvalidArgumentError("expected a move");
    *phase = absl::StrCat("blackout of ", msg->envelope.move_engine().name());
    MaybeDie("blackout");
    if (absl::GetFlag(FLAGS_takeover_fault) == "error") {
      return absl::InternalError("refusing the move (--takeover_fault=error)");
    }
    absl::StatusOr<int64_t> polling_since = d.MoveIn(msg->envelope.move_engine(), deferred_nics);
    if (!polling_since.ok()) return polling_since.status();
    wire::Envelope reply;
    reply.mutable_moved()->set_name(msg->envelope.move_engine().name());
    reply.mutable_moved()->set_polling_since_ns(*polling_since);
    status = Send(channel, reply);
    if (!status.ok()) return status;
    if (++moved * 2 >= d.scheduler_->engines().size()) MaybeDie("half");
  }
  *phase = "finish";
  if (absl::GetFlag(FLAGS_takeover_fault) == "publish") {
    absl::SleepFor(absl::Seconds(5));  // the workers die in a batch meanwhile (traffic permitting)
  }
  d.scheduler_->set_holding(false);
  status = d.scheduler_->ReplaceAll();  // drops the workers no engine needs
  if (!status.ok()) return status;
  wire::Envelope serving;
  serving.mutable_serving();
  status = Send(channel, serving);
  if (!status.ok()) return status;
  // Journal until the old snapd has let go (it closes the channel once it got Serving): were it to
  // give up on us instead (a deadline just passing), it would kill us and take back from the
  // journal, which must then still be ours. After that, publish at once.
  pollfd gone{channel, POLLIN, 0};
  if (poll(&gone, 1, static_cast<int>(absl::ToInt64Milliseconds(kStepTimeout))) <= 0) {
    LOG(WARNING) << "takeover: the old snapd did not let go within " << kStepTimeout;
  }
  d.StopJournals();
  std::move(withdraw).Cancel();
  d.ready_ = true;
  d.started_ns_ = MonotonicNs();
  d.history_.serving_since_unix_ms = b.serving_since_unix_ms();
  d.history_.upgrades = b.upgrades() + 1;
  d.history_.previous_pid = b.pid();
  LOG(INFO) << "snapd took over: " << d.memif_->connections().size() << " app(s) kept, "
            << d.scheduler_->engines().size() << " engine(s) moved";
  return daemon;
}

}  // namespace snapd
