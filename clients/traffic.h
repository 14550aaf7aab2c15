// Sequenced traffic over a memif client: what the demos, the tests and the benchmarks send. Every
// frame starts with a header (by default an Ethernet header with locally administered MACs and
// ethertype 0x88b5, the one IEEE set aside for local experiments; or Ethernet+IPv4+UDP from
// packet.h) and carries a 64-bit sequence number and a send timestamp, so the far end may be any
// echo (memif_echo, dpdk-testpmd in io mode, udp_echo through snapd) and losses and reordering
// are seen.
#ifndef SNAPD_CLIENTS_TRAFFIC_H_
#define SNAPD_CLIENTS_TRAFFIC_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "ipc/client.h"

namespace snap {

struct LoadOptions {
  uint64_t frames = 10000;   // how many to send
  uint32_t frame_size = 64;  // bytes, at least the header + 16
  // The first bytes of every frame; empty: DefaultHeader(). The echo must keep its length and
  // bytes 12-13 (the ethertype); it may swap addresses.
  std::string header;
  uint32_t window = 1;  // frames in flight at most; 1 is a ping-pong
  double rate = 0;      // frames sent per second at most; 0: as fast as the window allows
  // Stop sending once this file exists (looked for every 10 ms), then wait for the frames in
  // flight; empty: no such file.
  std::string stop_file;
  bool poll = true;  // spin while waiting; false: sleep on the ring's interrupt
  absl::Duration idle_timeout = absl::Seconds(5);  // give up after this long without progress
  bool record_rtt = false;                         // keep every round-trip time (ping-pong)
  // Stop sending after this long (then wait for the frames in flight); zero: send them all.
  absl::Duration send_for = absl::ZeroDuration();
  // Frames in flight when nothing has come back for this long are given up on (lost, their window
  // slots free again) and the stream goes on; zero: a lost frame holds its slot until the end.
  absl::Duration lost_after = absl::ZeroDuration();
  // Keep every stretch longer than this in which no frame came back (LoadResult::gaps); zero: none.
  absl::Duration gaps_over = absl::ZeroDuration();
};

// A stretch without any frame coming back, by the wall clock (Unix ns), and the frames in flight
// given up on in it.
struct Gap {
  int64_t from_unix_ns = 0;  // the last frame before it
  int64_t to_unix_ns = 0;    // the first frame after it
  uint64_t given_up = 0;
};

struct LoadResult {
  uint64_t sent = 0;
  uint64_t received = 0;
  uint64_t reordered = 0;  // frames that came back with a sequence number other than expected
  uint64_t corrupt = 0;    // frames of the stream whose sequence number field is damaged
  uint64_t other = 0;      // frames not of the stream (broadcasts, say): ignored
  // Frames with a sequence number below the expected one: a repeat of a frame already received, or
  // one that came late (then `reordered` counts the frame that overtook it). Not in `received`.
  uint64_t repeated = 0;
  uint64_t given_up = 0;  // frames in flight given up on (LoadOptions::lost_after)
  uint64_t late = 0;      // of those, frames that came after all: in `received`, not lost
  uint64_t stalls = 0;    // times that happened
  double seconds = 0;
  std::vector<int64_t> rtt_ns;
  std::vector<Gap> gaps;  // LoadOptions::gaps_over
  bool timed_out = false;
  bool lost() const { return received < sent; }
  // Every frame came back once, in order, intact, and in time.
  bool clean() const {
    return !timed_out && !lost() && reordered == 0 && corrupt == 0 && repeated == 0 && late == 0;
  }
};

// The result as the traffic tools print it (tests and benchmarks read these fields): "sent=N
// received=N lost=N repeated=N reordered=N corrupt=N seconds=S", then the RTT percentiles when
// recorded, "other=N" when some, " TIMED-OUT" when it timed out.
std::string Summary(const LoadResult& r);
// One line per gap: "gap: <ms> ms from <unix ns> to <unix ns>, <n> given up".
std::string GapLines(const LoadResult& r);

// An Ethernet header from 02:00:00:00:00:01 to 02:00:00:00:00:02, ethertype 0x88b5.
std::string DefaultHeader();

// Sends options.frames frames on `tx` and collects the echoes from `rx`. `alive` is asked now and
// then whether the connection still stands.
LoadResult RunLoad(snapd::memif::TxRing& tx, snapd::memif::RxRing& rx,
                   const std::function<bool()>& alive, const LoadOptions& options);
// The same on queue 0 of a memif client.
LoadResult RunLoad(snapd::memif::MemifClient& client, const LoadOptions& options);

// The p-th percentile (0..100) of `values`, which it sorts.
int64_t Percentile(std::vector<int64_t>& values, double p);

}  // namespace snap

#endif  // SNAPD_CLIENTS_TRAFFIC_H_
