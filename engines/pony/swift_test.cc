#include "engines/pony/swift.h"

#include "gtest/gtest.h"

namespace snapd::pony {
namespace {

constexpr int64_t kRtt = 20000;  // 20 us

// Acks a whole window, one packet an ack, spread over one round trip from *now, all with
// `delay`; advances *now by the round trip.
void OneRoundTrip(Swift& s, int64_t delay, int64_t* now) {
  int acks = std::max(1, static_cast<int>(s.cwnd()));
  for (int i = 0; i < acks; ++i) s.OnAck(1, delay, kRtt, *now + kRtt * i / acks);
  *now += kRtt;
}

TEST(SwiftTest, BelowTheTargetTheWindowGrowsAboutOnePacketPerRoundTrip) {
  Swift s;
  int64_t now = 0;
  double start = s.cwnd();
  for (int rtt = 0; rtt < 10; ++rtt) OneRoundTrip(s, 1000, &now);
  EXPECT_NEAR(s.cwnd(), start + 10, 1.5);
  EXPECT_EQ(s.decreases(), 0u);
}

TEST(SwiftTest, AboveTheTargetItShrinksAtMostOncePerRoundTripAndByAtMostMaxMdf) {
  SwiftParams p;
  p.init_cwnd = 100;
  p.base_window_ns = 0;  // an absolute target, as in the paper
  Swift s(p);
  int64_t now = 1000000;
  // Many acks in one round trip, far above the target: one decrease, by at most half.
  for (int i = 0; i < 50; ++i) s.OnAck(1, 10 * s.TargetDelayNs(), kRtt, now + i * 10);
  EXPECT_EQ(s.decreases(), 1u);
  EXPECT_NEAR(s.cwnd(), 50, 0.01);
  // A round trip later it may decrease again; a small overshoot takes off a little.
  now += kRtt;
  const double before = s.cwnd();
  const int64_t target = s.TargetDelayNs();
  s.OnAck(1, target + target / 10, kRtt, now);
  EXPECT_EQ(s.decreases(), 2u);
  EXPECT_LT(s.cwnd(), before);
  EXPECT_GT(s.cwnd(), before * 0.9);
}

TEST(SwiftTest, ALoneLateSampleIsNoQueue) {
  SwiftParams p;
  p.base_window_ns = 0;
  p.init_cwnd = 50;
  Swift s(p);
  int64_t now = 1000000;
  s.OnAck(1, 1000, kRtt, now);
  // One late sample among timely ones: no decrease.
  s.OnAck(1, 10 * s.TargetDelayNs(), kRtt, now += 1000);
  s.OnAck(1, 1000, kRtt, now += 1000);
  EXPECT_EQ(s.decreases(), 0u);
  // A round trip of late samples is a queue.
  for (int i = 0; i < 20; ++i) s.OnAck(1, 10 * s.TargetDelayNs(), kRtt, now += kRtt / 10);
  EXPECT_EQ(s.decreases(), 1u);
}

TEST(SwiftTest, TheTargetCountsAboveThePathsBaseDelay) {
  // A software path whose base round trip (400 us) is far above the target: the window still
  // grows while the delay stays near the base, and shrinks when it queues above base + target.
  SwiftParams p;
  Swift s(p);
  int64_t now = 0;
  const double start = s.cwnd();
  for (int i = 0; i < 100; ++i) s.OnAck(1, 400000 + (i % 3) * 5000, kRtt, now += 1000);
  EXPECT_EQ(s.base_delay_ns(), 400000);
  EXPECT_GT(s.cwnd(), start);
  EXPECT_EQ(s.decreases(), 0u);
  for (int i = 0; i < 20; ++i) s.OnAck(1, 400000 + 3 * s.TargetDelayNs(), kRtt, now += kRtt / 10);
  EXPECT_EQ(s.decreases(), 1u);
  // A longer path is learnt within two windows: the old base ages out.
  for (int i = 0; i < 3; ++i) {
    now += p.base_window_ns;
    s.OnAck(1, 900000, kRtt, now);
  }
  EXPECT_EQ(s.base_delay_ns(), 900000);
}

TEST(SwiftTest, ConvergesWhereTheDelayMeetsTheTarget) {
  // A bottleneck that queues: the delay grows with the window past what the path holds.
  SwiftParams p;
  Swift s(p);
  int64_t now = 0;
  const double bdp = 20;  // packets the path holds without queueing
  for (int rtt = 0; rtt < 500; ++rtt) {
    double queued = std::max(0.0, s.cwnd() - bdp);
    int64_t delay = kRtt + static_cast<int64_t>(queued * 5000);  // 5 us a queued packet
    OneRoundTrip(s, delay, &now);
  }
  // The target is base (50 us) + flow scaling: the window settles where the delay meets it.
  const double settled = bdp + static_cast<double>(s.TargetDelayNs() - kRtt) / 5000;
  EXPECT_NEAR(s.cwnd(), settled, settled * 0.35);
}

TEST(SwiftTest, ATimeoutDropsTheWindowToItsMinimumAndPacesBelowOnePacket) {
  SwiftParams p;
  p.min_cwnd = 0.01;  // paced below one packet
  Swift s(p);
  s.OnTimeout(0);
  EXPECT_EQ(s.timeouts(), 1u);
  EXPECT_DOUBLE_EQ(s.cwnd(), p.min_cwnd);
  EXPECT_EQ(s.PacingGapNs(kRtt), static_cast<int64_t>(kRtt / p.min_cwnd));
  // Below one packet, each ack adds ai packets, so it climbs back quickly.
  int64_t now = kRtt;
  for (int i = 0; i < 5; ++i) s.OnAck(1, 1000, kRtt, now += kRtt);
  EXPECT_GT(s.cwnd(), 1);
  EXPECT_EQ(s.PacingGapNs(kRtt), 0);
}

TEST(SwiftTest, SmallWindowsGetALargerTarget) {
  SwiftParams p;
  p.init_cwnd = p.fs_max_cwnd;
  Swift large(p);
  p.init_cwnd = p.fs_min_cwnd;
  p.min_cwnd = p.fs_min_cwnd;
  Swift small(p);
  EXPECT_EQ(large.TargetDelayNs(), p.base_target_ns);
  EXPECT_EQ(small.TargetDelayNs(), p.base_target_ns + p.fs_range_ns);
}

TEST(SwiftTest, TheWindowStaysInItsBounds) {
  SwiftParams p;
  p.max_cwnd = 32;
  Swift s(p);
  int64_t now = 0;
  for (int rtt = 0; rtt < 200; ++rtt) OneRoundTrip(s, 0, &now);
  EXPECT_DOUBLE_EQ(s.cwnd(), 32);
  for (int i = 0; i < 100; ++i) s.OnFastRetransmit(kRtt, now += kRtt);
  EXPECT_DOUBLE_EQ(s.cwnd(), p.min_cwnd);
}

}  // namespace
}  // namespace snapd::pony
