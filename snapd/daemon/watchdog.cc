#include "snapd/daemon/watchdog.h"

#include <pthread.h>

#include <chrono>
#include <string>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"
#include "snapd/daemon/worker.h"

namespace snapd {

Watchdog::Watchdog(absl::Duration period, absl::Duration batch_limit, absl::Duration call_limit)
    : period_(period),
      batch_limit_ns_(absl::ToInt64Nanoseconds(batch_limit)),
      call_limit_ns_(absl::ToInt64Nanoseconds(call_limit)) {
  thread_ = std::thread([this] { Run(); });
}

Watchdog::~Watchdog() {
  {
    MutexLock lock(&mu_);
    stop_ = true;
  }
  cv_.NotifyAll();
  thread_.join();
}

void Watchdog::WatchThread(memif::PeerFdCalls* calls, std::string name) {
  MutexLock lock(&mu_);
  threads_.push_back({calls, std::move(name)});
}

void Watchdog::Run() {
  pthread_setname_np(pthread_self(), "watchdog");
  auto period = std::chrono::nanoseconds(absl::ToInt64Nanoseconds(period_));
  std::vector<std::string> reports;
  while (true) {
    {
      MutexLock lock(&mu_);
      if (!stop_) cv_.WaitFor(&mu_, period);
      if (stop_) return;
      int64_t now = MonotonicNs();
      Worker::ForEachWorker([&](Worker& w) {
        std::string stall = w.Inspect(now, batch_limit_ns_, call_limit_ns_);
        if (!stall.empty()) reports.push_back(std::move(stall));
      });
      for (Watched& t : threads_) {
        int64_t since = t.calls->since_ns.load(std::memory_order_acquire);
        if (since == 0 || now - since <= call_limit_ns_) continue;
        memif::InterruptPeerFdCall(*t.calls);
        if (since == t.reported_since) continue;
        t.reported_since = since;
        reports.push_back(absl::StrCat(t.name, ": in ", memif::DescribePeerFdCall(*t.calls),
                                       " for ", (now - since) / 1000000, " ms (interrupted)"));
      }
    }
    // Logged without holding anything a worker or the main thread may wait for.
    for (const std::string& r : reports) LOG(WARNING) << "watchdog: " << r;
    reports.clear();
  }
}

}  // namespace snapd
