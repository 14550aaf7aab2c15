#include "engines/pony/receiver.h"

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace snapd::pony {
namespace {

struct Segment {
  PonyHeader h;
  std::string bytes;
};

// Cuts `messages` (ids from 1) into segments of at most `mss` bytes, sequence numbers from `seq`.
std::vector<Segment> Cut(const std::vector<std::string>& messages, uint32_t mss, uint32_t seq) {
  std::vector<Segment> out;
  for (size_t i = 0; i < messages.size(); ++i) {
    const std::string& m = messages[i];
    for (uint32_t off = 0; off < m.size(); off += mss) {
      Segment s;
      s.h.type = PacketType::kData;
      s.h.seq = seq++;
      s.h.msg_id = static_cast<uint32_t>(i + 1);
      s.h.msg_len = static_cast<uint32_t>(m.size());
      s.h.msg_offset = off;
      s.bytes = m.substr(off, mss);
      out.push_back(s);
    }
  }
  return out;
}

Receiver::Verdict Give(Receiver& r, const Segment& s) {
  return r.OnData(s.h, reinterpret_cast<const uint8_t*>(s.bytes.data()),
                  static_cast<uint32_t>(s.bytes.size()));
}

std::vector<std::string> Drain(Receiver& r) {
  std::vector<std::string> got;
  while (r.HasMessage()) got.push_back(r.PopMessage());
  return got;
}

TEST(ReceiverTest, ReassemblesOutOfOrderAndDeliversInOrderWithSacks) {
  Receiver r(100, 1 << 20, 1 << 20);
  std::vector<std::string> msgs = {std::string(2500, 'a'), "b", std::string(1000, 'c')};
  std::vector<Segment> segs = Cut(msgs, 1000, 100);  // seq 100..104: a a a b c
  ASSERT_EQ(segs.size(), 5u);
  EXPECT_EQ(Give(r, segs[4]), Receiver::Verdict::kAccepted);  // c, whole, but after a and b
  EXPECT_EQ(Give(r, segs[1]), Receiver::Verdict::kAccepted);  // a's middle
  EXPECT_FALSE(r.HasMessage());
  EXPECT_EQ(r.cumulative_ack(), 100u);
  SackBlock blocks[kMaxSackBlocks];
  ASSERT_EQ(r.SackBlocks(blocks), 2);
  EXPECT_EQ(blocks[0].start, 104u);  // the highest first
  EXPECT_EQ(blocks[0].end, 105u);
  EXPECT_EQ(blocks[1].start, 101u);
  EXPECT_EQ(blocks[1].end, 102u);
  EXPECT_EQ(Give(r, segs[0]), Receiver::Verdict::kAccepted);
  EXPECT_EQ(r.cumulative_ack(), 102u);
  EXPECT_EQ(Give(r, segs[3]), Receiver::Verdict::kAccepted);  // b: whole, but a is not
  EXPECT_FALSE(r.HasMessage());
  EXPECT_EQ(Give(r, segs[2]), Receiver::Verdict::kAccepted);  // a's last: everything goes
  EXPECT_EQ(r.cumulative_ack(), 105u);
  EXPECT_EQ(r.SackBlocks(blocks), 0);
  EXPECT_EQ(Drain(r), msgs);
}

TEST(ReceiverTest, EachMessageSaysWhereItEndsAndHeldDataIsSacked) {
  Receiver r(100, 1 << 20, 1 << 20);
  // Message 1: 3 segments (100..102), 2: one (103), 3: two (104, 105).
  std::vector<Segment> segs = Cut({std::string(2500, 'a'), "b", std::string(1500, 'c')}, 1000, 100);
  ASSERT_EQ(segs.size(), 6u);
  // The last segment of message 1 first: its end is known before the message is whole.
  for (int i : {2, 0, 1, 3, 5}) ASSERT_EQ(Give(r, segs[i]), Receiver::Verdict::kAccepted) << i;
  EXPECT_EQ(r.cumulative_ack(), 104u);
  // Held at 100 (nothing handed to the app yet): [100, 104) and [105, 106) are SACKed, the
  // highest first.
  SackBlock blocks[kMaxSackBlocks];
  ASSERT_EQ(r.SackBlocks(blocks, 100), 2);
  EXPECT_EQ(blocks[0].start, 105u);
  EXPECT_EQ(blocks[0].end, 106u);
  EXPECT_EQ(blocks[1].start, 100u);
  EXPECT_EQ(blocks[1].end, 104u);
  EXPECT_EQ(r.SackBlocks(blocks), 1);  // held at the cumulative ack: no block for it
  uint32_t end = 0;
  EXPECT_EQ(r.PopMessage(&end).size(), 2500u);
  EXPECT_EQ(end, 103u);
  EXPECT_EQ(r.PopMessage(&end), "b");
  EXPECT_EQ(end, 104u);
  EXPECT_FALSE(r.HasMessage());
  ASSERT_EQ(Give(r, segs[4]), Receiver::Verdict::kAccepted);
  // An upgrade carries the ends of what is ready.
  engines::PonyReceiverState saved;
  r.Save(&saved);
  Receiver copy(0, 1 << 20, 1 << 20);
  ASSERT_TRUE(copy.Restore(saved));
  EXPECT_EQ(copy.PopMessage(&end).size(), 1500u);
  EXPECT_EQ(end, 106u);
}

TEST(ReceiverTest, RetransmissionsAreDuplicatesAndChangeNothing) {
  Receiver r(1, 1 << 20, 1 << 20);
  std::vector<Segment> segs = Cut({"hello", "world"}, 1000, 1);
  EXPECT_EQ(Give(r, segs[1]), Receiver::Verdict::kAccepted);
  EXPECT_EQ(Give(r, segs[1]), Receiver::Verdict::kDuplicate);  // within the window
  EXPECT_EQ(Give(r, segs[0]), Receiver::Verdict::kAccepted);
  EXPECT_EQ(Give(r, segs[0]), Receiver::Verdict::kDuplicate);  // below the cumulative ack
  EXPECT_EQ(r.duplicates(), 2u);
  EXPECT_EQ(Drain(r), (std::vector<std::string>{"hello", "world"}));
}

TEST(ReceiverTest, ASenderPastItsCreditIsDroppedNotBuffered) {
  Receiver r(1, 1000, 1 << 20);
  std::vector<Segment> segs = Cut({std::string(800, 'x'), std::string(300, 'y')}, 1000, 1);
  EXPECT_EQ(Give(r, segs[0]), Receiver::Verdict::kAccepted);
  EXPECT_EQ(r.credit(), 200u);
  EXPECT_EQ(Give(r, segs[1]), Receiver::Verdict::kOverCredit);
  EXPECT_EQ(r.over_credit(), 1u);
  EXPECT_EQ(r.cumulative_ack(), 2u);  // not acknowledged: the sender will send it again
  ASSERT_TRUE(r.HasMessage());
  r.PopMessage();  // the app reads: the room comes back
  EXPECT_EQ(r.credit(), 1000u);
  EXPECT_EQ(Give(r, segs[1]), Receiver::Verdict::kAccepted);
  EXPECT_EQ(Drain(r), (std::vector<std::string>{std::string(300, 'y')}));
}

TEST(ReceiverTest, WhatContradictsTheConnectionResetsIt) {
  auto fresh = [] { return Receiver(1, 1 << 20, 4096); };
  std::vector<Segment> segs = Cut({std::string(2000, 'a')}, 1000, 1);
  {
    Receiver r = fresh();
    Segment other = segs[1];
    other.h.msg_len = 1999;  // the same message, another length
    other.bytes.resize(999);
    EXPECT_EQ(Give(r, segs[0]), Receiver::Verdict::kAccepted);
    EXPECT_EQ(Give(r, other), Receiver::Verdict::kProtocolError);
    EXPECT_STRNE(r.error(), "");
    EXPECT_EQ(Give(r, segs[1]), Receiver::Verdict::kProtocolError);  // stays broken
  }
  {
    Receiver r = fresh();
    Segment far = segs[0];
    far.h.seq = 1 + Receiver::kSeqWindow;
    EXPECT_EQ(Give(r, far), Receiver::Verdict::kProtocolError);
  }
  {
    Receiver r = fresh();
    Segment far = segs[0];
    far.h.msg_id = 1 + Receiver::kMessageWindow;
    EXPECT_EQ(Give(r, far), Receiver::Verdict::kProtocolError);
  }
  {
    Receiver r = fresh();
    Segment big = segs[0];
    big.h.msg_len = 5000;  // past this connection's maximum
    EXPECT_EQ(Give(r, big), Receiver::Verdict::kProtocolError);
  }
  {
    Receiver r = fresh();
    Segment overlap = segs[1];
    overlap.h.msg_offset = 500;  // overlaps segment 0's bytes
    overlap.bytes.assign(1000, 'o');
    EXPECT_EQ(Give(r, segs[0]), Receiver::Verdict::kAccepted);
    EXPECT_EQ(Give(r, overlap), Receiver::Verdict::kAccepted);  // 2000 bytes in: whole
    Segment again = segs[1];
    again.h.seq = 3;
    EXPECT_EQ(Give(r, again), Receiver::Verdict::kProtocolError);  // more for a delivered one
  }
}

TEST(ReceiverTest, SequenceNumbersWrap) {
  Receiver r(0xfffffffeu, 1 << 20, 1 << 20);
  std::vector<std::string> msgs = {"one", "two", "three", "four"};
  std::vector<Segment> segs = Cut(msgs, 1000, 0xfffffffeu);
  for (int i = 3; i >= 0; --i) EXPECT_EQ(Give(r, segs[i]), Receiver::Verdict::kAccepted);
  EXPECT_EQ(r.cumulative_ack(), 2u);
  EXPECT_EQ(Drain(r), msgs);
}

TEST(ReceiverTest, ShuffledDuplicatedSegmentsOfRandomMessagesArriveIntactAndInOrder) {
  std::mt19937 rng(42);
  std::vector<std::string> msgs;
  for (int i = 0; i < 200; ++i) {
    std::string m(1 + rng() % 5000, '\0');
    for (char& c : m) c = static_cast<char>(rng());
    msgs.push_back(m);
  }
  std::vector<Segment> segs = Cut(msgs, 1400, 12345);
  ASSERT_LT(segs.size(), Receiver::kSeqWindow);
  // Every segment once or twice, in a random order.
  std::vector<Segment> wire = segs;
  for (const Segment& s : segs) {
    if (rng() % 4 == 0) wire.push_back(s);
  }
  std::shuffle(wire.begin(), wire.end(), rng);
  Receiver r(12345, 64 << 20, 1 << 20);
  std::vector<std::string> got;
  for (const Segment& s : wire) {
    Receiver::Verdict v = Give(r, s);
    ASSERT_TRUE(v == Receiver::Verdict::kAccepted || v == Receiver::Verdict::kDuplicate);
    SackBlock blocks[kMaxSackBlocks];
    int n = r.SackBlocks(blocks);
    for (int i = 0; i < n; ++i) {
      EXPECT_TRUE(SeqBefore(r.cumulative_ack(), blocks[i].start));
      EXPECT_TRUE(SeqBefore(blocks[i].start, blocks[i].end));
      if (i > 0) {
        EXPECT_TRUE(SeqBefore(blocks[i].end, blocks[i - 1].start));
      }
    }
    for (std::string& m : Drain(r)) got.push_back(std::move(m));
  }
  EXPECT_EQ(got, msgs);
  EXPECT_EQ(r.cumulative_ack(), 12345u + segs.size());
  EXPECT_EQ(r.credit(), 64u << 20);
}

}  // namespace
}  // namespace snapd::pony
