// Counter: a statistic written by exactly one thread (the one that owns the data path) and read by
// any thread. Writes are a plain load and store, never a locked instruction; reads are relaxed.
#ifndef SNAPD_BASE_COUNTER_H_
#define SNAPD_BASE_COUNTER_H_

#include <atomic>
#include <cstdint>

namespace snapd {

class Counter {
 public:
  // Owner thread only.
  void Add(uint64_t n = 1) {
    value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  // Any thread.
  uint64_t Get() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

}  // namespace snapd

#endif  // SNAPD_BASE_COUNTER_H_
