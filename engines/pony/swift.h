// Swift: pony's delay-based congestion control, after Kumar et al., "Swift: Delay is Simple and
// Effective for Congestion Control in the Datacenter" (SIGCOMM 2020), the algorithm Snap's Pony
// Express runs.
//
// Each acknowledgement brings a delay sample (the fabric's round trip: now - ts_echo - hold_ns,
// docs/pony.md). Below a target delay the window grows additively (about ai packets per round
// trip); above it, it shrinks multiplicatively in proportion to how far the delay overshoots, at
// most once per round trip and by at most max_mdf, and only on a standing queue: when no sample of
// the last round trip came in under the target (a lone late sample is a host's noise, not a
// queue: a queue delays every packet behind it). The target grows for small windows (flow
// scaling), so that many flows sharing a bottleneck converge to a fair share. A retransmission
// timeout is a second signal: the window drops to its minimum. Below one packet, the window is
// paced: one packet every srtt / cwnd.
//
// Pure and single-threaded (the engine's thread); times are the engine's clock in nanoseconds.
#ifndef SNAPD_ENGINES_PONY_SWIFT_H_
#define SNAPD_ENGINES_PONY_SWIFT_H_

#include <cstdint>

#include "engines/pony/pony.pb.h"

namespace snapd::pony {

struct SwiftParams {
  // The target delay with a large window, above the base delay. Measured on two namespace hosts'
  // snapds on a 2-core machine (tools/bench pony, 1 MiB messages): 50 us gave 1.47 Gbit/s, 200 us
  // 1.87, 400 us 2.02; round trips of small messages the same. 200 us keeps the queue a fifth of a
  // millisecond.
  int64_t base_target_ns = 200000;
  double ai = 1.0;       // additive increase, packets per round trip
  double beta = 0.8;     // multiplicative decrease per unit of relative overshoot
  double max_mdf = 0.5;  // the most one decrease may take off the window
  // Packets. Below 1 the window is paced (one packet every srtt / cwnd), which lets thousands of
  // flows share an incast; the default keeps one packet a round trip, since on a software path
  // (engines that sleep when idle, cores shared) a late wake-up looks like queueing, and a window
  // paced to a hundredth of a packet turns one such sample into a 100-round-trip stall.
  double min_cwnd = 1;
  double max_cwnd = 1024;  // packets
  double init_cwnd = 16;   // packets
  // Flow scaling: the target grows by up to fs_range as the window shrinks from fs_max_cwnd to
  // fs_min_cwnd (in 1/sqrt(cwnd)).
  int64_t fs_range_ns = 100000;
  double fs_min_cwnd = 0.1;
  double fs_max_cwnd = 100;
  // The target is counted above the path's base delay, the lowest sample of the last one or two
  // windows of this length, as LEDBAT does: a software path's own delay (two hosts' engines waking,
  // a shared core) is not known in advance, and a target below it would only ever shrink the
  // window. 0: the target is absolute, as in the paper (a fabric whose base delay is known).
  int64_t base_window_ns = 10000000000;
};

class Swift {
 public:
  explicit Swift(const SwiftParams& params = SwiftParams());

  // An acknowledgement of `acked` packets with a delay sample of `delay_ns`, at `now_ns`; srtt_ns
  // is the connection's smoothed round trip (the once-per-round-trip limit on decreases).
  void OnAck(uint32_t acked, int64_t delay_ns, int64_t srtt_ns, int64_t now_ns);
  // A loss found by selective acknowledgements (fast retransmit): a decrease by max_mdf, at most
  // once per round trip.
  void OnFastRetransmit(int64_t srtt_ns, int64_t now_ns);
  // A retransmission timeout: the window drops to its minimum.
  void OnTimeout(int64_t now_ns);

  double cwnd() const { return cwnd_; }
  // The target delay for the current window (above the base delay, when it is tracked).
  int64_t TargetDelayNs() const;
  // The lowest delay sample of the current and the last window (0: none yet, or not tracked).
  int64_t base_delay_ns() const;
  // How long to wait between packets when the window is below one packet (0: no pacing).
  int64_t PacingGapNs(int64_t srtt_ns) const;
  // Counters, for snapctl.
  uint64_t decreases() const { return decreases_; }
  uint64_t timeouts() const { return timeouts_; }

  // What an upgrade carries; Restore takes it into a Swift of the same params.
  void Save(engines::PonySwiftState* out) const;
  void Restore(const engines::PonySwiftState& in);

 private:
  bool CanDecrease(int64_t srtt_ns, int64_t now_ns) const;
  void Decrease(double factor, int64_t now_ns);
  void Clamp();

  SwiftParams p_;
  double cwnd_;
  double fs_alpha_;
  double fs_beta_;
  int64_t last_decrease_ns_ = INT64_MIN / 2;
  // Base delay: the lowest sample in the current window (since window_start_ns_) and the last.
  int64_t min_now_ns_ = INT64_MAX;
  int64_t min_last_ns_ = INT64_MAX;
  int64_t window_start_ns_ = INT64_MIN / 2;
  // When a sample last came in under the target.
  int64_t last_below_ns_ = INT64_MIN / 2;
  uint64_t decreases_ = 0;
  uint64_t timeouts_ = 0;
};

}  // namespace snapd::pony

#endif  // SNAPD_ENGINES_PONY_SWIFT_H_
