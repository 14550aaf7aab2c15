#include "control/metrics_server.h"

#include <arpa/inet.h>
#include <civetweb.h>
#include <dirent.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/clock.h"
#include "base/log_limiter.h"
#include "control/metrics.h"
#include "control/wire.h"
#include "glog/logging.h"
#include "snapd/daemon/daemon.h"

namespace snapd {
namespace {

struct HostPort {
  std::string host;  // without brackets; empty: every address
  std::string port;
};

absl::StatusOr<HostPort> Split(const std::string& address) {
  const size_t colon = address.rfind(':');
  if (address.empty() || colon == std::string::npos || colon + 1 == address.size() ||
      address.find_first_not_of("0123456789", colon + 1) != std::string::npos ||
      atoi(address.c_str() + colon + 1) > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics_address: '", address, "' is not HOST:PORT"));
  }
  HostPort hp{address.substr(0, colon), address.substr(colon + 1)};
  if (hp.host.size() >= 2 && hp.host.front() == '[' && hp.host.back() == ']') {
    hp.host = hp.host.substr(1, hp.host.size() - 2);
  }
  if (hp.host == "localhost") hp.host = "127.0.0.1";
  return hp;
}

// The addresses `hp` names, for a listening TCP socket. Numeric only: a name would be a DNS query
// at every start (and on these machines, traffic to a resolver nobody set up for this).
absl::StatusOr<std::vector<sockaddr_storage>> Resolve(const HostPort& hp,
                                                      const std::string& address) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV | AI_NUMERICHOST;
  addrinfo* found = nullptr;
  const int rc =
      getaddrinfo(hp.host.empty() ? nullptr : hp.host.c_str(), hp.port.c_str(), &hints, &found);
  if (rc != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics_address: '", address, "': ", gai_strerror(rc)));
  }
  std::vector<sockaddr_storage> out;
  for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
    if (a->ai_family != AF_INET && a->ai_family != AF_INET6) continue;
    sockaddr_storage s{};
    memcpy(&s, a->ai_addr, a->ai_addrlen);
    out.push_back(s);
  }
  freeaddrinfo(found);
  if (out.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics_address: '", address, "' names no IP address"));
  }
  return out;
}

uint16_t PortOf(const sockaddr_storage& s) {
  return ntohs(s.ss_family == AF_INET ? reinterpret_cast<const sockaddr_in&>(s).sin_port
                                      : reinterpret_cast<const sockaddr_in6&>(s).sin6_port);
}

// Same family and address, and the same port unless `want`'s is 0 (any).
bool SameAddress(const sockaddr_storage& have, const sockaddr_storage& want) {
  if (have.ss_family != want.ss_family) return false;
  if (PortOf(want) != 0 && PortOf(have) != PortOf(want)) return false;
  if (have.ss_family == AF_INET) {
    return reinterpret_cast<const sockaddr_in&>(have).sin_addr.s_addr ==
           reinterpret_cast<const sockaddr_in&>(want).sin_addr.s_addr;
  }
  return memcmp(&reinterpret_cast<const sockaddr_in6&>(have).sin6_addr,
                &reinterpret_cast<const sockaddr_in6&>(want).sin6_addr, sizeof(in6_addr)) == 0;
}

bool LocalAddress(int fd, sockaddr_storage* out) {
  socklen_t len = sizeof(*out);
  return getsockname(fd, reinterpret_cast<sockaddr*>(out), &len) == 0 &&
         (out->ss_family == AF_INET || out->ss_family == AF_INET6);
}

std::string Format(const sockaddr_storage& s) {
  char ip[INET6_ADDRSTRLEN] = {};
  if (s.ss_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in&>(s).sin_addr, ip, sizeof(ip));
    return absl::StrCat(ip, ":", PortOf(s));
  }
  inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6&>(s).sin6_addr, ip, sizeof(ip));
  return absl::StrCat("[", ip, "]:", PortOf(s));
}

// Why `fd` (from another process: untrusted) is not a TCP socket listening on one of `want`; ""
// if it is.
std::string Mismatch(int fd, const std::vector<sockaddr_storage>& want) {
  int type = 0, listening = 0;
  socklen_t len = sizeof(type);
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_STREAM) {
    return "not a stream socket";
  }
  len = sizeof(listening);
  if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || listening != 1) {
    return "not listening";
  }
  sockaddr_storage have{};
  if (!LocalAddress(fd, &have)) return "not an IP socket";
  for (const sockaddr_storage& w : want) {
    if (SameAddress(have, w)) return "";
  }
  return absl::StrCat("listening on ", Format(have), ", not on the address configured");
}

absl::StatusOr<UniqueFd> Listen(const sockaddr_storage& at) {
  UniqueFd fd(socket(at.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return absl::ErrnoToStatus(errno, "socket");
  const int one = 1;
  setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  const socklen_t len = at.ss_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
  if (bind(fd.get(), reinterpret_cast<const sockaddr*>(&at), len) != 0 ||
      listen(fd.get(), 64) != 0) {
    return absl::ErrnoToStatus(errno, Format(at));
  }
  return fd;
}

// civetweb's listening fd: the socket of this process listening on 127.0.0.1:`port`.
int FindListening(uint16_t port) {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return -1;
  sockaddr_storage want{};
  auto& in = reinterpret_cast<sockaddr_in&>(want);
  in.sin_family = AF_INET;
  in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  in.sin_port = htons(port);
  int found = -1;
  while (dirent* e = readdir(dir)) {
    char* end = nullptr;
    const long fd = strtol(e->d_name, &end, 10);
    if (end == e->d_name || *end != 0 || fd == dirfd(dir)) continue;
    if (Mismatch(static_cast<int>(fd), {want}).empty()) {
      found = static_cast<int>(fd);
      break;
    }
  }
  closedir(dir);
  return found;
}

// civetweb's own log lines (it logs a failed accept, say): through glog, a few a second.
int LogCivetweb(const mg_connection*, const char* message) {
  static LogLimiter limiter(5);
  std::string left_out;
  if (limiter.Allow(MonotonicNs(), &left_out)) LOG(WARNING) << "metrics: " << message << left_out;
  return 1;
}

}  // namespace

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(Daemon* daemon,
                                                                    const std::string& address,
                                                                    UniqueFd listener,
                                                                    std::string* refused) {
  absl::StatusOr<HostPort> hp = Split(address);
  if (!hp.ok()) return hp.status();
  absl::StatusOr<std::vector<sockaddr_storage>> want = Resolve(*hp, address);
  if (!want.ok()) return want.status();
  std::unique_ptr<MetricsServer> s(new MetricsServer());
  s->daemon_ = daemon;
  if (listener) {
    std::string why = Mismatch(listener.get(), *want);
    if (why.empty()) {
      s->listener_ = std::move(listener);
    } else if (refused != nullptr) {
      *refused = std::move(why);
    }
  }
  if (!s->listener_) {
    absl::StatusOr<UniqueFd> fd = Listen(want->front());
    if (!fd.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("metrics_address: cannot listen on '", address,
                                                     "': ", fd.status().message()));
    }
    s->listener_ = std::move(*fd);
  }
  // Handed over, it is the old snapd's file too: both want it non-blocking (two processes may
  // race to accept the same connection).
  fcntl(s->listener_.get(), F_SETFL, fcntl(s->listener_.get(), F_GETFL) | O_NONBLOCK);
  sockaddr_storage local{};
  LocalAddress(s->listener_.get(), &local);
  s->address_ = Format(local);

  sockaddr_storage loopback{};
  reinterpret_cast<sockaddr_in&>(loopback).sin_family = AF_INET;
  reinterpret_cast<sockaddr_in&>(loopback).sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  absl::StatusOr<UniqueFd> placeholder = Listen(loopback);
  if (!placeholder.ok()) return placeholder.status();
  s->placeholder_ = std::move(*placeholder);

  static const unsigned initialized = mg_init_library(0);  // once a process
  (void)initialized;
  // Two workers: a scrape waiting for the main thread (busy with an upgrade, say) does not hold
  // up the next connection.
  const char* options[] = {"listening_ports",    "127.0.0.1:0", "num_threads", "2",
                           "request_timeout_ms", "10000",       nullptr};
  mg_callbacks callbacks;
  memset(&callbacks, 0, sizeof(callbacks));
  callbacks.log_message = &LogCivetweb;
  s->ctx_ = mg_start(&callbacks, s.get(), options);
  if (s->ctx_ == nullptr) return absl::InternalError("metrics: civetweb did not start");
  mg_set_request_handler(s->ctx_, "/metrics$", &MetricsServer::Handle, s.get());
  mg_server_port ports[1];
  if (mg_get_server_ports(s->ctx_, 1, ports) != 1) {
    return absl::InternalError("metrics: civetweb listens on no port");
  }
  s->civet_fd_ = FindListening(static_cast<uint16_t>(ports[0].port));
  if (s->civet_fd_ < 0)
    return absl::InternalError("metrics: civetweb's listening socket not found");
  // Ours goes under civetweb's fd number; its own socket is shut down, which wakes its accept
  // thread from the poll() it may be in on it (the next one is on ours).
  UniqueFd own(fcntl(s->civet_fd_, F_DUPFD_CLOEXEC, 0));
  if (!own || dup3(s->listener_.get(), s->civet_fd_, O_CLOEXEC) < 0) {
    return absl::ErrnoToStatus(errno, "metrics: taking civetweb's listening fd");
  }
  shutdown(own.get(), SHUT_RDWR);
  return s;
}

MetricsServer::~MetricsServer() {
  if (ctx_ == nullptr) return;
  // Paused (an upgrade handed the socket over): civetweb may hold connections it accepted before
  // the pause, queued behind a scrape; mg_stop would close them unanswered. Its worker answers
  // them from the final figures at once: stop once it has been idle a while (at most a second).
  if (paused_.load()) {
    const int64_t give_up = MonotonicNs() + 1000000000;
    while (MonotonicNs() < give_up &&
           (in_flight_.load() > 0 || MonotonicNs() - last_request_ns_.load() < 50000000)) {
      absl::SleepFor(absl::Milliseconds(5));
    }
  }
  mg_stop(ctx_);  // closes civet_fd_
}

void MetricsServer::Pause(bool paused) {
  if (paused == paused_ || civet_fd_ < 0) return;
  if (paused && daemon_ != nullptr) {
    // On the main thread: the figures scrapes get from now on (the ones civetweb took already,
    // and any that come while this snapd leaves).
    std::string text = PrometheusText(StatsOf(*daemon_), InfoOf(*daemon_));
    absl::MutexLock lock(&final_mu_);
    final_ = std::move(text);
  } else if (!paused) {
    absl::MutexLock lock(&final_mu_);
    final_.clear();  // a failed upgrade: this snapd's counters go on
  }
  // A poll() civetweb is in keeps watching the socket it began on: a connection that arrives on
  // ours meanwhile makes it accept() on the placeholder, which has none (EAGAIN); the connection
  // stays in our backlog.
  if (dup3((paused ? placeholder_ : listener_).get(), civet_fd_, O_CLOEXEC) < 0) {
    PLOG(ERROR) << "metrics: cannot " << (paused ? "pause" : "resume");
    return;
  }
  paused_ = paused;
}

int MetricsServer::Handle(::mg_connection* conn, void* arg) {
  auto* self = static_cast<MetricsServer*>(arg);
  ++self->in_flight_;
  self->last_request_ns_ = MonotonicNs();
  absl::Cleanup done = [self] {
    self->last_request_ns_ = MonotonicNs();
    --self->in_flight_;
  };
  const mg_request_info* req = mg_get_request_info(conn);
  if (strcmp(req->request_method, "GET") != 0) {
    mg_send_http_error(conn, 405, "%s", "GET only\n");
    return 405;
  }
  std::string text;
  // Paused (the old side of an upgrade whose counters have stopped), or the main thread no longer
  // serving (it is on its way out): the last figures, taken as the counters stopped.
  const auto final_figures = [&] {
    absl::MutexLock lock(&self->final_mu_);
    text = self->final_;
    return !text.empty();
  };
  if (!self->paused_.load() || !final_figures()) {
    absl::Status status = self->daemon_->RunOnMain(
        [&] { text = PrometheusText(StatsOf(*self->daemon_), InfoOf(*self->daemon_)); });
    if (!status.ok() && !final_figures()) {
      mg_send_http_error(conn, 503, "%s\n", std::string(status.message()).c_str());
      return 503;
    }
  }
  mg_printf(conn,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
            "Content-Length: %zu\r\nConnection: close\r\n\r\n",
            text.size());
  mg_write(conn, text.data(), text.size());
  return 200;
}

}  // namespace snapd
