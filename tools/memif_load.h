// Sequenced traffic over a memif client: what the demo, the interop tests and the ipc benchmark
// send. Every frame is an Ethernet frame (locally administered MACs, ethertype 0x88b5, the one IEEE
// set aside for local experiments) carrying a 64-bit sequence number and a send timestamp, so the
// far end may be any echo (memif_echo, dpdk-testpmd in io mode) and losses and reordering are seen.
#ifndef SNAPD_TOOLS_MEMIF_LOAD_H_
#define SNAPD_TOOLS_MEMIF_LOAD_H_

#include <cstdint>
#include <vector>

#include "absl/time/time.h"
#include "ipc/client.h"

namespace snapd::tools {

struct LoadOptions {
  uint64_t frames = 10000;   // how many to send
  uint32_t frame_size = 64;  // bytes, at least 30
  uint32_t window = 1;       // frames in flight at most; 1 is a ping-pong
  bool poll = true;          // spin while waiting; false: sleep on the ring's interrupt
  absl::Duration idle_timeout = absl::Seconds(5);  // give up after this long without progress
  bool record_rtt = false;                         // keep every round-trip time (ping-pong)
};

struct LoadResult {
  uint64_t sent = 0;
  uint64_t received = 0;
  uint64_t reordered = 0;  // frames that came back with a sequence number other than expected
  uint64_t corrupt = 0;    // frames of the wrong size or with a damaged header
  double seconds = 0;
  std::vector<int64_t> rtt_ns;
  bool timed_out = false;
  bool lost() const { return received < sent; }
};

// Sends options.frames frames on queue 0 and collects the echoes.
LoadResult RunLoad(memif::MemifClient& client, const LoadOptions& options);

// Monotonic time in nanoseconds.
int64_t NowNs();

// The p-th percentile (0..100) of `values`, which it sorts.
int64_t Percentile(std::vector<int64_t>& values, double p);

}  // namespace snapd::tools

#endif  // SNAPD_TOOLS_MEMIF_LOAD_H_
