// tap_bench: what the capture hook costs a port's burst while no capture runs (engines/port.h:
// Receive and Transmit test one pointer before calling the port's own). Times bursts through the
// wrapper against the port's own method called directly, on the same port, alternating, and
// prints the difference a burst:
//   tap idle_hook_ns_per_burst=<ns> (wrapper <ns>, direct <ns> a burst)
#include <algorithm>
#include <cstdio>

#include "base/clock.h"
#include "engines/port.h"

namespace snapd {
namespace {

// A port that hands out the same 32 frames: the least work a burst can be, so the hook's share
// is as large as it gets.
class Spin final : public Port {
 public:
  Spin() : Port("spin", PortKind::kApp) {
    for (auto& p : pkts_) p = Packet{frame_, 64};
  }
  uint16_t DoReceive(Packet* pkts, uint16_t max) override {
    const uint16_t n = std::min<uint16_t>(max, 32);
    for (uint16_t i = 0; i < n; ++i) pkts[i] = pkts_[i];
    return n;
  }
  uint16_t DoTransmit(const Packet*, uint16_t n) override { return n; }
  void Release() override {}

 private:
  uint8_t frame_[64] = {};
  Packet pkts_[32];
};

}  // namespace
}  // namespace snapd

// Not inlined: the calls go through the vtable as an engine's do.
__attribute__((noinline)) uint64_t Wrapped(snapd::Port* p, snapd::Packet* out, int bursts) {
  uint64_t n = 0;
  for (int i = 0; i < bursts; ++i) {
    n += p->Receive(out, 32);
    n += p->Transmit(out, 32);
  }
  return n;
}

__attribute__((noinline)) uint64_t Direct(snapd::Spin* p, snapd::Packet* out, int bursts) {
  uint64_t n = 0;
  for (int i = 0; i < bursts; ++i) {
    n += p->DoReceive(out, 32);
    n += p->DoTransmit(out, 32);
  }
  return n;
}

int main() {
  snapd::Spin spin;
  snapd::Port* port = &spin;
  snapd::Spin* volatile opaque = &spin;  // the direct calls stay virtual too
  snapd::Packet out[32];
  constexpr int kBursts = 20000000;
  double best_wrapped = 1e9, best_direct = 1e9;
  uint64_t sink = 0;
  for (int round = 0; round < 7; ++round) {
    int64_t t0 = snapd::MonotonicNs();
    sink += Wrapped(port, out, kBursts);
    int64_t t1 = snapd::MonotonicNs();
    sink += Direct(opaque, out, kBursts);
    int64_t t2 = snapd::MonotonicNs();
    // Receive and Transmit: two hooks a round; a burst is one of them.
    best_wrapped = std::min(best_wrapped, double(t1 - t0) / (2.0 * kBursts));
    best_direct = std::min(best_direct, double(t2 - t1) / (2.0 * kBursts));
  }
  printf("tap idle_hook_ns_per_burst=%.2f (wrapper %.2f, direct %.2f ns a burst; %lu frames)\n",
         std::max(0.0, best_wrapped - best_direct), best_wrapped, best_direct,
         static_cast<unsigned long>(sink));
  return 0;
}
