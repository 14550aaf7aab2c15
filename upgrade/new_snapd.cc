#include "upgrade/new_snapd.h"

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/clock.h"
#include "glog/logging.h"
#include "snapd/daemon/app_port.h"
#include "snapd/daemon/config.h"
#include "upgrade/memif_handoff.h"

namespace snapd::upgrade {
namespace {

// An upgrade's threads run at kUpgradeNice: on a machine whose cores the apps and the old snapd
// keep busy, a woken thread of the new snapd (its main thread reading a move, a worker taking an
// engine) otherwise waits up to milliseconds for a core, and every such wait is blackout. Threads
// created meanwhile (workers, EAL's) inherit it; all go back to the usual once the upgrade ends.
constexpr int kUpgradeNice = -10;

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

}  // namespace

NewSnapd::~NewSnapd() {
  // Failing, we leave without a word: the old snapd takes back the apps, the NICs, the rings.
  if (daemon_) daemon_->Withdraw();
}

void NewSnapd::MaybeDie(const std::string& phase) const {
  if (faults_.fault == phase) {
    LOG(WARNING) << "upgrade: dying in " << phase << " (--upgrade_fault)";
    raise(SIGKILL);
  }
}

absl::StatusOr<std::unique_ptr<Daemon>> NewSnapd::Run(UniqueFd channel) {
  std::string phase = "start";
  absl::Status status = Steps(channel.get(), &phase);
  if (!status.ok()) {
    // Let go first (the old snapd takes back the apps, the NICs, the rings), then tell it why, so
    // that snapctl upgrade can.
    if (daemon_) daemon_->Withdraw();
    daemon_.reset();
    wire::Envelope failed;
    failed.mutable_failed()->set_phase(phase);
    failed.mutable_failed()->set_reason(std::string(status.message()));
    (void)Send(channel.get(), failed);
    return status;
  }
  return std::move(daemon_);
}

absl::Status NewSnapd::Steps(int channel, std::string* phase) {
  const int usual_nice = getpriority(PRIO_PROCESS, 0);
  if (setpriority(PRIO_PROCESS, 0, kUpgradeNice) != 0) {
    LOG(INFO) << "upgrade: at the usual priority (" << strerror(errno) << ")";
  }
  absl::Cleanup usual_priority = [usual_nice] { SetAllThreadsNice(usual_nice); };
  wire::Envelope hello;
  hello.mutable_hello()->set_version(faults_.claim_version != 0 ? faults_.claim_version
                                                                : kProtocolVersion);
  hello.mutable_hello()->set_pid(getpid());
  hello.mutable_hello()->set_build(BuildString());
  absl::Status status = Send(channel, hello);
  if (!status.ok()) return status;
  auto brownout = Receive(channel, kStepTimeout);
  if (!brownout.ok()) return brownout.status();
  if (brownout->envelope.has_refuse()) {
    return absl::FailedPreconditionError(
        absl::StrCat("the old snapd refused the upgrade: ", brownout->envelope.refuse().reason()));
  }
  if (!brownout->envelope.has_brownout()) return absl::InvalidArgumentError("expected brownout");
  *phase = "brownout";
  MaybeDie("brownout");
  const wire::Brownout& b = brownout->envelope.brownout();
  auto handoff = TakeMemifHandoff(b.memif(), &brownout->fds);
  if (!handoff.ok()) return handoff.status();
  if (b.control_listener_fd() < brownout->fds.size()) {
    control_listener_ = std::move(brownout->fds[b.control_listener_fd()]);
  }
  if (b.has_metrics_listener_fd() && b.metrics_listener_fd() < brownout->fds.size()) {
    metrics_listener_ = std::move(brownout->fds[b.metrics_listener_fd()]);
  }
  if (b.journal_fd() < brownout->fds.size()) {
    auto journal = JournalMemory::Map(std::move(brownout->fds[b.journal_fd()]), b.journal_areas(),
                                      b.journal_capacity());
    if (!journal.ok()) return journal.status();
    journal_ = std::move(*journal);
  }
  // The old snapd's config is checked as a config file would be: it names the NICs, engines and
  // apps everything below indexes by.
  config::SnapdConfig cfg = b.config();
  status = CompleteConfig(&cfg);
  if (!status.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("the old snapd's config: ", status.message()));
  }
  // Workers and NICs now, during brownout, so that a blackout only moves an engine.
  auto daemon =
      Daemon::Adopt(cfg, std::move(handoff->listener), faults_.defer_nics, &deferred_nics_, nics_);
  if (!daemon.ok()) return daemon.status();
  daemon_ = std::move(*daemon);
  // One app that broke its rings (say, overwrote a cookie) must not hold back an upgrade that
  // everyone else needs: it is told why and left out; it may connect again.
  wire::Envelope ready;
  wire::Ready* r = ready.mutable_ready();
  for (memif::ConnectionHandoff& c : handoff->connections) {
    uint32_t id = c.id;
    status = daemon_->memif().AdoptConnection(std::move(c));
    if (!status.ok()) {
      LOG(WARNING) << "upgrade: app " << id << " detached: " << status.message();
      wire::DetachedApp* detached = r->add_detached_apps();
      detached->set_id(id);
      detached->set_reason(std::string(status.message()));
    }
  }
  for (int i : deferred_nics_) r->add_deferred_nics(i);
  // Captures go on here (snapctl asks for the rest of the stream once we serve). One we cannot
  // take ends with the old snapd; the upgrade goes on.
  for (const wire::CarriedCapture& c : b.captures()) {
    status = AdoptCapture(c);
    if (!status.ok()) {
      LOG(WARNING) << "upgrade: capture " << c.id() << " ends: " << status.message();
      daemon_->events().Add(
          "capture", absl::StrCat("capture ", c.id()),
          absl::StrCat("ended: the new snapd could not take it over: ", status.message()));
    }
  }
  status = Send(channel, ready);
  if (!status.ok()) return status;

  const size_t engines = daemon_->EngineNames().size();
  // This upgrade, for DaemonInfo.last_upgrade: an engine each as it moves in, the old snapd's
  // figures for them from Done.
  UpgradeReport record;
  size_t measured = 0;              // the engines Done gave a blackout (the histogram's)
  std::vector<Event> older_events;  // the old snapd's log
  uint64_t older_log = 0;
  while (true) {
    auto msg = Receive(channel, kStepTimeout);
    if (!msg.ok()) return msg.status();
    if (msg->envelope.has_done()) {
      if (record.engines.size() < engines) {
        return absl::InvalidArgumentError(
            absl::StrCat("done after ", record.engines.size(), " of ", engines, " engines moved"));
      }
      // One figure an engine moved, at most, each at most an hour (the old snapd's word: checked).
      const wire::Done& done = msg->envelope.done();
      constexpr uint64_t kHourUs = 3600000000;
      measured = std::min<size_t>(done.blackout_us_size(), record.engines.size());
      for (size_t i = 0; i < measured; ++i) {
        record.engines[i].blackout_us = std::min<uint64_t>(done.blackout_us(i), kHourUs);
      }
      for (size_t i = 0; i < record.engines.size() && i < size_t(done.handover_us_size()); ++i) {
        record.engines[i].handover_us = std::min<uint64_t>(done.handover_us(i), kHourUs);
      }
      record.brownout_us = std::min<uint64_t>(done.brownout_us(), kHourUs);
      record.old_build = done.old_build().substr(0, 512);
      for (const std::string& note : done.notes()) {
        if (record.notes.size() < 64) record.notes.push_back(note.substr(0, 1024));
      }
      older_events = EventsFromWire(msg->envelope.done());
      older_log = msg->envelope.done().events_log_id();
      break;
    }
    if (!msg->envelope.has_move_engine()) return absl::InvalidArgumentError("expected a move");
    *phase = absl::StrCat("blackout of ", msg->envelope.move_engine().name());
    MaybeDie("blackout");
    if (faults_.fault == "error") {
      return absl::InternalError("refusing the move (--upgrade_fault=error)");
    }
    if (faults_.fault == "slow") absl::SleepFor(kSlowMove);  // the engine is stopped meanwhile
    absl::StatusOr<int64_t> polling_since = MoveIn(msg->envelope.move_engine(), msg->fds);
    if (!polling_since.ok()) return polling_since.status();
    record.engines.push_back(EngineMove{msg->envelope.move_engine().name(), 0, 0});
    wire::Envelope reply;
    reply.mutable_moved()->set_name(msg->envelope.move_engine().name());
    reply.mutable_moved()->set_polling_since_ns(*polling_since);
    status = Send(channel, reply);
    if (!status.ok()) return status;
    if (record.engines.size() * 2 >= engines) MaybeDie("half");
  }
  *phase = "finish";
  if (faults_.fault == "publish") {
    absl::SleepFor(absl::Seconds(5));  // the workers die in a batch meanwhile (traffic permitting)
  }
  status = daemon_->FinishUpgrade();
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
    LOG(WARNING) << "upgrade: the old snapd did not let go within " << kStepTimeout;
  }
  StopJournals();
  ServiceHistory history;
  history.serving_since_unix_ms = b.serving_since_unix_ms();
  history.upgrades = b.upgrades() + 1;
  history.restarts = b.restarts();
  history.store_generation = b.store_generation();
  history.previous_pid = b.pid();
  if (!BlackoutsFromWire(b.blackouts(), &history.blackouts)) {
    LOG(WARNING) << "upgrade: the old snapd's blackout histogram is not this build's shape: it "
                    "starts again from this upgrade's";
  }
  uint64_t worst_us = 0;
  for (size_t i = 0; i < measured; ++i) {
    const uint64_t us = record.engines[i].blackout_us;
    history.blackouts.Add(us);
    worst_us = std::max(worst_us, us);
  }
  record.old_pid = b.pid();
  record.new_pid = getpid();
  record.new_build = BuildString();
  record.finished_unix_ms = absl::ToUnixMillis(absl::Now());
  history.last_upgrade = std::move(record);
  daemon_->BeginServing(history);
  daemon_->events().TakeOver(std::move(older_events), older_log);
  daemon_->events().Add(
      "upgrade", absl::StrCat("pid ", b.pid()),
      absl::StrCat("took over: ", daemon_->memif().connections().size(), " app(s) kept, ", engines,
                   " engine(s) moved, worst blackout ", worst_us, " us"));
  LOG(INFO) << "snapd took over: " << daemon_->memif().connections().size() << " app(s) kept, "
            << engines << " engine(s) moved";
  return absl::OkStatus();
}

absl::StatusOr<int64_t> NewSnapd::MoveIn(const wire::MoveEngine& m,
                                         const std::vector<UniqueFd>& fds) {
  const int64_t t_got = MonotonicNs();
  Engine* engine = daemon_->FindEngine(m.name());
  if (engine == nullptr) return absl::NotFoundError(absl::StrCat("no engine named ", m.name()));
  // A second move of one engine would restore into an engine a worker polls.
  if (!moved_.insert(m.name()).second) {
    return absl::FailedPreconditionError(absl::StrCat("engine ", m.name(), " moved in already"));
  }
  if (!journal_areas_.insert(m.journal_area()).second) {
    return absl::InvalidArgumentError(
        absl::StrCat("journal area ", m.journal_area(), " given to a second engine"));
  }
  if (m.open_nics()) {
    if (nics_opened_) return absl::InvalidArgumentError("deferred NICs opened twice");
    nics_opened_ = true;
    for (int i : deferred_nics_) {
      absl::Status status = daemon_->OpenNic(i);
      if (!status.ok()) return status;
    }
    daemon_->AddPortCounters({m.closed_ports().begin(), m.closed_ports().end()});
  }
  DiscardNicCopies(*engine);
  for (const wire::NicCounters& nc : m.nics()) {
    Nic* nic = daemon_->nic(static_cast<int>(std::min<uint32_t>(nc.index(), INT32_MAX)));
    if (nic != nullptr) nic->ContinueFrom(NicCountersFromWire(nc));
  }
  engines::EngineState from_fd;
  const engines::EngineState* state = &m.state();
  if (m.state_in_fd()) {
    if (fds.size() != 1) return absl::InvalidArgumentError("state_in_fd without one fd");
    auto bytes = ReadSealedMemfd(fds[0].get(), kMaxStateBytes);
    if (!bytes.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("engine state: ", bytes.status().message()));
    }
    if (!from_fd.ParseFromString(*bytes)) {
      return absl::InvalidArgumentError("engine state in the memfd does not parse");
    }
    state = &from_fd;
  }
  absl::Status status = engine->RestoreState(*state);
  if (!status.ok()) return status;
  // The old snapd served these rings until a moment ago: start where it stopped, and journal
  // every batch's cursors until it lets go.
  ForEachAppPort(*engine, [](AppPort& app) { app.Resync(); });
  status = StartJournal(m.name(), m.journal_area());
  if (!status.ok()) return status;
  const int64_t t_restored = MonotonicNs();
  absl::StatusOr<int64_t> polled_since = daemon_->StartEngine(m.name());
  if (!polled_since.ok()) return polled_since.status();
  // Where the new side's part of a blackout goes: reading the move (waking this thread), restoring,
  // and the worker taking the engine (waking it).
  LOG(INFO) << "upgrade: " << m.name() << " read " << (t_got - m.sent_ns()) / 1000
            << " us after it was sent, restored in " << (t_restored - t_got) / 1000
            << " us, polled " << (*polled_since - t_restored) / 1000 << " us later";
  return polled_since;
}

absl::Status NewSnapd::AdoptCapture(const wire::CarriedCapture& c) {
  CaptureSpec spec;
  spec.ports.assign(c.ports().begin(), c.ports().end());
  spec.rx = c.rx();
  spec.tx = c.tx();
  spec.count = c.count();
  spec.snaplen = c.snaplen();
  spec.ring_bytes = static_cast<size_t>(std::min<uint64_t>(c.ring_bytes(), SIZE_MAX));
  spec.filter = c.filter().substr(0, 4096);
  std::unique_ptr<CaptureFilter> filter;
  if (!c.filter_program().empty() || !spec.filter.empty()) {
    auto loaded = CaptureFilter::FromProgram(spec.filter, c.filter_program());
    if (!loaded.ok()) return loaded.status();
    filter = std::move(*loaded);
  }
  return daemon_->AdoptCapture(std::move(spec), std::move(filter), c.id(), c.started_unix_ns());
}

void NewSnapd::DiscardNicCopies(Engine& engine) {
  // A packet socket opened beside the old snapd's got a copy of every frame the old one handled:
  // discard what ours gathered, counted. (A tap shares its frames among the queues of both
  // snapds instead: those in ours are for us to handle now; a NIC opened just now holds only
  // frames that came after the old snapd let go.)
  std::vector<std::string> copies;
  for (int i = 0; i < daemon_->NicCount(); ++i) {
    Nic* nic = daemon_->nic(i);
    if (nic != nullptr && nic->ReceivesCopies() &&
        std::find(deferred_nics_.begin(), deferred_nics_.end(), i) == deferred_nics_.end()) {
      copies.push_back(nic->name());
    }
  }
  engine.ForEachPort([&](Port& p) {
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

absl::Status NewSnapd::StartJournal(const std::string& name, uint32_t area_index) {
  JournalArea* area = journal_ ? journal_->area(area_index) : nullptr;
  if (area == nullptr) return absl::OkStatus();  // an old snapd without a journal
  Engine* engine = daemon_->FindEngine(name);
  auto& journal = journals_[name];
  journal = std::make_unique<CursorJournal>(area, journal_->capacity());
  absl::Status status;
  ForEachAppPort(*engine, [&](AppPort& app) {
    if (status.ok()) status = journal->Track(&app);
  });
  if (!status.ok()) return status;
  if (faults_.fault == "publish") journal->DieMidPublishAfter(100);
  engine->set_batch_observer(journal.get());
  return absl::OkStatus();
}

void NewSnapd::StopJournals() {
  for (auto& entry : journals_) {
    Engine* engine = daemon_->FindEngine(entry.first);
    CursorJournal* journal = entry.second.get();
    daemon_->OnEngine(entry.first, [&] {
      engine->set_batch_observer(nullptr);
      journal->Close();
    });
  }
  journals_.clear();
  journal_.reset();
}

}  // namespace snapd::upgrade
