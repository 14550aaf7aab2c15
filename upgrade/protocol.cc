#include "upgrade/protocol.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/memfd.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "upgrade/fd_channel.h"

namespace snapd::upgrade {

absl::Status Send(int channel, const wire::Envelope& e, const std::vector<UniqueFd>& fds) {
  std::vector<int> raw;
  for (const UniqueFd& fd : fds) raw.push_back(fd.get());
  return SendFdMessage(channel, e.SerializeAsString(), raw);
}

absl::StatusOr<UniqueFd> SealedMemfd(const std::string& bytes) {
  UniqueFd fd(memfd_create("snapd-state", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!fd.valid()) return absl::InternalError(absl::StrCat("memfd_create: ", strerror(errno)));
  for (size_t done = 0; done < bytes.size();) {
    const ssize_t n = write(fd.get(), bytes.data() + done, bytes.size() - done);
    if (n <= 0) return absl::InternalError(absl::StrCat("writing a memfd: ", strerror(errno)));
    done += static_cast<size_t>(n);
  }
  if (fcntl(fd.get(), F_ADD_SEALS, F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
    return absl::InternalError(absl::StrCat("sealing a memfd: ", strerror(errno)));
  }
  return fd;
}

absl::StatusOr<std::string> ReadSealedMemfd(int fd, size_t max_bytes) {
  const int want = F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW;
  const int seals = fcntl(fd, F_GET_SEALS);
  if (seals < 0 || (seals & want) != want) {
    return absl::InvalidArgumentError("not a memfd sealed against change");
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || st.st_size < 0 || static_cast<size_t>(st.st_size) > max_bytes) {
    return absl::InvalidArgumentError(absl::StrCat("larger than ", max_bytes, " bytes"));
  }
  std::string out(static_cast<size_t>(st.st_size), '\0');
  for (size_t done = 0; done < out.size();) {
    const ssize_t n = pread(fd, &out[done], out.size() - done, static_cast<off_t>(done));
    if (n <= 0) return absl::InvalidArgumentError("short read");
    done += static_cast<size_t>(n);
  }
  return out;
}

absl::StatusOr<Received> Receive(int channel, absl::Duration timeout) {
  auto raw = ReceiveFdMessage(channel, timeout);
  if (!raw.ok()) return raw.status();
  Received r;
  if (!r.envelope.ParseFromString(raw->bytes)) {
    return absl::InvalidArgumentError("upgrade message does not parse");
  }
  r.fds = std::move(raw->fds);
  if (r.envelope.has_failed()) {
    return absl::AbortedError(absl::StrCat("the other snapd failed in ",
                                           r.envelope.failed().phase(), ": ",
                                           r.envelope.failed().reason()));
  }
  return r;
}

void NicCountersToWire(int index, const NicStats& s, wire::NicCounters* out) {
  out->set_index(index);
#define SNAPD_TO_WIRE(name, column, meaning) out->set_##name(s.name);
  SNAPD_NIC_COUNTERS(SNAPD_TO_WIRE)
#undef SNAPD_TO_WIRE
}

NicStats NicCountersFromWire(const wire::NicCounters& in) {
  NicStats s;
#define SNAPD_FROM_WIRE(name, column, meaning) s.name = in.name();
  SNAPD_NIC_COUNTERS(SNAPD_FROM_WIRE)
#undef SNAPD_FROM_WIRE
  return s;
}

void BlackoutsToWire(const BlackoutHistogram& h, wire::Blackouts* out) {
  out->clear_buckets();
  for (uint64_t n : h.buckets) out->add_buckets(n);
  out->set_count(h.count);
  out->set_sum_us(h.sum_us);
}

void EventsToWire(const std::vector<Event>& events, uint64_t log_id, wire::Done* out) {
  out->set_events_log_id(log_id);
  const size_t first = events.size() > kMaxHandedEvents ? events.size() - kMaxHandedEvents : 0;
  for (size_t i = first; i < events.size(); ++i) {
    const Event& e = events[i];
    wire::LoggedEvent* w = out->add_events();
    w->set_seq(e.seq);
    w->set_unix_ms(e.unix_ms);
    // Cut on a character's boundary: a string cut inside one would not parse at the other end.
    w->set_kind(EventLog::Clean(e.kind, kMaxEventText));
    w->set_subject(EventLog::Clean(e.subject, kMaxEventText));
    w->set_message(EventLog::Clean(e.message, kMaxEventText));
  }
}

std::vector<Event> EventsFromWire(const wire::Done& in) {
  std::vector<Event> out;
  for (const wire::LoggedEvent& w : in.events()) {
    if (out.size() >= kMaxHandedEvents) break;
    Event e;
    e.seq = w.seq();
    e.unix_ms = w.unix_ms();
    e.kind = EventLog::Clean(w.kind(), kMaxEventText);
    e.subject = EventLog::Clean(w.subject(), kMaxEventText);
    e.message = EventLog::Clean(w.message(), kMaxEventText);
    out.push_back(std::move(e));
  }
  return out;
}

bool BlackoutsFromWire(const wire::Blackouts& in, BlackoutHistogram* out) {
  if (static_cast<size_t>(in.buckets_size()) != BlackoutHistogram::kBuckets) return false;
  uint64_t total = 0;
  for (uint64_t n : in.buckets()) {
    if (n > in.count() - total) return false;  // more than the count (and no overflow)
    total += n;
  }
  if (total != in.count()) return false;
  for (size_t i = 0; i < BlackoutHistogram::kBuckets; ++i) out->buckets[i] = in.buckets(i);
  out->count = in.count();
  out->sum_us = in.sum_us();
  return true;
}

}  // namespace snapd::upgrade
