#include "control/service.h"

#include <unistd.h>

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
  if (req->follow() && followers_.fetch_add(1) >= kMaxFollowers) {
    --followers_;
    return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                        absl::StrCat("already ", kMaxFollowers,
                                     " callers follow the events: try again when one has left"));
  }
  absl::Cleanup leave = [&] {
    if (req->follow()) --followers_;
  };
  uint64_t after = req->after_seq();
  while (!ctx->IsCancelled()) {
    uint64_t first_kept = 0;
    // Not following: what the log holds now, without waiting. Following: a second at most, then
    // a look at whether the caller is still there.
    const absl::Time deadline = req->follow() ? absl::Now() + absl::Seconds(1) : absl::Now();
    std::vector<Event> events = daemon_->events().Since(after, 256, deadline, &first_kept);
    // A caller that asked for what the log has let go of (or fell that far behind) is told.
    uint64_t missed = first_kept > after + 1 ? first_kept - after - 1 : 0;
    for (const Event& e : events) {
      v1::Event out;
      out.set_seq(e.seq);
      out.set_unix_ms(e.unix_ms);
      out.set_kind(e.kind);
      out.set_subject(e.subject);
      out.set_message(e.message);
      if (missed > 0) out.set_missed(std::exchange(missed, 0));
      if (!writer->Write(out)) return grpc::Status::OK;  // the caller left
      after = e.seq;
    }
    if (events.empty() && !req->follow()) break;
  }
  return grpc::Status::OK;
}

}  // namespace snapd
