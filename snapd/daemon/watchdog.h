// Watchdog: a thread that looks at every worker 50 times a second. A worker in one batch for
// longer than the limit is reported (a log line, WorkerStats::stalls, `snapctl top`), naming the
// engine and, when it is inside a call on an app's fd, the app's port. Such a call is interrupted
// (ipc/peer_fd.h): snapd never waits on anything an app holds, even when the app wins the race
// against the check that keeps those calls from blocking.
//
// It runs on its own thread so that it works when every other thread waits: a stuck worker holds
// the main thread too as soon as the main thread posts it work.
#ifndef SNAPD_SNAPD_DAEMON_WATCHDOG_H_
#define SNAPD_SNAPD_DAEMON_WATCHDOG_H_

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "base/mutex.h"
#include "ipc/peer_fd.h"

namespace snapd {

class Watchdog {
 public:
  // Looks every `period`; reports batches longer than `batch_limit`; interrupts app-fd calls
  // longer than `call_limit`.
  Watchdog(absl::Duration period, absl::Duration batch_limit, absl::Duration call_limit);
  ~Watchdog();  // stops the thread
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  // Also watches a thread that is not a worker (the main thread: it kicks apps' eventfds when it
  // takes engines back after a failed upgrade): `calls` is that thread's record
  // (memif::WatchPeerFdCalls); it must outlive the watchdog. Any thread.
  void WatchThread(memif::PeerFdCalls* calls, std::string name);

 private:
  void Run();

  const absl::Duration period_;
  const int64_t batch_limit_ns_;
  const int64_t call_limit_ns_;
  Mutex mu_;
  CondVar cv_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  struct Watched {
    memif::PeerFdCalls* calls;
    std::string name;
    int64_t reported_since = 0;
  };
  std::vector<Watched> threads_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace snapd

#endif  // SNAPD_SNAPD_DAEMON_WATCHDOG_H_
