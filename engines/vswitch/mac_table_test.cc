#include "engines/vswitch/mac_table.h"

#include "gtest/gtest.h"

namespace snapd {
namespace {

constexpr int64_t kSecond = 1000000000;

TEST(MacTableTest, LearnLookupMoveAge) {
  MacTable t(16, 10 * kSecond);
  EXPECT_EQ(t.Lookup(1, 0), MacTable::kNoPort);
  EXPECT_EQ(t.Learn(1, 3, 0), MacTable::LearnResult::kLearned);
  EXPECT_EQ(t.Lookup(1, kSecond), 3);
  EXPECT_EQ(t.Learn(1, 3, kSecond), MacTable::LearnResult::kRefreshed);
  EXPECT_EQ(t.Learn(1, 4, 2 * kSecond), MacTable::LearnResult::kMoved);
  EXPECT_EQ(t.Lookup(1, 2 * kSecond), 4);
  EXPECT_EQ(t.Lookup(1, 13 * kSecond), MacTable::kNoPort);  // aged out
}

TEST(MacTableTest, StaticEntriesNeverAgeNorMove) {
  MacTable t(16, kSecond);
  ASSERT_TRUE(t.AddStatic(7, 1));
  EXPECT_EQ(t.Learn(7, 2, 0), MacTable::LearnResult::kStaticConflict);
  EXPECT_EQ(t.Lookup(7, 1000 * kSecond), 1);
}

TEST(MacTableTest, FullTableRefusesThenReclaimsAgedEntries) {
  MacTable t(16, kSecond);
  for (uint64_t m = 0; m < 16; ++m)
    ASSERT_EQ(t.Learn(100 + m, 1, 0), MacTable::LearnResult::kLearned);
  EXPECT_EQ(t.Learn(999, 1, 0), MacTable::LearnResult::kFull);
  EXPECT_EQ(t.Learn(999, 1, 5 * kSecond), MacTable::LearnResult::kLearned);  // an aged slot
  EXPECT_EQ(t.Lookup(999, 5 * kSecond), 1);
}

TEST(MacTableTest, ForgetPortKeepsOtherChainsReachable) {
  MacTable t(16, 100 * kSecond);
  for (uint64_t m = 0; m < 12; ++m) t.Learn(m * 16, m % 2, 0);  // likely collisions
  t.ForgetPort(0);
  for (uint64_t m = 0; m < 12; ++m) {
    EXPECT_EQ(t.Lookup(m * 16, 0), m % 2 == 0 ? MacTable::kNoPort : 1) << m;
  }
  EXPECT_EQ(t.size(), 6u);
}

}  // namespace
}  // namespace snapd
