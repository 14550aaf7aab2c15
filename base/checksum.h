// The internet checksum (RFC 1071): the one's-complement sum of 16-bit big-endian words, folded
// and complemented. Sums may be built up in pieces (a pseudo-header, then a segment) as long as
// every piece but the last has an even length.
#ifndef SNAPD_BASE_CHECKSUM_H_
#define SNAPD_BASE_CHECKSUM_H_

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace snapd {

// The sum one 16-bit word at a time: the definition, and what ChecksumAdd must equal.
inline uint32_t ChecksumAddSlow(const uint8_t* data, size_t len, uint32_t sum) {
  for (; len > 1; data += 2, len -= 2) sum += uint32_t{data[0]} << 8 | data[1];
  if (len == 1) sum += uint32_t{data[0]} << 8;
  return sum;
}

// Adds `len` bytes to a running sum (an odd last byte counts as its word's high byte). Eight bytes
// at a time: the one's-complement sum does not depend on byte order (RFC 1071, 2.B), so the words
// are summed as they sit in memory and the folded result is swapped once.
inline uint32_t ChecksumAdd(const uint8_t* data, size_t len, uint32_t sum) {
  uint64_t acc = 0;
  for (; len >= 8; data += 8, len -= 8) {
    uint64_t w;
    memcpy(&w, data, 8);
    acc += (w & 0xffffffffu) + (w >> 32);  // at most 2^33 a step: no overflow for 2^30 steps
  }
  while (acc >> 16) acc = (acc & 0xffff) + (acc >> 16);
  uint32_t folded = static_cast<uint32_t>(acc);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  folded = ((folded & 0xff) << 8) | (folded >> 8);
#endif
  return ChecksumAddSlow(data, len, sum + folded);
}

// The checksum of a running sum: folded to 16 bits and complemented.
inline uint16_t ChecksumFinish(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

// The checksum of `len` bytes.
inline uint16_t InternetChecksum(const uint8_t* data, size_t len) {
  return ChecksumFinish(ChecksumAdd(data, len, 0));
}

}  // namespace snapd

#endif  // SNAPD_BASE_CHECKSUM_H_
