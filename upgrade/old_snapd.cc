#include "upgrade/old_snapd.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/clock.h"
#include "glog/logging.h"
#include "snapd/daemon/app_port.h"
#include "snapd/daemon/daemon.h"
#include "snapd/daemon/dpdk.h"
#include "snapd/daemon/service_manager.h"
#include "snapd/daemon/trusted_path.h"
#include "snapd/daemon/worker.h"
#include "upgrade/memif_handoff.h"
#include "upgrade/protocol.h"

namespace snapd::upgrade {
namespace {

int64_t ElapsedUs(int64_t since_ns) { return (MonotonicNs() - since_ns) / 1000; }

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
  std::vector<std::string> snapd_args = {"--takeover_fd=3"};  // see main.cc
  snapd_args.insert(snapd_args.end(), extra_args.begin(), extra_args.end());
  std::vector<std::string> args = ExecArgv(exe, name, kExeFd, snapd_args);
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  sigset_t none;
  sigemptyset(&none);
  const int mount_namespace = StartingMountNamespace();
  // Every CPU this snapd started with: its threads but the dedicated workers are kept off the
  // dedicated cores (Worker::ReserveCores), and the fork's thread is one of them.
  const cpu_set_t cpus = Worker::ProcessCpus();
  pid_t child = fork();
  if (child == 0) {
    // Where this snapd started: it may have hidden DPDK's plugin directory from itself.
    // Should it fail, the exec fails to load the drivers and the new snapd says so on stderr.
    if (mount_namespace >= 0) (void)setns(mount_namespace, CLONE_NEWNS);
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
    sched_setaffinity(0, sizeof(cpus), &cpus);
    fexecve(run, argv.data(), environ);
    _exit(127);
  }
  close(sv[1]);
  if (child < 0) return absl::InternalError(absl::StrCat("fork: ", strerror(errno)));
  return child;
}

// The blackout of a move, from the old worker's last poll to the new worker's first, and the
// hand-over around it.
EngineMove TimeMove(const std::string& name, int64_t t_asked, int64_t t_stopped, int64_t t_sent,
                    int64_t t_polling, int64_t t_acked) {
  EngineMove m;
  m.name = name;
  m.handover_us = (t_acked - t_asked) / 1000;
  // The new snapd's worker clock is ours (CLOCK_MONOTONIC); a peer that does not say when it
  // started polling is charged the whole hand-over.
  m.blackout_us = t_polling > t_stopped && t_polling <= t_acked ? (t_polling - t_stopped) / 1000
                                                                : m.handover_us;
  LOG(INFO) << "upgrade: " << name << " blackout " << m.blackout_us << " us (save+send "
            << (t_sent - t_stopped) / 1000 << ", new snapd " << (t_polling - t_sent) / 1000
            << "); hand-over " << m.handover_us << " us (stop " << (t_stopped - t_asked) / 1000
            << ", ack " << (t_acked - t_polling) / 1000 << ")";
  return m;
}

}  // namespace

uint32_t OldSnapd::AreaOf(const std::string& engine) const {
  auto it = std::find(engines_.begin(), engines_.end(), engine);
  return it == engines_.end() ? UINT32_MAX : static_cast<uint32_t>(it - engines_.begin());
}

absl::StatusOr<std::vector<std::string>> OldSnapd::MoveOrder(
    const std::vector<std::string>& order) {
  std::vector<std::string> sequence;
  for (const std::string& name : order) {
    if (host_.FindEngine(name) == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("engines: no engine named '", name, "'"));
    }
    if (std::find(sequence.begin(), sequence.end(), name) == sequence.end()) {
      sequence.push_back(name);
    }
  }
  for (const std::string& name : engines_) {
    if (std::find(sequence.begin(), sequence.end(), name) == sequence.end()) {
      sequence.push_back(name);
    }
  }
  return sequence;
}

absl::Status OldSnapd::PrepareBrownout(wire::Brownout* b, std::vector<UniqueFd>* fds) {
  config::SnapdConfig* cfg = b->mutable_config();
  *cfg = host_.CurrentConfig();
  // DPDK gives a tap a random MAC unless told one, and sets it on the kernel interface too: the
  // new snapd's would change the MAC of an interface the host has been using. Pin it to ours.
  for (int i = 0; i < cfg->nics_size() && i < host_.NicCount(); ++i) {
    const std::string& devargs = cfg->nics(i).devargs();
    Nic* nic = host_.nic(i);
    if (nic != nullptr && nic->IsTap() && !absl::StrContains(devargs, "mac=")) {
      cfg->mutable_nics(i)->set_devargs(absl::StrCat(devargs, ",mac=", nic->mac()));
    }
  }
  absl::Status status = ExportMemifHandoff(host_.memif(), b->mutable_memif(), fds);
  if (!status.ok()) return status;
  b->set_control_listener_fd(UINT32_MAX);
  if (host_.control_listener() >= 0) {
    fds->emplace_back(fcntl(host_.control_listener(), F_DUPFD_CLOEXEC, 0));
    b->set_control_listener_fd(fds->size() - 1);
  }
  if (host_.metrics_listener() != nullptr) {
    fds->emplace_back(fcntl(host_.metrics_listener()->fd(), F_DUPFD_CLOEXEC, 0));
    b->set_metrics_listener_fd(fds->size() - 1);
  }
  // The cursor journal: an area per engine, room in each for every app there is (no app attaches
  // until the upgrade ends).
  auto memory = JournalMemory::Create(
      static_cast<uint32_t>(engines_.size()),
      std::max<uint32_t>(1, static_cast<uint32_t>(host_.memif().connections().size())));
  if (!memory.ok()) return memory.status();
  journal_ = std::move(*memory);
  fds->emplace_back(fcntl(journal_->fd(), F_DUPFD_CLOEXEC, 0));
  b->set_journal_fd(fds->size() - 1);
  b->set_journal_areas(journal_->areas());
  b->set_journal_capacity(journal_->capacity());
  b->set_serving_since_unix_ms(host_.history().serving_since_unix_ms);
  b->set_upgrades(host_.history().upgrades);
  b->set_restarts(host_.history().restarts);
  b->set_store_generation(host_.history().store_generation);
  BlackoutsToWire(host_.history().blackouts, b->mutable_blackouts());
  b->set_pid(getpid());
  for (const auto& capture : host_.captures()) {
    const CaptureSpec& spec = capture->spec();
    wire::CarriedCapture* c = b->add_captures();
    c->set_id(capture->id());
    c->set_started_unix_ns(capture->started_unix_ns());
    for (const std::string& port : spec.ports) c->add_ports(port);
    c->set_rx(spec.rx);
    c->set_tx(spec.tx);
    c->set_count(spec.count);
    c->set_snaplen(spec.snaplen);
    c->set_ring_bytes(spec.ring_bytes);
    c->set_filter(spec.filter);
    if (capture->filter() != nullptr) c->set_filter_program(capture->filter()->program());
  }
  return absl::OkStatus();
}

void OldSnapd::HandOverNics(wire::MoveEngine* move) {
  // NICs the new snapd could not open beside us move with the first engine, their counters and
  // their ports' with them (the ports go from every engine: saved before the engine's state).
  if (closed_nics_.empty() && !deferred_nics_.empty()) {
    for (int i : deferred_nics_) {
      closed_stats_[i] = host_.nic(i)->Stats();
      host_.CloseNic(i, &closed_ports_);
      closed_nics_.push_back(i);
    }
    for (const engines::PortCounters& pc : closed_ports_) *move->add_closed_ports() = pc;
    move->set_open_nics(true);
  }
  // The counters of every NIC we stop using with this move go with it.
  for (int i = 0; i < host_.NicCount(); ++i) {
    if (std::find(nics_left_.begin(), nics_left_.end(), i) != nics_left_.end()) continue;
    auto was_closed = closed_stats_.find(i);
    if (was_closed != closed_stats_.end()) {
      NicCountersToWire(i, was_closed->second, move->add_nics());
      nics_left_.push_back(i);
      continue;
    }
    if (host_.nic(i) == nullptr || host_.NicPolled(i)) continue;
    NicCountersToWire(i, host_.nic(i)->Stats(), move->add_nics());
    nics_left_.push_back(i);
  }
}

void OldSnapd::NoteMovedTaps(Report* report) {
  // A tap interface lives as long as the fds that hold it. One still in our namespace, the new
  // snapd attached its queues to (a multi-queue tap): it is kept as it is. One moved out of our
  // namespace, the new snapd could not see: it made one anew, and ours goes when we exit.
  for (int i = 0; i < host_.NicCount(); ++i) {
    Nic* nic = host_.nic(i);
    if (nic != nullptr && nic->IsTap() && !nic->KernelInterfaceHere()) {
      report->notes.push_back(absl::StrCat(
          nic->name(), " (", nic->device(), "): its interface ", nic->kernel_interface(),
          " was moved out of snapd's network namespace, where the new snapd created it anew: "
          "without the addresses, routes or namespace the old one had, which goes with the old "
          "snapd (a tap left in snapd's namespace is kept across upgrades)"));
      LOG(WARNING) << "upgrade: " << report->notes.back();
    }
  }
}

void OldSnapd::TakeBack() {
  for (const std::string& name : stopped_) {
    Engine* engine = host_.FindEngine(name);
    // The new snapd may have served the rings meanwhile, and died mid-batch: complete the batch
    // it committed, then pick the cursors up from the rings.
    const JournalArea* area = journal_ ? journal_->area(AreaOf(name)) : nullptr;
    if (area != nullptr) {
      int moved = RollForward(*area, journal_->capacity(), [&](uint32_t app) -> AppPort* {
        AppPort* found = nullptr;
        ForEachAppPort(*engine, [&](AppPort& a) {
          if (a.app() == app) found = &a;
        });
        return found;
      });
      if (moved > 0) {
        LOG(INFO) << "upgrade rollback: " << name << ": published " << moved
                  << " ring cursor(s) of the batch the new snapd committed as it died";
      }
    }
    ForEachAppPort(*engine, [](AppPort& app) { app.Resync(); });
  }
  for (int i : closed_nics_) {
    absl::Status status = host_.OpenNic(i);
    if (!status.ok()) {
      LOG(ERROR) << "upgrade rollback: cannot reopen NIC " << i << ": " << status;
      continue;
    }
    host_.nic(i)->ContinueFrom(closed_stats_.at(i));
  }
  host_.AddPortCounters(closed_ports_);
  for (const std::string& name : stopped_) host_.ResumeEngine(name);
  if (host_.metrics_listener() != nullptr) host_.metrics_listener()->Pause(false);
}

absl::StatusOr<Report> OldSnapd::Run(const std::string& binary,
                                     const std::vector<std::string>& extra_args,
                                     const std::vector<std::string>& order) {
  host_.set_upgrading(true);
  absl::Cleanup not_upgrading = [this] { host_.set_upgrading(false); };
  // (Raising this thread's priority too, as the new snapd's are, made blackouts longer here:
  // tried.)
  const int usual_nice = getpriority(PRIO_PROCESS, 0);
  if (host_.handed_over()) {
    return absl::FailedPreconditionError("this snapd has handed over to a new one already");
  }
  // Opened once and checked (SECURITY.md): only root and snapd's own user can change the file or
  // a directory above it; what runs is that open file.
  absl::StatusOr<TrustedExecutable> exe = OpenTrustedExecutable(binary, geteuid());
  if (!exe.ok()) return exe.status();
  absl::Status args_ok = CheckNewSnapdArgs(extra_args);
  if (!args_ok.ok()) return args_ok;
  engines_ = host_.EngineNames();
  absl::StatusOr<std::vector<std::string>> sequence = MoveOrder(order);
  if (!sequence.ok()) return sequence.status();
  const int64_t start = MonotonicNs();
  UniqueFd channel;
  absl::StatusOr<pid_t> started = StartNewSnapd(*exe, binary, extra_args, usual_nice, &channel);
  if (!started.ok()) {
    host_.events().Add("upgrade", "",
                       absl::StrCat("to ", binary, " did not start: ", started.status().message()));
    return started.status();
  }
  const pid_t child = *started;
  host_.events().Add("upgrade", absl::StrCat("pid ", child),
                     absl::StrCat("started: ", binary, " (", ElapsedUs(start), " us)"));

  std::string phase = "start";
  Report report;
  report.old_pid = getpid();
  report.new_pid = child;
  report.old_build = BuildString();
  auto fail = [&](const absl::Status& why) -> absl::Status {
    kill(child, SIGKILL);
    waitpid(child, nullptr, 0);
    TakeBack();
    host_.events().Add("upgrade", absl::StrCat("pid ", child),
                       absl::StrCat("failed during ", phase, ": ", why.message(),
                                    "; this snapd goes on serving everything"));
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
  (void)host_.loop().WaitReadable(channel.get(), absl::Now() + kStartTimeout);
  // Handshake: refuse an incompatible new snapd before anything moves.
  auto hello = Receive(channel.get(), kStepTimeout);
  if (!hello.ok()) return fail(hello.status());
  if (!hello->envelope.has_hello()) return fail(absl::InvalidArgumentError("no hello"));
  report.new_build = hello->envelope.hello().build();
  if (hello->envelope.hello().version() != kProtocolVersion) {
    wire::Envelope refuse;
    refuse.mutable_refuse()->set_reason(
        absl::StrCat("this snapd speaks upgrade protocol version ", kProtocolVersion));
    (void)Send(channel.get(), refuse);
    return fail(absl::FailedPreconditionError(
        absl::StrCat("incompatible upgrade protocol version ", hello->envelope.hello().version(),
                     " (this snapd speaks ", kProtocolVersion, ")")));
  }

  // Brownout: we keep serving; the new snapd adopts the apps and builds the engines.
  phase = "brownout";
  wire::Envelope brownout;
  std::vector<UniqueFd> fds;
  absl::Status status = PrepareBrownout(brownout.mutable_brownout(), &fds);
  if (!status.ok()) return fail(status);
  status = Send(channel.get(), brownout, fds);
  if (!status.ok()) return fail(status);
  fds.clear();
  (void)host_.loop().WaitReadable(channel.get(), absl::Now() + kStartTimeout);
  auto ready = Receive(channel.get(), kStepTimeout);
  if (!ready.ok()) return fail(ready.status());
  if (!ready->envelope.has_ready()) return fail(absl::InvalidArgumentError("expected ready"));
  for (uint32_t i : ready->envelope.ready().deferred_nics()) {
    // Only NICs we hold, each once: a bogus list must not close a NIC twice.
    const int index = static_cast<int>(std::min<uint32_t>(i, INT32_MAX));
    if (host_.nic(index) != nullptr &&
        std::find(deferred_nics_.begin(), deferred_nics_.end(), index) == deferred_nics_.end()) {
      deferred_nics_.push_back(index);
    }
  }
  for (const wire::DetachedApp& a : ready->envelope.ready().detached_apps()) {
    report.notes.push_back(absl::StrCat(
        "app ", a.id(), " detached: the new snapd refused its rings: ", a.reason().substr(0, 200)));
    LOG(WARNING) << "upgrade: " << report.notes.back();
  }
  report.brownout_us = ElapsedUs(start);
  host_.events().Add("upgrade", absl::StrCat("pid ", child),
                     absl::StrCat("brownout done in ", report.brownout_us, " us: ",
                                  host_.memif().connections().size(), " app(s) handed over"));

  // Blackouts, one engine at a time.
  for (const std::string& name : *sequence) {
    phase = absl::StrCat("blackout of ", name);
    const int64_t t_asked = MonotonicNs();
    // At a batch boundary; the blackout starts when the worker drops the engine.
    const int64_t t_stopped = host_.StopEngine(name);
    stopped_.push_back(name);
    wire::Envelope move;
    wire::MoveEngine* m = move.mutable_move_engine();
    m->set_name(name);
    m->set_journal_area(AreaOf(name));
    HandOverNics(m);
    status = host_.FindEngine(name)->SaveState(m->mutable_state());
    if (!status.ok()) return fail(status);
    std::vector<UniqueFd> state_fd;
    if (m->state().ByteSizeLong() > kInlineStateBytes) {
      auto fd = SealedMemfd(m->state().SerializeAsString());
      if (!fd.ok()) return fail(fd.status());
      state_fd.push_back(std::move(*fd));
      m->clear_state();
      m->set_state_in_fd(true);
    }
    m->set_sent_ns(MonotonicNs());
    status = Send(channel.get(), move, state_fd);
    if (!status.ok()) return fail(status);
    const int64_t t_sent = MonotonicNs();
    auto moved = Receive(channel.get(), kStepTimeout);
    if (!moved.ok()) return fail(moved.status());
    if (!moved->envelope.has_moved() || moved->envelope.moved().name() != name) {
      return fail(absl::InvalidArgumentError("expected moved"));
    }
    report.engines.push_back(TimeMove(name, t_asked, t_stopped, t_sent,
                                      moved->envelope.moved().polling_since_ns(), MonotonicNs()));
    host_.events().Add(
        "upgrade", absl::StrCat("engine ", name),
        absl::StrCat("moved to pid ", child, ": blackout ", report.engines.back().blackout_us,
                     " us, hand-over ", report.engines.back().handover_us, " us"));
  }
  NoteMovedTaps(&report);

  phase = "finish";
  // Our counters have stopped: scrapes wait in the socket's backlog for the new snapd's, which go
  // on from them (Prometheus would take an older figure after a newer one for a reset).
  if (host_.metrics_listener() != nullptr) host_.metrics_listener()->Pause(true);
  wire::Envelope done;
  for (const EngineMove& m : report.engines) {
    done.mutable_done()->add_blackout_us(m.blackout_us);
    done.mutable_done()->add_handover_us(m.handover_us);
  }
  done.mutable_done()->set_brownout_us(report.brownout_us);
  done.mutable_done()->set_old_build(report.old_build);
  for (const std::string& note : report.notes) done.mutable_done()->add_notes(note);
  EventsToWire(host_.events().All(), host_.events().id(), done.mutable_done());
  status = Send(channel.get(), done);
  if (!status.ok()) return fail(status);
  (void)host_.loop().WaitReadable(channel.get(), absl::Now() + kStepTimeout);
  auto serving = Receive(channel.get(), kStepTimeout);
  if (!serving.ok()) return fail(serving.status());
  if (!serving->envelope.has_serving()) return fail(absl::InvalidArgumentError("expected serving"));
  host_.Withdraw();  // everything is the new snapd's
  // We are the service's main process: hand that over too, before we exit.
  NotifyServiceManager(
      absl::StrCat("MAINPID=", child, "\nSTATUS=upgraded: serving as pid ", child));
  LOG(INFO) << "upgrade: everything moved to pid " << child << " (brownout " << report.brownout_us
            << " us); this snapd exits";
  host_.loop().Stop();
  return report;
}

}  // namespace snapd::upgrade
