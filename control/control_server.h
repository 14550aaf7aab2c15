// ControlServer: snapd's gRPC control plane on a Unix socket it owns. It binds and listens itself
// (mode 0660, group-owned by the configured group), accepts on the daemon's main loop, checks each
// caller's credentials (SO_PEERCRED, and the supplementary groups of the caller's process), and
// hands the connection to the real server or to one that answers PERMISSION_DENIED to every call.
// Owning the listening fd also lets an upgrade pass it to the next snapd.
#ifndef SNAPD_CONTROL_CONTROL_SERVER_H_
#define SNAPD_CONTROL_CONTROL_SERVER_H_

#include <sys/types.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "control/service.h"
#include "ipc/unique_fd.h"
#include "snapd/daemon.h"

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

  // Whether a caller with these credentials may use the API.
  bool Allowed(uid_t uid, gid_t gid, pid_t pid) const;

 private:
  ControlServer() = default;
  absl::Status Serve(Daemon* daemon);

  std::string path_;
  gid_t group_ = static_cast<gid_t>(-1);
  UniqueFd listener_;
  std::unique_ptr<SnapdService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<grpc::Server> deny_server_;
  struct DenyAll;
  std::unique_ptr<DenyAll> deny_;
};

}  // namespace snapd

#endif  // SNAPD_CONTROL_CONTROL_SERVER_H_
