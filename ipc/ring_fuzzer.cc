// libFuzzer target for the ring consumer and producer: the input drives a hostile peer that writes
// random descriptors and moves cursors anywhere, while the server (and a client) keep receiving and
// transmitting. Regions are heap buffers of exactly their size, so ASan reports any byte read or
// written outside them.
#include <fuzzer/FuzzedDataProvider.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <memory>
#include <vector>

#include "ipc/ring.h"

namespace {

using namespace snapd::memif;

void Touch(const Frame* frames, uint16_t n) {
  uint8_t sink = 0;
  for (uint16_t i = 0; i < n; ++i) {
    for (uint32_t k = 0; k < frames[i].len; ++k) sink ^= frames[i].data[k];
    asm volatile("" : : "r"(sink));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  const uint8_t log2 = in.ConsumeIntegralInRange<uint8_t>(1, 6);
  const uint32_t slots = 1u << log2;
  const uint32_t buf = in.ConsumeIntegralInRange<uint32_t>(1, 4) * 64;
  const uint16_t start = in.ConsumeIntegral<uint16_t>();
  const uint64_t ring_bytes = RingBytes(log2);
  // Region 0: the two rings, exactly. Region 1: buffers, of a size the input picks.
  std::unique_ptr<uint8_t[]> rings(new uint8_t[2 * ring_bytes]());
  std::vector<uint8_t> buffers(in.ConsumeIntegralInRange<uint32_t>(1, 2 * slots * buf));
  std::vector<RegionView> views = {{rings.get(), 2 * ring_bytes}, {buffers.data(), buffers.size()}};
  auto* c2s = reinterpret_cast<RingHeader*>(rings.get());
  auto* s2c = reinterpret_cast<RingHeader*>(rings.get() + ring_bytes);
  c2s->head = c2s->tail = s2c->head = s2c->tail = start;
  RxRing server_rx(Side::kServer, c2s, log2, views, -1, start, ClientSlots{});
  TxRing server_tx(Side::kServer, s2c, log2, views, -1, start, ClientSlots{});
  // A client whose buffers may not fit its region: it must still never step outside.
  RxRing client_rx(Side::kClient, s2c, log2, views, -1, start,
                   ClientSlots{1, in.ConsumeIntegral<uint16_t>(), buf});
  std::vector<uint8_t> payload(4 * 4096, 0xab);
  Frame frames[64];
  while (in.remaining_bytes() > 0) {
    switch (in.ConsumeIntegralInRange<int>(0, 6)) {
      case 0: {  // the peer writes a descriptor
        RingHeader* r = in.ConsumeBool() ? c2s : s2c;
        Descriptor d;
        d.flags = in.ConsumeIntegral<uint16_t>();
        d.region = in.ConsumeIntegralInRange<uint16_t>(0, 3);
        d.length = in.ConsumeIntegral<uint32_t>();
        d.offset = in.ConsumeIntegral<uint32_t>();
        d.metadata = 0;
        r->desc[in.ConsumeIntegral<uint16_t>() & (slots - 1)] = d;
        break;
      }
      case 1:  // the peer moves the c2s head anywhere
        __atomic_store_n(&c2s->head, in.ConsumeIntegral<uint16_t>(), __ATOMIC_RELEASE);
        break;
      case 2: {
        uint16_t n = server_rx.Receive(frames, in.ConsumeIntegralInRange<uint16_t>(1, 64));
        Touch(frames, n);
        server_rx.Release();
        break;
      }
      case 3:  // the peer moves the s2c head (buffers offered)
        __atomic_store_n(&s2c->head, in.ConsumeIntegral<uint16_t>(), __ATOMIC_RELEASE);
        break;
      case 4: {
        uint16_t n = in.ConsumeIntegralInRange<uint16_t>(1, 64);
        for (uint16_t i = 0; i < n; ++i) {
          frames[i] = Frame{payload.data(), in.ConsumeIntegralInRange<uint32_t>(0, payload.size())};
        }
        server_tx.Transmit(frames, n);
        break;
      }
      case 5:  // a hostile server moves the s2c tail, and the client reads
        __atomic_store_n(&s2c->tail, in.ConsumeIntegral<uint16_t>(), __ATOMIC_RELEASE);
        break;
      case 6: {
        uint16_t n = client_rx.Receive(frames, in.ConsumeIntegralInRange<uint16_t>(1, 64));
        Touch(frames, n);
        client_rx.Release();
        break;
      }
    }
  }
  return 0;
}
