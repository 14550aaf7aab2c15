#include "control/service.h"

#include <pthread.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <thread>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "control/wire.h"
#include "glog/logging.h"
#include "upgrade/old_snapd.h"

namespace snapd {

grpc::Status ToGrpc(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

absl::Status SnapdService::OnMain(const std::function<absl::Status()>& fn) {
  absl::Status result;
  absl::Status ran = daemon_->RunOnMain([&] {
    // Queued behind an upgrade that succeeded: this snapd is on its way out.
    result = daemon_->handed_over()
                 ? absl::UnavailableError("this snapd has handed over to a new one: try again")
                 : fn();
  });
  return ran.ok() ? result : ran;
}

absl::Status SnapdService::OnMainChange(const std::function<absl::Status()>& fn) {
  return OnMain([&] {
    if (daemon_->upgrading()) {
      return absl::FailedPreconditionError("an upgrade is running: try again when it has ended");
    }
    return fn();
  });
}

grpc::Status SnapdService::AdminOnly(const grpc::ServerContext* ctx, const char* what,
                                     const char* why) const {
  if (tier_ == Tier::kAdmin) return grpc::Status::OK;
  const std::string who = describe_ ? describe_(ctx->peer()) : "a member";
  LOG(WARNING) << "control: refused " << what << " to an operator (" << who
               << " in the control group)";
  return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                      absl::StrCat(what, " is for root and snapd's own user (uid ", geteuid(),
                                   "): ", why, "; you are ", who, " in the control group"));
}

grpc::Status SnapdService::GetDaemonInfo(grpc::ServerContext*, const v1::GetDaemonInfoRequest*,
                                         v1::DaemonInfo* out) {
  return ToGrpc(OnMain([&] {
    *out = InfoOf(*daemon_);
    return absl::OkStatus();
  }));
}

grpc::Status SnapdService::ListEngines(grpc::ServerContext*, const v1::ListEnginesRequest*,
                                       v1::ListEnginesResponse* out) {
  return ToGrpc(OnMain([&] {
    v1::Stats stats = StatsOf(*daemon_);
    *out->mutable_engines() = stats.engines();
    return absl::OkStatus();
  }));
}

grpc::Status SnapdService::GetEngine(grpc::ServerContext*, const v1::GetEngineRequest* req,
                                     v1::Engine* out) {
  if (req->name().empty()) return ToGrpc(absl::InvalidArgumentError("name: must not be empty"));
  return ToGrpc(OnMain([&] {
    v1::Stats stats = StatsOf(*daemon_);  // a local: the loop must not outlive it
    for (const v1::Engine& e : stats.engines()) {
      if (e.name() == req->name()) {
        *out = e;
        return absl::OkStatus();
      }
    }
    return absl::NotFoundError(absl::StrCat("no engine named '", req->name(), "'"));
  }));
}

grpc::Status SnapdService::CreateEngine(grpc::ServerContext*, const v1::CreateEngineRequest* req,
                                        v1::Engine* out) {
  if (req->name().empty()) return ToGrpc(absl::InvalidArgumentError("name: must not be empty"));
  if (req->kind().empty()) return ToGrpc(absl::InvalidArgumentError("kind: must not be empty"));
  config::Engine e;
  e.set_name(req->name());
  e.set_kind(req->kind());
  e.set_config(req->config());
  e.set_group(req->group());
  return ToGrpc(OnMainChange([&] {
    absl::Status status = daemon_->CreateEngine(e);
    if (!status.ok()) return status;
    v1::Stats stats = StatsOf(*daemon_);
    for (const v1::Engine& got : stats.engines()) {
      if (got.name() == e.name()) *out = got;
    }
    return absl::OkStatus();
  }));
}

grpc::Status SnapdService::DestroyEngine(grpc::ServerContext*, const v1::DestroyEngineRequest* req,
                                         v1::DestroyEngineResponse*) {
  if (req->name().empty()) return ToGrpc(absl::InvalidArgumentError("name: must not be empty"));
  return ToGrpc(OnMainChange([&] { return daemon_->DestroyEngine(req->name()); }));
}

grpc::Status SnapdService::ListApps(grpc::ServerContext*, const v1::ListAppsRequest*,
                                    v1::ListAppsResponse* out) {
  return ToGrpc(OnMain([&] {
    for (v1::App& a : AppsOf(*daemon_)) *out->add_apps() = std::move(a);
    return absl::OkStatus();
  }));
}

grpc::Status SnapdService::AddApp(grpc::ServerContext*, const v1::AddAppRequest* req,
                                  v1::App* out) {
  config::App app;
  app.set_id(req->id());
  app.set_mac(req->mac());
  app.set_ipv4(req->ipv4());
  app.set_secret(req->secret());
  app.set_engine(req->engine());
  *app.mutable_ipv6() = req->ipv6();
  app.set_vlan(req->vlan());
  if (req->has_uid()) app.set_uid(req->uid());
  return ToGrpc(OnMainChange([&] {
    absl::Status status = daemon_->AddApp(app);
    if (!status.ok()) return status;
    for (v1::App& a : AppsOf(*daemon_)) {
      if (a.id() == req->id()) *out = std::move(a);
    }
    return absl::OkStatus();
  }));
}

grpc::Status SnapdService::RemoveApp(grpc::ServerContext*, const v1::RemoveAppRequest* req,
                                     v1::RemoveAppResponse*) {
  return ToGrpc(OnMainChange([&] { return daemon_->RemoveApp(req->id()); }));
}

grpc::Status SnapdService::ListPorts(grpc::ServerContext*, const v1::ListPortsRequest*,
                                     v1::ListPortsResponse* out) {
  return ToGrpc(OnMain([&] {
    v1::Stats stats = StatsOf(*daemon_);
    *out->mutable_nics() = stats.nics();
    *out->mutable_ports() = stats.ports();
    return absl::OkStatus();
  }));
}

grpc::Status SnapdService::ListGroups(grpc::ServerContext*, const v1::ListGroupsRequest*,
                                      v1::ListGroupsResponse* out) {
  return ToGrpc(OnMain([&] {
    for (v1::Group& g : GroupsOf(*daemon_)) *out->add_groups() = std::move(g);
    return absl::OkStatus();
  }));
}

grpc::Status SnapdService::SetGroup(grpc::ServerContext*, const v1::SetGroupRequest* req,
                                    v1::Group* out) {
  if (req->name().empty()) return ToGrpc(absl::InvalidArgumentError("name: must not be empty"));
  std::optional<std::string> mode;
  if (req->has_mode()) mode = req->mode();
  std::optional<std::vector<int>> cores;
  if (req->set_cores()) cores.emplace(req->cores().begin(), req->cores().end());
  std::optional<int64_t> slo;
  if (req->has_slo_ns()) slo = req->slo_ns();
  return ToGrpc(OnMainChange([&] {
    absl::Status status = daemon_->SetGroup(req->name(), mode, cores, slo);
    if (!status.ok()) return status;
    for (v1::Group& g : GroupsOf(*daemon_)) {
      if (g.name() == req->name()) *out = std::move(g);
    }
    return absl::OkStatus();
  }));
}

grpc::Status SnapdService::Upgrade(grpc::ServerContext* ctx, const v1::UpgradeRequest* req,
                                   v1::UpgradeReport* out) {
  // Refused before anything else: an operator learns nothing about the binary.
  grpc::Status admin = AdminOnly(ctx, "upgrade", "it runs a binary as snapd");
  if (!admin.ok()) return admin;
  if (req->binary().empty()) return ToGrpc(absl::InvalidArgumentError("binary: must not be empty"));
  std::vector<std::string> args(req->args().begin(), req->args().end());
  std::vector<std::string> order(req->engines().begin(), req->engines().end());
  if (upgrade_running_.exchange(true)) {
    return ToGrpc(absl::FailedPreconditionError("an upgrade is already running"));
  }
  absl::Cleanup not_running = [this] { upgrade_running_ = false; };
  return ToGrpc(OnMain([&] {
    upgrade::OldSnapd upgrade(*daemon_);
    absl::StatusOr<upgrade::Report> report = upgrade.Run(req->binary(), args, order);
    if (!report.ok()) return report.status();
    *out = ReportOf(*report);
    return absl::OkStatus();
  }));
}

grpc::Status SnapdService::GetStats(grpc::ServerContext*, const v1::GetStatsRequest*,
                                    v1::Stats* out) {
  return ToGrpc(OnMain([&] {
    *out = StatsOf(*daemon_);
    return absl::OkStatus();
  }));
}

grpc::Status SnapdService::Events(grpc::ServerContext* ctx, const v1::EventsRequest* req,
                                  grpc::ServerWriter<v1::Event>* writer) {
  if (readers_.fetch_add(1) >= kMaxEventReaders) {
    --readers_;
    return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                        absl::StrCat("already ", kMaxEventReaders,
                                     " callers read the events: try again when one has left"));
  }
  absl::Cleanup leave = [&] { --readers_; };
  // A caller that read another log (a snapd that crashed started a new one) reads ours whole.
  uint64_t after =
      req->log_id() == 0 || req->log_id() == daemon_->events().id() ? req->after_seq() : 0;
  while (!ctx->IsCancelled()) {
    uint64_t first_kept = 0;
    // Not following: what the log holds now, without waiting. Following: a second at most, then
    // a look at whether the caller is still there.
    const absl::Time deadline = req->follow() ? absl::Now() + absl::Seconds(1) : absl::Now();
    std::vector<Event> events = daemon_->events().Since(after, 256, deadline, &first_kept);
    const uint64_t log_id = daemon_->events().id();
    // A caller that asked for what the log has let go of (or fell that far behind) is told.
    uint64_t missed = first_kept > after + 1 ? first_kept - after - 1 : 0;
    for (const Event& e : events) {
      v1::Event out;
      out.set_seq(e.seq);
      out.set_unix_ms(e.unix_ms);
      out.set_kind(e.kind);
      out.set_subject(e.subject);
      out.set_message(e.message);
      out.set_log_id(log_id);
      if (missed > 0) out.set_missed(std::exchange(missed, 0));
      if (!writer->Write(out)) return grpc::Status::OK;  // the caller left
      after = e.seq;
    }
    if (events.empty() && !req->follow()) break;
  }
  return grpc::Status::OK;
}

namespace {

// How much nicer a capture's reader is than the thread that started it: CFS gives it a tenth of
// the share of a thread at snapd's own priority (an app's, a blocking worker's) on a busy core,
// and all it wants on an idle one.
constexpr int kCaptureNice = 10;

// A CaptureRequest as a CaptureSpec (the ports are found later); INVALID_ARGUMENT names the field.
absl::StatusOr<CaptureSpec> SpecOf(const v1::CaptureRequest& req) {
  if (req.port().empty() == req.nic().empty()) {
    return absl::InvalidArgumentError("port or nic: exactly one of them");
  }
  CaptureSpec spec;
  spec.rx = req.direction() != v1::CaptureRequest::TX;
  spec.tx = req.direction() != v1::CaptureRequest::RX;
  spec.count = req.count();
  spec.snaplen = req.snaplen() == 0 ? 262144 : req.snaplen();
  if (spec.snaplen > 262144) return absl::InvalidArgumentError("snaplen: at most 262144");
  const uint32_t kb = req.buffer_kb() == 0 ? 4096 : req.buffer_kb();
  if (kb < 64 || kb > 65536) return absl::InvalidArgumentError("buffer_kb: from 64 to 65536");
  spec.ring_bytes = size_t{kb} << 10;  // Capture::Create cuts the snap length to fit it
  spec.filter = req.filter();
  // Before libpcap compiles it (Capture::Check bounds the rest).
  if (spec.filter.size() > 4096) return absl::InvalidArgumentError("filter: at most 4096 bytes");
  if (!req.port().empty()) spec.ports = {req.port()};
  return spec;
}

}  // namespace

grpc::Status SnapdService::Capture(grpc::ServerContext* ctx, const v1::CaptureRequest* req,
                                   grpc::ServerWriter<v1::CaptureChunk>* writer) {
  grpc::Status admin = AdminOnly(ctx, "capture", "frames carry the apps' data");
  if (!admin.ok()) return admin;
  std::shared_ptr<snapd::Capture> capture;
  std::vector<std::string> descriptions;
  const bool resuming = req->resume_id() != 0;
  if (resuming) {
    absl::Status taken = ResumeCarried(*req, &capture);
    if (!taken.ok()) return ToGrpc(taken);
  } else {
    absl::StatusOr<CaptureSpec> spec = SpecOf(*req);
    if (!spec.ok()) return ToGrpc(spec.status());
    // Here, not on the main thread: libpcap may look a host or a port name up.
    std::unique_ptr<CaptureFilter> filter;
    if (!spec->filter.empty()) {
      auto compiled = CaptureFilter::Compile(spec->filter);
      if (!compiled.ok()) return ToGrpc(compiled.status());
      filter = std::move(*compiled);
    }
    absl::Status started = OnMainChange([&]() -> absl::Status {
      if (!req->nic().empty()) {
        spec->ports = daemon_->NicPorts(req->nic());
        if (spec->ports.empty()) {
          return absl::NotFoundError(
              absl::StrCat("nic '", req->nic(), "': no such NIC, or none of its queues is open"));
        }
      }
      auto c = daemon_->StartCapture(*spec, std::move(filter), &descriptions);
      if (!c.ok()) return c.status();
      capture = std::move(*c);
      return absl::OkStatus();
    });
    if (!started.ok()) return ToGrpc(started);
  }
  const std::string what =
      absl::StrCat(req->port().empty() ? "nic " : "port ", req->port() + req->nic());
  const std::string who = describe_ ? describe_(ctx->peer()) : "an admin";
  daemon_->events().Add(
      "capture", what,
      resuming ? absl::StrCat("goes on after the upgrade, for ", who, ", from frame ",
                              capture->written() + 1)
               : absl::StrCat("started by ", who,
                              req->filter().empty() ? "" : ", filter: " + req->filter()));
  // The stream is read, written as pcapng and sent from a thread of its own at a lower priority
  // (kCaptureNice): a capture takes the CPU apps and engines leave over. Where there is none,
  // the rings fill and their frames are dropped and counted, as when the reader is slow.
  // Counted while it runs: an old snapd that handed over waits for it to send its last frames.
  ++daemon_->capture_streams();
  absl::Cleanup counted = [this] { --daemon_->capture_streams(); };
  std::thread streamer([&] {
    pthread_setname_np(pthread_self(), "capture");
    const id_t self = static_cast<id_t>(gettid());
    errno = 0;
    const int nice = getpriority(PRIO_PROCESS, self);
    if (errno != 0 || setpriority(PRIO_PROCESS, self, std::min(nice + kCaptureNice, 19)) != 0) {
      LOG(WARNING) << "capture: cannot lower the reader's priority: " << strerror(errno);
    }
    v1::CaptureChunk first;
    // Resumed, the file has its section header and interfaces already.
    if (resuming) {
      first.set_resumed(true);
    } else {
      first.set_pcapng(capture->Header(descriptions));
    }
    for (const auto& p : capture->ports()) first.add_ports(p->port());
    first.set_filter_jit(capture->jit());
    std::string ended = "cancelled";
    if (writer->Write(first)) {
      const absl::Time deadline = req->duration_ms() == 0
                                      ? absl::InfiniteFuture()
                                      : absl::Now() + absl::Milliseconds(req->duration_ms());
      while (true) {
        v1::CaptureChunk chunk;
        const size_t frames = capture->Drain(chunk.mutable_pcapng(), 1 << 20);
        if (frames > 0 && !writer->Write(chunk)) break;
        if (capture->done()) {
          ended = "count";
          break;
        }
        if (absl::Now() >= deadline) {
          ended = "duration";
          break;
        }
        // A live upgrade: the new snapd goes on with it; our rings take nothing more.
        if (capture->handed_over()) {
          ended = "upgrade";
          break;
        }
        if (ctx->IsCancelled()) break;
        // The rings hold what comes meanwhile: a reader a hundred times a second, not a spinner.
        if (frames == 0) absl::SleepFor(absl::Milliseconds(10));
      }
    }
    const bool carried = ended == "upgrade";
    // Taps off (after this no engine thread touches the capture), then what was left in the rings.
    // A snapd that is stopping keeps the capture (taps and all) until its engines are gone: safe,
    // but frames may still come in while the rest is read.
    if (!carried) {
      absl::Status stopped = OnMain([&] {
        daemon_->StopCapture(capture);
        return absl::OkStatus();
      });
      if (!stopped.ok()) ended += " (snapd stopping)";
    }
    v1::CaptureChunk last;
    while (capture->Drain(last.mutable_pcapng(), 1 << 20) > 0 &&
           last.pcapng().size() >= (1 << 20)) {
      if (!writer->Write(last)) break;
      last.clear_pcapng();
    }
    // Carried on, the statistics blocks are the new snapd's to write, with our figures in them.
    if (!carried) {
      last.mutable_pcapng()->append(capture->Trailer(
          capture->started_unix_ns(), absl::ToUnixNanos(absl::Now()), "snapd capture: " + ended));
    }
    last.set_done(true);
    last.set_ended(ended);
    last.set_captured(capture->written());
    for (const PortTotals& t : capture->Totals()) {
      last.set_seen(last.seen() + t.seen);
      last.set_accepted(last.accepted() + t.accepted);
      last.set_dropped(last.dropped() + t.dropped);
      if (!carried) continue;
      v1::CapturePortTotals* out = last.add_port_totals();
      out->set_seen(t.seen);
      out->set_accepted(t.accepted);
      out->set_dropped(t.dropped);
      out->set_written(t.written);
    }
    if (carried) last.set_resume_id(capture->id());
    daemon_->events().Add("capture", what,
                          absl::StrCat("ended (", ended, "): ", last.captured(), " frame(s), ",
                                       last.dropped(), " dropped"));
    (void)writer->Write(last);
  });
  streamer.join();
  return grpc::Status::OK;
}

absl::Status SnapdService::ResumeCarried(const v1::CaptureRequest& req,
                                         std::shared_ptr<snapd::Capture>* capture) {
  if (req.resume_prior_size() > static_cast<int>(Capture::kMaxPorts)) {
    return absl::InvalidArgumentError("resume_prior: more ports than a capture has");
  }
  std::vector<PortTotals> prior;
  for (const v1::CapturePortTotals& t : req.resume_prior()) {
    prior.push_back({t.seen(), t.accepted(), t.dropped(), t.written()});
  }
  return OnMain([&]() -> absl::Status {
    // The old snapd, until it has handed over: the capture is to be asked of the new one.
    if (daemon_->upgrading()) {
      return absl::UnavailableError("an upgrade is running: try again when it has ended");
    }
    auto c = daemon_->ResumeCapture(req.resume_id(), req.resume_written(), std::move(prior));
    if (!c.ok()) return c.status();
    *capture = std::move(*c);
    return absl::OkStatus();
  });
}

}  // namespace snapd
