// libFuzzer target for the frame parser, and for FinishL4Checksum: any bytes, any length, as the
// NIC or an app might send.
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <vector>

#include "engines/frame.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // A copy of exactly `size` bytes, so ASan sees any read past the end.
  std::vector<uint8_t> frame(data, data + size);
  snapd::FrameInfo info;
  snapd::ParseFrame(frame.data(), static_cast<uint32_t>(frame.size()), 9022, &info);
  snapd::ParseFrame(frame.data(), static_cast<uint32_t>(frame.size()), 64, &info);
  // A checksum finished once is finished: doing it again changes no byte.
  if (snapd::FinishL4Checksum(frame.data(), static_cast<uint32_t>(frame.size()))) {
    std::vector<uint8_t> again = frame;
    if (!snapd::FinishL4Checksum(again.data(), static_cast<uint32_t>(again.size())) ||
        again != frame) {
      abort();
    }
  }
  return 0;
}
