// MonotonicNs: CLOCK_MONOTONIC in nanoseconds, the one clock for durations, deadlines and
// timestamps that cross processes on this host (an upgrade's old and new snapd compare them).
// Any thread; async-signal-safe.
#ifndef SNAPD_BASE_CLOCK_H_
#define SNAPD_BASE_CLOCK_H_

#include <time.h>

#include <cstdint>

namespace snapd {

inline int64_t MonotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

}  // namespace snapd

#endif  // SNAPD_BASE_CLOCK_H_
