#include "engines/pony/journal.h"

#include <cstring>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace snapd::pony {
namespace {

constexpr Journal::Shape kShape = {4, 256, 0x0a000001};

struct Memory {
  std::vector<uint64_t> words = std::vector<uint64_t>(Journal::BytesFor(kShape) / 8 + 1);
  void* base() { return words.data(); }
};

void Send(Journal& j, uint32_t slot, JournalConn* rec, const std::string& m, uint32_t token,
          uint32_t frame = 40) {
  for (uint32_t off = 0; off < m.size(); off += frame) {
    const uint32_t len = std::min<uint32_t>(frame, m.size() - off);
    ASSERT_TRUE(j.AddSendFrame(slot, rec, off, reinterpret_cast<const uint8_t*>(m.data()) + off,
                               len, m.size(), token));
  }
  j.FinishMessage(slot, rec);
}

TEST(JournalTest, MessagesGoRoundTheRingAndComeBackOnRecovery) {
  Memory mem;
  Journal j = Journal::Format(mem.base(), kShape);
  JournalConn rec;
  rec.id = 0x1002;
  rec.app = 3;
  rec.peer_ip = 0x0a000002;
  j.Put(1, rec);
  EXPECT_EQ(j.Get(0).id, 0u);
  EXPECT_EQ(j.Get(1).id, 0x1002u);
  // 256 bytes of ring: three 70-byte messages fill it (80 bytes each with their heads), the
  // first two are done, then two more go round.
  std::vector<std::string> m;
  for (int i = 0; i < 6; ++i) m.push_back(std::string(70, static_cast<char>('a' + i)));
  Send(j, 1, &rec, m[0], 10);
  Send(j, 1, &rec, m[1], 11);
  Send(j, 1, &rec, m[2], 12);
  EXPECT_FALSE(
      j.AddSendFrame(1, &rec, 0, reinterpret_cast<const uint8_t*>(m[3].data()), 10, 70, 13))
      << "no room left";
  EXPECT_EQ(j.FrontLength(1, rec), 70u);
  j.DropFront(1, &rec, 2);
  EXPECT_EQ(rec.tx_first_id, 3u);
  Send(j, 1, &rec, m[3], 13);
  // Half of m[4] assembled when the process dies.
  ASSERT_TRUE(
      j.AddSendFrame(1, &rec, 0, reinterpret_cast<const uint8_t*>(m[4].data()), 35, 70, 14));

  auto again = Journal::Recover(mem.base(), Journal::BytesFor(kShape), kShape);
  ASSERT_TRUE(again.ok()) << again.status();
  const JournalConn got = again->Get(1);
  EXPECT_EQ(got.id, 0x1002u);
  EXPECT_EQ(got.app, 3);
  std::vector<JournalMessage> msgs;
  std::string assembled, why;
  ASSERT_TRUE(again->Read(1, got, 1000, &msgs, &assembled, &why)) << why;
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_EQ(msgs[0].id, 3u);
  EXPECT_EQ(msgs[0].token, 12u);
  EXPECT_EQ(msgs[0].bytes, m[2]);
  EXPECT_EQ(msgs[1].id, 4u);
  EXPECT_EQ(msgs[1].token, 13u);
  EXPECT_EQ(msgs[1].bytes, m[3]);
  EXPECT_EQ(got.asm_len, 70u);
  EXPECT_EQ(got.asm_token, 14u);
  EXPECT_EQ(assembled, m[4].substr(0, 35));

  again->Free(1);
  EXPECT_EQ(again->Get(1).id, 0u);
}

TEST(JournalTest, AJournalOfAnotherShapeOrEngineIsRefused) {
  Memory mem;
  const size_t bytes = Journal::BytesFor(kShape);
  EXPECT_FALSE(Journal::Recover(mem.base(), bytes, kShape).ok()) << "never formatted";
  Journal::Format(mem.base(), kShape);
  EXPECT_TRUE(Journal::Recover(mem.base(), bytes, kShape).ok());
  Journal::Shape other = kShape;
  other.owner = 0x0a000009;
  auto r = Journal::Recover(mem.base(), bytes, other);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("another engine"), std::string::npos) << r.status();
  other = kShape;
  other.ring_bytes = 128;
  EXPECT_FALSE(Journal::Recover(mem.base(), bytes, other).ok());
  EXPECT_FALSE(Journal::Recover(mem.base(), bytes - 8, kShape).ok());
}

// A journal is memory another process wrote: a record that does not hold together with its ring
// is refused, and says why.
TEST(JournalTest, ARecordThatLiesAboutItsRingIsRefused) {
  Memory mem;
  Journal j = Journal::Format(mem.base(), kShape);
  JournalConn rec;
  rec.id = 1;
  j.Put(0, rec);
  Send(j, 0, &rec, std::string(50, 'x'), 1);
  std::vector<JournalMessage> msgs;
  std::string assembled, why;
  ASSERT_TRUE(j.Read(0, rec, 1000, &msgs, &assembled, &why)) << why;
  ASSERT_EQ(msgs.size(), 1u);

  struct Lie {
    const char* what;
    void (*apply)(JournalConn&);
  };
  const Lie lies[] = {
      {"head before tail", [](JournalConn& r) { r.tx_tail = r.tx_head + 8; }},
      {"more than a ring", [](JournalConn& r) { r.tx_head = r.tx_tail + 4096; }},
      {"unaligned head", [](JournalConn& r) { r.tx_head += 3; }},
      {"positions near 2^64",
       [](JournalConn& r) {
         r.tx_tail = ~uint64_t{7} - 64;
         r.tx_head = r.tx_tail + 64;
       }},
      {"more messages than bytes", [](JournalConn& r) { r.tx_count = 9; }},
      {"a message too long for the engine", [](JournalConn& r) {}},
      {"assembled past the message",
       [](JournalConn& r) {
         r.asm_len = 10;
         r.asm_done = 11;
       }},
      {"assembled bytes of no message", [](JournalConn& r) { r.asm_done = 4; }},
  };
  for (const Lie& lie : lies) {
    JournalConn bad = rec;
    lie.apply(bad);
    const uint32_t max_message =
        std::string(lie.what).find("too long") != std::string::npos ? 10 : 1000;
    why.clear();
    EXPECT_FALSE(j.Read(0, bad, max_message, &msgs, &assembled, &why)) << lie.what;
    EXPECT_FALSE(why.empty()) << lie.what;
  }
}

}  // namespace
}  // namespace snapd::pony
