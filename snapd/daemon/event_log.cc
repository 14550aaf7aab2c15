#include "snapd/daemon/event_log.h"

#include <algorithm>
#include <random>
#include <utility>

#include "base/clock.h"

namespace snapd {

EventLog::EventLog(size_t capacity, uint32_t per_second_per_kind)
    : capacity_(capacity), per_second_(per_second_per_kind) {
  std::random_device random;
  id_ = (uint64_t{random()} << 32 | random()) | 1;  // never 0 (a reader's "this snapd's")
}

uint64_t EventLog::id() const {
  absl::MutexLock lock(&mu_);
  return id_;
}

std::string EventLog::Clean(const std::string& text, size_t max) {
  std::string out;
  out.reserve(std::min(text.size(), max));
  for (size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    // The length of the sequence `c` starts; 0: not a valid start.
    const size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    bool valid = n > 0 && i + n <= text.size();
    for (size_t k = 1; valid && k < n; ++k) {
      valid = (static_cast<unsigned char>(text[i + k]) & 0xc0) == 0x80;
    }
    if (valid && n == 3) {  // no overlong forms, no surrogates
      const auto c1 = static_cast<unsigned char>(text[i + 1]);
      valid = !(c == 0xe0 && c1 < 0xa0) && !(c == 0xed && c1 >= 0xa0);
    } else if (valid && n == 4) {
      const auto c1 = static_cast<unsigned char>(text[i + 1]);
      valid = c <= 0xf4 && !(c == 0xf0 && c1 < 0x90) && !(c == 0xf4 && c1 >= 0x90);
    } else if (valid && n == 2) {
      valid = c >= 0xc2;
    }
    const size_t take = valid ? n : 1;
    if (out.size() + (valid ? n : 1) > max) break;
    if (valid) {
      out.append(text, i, n);
    } else {
      out += '?';
    }
    i += take;
  }
  return out;
}

void EventLog::Add(const std::string& kind, const std::string& subject, const std::string& message,
                   bool limited) {
  absl::MutexLock lock(&mu_);
  std::string left_out;
  if (limited) {
    LogLimiter& limiter = limiters_.try_emplace(kind, per_second_).first->second;
    if (!limiter.Allow(MonotonicNs(), &left_out)) {
      ++rate_limited_;
      return;
    }
  }
  Event e;
  e.seq = next_seq_++;
  e.unix_ms = absl::ToUnixMillis(absl::Now());
  e.kind = Clean(kind, 64);
  e.subject = Clean(subject, 256);
  e.message = Clean(message + left_out);
  events_.push_back(std::move(e));
  while (events_.size() > capacity_) {
    events_.pop_front();
    ++evicted_;
  }
  added_.SignalAll();
}

std::vector<Event> EventLog::Since(uint64_t after_seq, size_t max, absl::Time deadline,
                                   uint64_t* first_kept) const {
  absl::MutexLock lock(&mu_);
  // Past our end: the caller read another log (of a snapd that crashed; ours began again at 1).
  if (after_seq >= next_seq_) after_seq = 0;
  while (next_seq_ <= after_seq + 1 && !added_.WaitWithDeadline(&mu_, deadline)) {
  }
  if (first_kept != nullptr) *first_kept = events_.empty() ? next_seq_ : events_.front().seq;
  std::vector<Event> out;
  for (const Event& e : events_) {
    if (e.seq <= after_seq) continue;
    if (out.size() >= max) break;
    out.push_back(e);
  }
  return out;
}

std::vector<Event> EventLog::All() const {
  absl::MutexLock lock(&mu_);
  return std::vector<Event>(events_.begin(), events_.end());
}

void EventLog::TakeOver(std::vector<Event> older, uint64_t older_id) {
  absl::MutexLock lock(&mu_);
  if (older_id != 0) id_ = older_id;
  std::deque<Event> merged;
  uint64_t last = 0;
  for (Event& e : older) {
    // Out of order, or numbered where ours would run past kMaxSeq: not a log we wrote.
    if (e.seq <= last || e.seq > kMaxSeq) continue;
    e.kind = Clean(e.kind, 64);
    e.subject = Clean(e.subject, 256);
    e.message = Clean(e.message);
    last = e.seq;
    merged.push_back(std::move(e));
  }
  // Ours (events before the hand-over ended) go on from the old snapd's numbers.
  for (Event& e : events_) {
    e.seq = ++last;
    merged.push_back(std::move(e));
  }
  while (merged.size() > capacity_) merged.pop_front();
  events_ = std::move(merged);
  next_seq_ = last + 1;
  added_.SignalAll();
}

uint64_t EventLog::evicted() const {
  absl::MutexLock lock(&mu_);
  return evicted_;
}

uint64_t EventLog::rate_limited() const {
  absl::MutexLock lock(&mu_);
  return rate_limited_;
}

}  // namespace snapd
