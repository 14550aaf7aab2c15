// SnapdService: the v1 gRPC API over a running Daemon. Every RPC checks its input first, then runs
// its work on the daemon's main thread (Daemon::RunOnMain), so the control plane's state has one
// owner and engines are reached only through their workers' mailboxes. An instance serves one tier
// of callers (control/authority.h): the operators' answers PERMISSION_DENIED to what is for admins.
#ifndef SNAPD_CONTROL_SERVICE_H_
#define SNAPD_CONTROL_SERVICE_H_

#include <atomic>
#include <functional>
#include <string>

#include "control/authority.h"
#include "control/proto/snapd.grpc.pb.h"
#include "snapd/daemon/daemon.h"

namespace snapd {

// absl::Status -> grpc::Status, code and message kept.
grpc::Status ToGrpc(const absl::Status& status);

class SnapdService final : public v1::Snapd::Service {
 public:
  // Names a caller by gRPC's peer string ("uid 1001"), for refusals; may be empty.
  using DescribeCaller = std::function<std::string(const std::string& peer)>;
  // Serves callers of `tier` (kAdmin or kOperator).
  SnapdService(Daemon* daemon, Tier tier, DescribeCaller describe = nullptr)
      : daemon_(daemon), tier_(tier), describe_(std::move(describe)) {}

  grpc::Status GetDaemonInfo(grpc::ServerContext*, const v1::GetDaemonInfoRequest*,
                             v1::DaemonInfo*) override;
  grpc::Status ListEngines(grpc::ServerContext*, const v1::ListEnginesRequest*,
                           v1::ListEnginesResponse*) override;
  grpc::Status GetEngine(grpc::ServerContext*, const v1::GetEngineRequest*, v1::Engine*) override;
  grpc::Status CreateEngine(grpc::ServerContext*, const v1::CreateEngineRequest*,
                            v1::Engine*) override;
  grpc::Status DestroyEngine(grpc::ServerContext*, const v1::DestroyEngineRequest*,
                             v1::DestroyEngineResponse*) override;
  grpc::Status ListApps(grpc::ServerContext*, const v1::ListAppsRequest*,
                        v1::ListAppsResponse*) override;
  grpc::Status AddApp(grpc::ServerContext*, const v1::AddAppRequest*, v1::App*) override;
  grpc::Status RemoveApp(grpc::ServerContext*, const v1::RemoveAppRequest*,
                         v1::RemoveAppResponse*) override;
  grpc::Status ListPorts(grpc::ServerContext*, const v1::ListPortsRequest*,
                         v1::ListPortsResponse*) override;
  grpc::Status GetStats(grpc::ServerContext*, const v1::GetStatsRequest*, v1::Stats*) override;
  grpc::Status ListGroups(grpc::ServerContext*, const v1::ListGroupsRequest*,
                          v1::ListGroupsResponse*) override;
  grpc::Status SetGroup(grpc::ServerContext*, const v1::SetGroupRequest*, v1::Group*) override;
  grpc::Status Upgrade(grpc::ServerContext*, const v1::UpgradeRequest*,
                       v1::UpgradeReport*) override;
  grpc::Status Events(grpc::ServerContext*, const v1::EventsRequest*,
                      grpc::ServerWriter<v1::Event>*) override;
  grpc::Status Capture(grpc::ServerContext*, const v1::CaptureRequest*,
                       grpc::ServerWriter<v1::CaptureChunk>*) override;
  // Events calls at once, at most (each holds one of gRPC's threads while its caller reads).
  static constexpr int kMaxEventReaders = 8;

 private:
  // A capture a live upgrade carried here, for `req` (its resume_ fields) to go on with.
  absl::Status ResumeCarried(const v1::CaptureRequest& req,
                             std::shared_ptr<snapd::Capture>* capture);
  // Runs fn on the main thread; its status, or UNAVAILABLE if snapd is stopping.
  absl::Status OnMain(const std::function<absl::Status()>& fn);
  // As OnMain, for an RPC that changes snapd: refused while an upgrade runs (the new snapd has
  // been sent the configuration already).
  absl::Status OnMainChange(const std::function<absl::Status()>& fn);
  // OK for an admin; PERMISSION_DENIED saying why `what` is for admins only, otherwise.
  grpc::Status AdminOnly(const grpc::ServerContext* ctx, const char* what, const char* why) const;
  Daemon* const daemon_;
  const Tier tier_;
  const DescribeCaller describe_;
  // Set while an Upgrade RPC runs. The upgrade itself holds the main thread, so a second one is
  // refused here, on the gRPC thread, instead of queueing behind it.
  std::atomic<bool> upgrade_running_{false};
  std::atomic<int> readers_{0};
};

}  // namespace snapd

#endif  // SNAPD_CONTROL_SERVICE_H_
