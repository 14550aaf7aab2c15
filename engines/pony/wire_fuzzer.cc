// libFuzzer target for ParsePonyHeader: any bytes a host on the link can send to pony's UDP port.
// What parses must write back to the same header bytes, and its segment must lie in the input.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "engines/pony/wire.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace snapd::pony;
  if (size > (1u << 20)) return 0;
  PonyHeader h;
  uint32_t payload = 0;
  const uint32_t len = static_cast<uint32_t>(size);
  if (ParsePonyHeader(data, len, &h, &payload) != WireError::kNone) return 0;
  if (payload > len) abort();
  if (h.type == PacketType::kData &&
      (payload == len || h.msg_offset + (len - payload) > h.msg_len)) {
    abort();
  }
  std::vector<uint8_t> out(PonyHeaderBytes(h));
  if (WritePonyHeader(h, out.data(), static_cast<uint32_t>(out.size())) != out.size()) abort();
  if (out.size() > size || memcmp(out.data(), data, out.size()) != 0) abort();
  return 0;
}
