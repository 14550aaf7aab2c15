#include "tools/memif_load.h"

#include <poll.h>
#include <string.h>
#include <time.h>

#include <algorithm>

namespace snapd::tools {
namespace {

constexpr uint8_t kDstMac[6] = {0x02, 0, 0, 0, 0, 0x02};
constexpr uint8_t kSrcMac[6] = {0x02, 0, 0, 0, 0, 0x01};
constexpr size_t kSeqOffset = 14;
constexpr size_t kTimeOffset = 22;
constexpr uint32_t kMinFrame = 30;

void Build(uint8_t* frame, uint32_t size, uint64_t seq) {
  memcpy(frame, kDstMac, 6);
  memcpy(frame + 6, kSrcMac, 6);
  frame[12] = 0x88;
  frame[13] = 0xb5;
  memcpy(frame + kSeqOffset, &seq, 8);
  int64_t now = NowNs();
  memcpy(frame + kTimeOffset, &now, 8);
  for (uint32_t i = kMinFrame; i < size; ++i) frame[i] = static_cast<uint8_t>(seq + i);
}

}  // namespace

int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

int64_t Percentile(std::vector<int64_t>& values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  size_t idx = static_cast<size_t>(p / 100.0 * (values.size() - 1) + 0.5);
  return values[std::min(idx, values.size() - 1)];
}

LoadResult RunLoad(memif::MemifClient& client, const LoadOptions& options) {
  LoadResult result;
  const uint32_t size = std::max(options.frame_size, kMinFrame);
  const uint32_t window = std::max<uint32_t>(1, options.window);
  if (options.record_rtt) result.rtt_ns.reserve(options.frames);
  memif::TxRing& tx = client.tx(0);
  memif::RxRing& rx = client.rx(0);
  constexpr int kBurst = 32;
  std::vector<uint8_t> storage(size * kBurst);
  memif::Frame out[kBurst];
  memif::Frame got[kBurst];
  uint64_t expected = 0;
  int64_t start = NowNs();
  int64_t last_progress = start;
  const int64_t idle_limit = absl::ToInt64Nanoseconds(options.idle_timeout);
  int idle_spins = 0;
  while (result.received < options.frames) {
    // Send as much as the window allows.
    uint64_t in_flight = result.sent - result.received;
    if (result.sent < options.frames && in_flight < window) {
      uint64_t want =
          std::min<uint64_t>({options.frames - result.sent, window - in_flight, kBurst});
      for (uint64_t i = 0; i < want; ++i) {
        out[i] = memif::Frame{storage.data() + i * size, size};
        Build(out[i].data, size, result.sent + i);
      }
      result.sent += tx.Transmit(out, static_cast<uint16_t>(want));
    }
    uint16_t n = rx.Receive(got, kBurst);
    int64_t now = n > 0 ? NowNs() : 0;
    for (uint16_t i = 0; i < n; ++i) {
      const memif::Frame& f = got[i];
      if (f.len != size || f.data[12] != 0x88 || f.data[13] != 0xb5) {
        ++result.corrupt;
        continue;
      }
      uint64_t seq;
      int64_t sent_at;
      memcpy(&seq, f.data + kSeqOffset, 8);
      memcpy(&sent_at, f.data + kTimeOffset, 8);
      if (seq != expected) ++result.reordered;
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
    int64_t t = NowNs();
    if (t - last_progress > idle_limit || !client.CheckControl().ok()) {
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
  result.seconds = (NowNs() - start) / 1e9;
  return result;
}

}  // namespace snapd::tools
