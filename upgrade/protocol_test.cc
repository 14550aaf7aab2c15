#include "upgrade/protocol.h"

#include "gtest/gtest.h"
#include "snapd/daemon/blackout_histogram.h"

namespace snapd::upgrade {
namespace {

TEST(BlackoutsTest, EachBlackoutCountsInTheFirstBucketItFitsAndTheFormGoesBothWays) {
  BlackoutHistogram h;
  h.Add(0);
  h.Add(50);       // at most 50: the first bucket
  h.Add(51);       // the second
  h.Add(5000000);  // above every bound: the last
  EXPECT_EQ(h.buckets[0], 2u);
  EXPECT_EQ(h.buckets[1], 1u);
  EXPECT_EQ(h.buckets[BlackoutHistogram::kBuckets - 1], 1u);
  EXPECT_EQ(h.count, 4u);
  EXPECT_EQ(h.sum_us, 5000101u);
  wire::Blackouts w;
  BlackoutsToWire(h, &w);
  BlackoutHistogram back;
  ASSERT_TRUE(BlackoutsFromWire(w, &back));
  for (size_t i = 0; i < BlackoutHistogram::kBuckets; ++i) EXPECT_EQ(back.buckets[i], h.buckets[i]);
  EXPECT_EQ(back.count, 4u);
  EXPECT_EQ(back.sum_us, h.sum_us);
}

// A checkpoint a dead snapd left, or an older build's hand-over: taken only if it is this build's
// shape and adds up.
TEST(BlackoutsTest, AHistogramOfAnotherShapeOrThatDoesNotAddUpIsRefused) {
  BlackoutHistogram h;
  h.Add(100);
  wire::Blackouts good;
  BlackoutsToWire(h, &good);
  BlackoutHistogram out;
  out.Add(7);
  wire::Blackouts empty;  // a snapd from before the histogram
  EXPECT_FALSE(BlackoutsFromWire(empty, &out));
  wire::Blackouts shorter = good;
  shorter.mutable_buckets()->RemoveLast();
  EXPECT_FALSE(BlackoutsFromWire(shorter, &out));
  wire::Blackouts miscounted = good;
  miscounted.set_count(2);
  EXPECT_FALSE(BlackoutsFromWire(miscounted, &out));
  wire::Blackouts overflowing = good;
  overflowing.set_buckets(0, UINT64_MAX);
  overflowing.set_buckets(1, 2);
  overflowing.set_count(1);
  EXPECT_FALSE(BlackoutsFromWire(overflowing, &out));
  EXPECT_EQ(out.count, 1u) << "left untouched";
  EXPECT_EQ(out.sum_us, 7u);
}

}  // namespace
}  // namespace snapd::upgrade
