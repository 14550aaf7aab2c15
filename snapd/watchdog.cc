#include "snapd/watchdog.h"

#include <pthread.h>

#include <chrono>
#include <string>

#include "glog/logging.h"
#include "snapd/worker.h"

namespace snapd {

Watchdog::Watchdog(absl::Duration period, absl::Duration batch_limit, absl::Duration call_limit)
    : period_(period),
      batch_limit_ns_(absl::ToInt64Nanoseconds(batch_limit)),
      call_limit_ns_(absl::ToInt64Nanoseconds(call_limit)) {
  thread_ = std::thread([this] { Run(); });
}

Watchdog::~Watchdog() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void Watchdog::Run() {
  pthread_setname_np(pthread_self(), "watchdog");
  auto period = std::chrono::nanoseconds(absl::ToInt64Nanoseconds(period_));
  std::unique_lock<std::mutex> lock(mu_);
  while (!cv_.wait_for(lock, period, [this] { return stop_; })) {
    int64_t now = MonotonicNs();
    Worker::ForEachWorker([&](Worker& w) {
      std::string stall = w.Inspect(now, batch_limit_ns_, call_limit_ns_);
      if (!stall.empty()) LOG(WARNING) << "watchdog: " << stall;
    });
  }
}

}  // namespace snapd
