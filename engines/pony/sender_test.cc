#include "engines/pony/sender.h"

#include <cstdio>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "engines/pony/receiver.h"
#include "gtest/gtest.h"

namespace snapd::pony {
namespace {

PonyHeader Ack(uint32_t cumulative, uint32_t credit, std::vector<SackBlock> sacks = {},
               uint32_t ts_echo = 0) {
  PonyHeader h;
  h.type = PacketType::kAck;
  h.ack = cumulative;
  h.credit = credit;
  h.ts_echo = ts_echo;
  h.sack_count = static_cast<uint8_t>(sacks.size());
  for (size_t i = 0; i < sacks.size(); ++i) h.sack[i] = sacks[i];
  return h;
}

std::vector<Outgoing> SendAll(Sender& s, int64_t now) {
  std::vector<Outgoing> out;
  Outgoing o;
  while (s.NextPacket(now, &o)) out.push_back(o);
  return out;
}

TEST(SenderTest, CutsMessagesIntoSegmentsAndAsksForAnAckAtEachMessagesEnd) {
  SenderOptions opt;
  opt.mss = 1000;
  Sender s(100, 1 << 20, opt);
  s.Queue(std::string(2500, 'a'), 7);
  s.Queue("b", 8);
  std::vector<Outgoing> out = SendAll(s, 0);
  ASSERT_EQ(out.size(), 4u);
  EXPECT_EQ(out[0].seq, 100u);
  EXPECT_EQ(out[2].seq, 102u);
  EXPECT_EQ(out[2].msg_offset, 2000u);
  EXPECT_EQ(out[2].len, 500u);
  EXPECT_EQ(out[2].flags, kFlagAckNow);
  EXPECT_EQ(out[1].flags, 0);
  EXPECT_EQ(out[3].msg_id, 2u);
  EXPECT_EQ(out[3].msg_len, 1u);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(out[3].data), out[3].len), "b");
  // The cumulative ack past a message's last packet completes it, in order.
  uint32_t token = 0;
  EXPECT_TRUE(s.OnAck(Ack(102, 1 << 20), 10));
  EXPECT_FALSE(s.PopCompleted(&token));
  EXPECT_TRUE(s.OnAck(Ack(104, 1 << 20), 20));
  ASSERT_TRUE(s.PopCompleted(&token));
  EXPECT_EQ(token, 7u);
  ASSERT_TRUE(s.PopCompleted(&token));
  EXPECT_EQ(token, 8u);
  EXPECT_TRUE(s.idle());
}

TEST(SenderTest, TheWindowAndTheCreditHoldPacketsBack) {
  SenderOptions opt;
  opt.mss = 100;
  opt.swift.init_cwnd = 4;
  Sender s(1, 1000, opt);
  s.Queue(std::string(800, 'x'), 1);
  s.Queue(std::string(300, 'y'), 2);
  EXPECT_EQ(SendAll(s, 0).size(), 4u);     // the window
  EXPECT_TRUE(s.OnAck(Ack(5, 200), 10));   // the receiver reserved 800 of its 1000
  EXPECT_EQ(SendAll(s, 10).size(), 4u);    // the rest of message 1; message 2 must wait
  EXPECT_TRUE(s.OnAck(Ack(9, 1000), 20));  // the app read message 1
  std::vector<Outgoing> out = SendAll(s, 20);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].msg_id, 2u);
}

TEST(SenderTest, ThreePacketsSackedPastOneMakeItLostAndItGoesFirst) {
  SenderOptions opt;
  opt.mss = 10;
  Sender s(1, 1 << 20, opt);
  s.Queue(std::string(100, 'z'), 1);  // 10 packets, seq 1..10
  ASSERT_EQ(SendAll(s, 0).size(), 10u);
  // 3 never arrived; 4..6 did.
  EXPECT_TRUE(s.OnAck(Ack(3, 1 << 20, {{4, 7}}), 100));
  EXPECT_EQ(s.fast_retransmits(), 1u);
  Outgoing o;
  ASSERT_TRUE(s.NextPacket(100, &o));
  EXPECT_EQ(o.seq, 3u);
  EXPECT_EQ(o.msg_offset, 20u);
  EXPECT_TRUE(o.flags & kFlagRetransmit);
  EXPECT_EQ(s.retransmits(), 1u);
  EXPECT_TRUE(s.OnAck(Ack(11, 1 << 20), 200));
  uint32_t token;
  EXPECT_TRUE(s.PopCompleted(&token));
}

TEST(SenderTest, ATimeoutResendsEverythingUnackedAndASilentPeerIsGivenUp) {
  SenderOptions opt;
  opt.mss = 10;
  opt.max_timeouts = 3;
  Sender s(1, 1 << 20, opt);
  s.Queue(std::string(30, 'q'), 1);
  ASSERT_EQ(SendAll(s, 0).size(), 3u);
  EXPECT_EQ(s.NextTimerNs(), opt.initial_rto_ns);
  s.OnTimer(opt.initial_rto_ns - 1);
  EXPECT_EQ(s.timeouts(), 0u);
  int64_t now = opt.initial_rto_ns;
  s.OnTimer(now);
  EXPECT_EQ(s.timeouts(), 1u);
  EXPECT_EQ(s.rto_ns(), 2 * opt.initial_rto_ns);
  EXPECT_DOUBLE_EQ(s.swift().cwnd(), opt.swift.min_cwnd);
  Outgoing o;
  ASSERT_TRUE(s.NextPacket(now, &o));  // paced: one packet now
  EXPECT_EQ(o.seq, 1u);
  EXPECT_FALSE(s.NextPacket(now, &o));
  for (int i = 0; i < 5 && !s.dead(); ++i) {
    now = s.NextTimerNs();
    s.OnTimer(now);
    while (s.NextPacket(now, &o)) {
    }
  }
  EXPECT_TRUE(s.dead());
  EXPECT_FALSE(s.NextPacket(now, &o));
}

TEST(SenderTest, RoundTripsComeFromEchoedTimestampsLessTheTimeHeldThere) {
  Sender s(1, 1 << 20);
  s.Queue("ping", 1);
  Outgoing o;
  ASSERT_TRUE(s.NextPacket(1000000, &o));
  PonyHeader ack = Ack(2, 1 << 20, {}, 1000000);  // echoes the ts the engine stamped at send
  ack.hold_ns = 5000;
  EXPECT_TRUE(s.OnAck(ack, 1030000));
  EXPECT_EQ(s.srtt_ns(), 25000);
}

TEST(SenderTest, RefusesAcksForWhatWasNeverSent) {
  Sender s(1, 1 << 20);
  s.Queue("x", 1);
  SendAll(s, 0);
  EXPECT_FALSE(s.OnAck(Ack(3, 1 << 20), 1));
  EXPECT_FALSE(s.OnAck(Ack(1, 1 << 20, {{2, 5}}), 1));
  EXPECT_TRUE(s.OnAck(Ack(2, 1 << 20), 1));
}

// A sender and a receiver over a channel that loses, duplicates, delays and reorders packets both
// ways, with an app that reads in spurts: every message arrives once, in order, intact; every
// token comes back; the receiver never had to drop for credit.
void RunLossyChannel(double loss, uint32_t seed, uint32_t budget = 256 << 10) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> coin(0, 1);
  SenderOptions opt;
  opt.mss = 1400;
  Sender tx(1000, budget, opt);
  Receiver rx(1000, budget, 1 << 20);
  std::vector<std::string> sent;
  for (uint32_t i = 0; i < 300; ++i) {
    std::string m(1 + rng() % 20000, '\0');
    for (char& c : m) c = static_cast<char>(rng());
    sent.push_back(m);
    tx.Queue(m, i);
  }
  struct InTransit {
    int64_t at;
    bool is_ack;
    PonyHeader h;
    std::string bytes;
  };
  std::multimap<int64_t, InTransit> wire;
  auto put = [&](InTransit p) {
    if (coin(rng) < loss) return;
    int64_t delay = 10000 + static_cast<int64_t>(rng() % 20000);  // 10-30 us: reorders
    p.at += delay;
    if (coin(rng) < 0.01) wire.emplace(p.at + 5000, p);  // a duplicate
    wire.emplace(p.at, std::move(p));
  };
  std::vector<std::string> got;
  std::vector<uint32_t> tokens;
  int probes = 0;
  int64_t now = 0;
  for (int step = 0; step < 2000000 && tokens.size() < sent.size(); ++step) {
    Outgoing o;
    while (tx.NextPacket(now, &o)) {
      InTransit p{now, false, {}, std::string(reinterpret_cast<const char*>(o.data), o.len)};
      p.h.type = PacketType::kData;
      p.h.seq = o.seq;
      p.h.msg_id = o.msg_id;
      p.h.msg_len = o.msg_len;
      p.h.msg_offset = o.msg_offset;
      p.h.ts = static_cast<uint32_t>(now);
      put(std::move(p));
    }
    if (tx.ProbeDue(now)) {
      InTransit probe{now, false, {}, ""};
      probe.h.type = PacketType::kAck;  // an ACK with ACK_NOW: asks for one back
      probe.h.flags = kFlagAckNow;
      probe.h.ts = static_cast<uint32_t>(now);
      put(std::move(probe));
      ++probes;
    }
    int64_t next = std::min(tx.NextTimerNs(), wire.empty() ? INT64_MAX : wire.begin()->first);
    ASSERT_NE(next, INT64_MAX) << "stuck with " << tokens.size() << " of " << sent.size() << ": "
                               << tx.DebugString() << " rx ack=" << rx.cumulative_ack()
                               << " credit=" << rx.credit();
    now = std::max(now, next);
    tx.OnTimer(now);
    ASSERT_FALSE(tx.dead());
    while (!wire.empty() && wire.begin()->first <= now) {
      InTransit p = std::move(wire.begin()->second);
      wire.erase(wire.begin());
      if (p.is_ack) {
        ASSERT_TRUE(tx.OnAck(p.h, now));
        continue;
      }
      if (p.h.type == PacketType::kData) {
        Receiver::Verdict v =
            rx.OnData(p.h, reinterpret_cast<const uint8_t*>(p.bytes.data()), p.bytes.size());
        ASSERT_NE(v, Receiver::Verdict::kProtocolError) << rx.error();
        ASSERT_NE(v, Receiver::Verdict::kOverCredit);
      }
      // The app reads in spurts: a slow reader holds credit for a while (and reads when asked
      // for credit, as the engine's answer to a probe would find it having read since).
      if (coin(rng) < 0.3 || p.h.type == PacketType::kAck) {
        while (rx.HasMessage()) got.push_back(rx.PopMessage());
      }
      InTransit a{now, true, {}, ""};
      a.h.type = PacketType::kAck;
      a.h.ack = rx.cumulative_ack();
      a.h.credit = rx.credit();
      a.h.sack_count = static_cast<uint8_t>(rx.SackBlocks(a.h.sack));
      a.h.ts_echo = p.h.ts;
      put(std::move(a));
    }
    uint32_t token;
    while (tx.PopCompleted(&token)) tokens.push_back(token);
  }
  while (rx.HasMessage()) got.push_back(rx.PopMessage());
  ASSERT_EQ(tokens.size(), sent.size());
  for (uint32_t i = 0; i < tokens.size(); ++i) EXPECT_EQ(tokens[i], i);
  EXPECT_EQ(got, sent);
  EXPECT_EQ(rx.over_credit(), 0u);
  if (loss > 0) {
    EXPECT_GT(tx.retransmits(), 0u);
  }
  printf("loss %.2f: retransmits=%lu fast=%lu timeouts=%lu probes=%d srtt_ns=%ld cwnd=%.2f\n", loss,
         tx.retransmits(), tx.fast_retransmits(), tx.timeouts(), probes, tx.srtt_ns(),
         tx.swift().cwnd());
}

TEST(SenderTest, LosslessChannel) { RunLossyChannel(0, 1); }
TEST(SenderTest, OnePercentLossBothWays) { RunLossyChannel(0.01, 2); }
TEST(SenderTest, FivePercentLossBothWays) { RunLossyChannel(0.05, 3); }
// Credit of 48 KiB for messages of up to 20 KB: the sender waits for room, and probes for it when
// the update is lost.
TEST(SenderTest, FivePercentLossAndLittleCredit) { RunLossyChannel(0.05, 4, 48 << 10); }

TEST(SenderTest, ACreditBlockedSenderProbesOncePerTimeout) {
  SenderOptions opt;
  Sender s(1, 100, opt);
  s.Queue(std::string(200, 'w'), 1);  // larger than the credit: blocked, nothing in flight
  Outgoing o;
  EXPECT_FALSE(s.NextPacket(0, &o));
  EXPECT_FALSE(s.ProbeDue(0));  // arms
  EXPECT_EQ(s.NextTimerNs(), opt.initial_rto_ns);
  EXPECT_FALSE(s.ProbeDue(opt.initial_rto_ns - 1));
  EXPECT_TRUE(s.ProbeDue(opt.initial_rto_ns));
  EXPECT_FALSE(s.ProbeDue(opt.initial_rto_ns + 1));
  // Unanswered: the next one waits twice as long.
  EXPECT_FALSE(s.ProbeDue(3 * opt.initial_rto_ns - 1));
  EXPECT_TRUE(s.ProbeDue(3 * opt.initial_rto_ns));
  PonyHeader room;
  room.type = PacketType::kAck;
  room.ack = 1;
  room.credit = 1000;
  EXPECT_TRUE(s.OnAck(room, 3 * opt.initial_rto_ns));
  EXPECT_TRUE(s.NextPacket(3 * opt.initial_rto_ns, &o));
  EXPECT_FALSE(s.ProbeDue(4 * opt.initial_rto_ns));  // not blocked any more
}

// Everything sent is SACKed and held by a receiver whose app has not read it: the sender probes.
// A receiver that answers keeps the connection (its app may take its time); one that stopped
// answering is given up after max_timeouts probes, with the waits between them backing off.
TEST(SenderTest, AHeldBlockedSenderGivesUpOnlyOnAPeerThatStoppedAnswering) {
  SenderOptions opt;
  opt.max_timeouts = 5;
  Sender s(1, 1 << 20, opt);
  s.Queue("held", 1);
  Outgoing o;
  ASSERT_TRUE(s.NextPacket(0, &o));
  PonyHeader held;
  held.type = PacketType::kAck;
  held.ack = 1;  // nothing handed to the app
  held.credit = 1 << 20;
  held.sack_count = 1;
  held.sack[0] = {1, 2};
  ASSERT_TRUE(s.OnAck(held, 1000));
  int64_t now = 1000;
  auto probes_until_dead = [&](bool answer) {
    int probes = 0;
    int64_t last_gap = 0, last_probe = now;
    for (int i = 0; i < 1000 && !s.dead(); ++i) {
      EXPECT_FALSE(s.ProbeDue(now));
      now = std::max(now, s.NextTimerNs());
      if (s.ProbeDue(now)) {
        ++probes;
        EXPECT_GE(now - last_probe, last_gap) << "probe " << probes;  // the waits never shrink
        last_gap = now - last_probe;
        last_probe = now;
        if (answer) EXPECT_TRUE(s.OnAck(held, now));
      }
      if (answer && probes == 50) return probes;
    }
    return probes;
  };
  EXPECT_EQ(probes_until_dead(true), 50);
  EXPECT_FALSE(s.dead());
  EXPECT_EQ(probes_until_dead(false), opt.max_timeouts);
  EXPECT_TRUE(s.dead());
  EXPECT_FALSE(s.NextPacket(now, &o));
}

TEST(SenderTest, NeverRunsPastTheReceiversWindowsBehindAHole) {
  // The first packet is never acknowledged; everything after it is SACKed at once. SACKed packets
  // leave the congestion window, so only the receiver's windows hold the sender back: no more than
  // kMessageWindow messages (one packet each here) past the oldest unacknowledged one.
  SenderOptions opt;
  opt.swift.max_cwnd = 4096;
  opt.swift.init_cwnd = 4096;
  Sender s(1, 1u << 30, opt);
  for (int i = 0; i < 5000; ++i) s.Queue("x", i);
  int64_t now = 1000;
  Outgoing out;
  uint32_t highest = 0;
  for (int round = 0; round < 200; ++round) {
    while (s.NextPacket(now, &out)) highest = std::max(highest, out.seq);
    if (highest < 2) continue;
    PonyHeader ack;
    ack.type = PacketType::kAck;
    ack.ack = 1;
    ack.credit = 1u << 30;
    ack.sack_count = 1;
    ack.sack[0] = SackBlock{2, highest + 1};
    ASSERT_TRUE(s.OnAck(ack, now += 1000));
  }
  EXPECT_LE(highest - 1, kMessageWindow);
  EXPECT_GE(highest - 1, kMessageWindow - 1);  // it did go as far as it may
}

}  // namespace
}  // namespace snapd::pony
