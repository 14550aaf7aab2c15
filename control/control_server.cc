#include "control/control_server.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "glog/logging.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/generic/async_generic_service.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/server_posix.h"

namespace snapd {

// Answers every call on a refused connection with PERMISSION_DENIED.
struct ControlServer::DenyAll : public grpc::CallbackGenericService {
  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext*) override {
    class Reactor : public grpc::ServerGenericBidiReactor {
     public:
      Reactor() {
        Finish(grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                            "only root and the control group may use snapd's control socket"));
      }
      void OnDone() override { delete this; }
    };
    return new Reactor;
  }
};

namespace {

// The supplementary groups of process `pid`, from /proc.
std::vector<gid_t> GroupsOf(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  std::vector<gid_t> groups;
  while (std::getline(in, line)) {
    if (line.rfind("Groups:", 0) != 0) continue;
    for (absl::string_view g : absl::StrSplit(line.substr(7), ' ', absl::SkipWhitespace())) {
      uint32_t id;
      if (absl::SimpleAtoi(g, &id)) groups.push_back(id);
    }
  }
  return groups;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ControlServer>> ControlServer::Start(Daemon* daemon,
                                                                    const std::string& path,
                                                                    const std::string& group) {
  std::unique_ptr<ControlServer> cs(new ControlServer());
  cs->path_ = path;
  if (!group.empty()) {
    struct group* g = getgrnam(group.c_str());
    if (g == nullptr)
      return absl::NotFoundError(absl::StrCat("control group '", group, "' does not exist"));
    cs->group_ = g->gr_gid;
  }
  // A SOCK_STREAM listener for gRPC: a stale socket file is replaced, a live one refused.
  UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat("control socket path too long: ", path));
  }
  memcpy(addr.sun_path, path.data(), path.size());
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    if (errno != EADDRINUSE) {
      return absl::UnavailableError(absl::StrCat("cannot bind ", path, ": ", strerror(errno)));
    }
    UniqueFd probe(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (connect(probe.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
      return absl::AlreadyExistsError(absl::StrCat("another snapd is already serving ", path));
    }
    unlink(path.c_str());
    if (bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      return absl::UnavailableError(absl::StrCat("cannot bind ", path, ": ", strerror(errno)));
    }
  }
  chmod(path.c_str(), 0660);
  if (cs->group_ != static_cast<gid_t>(-1) && chown(path.c_str(), -1, cs->group_) != 0) {
    LOG(WARNING) << "cannot give " << path << " to group " << group << ": " << strerror(errno);
  }
  if (listen(fd.get(), 64) != 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", path, ": ", strerror(errno)));
  }
  cs->listener_ = std::move(fd);
  absl::Status status = cs->Serve(daemon);
  if (!status.ok()) return status;
  LOG(INFO) << "control API (snapd.v1) at " << path;
  return cs;
}

absl::StatusOr<std::unique_ptr<ControlServer>> ControlServer::Adopt(Daemon* daemon,
                                                                    const std::string& path,
                                                                    const std::string& group,
                                                                    UniqueFd listener) {
  std::unique_ptr<ControlServer> cs(new ControlServer());
  cs->path_ = path;
  if (!group.empty()) {
    struct group* g = getgrnam(group.c_str());
    if (g != nullptr) cs->group_ = g->gr_gid;
  }
  cs->listener_ = std::move(listener);
  fcntl(cs->listener_.get(), F_SETFL, fcntl(cs->listener_.get(), F_GETFL) | O_NONBLOCK);
  absl::Status status = cs->Serve(daemon);
  if (!status.ok()) return status;
  LOG(INFO) << "control API (snapd.v1) at " << path << ", taken over";
  return cs;
}

absl::Status ControlServer::Serve(Daemon* daemon) {
  ControlServer* cs = this;
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  cs->service_ = std::make_unique<SnapdService>(daemon);
  grpc::ServerBuilder builder;
  builder.RegisterService(cs->service_.get());
  cs->server_ = builder.BuildAndStart();
  cs->deny_ = std::make_unique<DenyAll>();
  grpc::ServerBuilder deny_builder;
  deny_builder.RegisterCallbackGenericService(cs->deny_.get());
  cs->deny_server_ = deny_builder.BuildAndStart();
  if (!cs->server_ || !cs->deny_server_) return absl::InternalError("cannot start the gRPC server");
  return absl::OkStatus();
}

ControlServer::~ControlServer() {
  auto deadline = std::chrono::system_clock::now() + std::chrono::seconds(1);
  if (server_) server_->Shutdown(deadline);
  if (deny_server_) deny_server_->Shutdown(deadline);
  if (listener_) unlink(path_.c_str());
}

bool ControlServer::Allowed(uid_t uid, gid_t gid, pid_t pid) const {
  if (uid == 0 || uid == geteuid()) return true;
  if (group_ == static_cast<gid_t>(-1)) return false;
  if (gid == group_) return true;
  for (gid_t g : GroupsOf(pid)) {
    if (g == group_) return true;
  }
  return false;
}

void ControlServer::OnAcceptable() {
  while (true) {
    int fd = accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    ucred cred{};
    socklen_t len = sizeof(cred);
    bool ok = getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 &&
              Allowed(cred.uid, cred.gid, cred.pid);
    if (!ok) {
      LOG(WARNING) << "control: refused pid " << cred.pid << " uid " << cred.uid
                   << ": not root nor in the control group";
    }
    // gRPC takes ownership of the (non-blocking) fd.
    grpc::AddInsecureChannelFromFd(ok ? server_.get() : deny_server_.get(), fd);
  }
}

}  // namespace snapd
