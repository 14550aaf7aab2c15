#include "snapd/daemon/event_log.h"

#include <thread>

#include "gtest/gtest.h"

namespace snapd {
namespace {

TEST(EventLogTest, KeepsTheLastEventsInOrderAndCountsWhatWent) {
  EventLog log(3);
  for (int i = 1; i <= 5; ++i) log.Add("mode", "group g", std::to_string(i));
  uint64_t first = 0;
  std::vector<Event> all = log.Since(0, 100, absl::Now(), &first);
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(first, 3u);
  EXPECT_EQ(all[0].seq, 3u);
  EXPECT_EQ(all[0].message, "3");
  EXPECT_EQ(all[2].seq, 5u);
  EXPECT_EQ(log.evicted(), 2u);
  EXPECT_EQ(log.Since(4, 100, absl::Now()).size(), 1u);
  EXPECT_EQ(log.Since(3, 1, absl::Now())[0].seq, 4u) << "at most max, oldest first";
}

TEST(EventLogTest, AKindOutsidersCauseIsRateLimitedAndTheNextSaysHowManyWereLeftOut) {
  EventLog log(1000, 5);
  for (int i = 0; i < 50; ++i) log.Add("app_refused", "pid 1", "bad secret", /*limited=*/true);
  log.Add("mode", "group g", "compacting");  // not limited: always kept
  std::vector<Event> all = log.All();
  ASSERT_EQ(all.size(), 6u);
  EXPECT_EQ(all.back().kind, "mode");
  EXPECT_EQ(log.rate_limited(), 45u);
}

TEST(EventLogTest, AFollowerWaitsForTheNextEvent) {
  EventLog log;
  log.Add("started", "", "x");
  std::thread writer([&] {
    absl::SleepFor(absl::Milliseconds(50));
    log.Add("mode", "group g", "y");
  });
  // Waits (up to a minute: the writer comes much sooner) past the one there is.
  std::vector<Event> next = log.Since(1, 10, absl::Now() + absl::Seconds(60));
  writer.join();
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].message, "y");
  EXPECT_TRUE(log.Since(2, 10, absl::Now()).empty()) << "nothing new: no wait past the deadline";
}

// A live upgrade: the new snapd's log is the old one's, then its own, numbered on.
TEST(EventLogTest, TheNewSnapdCarriesTheOldLogOnAndNumbersOnFromIt) {
  EventLog old_log;
  for (int i = 0; i < 4; ++i) old_log.Add("app_attached", "app 1", std::to_string(i));
  EventLog new_log;
  new_log.Add("app_attached", "app 2", "during the upgrade");
  std::vector<Event> handed = old_log.All();
  handed.push_back(handed.front());  // out of order: left out
  new_log.TakeOver(handed, old_log.id());
  new_log.Add("upgrade", "pid 1", "took over");
  std::vector<Event> all = new_log.All();
  ASSERT_EQ(all.size(), 6u);
  for (size_t i = 0; i < all.size(); ++i) EXPECT_EQ(all[i].seq, i + 1);
  EXPECT_EQ(new_log.id(), old_log.id()) << "the log goes on under its id";
  EXPECT_EQ(all[4].message, "during the upgrade");
  EXPECT_EQ(all[5].message, "took over");
}

// A reader that asks past the end read another log (a snapd that crashed began again at 1).
TEST(EventLogTest, AReaderPastTheEndGetsTheWholeLog) {
  EventLog log;
  log.Add("started", "", "restarted");
  std::vector<Event> all = log.Since(500, 10, absl::Now());
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].message, "restarted");
}

// What an app names itself is any bytes; events are proto3 strings, which must be UTF-8 (a string
// that is not would not parse at the other end of an upgrade or the Events stream).
TEST(EventLogTest, TextIsMadeValidUtf8AndCutOnACharactersBoundary) {
  EXPECT_EQ(EventLog::Clean("plain"), "plain");
  EXPECT_EQ(EventLog::Clean("caf\xc3\xa9"), "caf\xc3\xa9");
  EXPECT_EQ(EventLog::Clean("a\xff\xc3"
                            "b\xed\xa0\x80"),
            "a??b???");
  EXPECT_EQ(EventLog::Clean("\xf0\x9f\x98\x80\xf0\x9f\x98\x80", 6), "\xf0\x9f\x98\x80");
  EventLog log;
  log.Add("app_attached", "app 1", "'\x80\xfe' (pid 1)");
  EXPECT_EQ(log.All()[0].message, "'??' (pid 1)");
}

// Numbers near the top from another snapd would wrap ours: that log is not taken.
TEST(EventLogTest, AHandedLogNumberedPastTheLimitIsLeftOut) {
  EventLog log;
  Event e;
  e.seq = EventLog::kMaxSeq + 1;
  e.kind = "mode";
  log.TakeOver({e}, 0);
  log.Add("upgrade", "", "took over");
  ASSERT_EQ(log.All().size(), 1u);
  EXPECT_EQ(log.All()[0].seq, 1u);
}

}  // namespace
}  // namespace snapd
