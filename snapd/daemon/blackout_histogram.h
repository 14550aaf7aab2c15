// BlackoutHistogram: the service's live-upgrade blackouts, by bucket (snapd/daemon/upgrade_host.h's
// ServiceHistory carries it; control/metrics.h exports it).
#ifndef SNAPD_SNAPD_DAEMON_BLACKOUT_HISTOGRAM_H_
#define SNAPD_SNAPD_DAEMON_BLACKOUT_HISTOGRAM_H_

#include <cstddef>
#include <cstdint>

namespace snapd {

// Every engine's blackout in the service's live upgrades (as each upgrade's report gives it), by
// bucket: snapd_upgrade_blackout_seconds. Carried across upgrades and crash restarts with the rest
// of the history, so that the histogram only grows.
struct BlackoutHistogram {
  // Upper bounds, in microseconds; the last bucket counts what is above them all.
  static constexpr uint64_t kBoundsUs[] = {50,    100,   250,   500,    1000,   2500,   5000,
                                           10000, 25000, 50000, 100000, 250000, 1000000};
  static constexpr size_t kBuckets = sizeof(kBoundsUs) / sizeof(kBoundsUs[0]) + 1;
  uint64_t buckets[kBuckets] = {};  // not cumulative
  uint64_t count = 0;
  uint64_t sum_us = 0;

  void Add(uint64_t us) {
    size_t i = 0;
    while (i + 1 < kBuckets && us > kBoundsUs[i]) ++i;
    ++buckets[i];
    ++count;
    sum_us += us;
  }
};

}  // namespace snapd

#endif  // SNAPD_SNAPD_DAEMON_BLACKOUT_HISTOGRAM_H_
