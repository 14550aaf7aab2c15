#include "snapd/daemon/event_log.h"

#include <utility>

#include "base/clock.h"

namespace snapd {

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
  e.kind = kind;
  e.subject = subject;
  e.message = message + left_out;
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

void EventLog::TakeOver(std::vector<Event> older) {
  absl::MutexLock lock(&mu_);
  std::deque<Event> merged;
  uint64_t last = 0;
  for (Event& e : older) {
    if (e.seq <= last || e.seq == UINT64_MAX) continue;  // out of order: not a log we wrote
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
