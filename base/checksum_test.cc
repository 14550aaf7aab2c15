#include "base/checksum.h"

#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace snapd {
namespace {

TEST(ChecksumTest, EqualsTheWordAtATimeSumForAnyLengthAlignmentAndStart) {
  std::mt19937 rng(1);
  std::vector<uint8_t> buf(10000);
  for (uint8_t& b : buf) b = static_cast<uint8_t>(rng());
  for (int i = 0; i < 20000; ++i) {
    const size_t off = rng() % 64, len = rng() % (i < 1000 ? 40 : 9000);
    const uint32_t start = rng() % 0x40000;
    EXPECT_EQ(ChecksumFinish(ChecksumAdd(&buf[off], len, start)),
              ChecksumFinish(ChecksumAddSlow(&buf[off], len, start)))
        << "offset " << off << " length " << len;
  }
  // All ones, the worst case for carries.
  std::vector<uint8_t> ones(65536, 0xff);
  EXPECT_EQ(ChecksumFinish(ChecksumAdd(ones.data(), ones.size(), 0xffff)),
            ChecksumFinish(ChecksumAddSlow(ones.data(), ones.size(), 0xffff)));
}

TEST(ChecksumTest, KnownValue) {
  // RFC 1071's example: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2.
  const uint8_t b[] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
  EXPECT_EQ(ChecksumFinish(ChecksumAdd(b, sizeof(b), 0)), static_cast<uint16_t>(~0xddf2));
}

}  // namespace
}  // namespace snapd
