#include "clients/traffic.h"

#include <poll.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "base/clock.h"

namespace snap {

namespace memif = snapd::memif;
namespace {

// Header, then the sequence number and the send time, then filler.
void Build(uint8_t* frame, const std::string& header, uint32_t size, uint64_t seq) {
  memcpy(frame, header.data(), header.size());
  memcpy(frame + header.size(), &seq, 8);
  int64_t now = snapd::MonotonicNs();
  memcpy(frame + header.size() + 8, &now, 8);
  for (uint32_t i = header.size() + 16; i < size; ++i) frame[i] = static_cast<uint8_t>(seq + i);
}

}  // namespace

std::string DefaultHeader() {
  return std::string("\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x88\xb5", 14);
}

std::string GapLines(const LoadResult& r) {
  std::string out;
  for (const Gap& g : r.gaps) {
    absl::StrAppendFormat(&out, "gap: %.1f ms from %d to %d, %u given up\n",
                          (g.to_unix_ns - g.from_unix_ns) / 1e6, g.from_unix_ns, g.to_unix_ns,
                          g.given_up);
  }
  return out;
}

std::string Summary(const LoadResult& r) {
  std::string out = absl::StrFormat(
      "sent=%u received=%u lost=%u repeated=%u reordered=%u corrupt=%u seconds=%.3f", r.sent,
      r.received, r.sent - r.received, r.repeated, r.reordered, r.corrupt, r.seconds);
  if (!r.rtt_ns.empty()) {
    std::vector<int64_t> rtt = r.rtt_ns;
    absl::StrAppendFormat(&out, " rtt_p50_ns=%d rtt_p99_ns=%d", Percentile(rtt, 50),
                          Percentile(rtt, 99));
  }
  if (r.other > 0) absl::StrAppendFormat(&out, " other=%u", r.other);
  if (r.stalls > 0) absl::StrAppendFormat(&out, " stalls=%u late=%u", r.stalls, r.late);
  if (r.timed_out) out += " TIMED-OUT";
  return out;
}

int64_t Percentile(std::vector<int64_t>& values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  size_t idx = static_cast<size_t>(p / 100.0 * (values.size() - 1) + 0.5);
  return values[std::min(idx, values.size() - 1)];
}

LoadResult RunLoad(memif::MemifClient& client, const LoadOptions& options) {
  return RunLoad(
      client.tx(0), client.rx(0), [&] { return client.CheckControl().ok(); }, options);
}

LoadResult RunLoad(memif::TxRing& tx, memif::RxRing& rx, const std::function<bool()>& alive,
                   const LoadOptions& options) {
  LoadResult result;
  const std::string header = options.header.empty() ? DefaultHeader() : options.header;
  const uint32_t size = std::max<uint32_t>(options.frame_size, header.size() + 16);
  const size_t seq_offset = header.size();
  const uint32_t window = std::max<uint32_t>(1, options.window);
  if (options.record_rtt) result.rtt_ns.reserve(options.frames);
  constexpr int kBurst = 32;
  std::vector<uint8_t> storage(size * kBurst);
  memif::Frame out[kBurst];
  memif::Frame got[kBurst];
  uint64_t expected = 0;
  int64_t start = snapd::MonotonicNs();
  int64_t last_progress = start;
  int64_t last_frame = start;  // of the stream, for the gaps
  uint64_t given_up_before_gap = 0;
  // The sequence numbers given up on ([from, to)), to tell a frame that comes late from a repeat.
  struct GivenUp {
    uint64_t from, to;
    std::vector<bool> came;
  };
  std::vector<GivenUp> given_up_ranges;
  const int64_t gaps_over = absl::ToInt64Nanoseconds(options.gaps_over);
  // The wall clock at `start`: gaps are told in Unix time, to be set beside other clocks' events.
  const int64_t unix_at_start = absl::ToUnixNanos(absl::Now());
  const int64_t idle_limit = absl::ToInt64Nanoseconds(options.idle_timeout);
  const int64_t lost_after = absl::ToInt64Nanoseconds(options.lost_after);
  int idle_spins = 0;
  const int64_t send_until = options.send_for > absl::ZeroDuration()
                                 ? start + absl::ToInt64Nanoseconds(options.send_for)
                                 : INT64_MAX;
  uint64_t frames = options.frames;
  int64_t stop_file_checked = start;
  while (result.received + result.given_up < frames) {
    if (frames > result.sent && snapd::MonotonicNs() > send_until)
      frames = result.sent;  // time is up
    if (!options.stop_file.empty() && frames > result.sent &&
        snapd::MonotonicNs() - stop_file_checked > 10000000) {
      stop_file_checked = snapd::MonotonicNs();
      if (access(options.stop_file.c_str(), F_OK) == 0) frames = result.sent;  // told to stop
    }
    // Send as much as the window allows.
    uint64_t in_flight = result.sent - result.received - result.given_up;
    uint64_t allowed = frames;  // by --rate: as many as its time since the start allows
    if (options.rate > 0) {
      allowed = std::min<uint64_t>(
          frames, 1 + static_cast<uint64_t>((snapd::MonotonicNs() - start) * options.rate / 1e9));
    }
    if (result.sent < allowed && in_flight < window) {
      uint64_t want = std::min<uint64_t>({allowed - result.sent, window - in_flight, kBurst});
      for (uint64_t i = 0; i < want; ++i) {
        out[i] = memif::Frame{storage.data() + i * size, size};
        Build(out[i].data, header, size, result.sent + i);
      }
      result.sent += tx.Transmit(out, static_cast<uint16_t>(want));
    }
    uint16_t n = rx.Receive(got, kBurst);
    int64_t now = n > 0 ? snapd::MonotonicNs() : 0;
    for (uint16_t i = 0; i < n; ++i) {
      const memif::Frame& f = got[i];
      if (f.len != size || f.data[12] != uint8_t(header[12]) || f.data[13] != uint8_t(header[13])) {
        ++result.other;  // not ours: an ARP or other broadcast the switch floods to every app
        continue;
      }
      uint64_t seq;
      int64_t sent_at;
      memcpy(&seq, f.data + seq_offset, 8);
      memcpy(&sent_at, f.data + seq_offset + 8, 8);
      if (seq >= result.sent) {  // a sequence number never sent: damaged on the way
        ++result.corrupt;
        continue;
      }
      if (seq < expected) {
        bool late = false;
        for (GivenUp& g : given_up_ranges) {
          if (seq >= g.from && seq < g.to && !g.came[seq - g.from]) {
            g.came[seq - g.from] = true;
            late = true;
          }
        }
        if (late) {
          ++result.late;  // into `received` at the end: until then the window counts it given up
        } else {
          ++result.repeated;
        }
        continue;
      }
      if (seq != expected) ++result.reordered;
      if (gaps_over > 0 && now - last_frame > gaps_over) {
        result.gaps.push_back(Gap{unix_at_start + (last_frame - start),
                                  unix_at_start + (now - start),
                                  result.given_up - given_up_before_gap});
      }
      last_frame = now;
      given_up_before_gap = result.given_up;
      expected = seq + 1;
      ++result.received;
      if (options.record_rtt) result.rtt_ns.push_back(now - sent_at);
    }
    rx.Release();
    if (n > 0) {
      last_progress = now;
      idle_spins = 0;
      continue;
    }
    if (++idle_spins < 256) continue;
    idle_spins = 0;
    int64_t t = snapd::MonotonicNs();
    if (lost_after > 0 && t - last_progress > lost_after && result.sent > result.received) {
      // What is in flight now is not coming back: a frame that still does counts as repeated.
      const uint64_t in_flight = result.sent - result.received - result.given_up;
      if (in_flight > 0) {
        result.given_up += in_flight;
        ++result.stalls;
        given_up_ranges.push_back(
            GivenUp{expected, result.sent, std::vector<bool>(result.sent - expected, false)});
        expected = result.sent;
        last_progress = t;
        continue;
      }
    }
    if (t - last_progress > idle_limit || !alive()) {
      result.timed_out = true;
      break;
    }
    if (!options.poll) {
      rx.SetInterruptMode(true);
      if (!rx.HasPending()) {
        pollfd p{rx.eventfd(), POLLIN, 0};
        ::poll(&p, 1, 10);
      }
      rx.DrainInterrupt();
      rx.SetInterruptMode(false);
    }
  }
  result.received += result.late;
  result.seconds = (snapd::MonotonicNs() - start) / 1e9;
  return result;
}

}  // namespace snap
