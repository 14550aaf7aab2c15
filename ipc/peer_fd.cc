#include "ipc/peer_fd.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <deque>
#include <map>
#include <thread>
#include <utility>

#include "base/clock.h"
#include "base/mutex.h"

namespace snapd::memif {
namespace {

thread_local PeerFdCalls* tls_calls = nullptr;

int InterruptSignal() { return SIGRTMIN + 4; }

void OnInterrupt(int) {}  // only there to make the blocked call return EINTR

PeerFdResult Failed(int err) {
  if (err == EAGAIN) return PeerFdResult::kEmpty;
  if (err == EINTR) return PeerFdResult::kBlocked;
  return PeerFdResult::kError;
}

// Closes peers' fds on threads of its own: a few, so that one close that blocks does not hold up
// the rest (a thread busy for good is one of kMaxThreads; past that, fds wait in the queue, and
// the uid that sent them is refused by the memif server).
class Closer {
 public:
  static Closer& Get() {
    static auto* closer = new Closer();  // never destroyed: its threads may be stuck in a close
    return *closer;
  }
  void Add(int fd, uid_t owner) {
    {
      MutexLock lock(&mu_);
      queue_.push_back({fd, owner});
      ++pending_[owner];
      if (idle_ == 0 && threads_ < kMaxThreads) {
        ++threads_;
        std::thread([this] { Run(); }).detach();
      }
    }
    cv_.NotifyOne();
  }
  size_t Pending(uid_t owner) {
    MutexLock lock(&mu_);
    auto it = pending_.find(owner);
    return it == pending_.end() ? 0 : it->second;
  }

 private:
  static constexpr int kMaxThreads = 8;

  void Run() {
    pthread_setname_np(pthread_self(), "peer-fd-closer");
    std::pair<int, uid_t> closed{-1, 0};  // the fd this thread closed last, and its owner
    while (true) {
      {
        MutexLock lock(&mu_);
        if (closed.first >= 0 && --pending_[closed.second] == 0) pending_.erase(closed.second);
        ++idle_;
        while (queue_.empty()) cv_.Wait(&mu_);
        --idle_;
        closed = queue_.front();
        queue_.pop_front();
      }
      ::close(closed.first);  // may block (a peer's socket): nothing is held meanwhile
    }
  }

  Mutex mu_;
  CondVar cv_;
  std::deque<std::pair<int, uid_t>> queue_ ABSL_GUARDED_BY(mu_);
  std::map<uid_t, size_t> pending_ ABSL_GUARDED_BY(mu_);
  int threads_ ABSL_GUARDED_BY(mu_) = 0;
  int idle_ ABSL_GUARDED_BY(mu_) = 0;
};

// A socket's close waits for its SO_LINGER time when data is unsent: ask for an abortive close
// instead (a reset). Only what /proc says is a socket is touched, so nothing here can block.
void AbortiveIfSocket(int fd) {
  if (FdLink(fd).rfind("socket:", 0) != 0) return;
  linger abort{1, 0};
  (void)::setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort, sizeof(abort));
}

}  // namespace

std::string FdLink(int fd) {
  char link[64], target[256];
  snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
  ssize_t n = ::readlink(link, target, sizeof(target));
  return n > 0 ? std::string(target, n) : "";
}

const char* UnixSocketMismatch(int fd, int type) {
  int value = 0;
  socklen_t len = sizeof(value);
  if (fd < 0 || getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &value, &len) != 0 || value != AF_UNIX) {
    return "not a Unix socket";
  }
  len = sizeof(value);
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &value, &len) != 0 || value != type) {
    return "a socket of another type";
  }
  return "";
}

void ReleasePeerFd(int fd, uid_t owner) {
  if (fd < 0) return;
  AbortiveIfSocket(fd);
  Closer::Get().Add(fd, owner);
}

size_t PeerFdsClosing(uid_t owner) { return Closer::Get().Pending(owner); }

PeerFdCall::PeerFdCall(uint32_t tag, bool is_write) : calls_(tls_calls) {
  if (calls_ == nullptr) return;
  calls_->tag.store(tag, std::memory_order_relaxed);
  calls_->is_write.store(is_write, std::memory_order_relaxed);
  calls_->since_ns.store(MonotonicNs(), std::memory_order_release);
}

PeerFdCall::~PeerFdCall() {
  if (calls_ != nullptr) calls_->since_ns.store(0, std::memory_order_release);
}

void WatchPeerFdCalls(PeerFdCalls* calls) {
  static std::once_flag installed;
  std::call_once(installed, [] {
    struct sigaction sa = {};
    sa.sa_handler = OnInterrupt;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: the blocked call returns EINTR
    sigaction(InterruptSignal(), &sa, nullptr);
  });
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, InterruptSignal());
  pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
  if (calls != nullptr) calls->thread = pthread_self();
  tls_calls = calls;
}

void InterruptPeerFdCall(PeerFdCalls& calls) {
  if (calls.since_ns.load(std::memory_order_acquire) != 0) {
    pthread_kill(calls.thread, InterruptSignal());
  }
}

std::string DescribePeerFdCall(const PeerFdCalls& calls) {
  return std::string(calls.is_write.load() ? "a write to" : "a read of") + " port app" +
         std::to_string(calls.tag.load()) + "'s interrupt eventfd";
}

PeerFdResult KickEventFd(int fd, uint32_t tag) {
  PeerFdCall in_call(tag, /*is_write=*/true);
  // An eventfd is writable while a write of 1 would not block.
  pollfd p{fd, POLLOUT, 0};
  if (::poll(&p, 1, 0) != 1 || !(p.revents & POLLOUT)) {
    return p.revents & (POLLERR | POLLNVAL) ? PeerFdResult::kError : PeerFdResult::kSaturated;
  }
  uint64_t one = 1;
  if (::write(fd, &one, sizeof(one)) == sizeof(one)) return PeerFdResult::kOk;
  PeerFdResult r = Failed(errno);
  return r == PeerFdResult::kEmpty ? PeerFdResult::kSaturated : r;
}

PeerFdResult DrainEventFd(int fd, uint32_t tag) {
  PeerFdCall in_call(tag, /*is_write=*/false);
  uint64_t count;
  iovec iov{&count, sizeof(count)};
  ssize_t n = ::preadv2(fd, &iov, 1, -1, RWF_NOWAIT);
  if (n < 0 && errno == EOPNOTSUPP) {  // a kernel before 5.12: check, then read
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 0) != 1 || !(p.revents & POLLIN)) return PeerFdResult::kEmpty;
    n = ::read(fd, &count, sizeof(count));
  }
  if (n == sizeof(count)) return PeerFdResult::kOk;
  return n < 0 ? Failed(errno) : PeerFdResult::kError;
}

}  // namespace snapd::memif
