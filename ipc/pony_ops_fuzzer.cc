// libFuzzer target for ParseAppOp: any frame an app can put on its ring (and, with the first
// byte's low bit set, any frame libsnap could get from the engine). What parses writes back to the
// same header bytes, and its segment lies in the frame and in the message.
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "ipc/pony_ops.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace snapd::pony;
  if (size < 1 || size > (1u << 17)) return 0;
  const Direction dir = (data[0] & 1) ? Direction::kFromEngine : Direction::kFromApp;
  const uint8_t* p = data + 1;
  const uint32_t len = static_cast<uint32_t>(size - 1);
  AppOp op;
  uint32_t payload = 0;
  if (ParseAppOp(p, len, dir, 1u << 20, &op, &payload) != AppOpError::kNone) return 0;
  if (payload > len) abort();
  if ((op.op == AppOpCode::kSend || op.op == AppOpCode::kReceived) &&
      (payload == len || op.length > (1u << 20) || op.offset + (len - payload) > op.length)) {
    abort();
  }
  uint8_t out[kAppOpBytes];
  if (WriteAppOp(op, out, sizeof(out)) != kAppOpBytes || memcmp(out, p, kAppOpBytes) != 0) abort();
  return 0;
}
