#include "snapd/daemon/main_loop.h"

#include <errno.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <future>

#include "base/clock.h"
#include "glog/logging.h"

namespace snapd {

sigset_t DaemonSignals() {
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGUSR1);
  return mask;
}

void BlockDaemonSignals() {
  sigset_t mask = DaemonSignals();
  pthread_sigmask(SIG_BLOCK, &mask, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

MainLoop::MainLoop() {
  sigset_t mask = DaemonSignals();
  signals_.reset(signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK));
  wake_.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  tasks_fd_.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
}

void MainLoop::Watch(int fd, std::function<void()> on_readable, DuringWaits during_waits) {
  watched_[fd] = Watched{std::move(on_readable), during_waits};
}

void MainLoop::Run() {
  UniqueFd ep(epoll_create1(EPOLL_CLOEXEC));
  std::vector<int> fds = {signals_.get(), wake_.get(), tasks_fd_.get()};
  for (const auto& [fd, w] : watched_) fds.push_back(fd);
  for (int fd : fds) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    epoll_ctl(ep.get(), EPOLL_CTL_ADD, fd, &ev);
  }
  int64_t next_tick = 0;
  while (true) {
    epoll_event events[8];
    int64_t wait_ms = std::max<int64_t>(0, (next_tick - MonotonicNs() + 999999) / 1000000);
    int n = epoll_wait(ep.get(), events, 8, static_cast<int>(std::min<int64_t>(wait_ms, 100)));
    bool stop = false;
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      if (fd == signals_.get()) {
        signalfd_siginfo si;
        while (read(signals_.get(), &si, sizeof(si)) == sizeof(si)) {
          if (si.ssi_signo == SIGUSR1) {
            if (on_usr1_) on_usr1_();
          } else {
            LOG(INFO) << "signal " << si.ssi_signo << ": stopping";
            stop = true;
          }
        }
      } else if (fd == wake_.get()) {
        stop = true;
      } else if (fd == tasks_fd_.get()) {
        RunTasks();
      } else if (auto it = watched_.find(fd); it != watched_.end()) {
        it->second.on_readable();
      }
    }
    if (stop) break;
    next_tick = on_tick_ ? on_tick_() : MonotonicNs() + 100000000;
    Heartbeat();
  }
}

void MainLoop::EnableWatchdog(int64_t interval_ns, std::function<void()> ping) {
  watchdog_interval_ns_ = interval_ns;
  ping_ = std::move(ping);
  next_ping_ns_ = 0;
  Heartbeat();
}

void MainLoop::Heartbeat() {
  if (watchdog_interval_ns_ <= 0) return;
  const int64_t now = MonotonicNs();
  if (now < next_ping_ns_) return;
  ping_();
  // The loop turns at least every 100 ms; a quarter of the interval leaves room for a slow turn.
  next_ping_ns_ = now + watchdog_interval_ns_ / 4;
}

void MainLoop::Stop() {
  uint64_t one = 1;
  (void)!write(wake_.get(), &one, sizeof(one));
}

absl::Status MainLoop::RunOnMain(const std::function<void()>& fn) {
  std::promise<void> done;
  {
    MutexLock lock(&tasks_mu_);
    if (stopping_) return absl::UnavailableError("snapd is stopping");
    tasks_.push_back([&] {
      fn();
      done.set_value();
    });
  }
  uint64_t one = 1;
  (void)!write(tasks_fd_.get(), &one, sizeof(one));
  done.get_future().wait();
  return absl::OkStatus();
}

void MainLoop::RunTasks() {
  uint64_t count;
  (void)!read(tasks_fd_.get(), &count, sizeof(count));
  std::vector<std::function<void()>> tasks;
  {
    MutexLock lock(&tasks_mu_);
    tasks.swap(tasks_);
  }
  for (auto& task : tasks) task();
}

void MainLoop::StopServingTasks() {
  {
    MutexLock lock(&tasks_mu_);
    stopping_ = true;
  }
  RunTasks();  // anyone still waiting gets an answer
}

bool MainLoop::WaitReadable(int fd, absl::Time deadline) {
  std::vector<pollfd> p = {{fd, POLLIN, 0}, {tasks_fd_.get(), POLLIN, 0}};
  std::vector<const Watched*> served;
  for (const auto& [watched_fd, w] : watched_) {
    if (w.during_waits != DuringWaits::kServe) continue;
    p.push_back({watched_fd, POLLIN, 0});
    served.push_back(&w);
  }
  while (true) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return false;
    // At most 100 ms, as Run: the loop turns on while it waits (the watchdog sees it).
    int n = poll(p.data(), p.size(),
                 static_cast<int>(std::min<int64_t>(absl::ToInt64Milliseconds(left) + 1, 100)));
    Heartbeat();
    if (n < 0 && errno != EINTR) return false;
    if (n <= 0) continue;
    if (p[0].revents != 0) return true;
    if (p[1].revents & POLLIN) RunTasks();
    for (size_t i = 0; i < served.size(); ++i) {
      if (p[i + 2].revents & POLLIN) served[i]->on_readable();
    }
  }
}

}  // namespace snapd
