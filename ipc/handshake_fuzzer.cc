// libFuzzer target for the control-message parser: the input is a sequence of 129-byte records
// (one byte of which bit 0 says "an fd came with it", then a 128-byte wire message) fed to the
// server's handshake state machine, as a hostile client would send them.
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ipc/control_message.h"
#include "ipc/handshake.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace snapd::memif;
  ServerHandshake hs(HandshakeLimits{4, 4, 14, 1 << 24});
  constexpr size_t kRecord = 1 + kMessageSize;
  for (size_t off = 0; off + kRecord <= size; off += kRecord) {
    WireMessage msg;
    memcpy(&msg, data + off + 1, kMessageSize);
    bool has_fd = data[off] & 1;
    absl::StatusOr<MessageType> reply = hs.OnMessage(msg, has_fd);
    // Whatever the outcome, what the server would log must be safe to build.
    (void)MessageTypeName(msg.type);
    (void)FieldToString(msg.init.name);
    (void)FieldToString(msg.disconnect.string);
    (void)SecretMatches("secret", msg.init.secret);
    if (!reply.ok()) break;
  }
  // Once connected, every ring the handshake accepted must lie inside its region.
  if (hs.phase() == ServerHandshake::Phase::kConnected) {
    for (const auto* rings : {&hs.c2s_rings(), &hs.s2c_rings()}) {
      for (const RingSpec& r : *rings) {
        if (r.region >= hs.region_sizes().size() ||
            uint64_t{r.offset} + RingBytes(r.log2_size) > hs.region_sizes()[r.region]) {
          __builtin_trap();
        }
      }
    }
  }
  return 0;
}
