// SnapdService: the v1 gRPC API over a running Daemon. Every RPC checks its input first, then runs
// its work on the daemon's main thread (Daemon::RunOnMain), so the control plane's state has one
// owner and engines are reached only through their workers' mailboxes.
#ifndef SNAPD_CONTROL_SERVICE_H_
#define SNAPD_CONTROL_SERVICE_H_

#include <atomic>

#include "control/proto/snapd.grpc.pb.h"
#include "snapd/daemon.h"

namespace snapd {

// absl::Status -> grpc::Status, code and message kept.
grpc::Status ToGrpc(const absl::Status& status);

class SnapdService final : public v1::Snapd::Service {
 public:
  explicit SnapdService(Daemon* daemon) : daemon_(daemon) {}

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

 private:
  // Runs fn on the main thread; its status, or UNAVAILABLE if snapd is stopping.
  absl::Status OnMain(const std::function<absl::Status()>& fn);
  // As OnMain, for an RPC that changes snapd: refused while an upgrade runs (the new snapd has
  // been sent the configuration already).
  absl::Status OnMainChange(const std::function<absl::Status()>& fn);
  Daemon* const daemon_;
  // Set while an Upgrade RPC runs. The upgrade itself holds the main thread, so a second one is
  // refused here, on the gRPC thread, instead of queueing behind it.
  std::atomic<bool> upgrade_running_{false};
};

}  // namespace snapd

#endif  // SNAPD_CONTROL_SERVICE_H_
