// LogLimiter: at most `per_second` log lines a second for one kind of event that anyone outside
// snapd can cause at will (refused app connections, refused control clients). The counters carry
// every event; the log keeps a sample and says how many it left out. One thread.
#ifndef SNAPD_BASE_LOG_LIMITER_H_
#define SNAPD_BASE_LOG_LIMITER_H_

#include <cstdint>
#include <string>

namespace snapd {

class LogLimiter {
 public:
  explicit LogLimiter(uint32_t per_second) : per_second_(per_second) {}

  // Whether to log the event seen at `now_ns`. When it returns true, *left_out is what to append
  // to the line: " (N more not logged before)" after some were left out, else "".
  bool Allow(int64_t now_ns, std::string* left_out) {
    if (now_ns - window_start_ns_ >= 1000000000) {
      window_start_ns_ = now_ns;
      logged_ = 0;
    }
    if (logged_ >= per_second_) {
      ++skipped_;
      return false;
    }
    ++logged_;
    *left_out = skipped_ == 0 ? "" : " (" + std::to_string(skipped_) + " more not logged before)";
    skipped_ = 0;
    return true;
  }

 private:
  const uint32_t per_second_;
  int64_t window_start_ns_ = 0;
  uint32_t logged_ = 0;
  uint64_t skipped_ = 0;
};

}  // namespace snapd

#endif  // SNAPD_BASE_LOG_LIMITER_H_
