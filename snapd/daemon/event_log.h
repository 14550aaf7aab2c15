// EventLog: what happened to the service, for an operator who asks afterwards or watches
// (`snapctl events [--follow]`, the Events RPC): apps attached, detached and refused (with the
// reason), groups' modes changed, engines rebalanced, live upgrades and their phases, drops above
// a threshold. Bounded: past `capacity` the oldest go (counted). Each event has a sequence number
// that goes on across live upgrades, whose new snapd carries the old one's log on.
//
// Anyone who can open the memif socket can be refused at will: events of one kind that anyone
// outside can cause are kept at most `per_second_per_kind` a second; the next one kept says how
// many were left out (the counters carry every one).
//
// Threads: any (the main thread adds most events; the control plane's threads add a capture's and
// read).
#ifndef SNAPD_SNAPD_DAEMON_EVENT_LOG_H_
#define SNAPD_SNAPD_DAEMON_EVENT_LOG_H_

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "base/log_limiter.h"

namespace snapd {

struct Event {
  uint64_t seq = 0;
  int64_t unix_ms = 0;
  std::string kind;     // "app_attached", "app_detached", "app_refused", "mode", "rebalance",
                        // "upgrade", "drops", "started"
  std::string subject;  // what it is about: "app 3", "group default", "engine vswitch0", ""
  std::string message;
};

class EventLog {
 public:
  explicit EventLog(size_t capacity = 1024, uint32_t per_second_per_kind = 20);

  // Keeps an event, now. A kind that outsiders can cause at will is limited (`limited`).
  void Add(const std::string& kind, const std::string& subject, const std::string& message,
           bool limited = false);

  // The events after `after_seq`, oldest first, at most `max`; if there are none, waits until
  // `deadline` for one. *first_kept: the oldest sequence number the log still holds (a reader
  // that asked for less has missed what lies between). An `after_seq` past the log's end is
  // another log's (a snapd that crashed: the sequence began again): all of this one follows.
  std::vector<Event> Since(uint64_t after_seq, size_t max, absl::Time deadline,
                           uint64_t* first_kept = nullptr) const;
  // Everything it holds, oldest first (a live upgrade hands it to the new snapd).
  std::vector<Event> All() const;
  // The new side of an upgrade: the old snapd's events come before ours, the sequence goes on
  // from theirs and the log keeps its id (`older_id`, if not 0). Events that break the order, or
  // number past kMaxSeq (another snapd's: untrusted), are left out.
  void TakeOver(std::vector<Event> older, uint64_t older_id);
  // Which log this is: random when a snapd starts it, carried on by a live upgrade. A reader that
  // counted in another (a snapd that crashed) starts again.
  uint64_t id() const;
  static constexpr uint64_t kMaxSeq = uint64_t{1} << 62;

  // Fits text for an event: invalid UTF-8 (an app's name is any bytes) becomes '?', and it is
  // cut at `max` bytes on a character's boundary. Events are proto3 strings on the wire.
  static std::string Clean(const std::string& text, size_t max = 1024);

  uint64_t evicted() const;       // the oldest, gone past capacity
  uint64_t rate_limited() const;  // not kept: over a kind's rate

 private:
  const size_t capacity_;
  const uint32_t per_second_;
  mutable absl::Mutex mu_;
  mutable absl::CondVar added_;
  std::deque<Event> events_ ABSL_GUARDED_BY(mu_);
  uint64_t id_ ABSL_GUARDED_BY(mu_);
  uint64_t next_seq_ ABSL_GUARDED_BY(mu_) = 1;
  uint64_t evicted_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t rate_limited_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<std::string, LogLimiter> limiters_ ABSL_GUARDED_BY(mu_);
};

}  // namespace snapd

#endif  // SNAPD_SNAPD_DAEMON_EVENT_LOG_H_
