// libFuzzer target for what the app library reads of frames that reach an app (from the wire,
// through snapd): AnswerInPlace (ARP requests, ICMP and UDP echo) and ParseArpReply, on any bytes
// of any length. The first 10 bytes, when there are that many, choose the app's MAC and IPv4
// address, so that frames addressed to it (the paths that write) are reached too.
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <vector>

#include "clients/packet.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  uint64_t mac = 0x020000000001;
  uint32_t ip = 0x0100000a;
  if (size >= 10) {
    memcpy(&mac, data, 6);
    memcpy(&ip, data + 6, 4);
    data += 10;
    size -= 10;
  }
  // A copy of exactly `size` bytes, so ASan sees any access past the end.
  std::vector<uint8_t> frame(data, data + size);
  uint64_t learned;
  snap::ParseArpReply(frame.data(), static_cast<uint32_t>(frame.size()), ip, &learned);
  snap::AnswerInPlace(frame.data(), static_cast<uint32_t>(frame.size()), mac & 0xffffffffffff, ip);
  return 0;
}
