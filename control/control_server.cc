#include "control/control_server.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "engines/engine.h"
#include "glog/logging.h"
#include "grpcpp/ext/health_check_service_server_builder_option.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/generic/async_generic_service.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/server_posix.h"
#include "ipc/socket.h"

namespace snapd {

// Answers every call on a refused connection with PERMISSION_DENIED.
struct ControlServer::DenyAll : public grpc::CallbackGenericService {
  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext*) override {
    class Reactor : public grpc::ServerGenericBidiReactor {
     public:
      Reactor() {
        Finish(grpc::Status(
            grpc::StatusCode::PERMISSION_DENIED,
            "only root, snapd's own user and the control group may use snapd's control socket"));
      }
      void OnDone() override { delete this; }
    };
    return new Reactor;
  }
};

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
  // The socket file itself, never what a symlink in its place points to.
  absl::Status access = memif::SetSocketFileAccess(path, 0660);
  if (!access.ok()) return access;
  if (cs->group_ != static_cast<gid_t>(-1)) {
    access = memif::SetSocketFileAccess(path, 0660, cs->group_);
    if (!access.ok()) LOG(WARNING) << "control group " << group << ": " << access.message();
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

// A deny server's builder option: no plugins (the reflection service that
// InitProtoReflectionServerBuilderPlugin registers for every builder in the process) and no default
// health service. Its one service, DenyAll, then answers every method, those two included.
class NothingButDenial : public grpc::ServerBuilderOption {
 public:
  void UpdateArguments(grpc::ChannelArguments* args) override { health_.UpdateArguments(args); }
  void UpdatePlugins(std::vector<std::unique_ptr<grpc::ServerBuilderPlugin>>* plugins) override {
    plugins->clear();
  }

 private:
  grpc::HealthCheckServiceServerBuilderOption health_{nullptr};  // null: no health service
};

absl::Status ControlServer::Serve(Daemon* daemon) {
  // Built first, and told to take no plugin nor health service: a denied caller learns nothing,
  // not even that snapd is healthy or which services it has.
  deny_ = std::make_unique<DenyAll>();
  grpc::ServerBuilder deny_builder;
  deny_builder.SetOption(std::make_unique<NothingButDenial>());
  deny_builder.RegisterCallbackGenericService(deny_.get());
  deny_server_ = deny_builder.BuildAndStart();
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  admin_service_ = std::make_unique<SnapdService>(daemon, Tier::kAdmin);
  operator_service_ = std::make_unique<SnapdService>(
      daemon, Tier::kOperator, [this](const std::string& peer) { return Describe(peer); });
  grpc::ServerBuilder admin_builder;
  admin_builder.RegisterService(admin_service_.get());
  admin_server_ = admin_builder.BuildAndStart();
  grpc::ServerBuilder operator_builder;
  operator_builder.RegisterService(operator_service_.get());
  operator_server_ = operator_builder.BuildAndStart();
  if (!admin_server_ || !operator_server_ || !deny_server_) {
    return absl::InternalError("cannot start the gRPC servers");
  }
  return absl::OkStatus();
}

ControlServer::~ControlServer() {
  auto deadline = std::chrono::system_clock::now() + std::chrono::seconds(1);
  if (admin_server_) admin_server_->Shutdown(deadline);
  if (operator_server_) operator_server_->Shutdown(deadline);
  if (deny_server_) deny_server_->Shutdown(deadline);
  if (listener_) unlink(path_.c_str());
}

Tier ControlServer::TierOf(const PeerCredentials& peer) const {
  return Classify(peer, geteuid(), group_);
}

std::string ControlServer::Describe(const std::string& peer) const {
  absl::MutexLock lock(&callers_mu_);
  auto it = operator_uids_.find(peer);
  return it == operator_uids_.end() ? "a member" : absl::StrCat("uid ", it->second);
}

void ControlServer::KeepDenied(int fd) {
  // Those whose caller hung up go first; then the oldest, beyond the cap: shutting the socket
  // down makes gRPC see the end of the connection and close its fd.
  denied_.erase(std::remove_if(denied_.begin(), denied_.end(),
                               [](const UniqueFd& d) {
                                 pollfd p{d.get(), POLLRDHUP, 0};
                                 return poll(&p, 1, 0) != 0;
                               }),
                denied_.end());
  UniqueFd copy(fcntl(fd, F_DUPFD_CLOEXEC, 0));
  if (!copy) return;  // out of fds: gRPC still has it, and the refusal ends it soon
  denied_.push_back(std::move(copy));
  while (denied_.size() > kMaxDenied) {
    shutdown(denied_.front().get(), SHUT_RDWR);
    denied_.pop_front();
  }
}

void ControlServer::OnAcceptable() {
  while (true) {
    int fd = accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    absl::StatusOr<PeerCredentials> peer = PeerCredentialsOf(fd);
    const Tier tier = peer.ok() ? TierOf(*peer) : Tier::kDenied;
    grpc::Server* server = deny_server_.get();
    if (tier == Tier::kAdmin) {
      server = admin_server_.get();
    } else if (tier == Tier::kOperator) {
      server = operator_server_.get();
      absl::MutexLock lock(&callers_mu_);
      operator_uids_[absl::StrCat("fd:", fd)] = peer->uid;  // gRPC's name for the connection
    } else {
      KeepDenied(fd);
      // Anyone who can reach the socket can cause these at will: a sample is logged.
      std::string also;
      if (refusal_log_.Allow(MonotonicNs(), &also)) {
        if (peer.ok()) {
          LOG(WARNING) << "control: refused pid " << peer->pid << " uid " << peer->uid
                       << ": not root, snapd's user nor in the control group" << also;
        } else {
          LOG(WARNING) << "control: refused a caller whose credentials are unknown: "
                       << peer.status().message() << also;
        }
      }
    }
    // gRPC takes ownership of the (non-blocking) fd.
    grpc::AddInsecureChannelFromFd(server, fd);
  }
}

}  // namespace snapd
