// MainLoop: the daemon's main thread. An epoll loop over the fds the daemon watches, the daemon's
// signals (through a signalfd), and a queue of tasks other threads post (the control plane's RPC
// threads): every piece of control-plane state is touched on this thread only.
//
// Threads: Run, Watch, WaitReadable and the destructor on the main thread; Stop, RunOnMain from any
// thread (RunOnMain from any but the main one).
#ifndef SNAPD_SNAPD_DAEMON_MAIN_LOOP_H_
#define SNAPD_SNAPD_DAEMON_MAIN_LOOP_H_

#include <signal.h>

#include <cstdint>
#include <functional>
#include <map>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "base/mutex.h"
#include "base/unique_fd.h"

namespace snapd {

// SIGTERM, SIGINT and SIGUSR1 reach the main loop through a signalfd; they must be blocked before
// any thread starts (DPDK's and the workers inherit the mask), so main() calls this first.
sigset_t DaemonSignals();
void BlockDaemonSignals();

class MainLoop {
 public:
  MainLoop();

  // Whether a watched fd is also served while the loop waits for something else (WaitReadable):
  // a new control connection is; an app's attach is not (an upgrade must not see apps come).
  enum class DuringWaits { kServe, kHold };
  // Runs `on_readable` on the main thread whenever `fd` is readable. Before Run.
  void Watch(int fd, std::function<void()> on_readable,
             DuringWaits during_waits = DuringWaits::kHold);
  // Runs after every wake-up of Run: the periodic work. Returns the MonotonicNs time it wants to
  // run again at the latest.
  void set_on_tick(std::function<int64_t()> on_tick) { on_tick_ = std::move(on_tick); }
  // SIGUSR1's action (the daemon logs its counters).
  void set_on_usr1(std::function<void()> on_usr1) { on_usr1_ = std::move(on_usr1); }

  // Calls `ping` at least every interval/4 while the loop turns (Run, WaitReadable): the service
  // manager's watchdog (WATCHDOG=1), which restarts a snapd whose main thread hangs. Main thread.
  void EnableWatchdog(int64_t interval_ns, std::function<void()> ping);

  // Serves until SIGTERM or SIGINT, or Stop().
  void Run();
  // Ends Run. Any thread.
  void Stop();

  // Runs `fn` on the main thread, between events, and returns when it has run. Any thread but the
  // main one; UNAVAILABLE once StopServingTasks was called.
  absl::Status RunOnMain(const std::function<void()>& fn);
  // From now on RunOnMain refuses new work; work already queued runs now. Main thread.
  void StopServingTasks();

  // Waits until `fd` is readable or `deadline` passes, running meanwhile the tasks other threads
  // post and the watched fds marked kServe. True when `fd` is readable. Main thread (an upgrade's
  // old side, which holds the main thread while the new snapd works).
  bool WaitReadable(int fd, absl::Time deadline);

 private:
  void RunTasks();
  void Heartbeat();

  struct Watched {
    std::function<void()> on_readable;
    DuringWaits during_waits;
  };
  UniqueFd signals_;
  UniqueFd wake_;
  UniqueFd tasks_fd_;  // readable when tasks_ has work
  std::map<int, Watched> watched_;
  std::function<int64_t()> on_tick_;
  std::function<void()> on_usr1_;
  int64_t watchdog_interval_ns_ = 0;
  int64_t next_ping_ns_ = 0;
  std::function<void()> ping_;
  Mutex tasks_mu_;
  std::vector<std::function<void()>> tasks_ ABSL_GUARDED_BY(tasks_mu_);
  bool stopping_ ABSL_GUARDED_BY(tasks_mu_) = false;
};

}  // namespace snapd

#endif  // SNAPD_SNAPD_DAEMON_MAIN_LOOP_H_
