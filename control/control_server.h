// ControlServer: snapd's gRPC control plane on a Unix socket it owns. It binds and listens itself
// (mode 0660, group-owned by the configured group), accepts on the daemon's main loop, classifies
// each caller once from the credentials the kernel recorded at connect (SO_PEERCRED,
// SO_PEERGROUPS; see control/authority.h and SECURITY.md) and hands the connection to the server
// of its tier: admins (root, snapd's uid) get every RPC; operators (the control group) every RPC
// but Upgrade, which answers them PERMISSION_DENIED; anyone else gets PERMISSION_DENIED for all,
// health and reflection included, from a server that has nothing else, and at most kMaxDenied of
// their connections stay open (the oldest is closed).
// Owning the listening fd also lets an upgrade pass it to the next snapd.
#ifndef SNAPD_CONTROL_CONTROL_SERVER_H_
#define SNAPD_CONTROL_CONTROL_SERVER_H_

#include <sys/types.h>

#include <deque>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "base/log_limiter.h"
#include "base/unique_fd.h"
#include "control/authority.h"
#include "control/service.h"
#include "snapd/daemon/daemon.h"

namespace grpc {
class Server;
}

namespace snapd {

class ControlServer {
 public:
  // Listens on `path`; `group` (may be empty) may use it besides root and snapd's own user.
  // Fails if the path is in use by a live server or the group does not exist.
  static absl::StatusOr<std::unique_ptr<ControlServer>> Start(Daemon* daemon,
                                                              const std::string& path,
                                                              const std::string& group);
  // The same on a listening socket handed over by the previous snapd (an upgrade).
  static absl::StatusOr<std::unique_ptr<ControlServer>> Adopt(Daemon* daemon,
                                                              const std::string& path,
                                                              const std::string& group,
                                                              UniqueFd listener);
  // The next snapd owns the socket now: stop serving without removing the socket file.
  void Relinquish() { listener_.reset(); }
  // Stops both servers (in-flight calls get a second to finish) and removes the socket.
  ~ControlServer();

  int listen_fd() const { return listener_.get(); }
  // Accepts every waiting connection. Main thread.
  void OnAcceptable();
  // Refused connections kept open at most (each one holds an fd of gRPC's and one of ours).
  static constexpr size_t kMaxDenied = 16;

  // The tier of a caller with these credentials (control/authority.h). Any thread.
  Tier TierOf(const PeerCredentials& peer) const;

 private:
  ControlServer() = default;
  absl::Status Serve(Daemon* daemon);
  // "uid N" for the operator whose connection gRPC calls `peer` ("fd:N"), for refusals. gRPC
  // threads.
  std::string Describe(const std::string& peer) const;
  // Keeps a copy of the refused connection `fd` (handed to the deny server) and shuts down the
  // oldest beyond kMaxDenied, dropping those whose callers hung up. Main thread.
  void KeepDenied(int fd);

  std::string path_;
  gid_t group_ = static_cast<gid_t>(-1);
  UniqueFd listener_;
  // One server a tier: a connection's tier is the server it was handed to at accept.
  std::unique_ptr<SnapdService> admin_service_;
  std::unique_ptr<SnapdService> operator_service_;
  std::unique_ptr<grpc::Server> admin_server_;
  std::unique_ptr<grpc::Server> operator_server_;
  std::unique_ptr<grpc::Server> deny_server_;
  // The uid of each operator connection, by gRPC's name for it: only to word refusals (a name is
  // reused once its fd closes; the tier itself never comes from here).
  mutable absl::Mutex callers_mu_;
  absl::flat_hash_map<std::string, uid_t> operator_uids_ ABSL_GUARDED_BY(callers_mu_);
  struct DenyAll;
  std::unique_ptr<DenyAll> deny_;
  // Main thread only (OnAcceptable).
  std::deque<UniqueFd> denied_;  // copies of the refused connections, oldest first
  LogLimiter refusal_log_{10};   // refusals logged a second
};

}  // namespace snapd

#endif  // SNAPD_CONTROL_CONTROL_SERVER_H_
