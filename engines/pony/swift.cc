#include "engines/pony/swift.h"

#include <algorithm>
#include <cmath>

namespace snapd::pony {

Swift::Swift(const SwiftParams& params) : p_(params), cwnd_(params.init_cwnd) {
  // target = base + clamp(alpha / sqrt(cwnd) + beta, 0, fs_range): fs_range at fs_min_cwnd, 0 at
  // fs_max_cwnd.
  fs_alpha_ = static_cast<double>(p_.fs_range_ns) /
              (1.0 / std::sqrt(p_.fs_min_cwnd) - 1.0 / std::sqrt(p_.fs_max_cwnd));
  fs_beta_ = -fs_alpha_ / std::sqrt(p_.fs_max_cwnd);
  Clamp();
}

int64_t Swift::base_delay_ns() const {
  const int64_t m = std::min(min_now_ns_, min_last_ns_);
  return p_.base_window_ns == 0 || m == INT64_MAX ? 0 : m;
}

int64_t Swift::TargetDelayNs() const {
  double fs = fs_alpha_ / std::sqrt(cwnd_) + fs_beta_;
  fs = std::clamp(fs, 0.0, static_cast<double>(p_.fs_range_ns));
  return base_delay_ns() + p_.base_target_ns + static_cast<int64_t>(fs);
}

bool Swift::CanDecrease(int64_t srtt_ns, int64_t now_ns) const {
  return now_ns - last_decrease_ns_ >= srtt_ns;
}

void Swift::Decrease(double factor, int64_t now_ns) {
  cwnd_ *= std::max(factor, 1.0 - p_.max_mdf);
  last_decrease_ns_ = now_ns;
  ++decreases_;
  Clamp();
}

void Swift::OnAck(uint32_t acked, int64_t delay_ns, int64_t srtt_ns, int64_t now_ns) {
  if (acked == 0) return;
  if (p_.base_window_ns != 0) {
    if (now_ns - window_start_ns_ >= p_.base_window_ns) {
      min_last_ns_ = min_now_ns_;
      min_now_ns_ = INT64_MAX;
      window_start_ns_ = now_ns;
    }
    min_now_ns_ = std::min(min_now_ns_, delay_ns);
  }
  const int64_t target = TargetDelayNs();
  if (delay_ns < target) {
    // About ai packets per round trip: a window's worth of acks adds ai.
    cwnd_ += cwnd_ >= 1 ? p_.ai * acked / cwnd_ : p_.ai * acked;
    last_below_ns_ = now_ns;
    Clamp();
  } else if (now_ns - last_below_ns_ > srtt_ns && CanDecrease(srtt_ns, now_ns)) {
    const double overshoot = static_cast<double>(delay_ns - target) / static_cast<double>(delay_ns);
    Decrease(1.0 - p_.beta * overshoot, now_ns);
  }
}

void Swift::OnFastRetransmit(int64_t srtt_ns, int64_t now_ns) {
  if (CanDecrease(srtt_ns, now_ns)) Decrease(1.0 - p_.max_mdf, now_ns);
}

void Swift::OnTimeout(int64_t now_ns) {
  ++timeouts_;
  cwnd_ = p_.min_cwnd;
  last_decrease_ns_ = now_ns;
}

int64_t Swift::PacingGapNs(int64_t srtt_ns) const {
  return cwnd_ >= 1 ? 0 : static_cast<int64_t>(static_cast<double>(srtt_ns) / cwnd_);
}

void Swift::Save(engines::PonySwiftState* out) const {
  out->set_cwnd(cwnd_);
  out->set_last_decrease_ns(last_decrease_ns_);
  out->set_min_now_ns(min_now_ns_);
  out->set_min_last_ns(min_last_ns_);
  out->set_window_start_ns(window_start_ns_);
  out->set_last_below_ns(last_below_ns_);
  out->set_decreases(decreases_);
  out->set_timeouts(timeouts_);
}

void Swift::Restore(const engines::PonySwiftState& in) {
  cwnd_ = in.cwnd();
  last_decrease_ns_ = in.last_decrease_ns();
  min_now_ns_ = in.min_now_ns();
  min_last_ns_ = in.min_last_ns();
  window_start_ns_ = in.window_start_ns();
  last_below_ns_ = in.last_below_ns();
  decreases_ = in.decreases();
  timeouts_ = in.timeouts();
  Clamp();
}

void Swift::Clamp() { cwnd_ = std::clamp(cwnd_, p_.min_cwnd, p_.max_cwnd); }

}  // namespace snapd::pony
