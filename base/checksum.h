// The internet checksum (RFC 1071): the one's-complement sum of 16-bit big-endian words, folded
// and complemented. Sums may be built up in pieces (a pseudo-header, then a segment) as long as
// every piece but the last has an even length.
#ifndef SNAPD_BASE_CHECKSUM_H_
#define SNAPD_BASE_CHECKSUM_H_

#include <cstddef>
#include <cstdint>

namespace snapd {

// Adds `len` bytes to a running sum (an odd last byte counts as its word's high byte).
inline uint32_t ChecksumAdd(const uint8_t* data, size_t len, uint32_t sum) {
  for (; len > 1; data += 2, len -= 2) sum += uint32_t{data[0]} << 8 | data[1];
  if (len == 1) sum += uint32_t{data[0]} << 8;
  return sum;
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
