#include "ipc/ring.h"

#include <fcntl.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace snapd::memif {
namespace {

constexpr uint8_t kLog2 = 4;  // 16 slots: small enough to wrap often
constexpr uint32_t kSlots = 1u << kLog2;
constexpr uint32_t kBuf = 256;

// Two rings (c2s, s2c) in region 0 and their buffers in region 1, in ordinary memory, with a client
// and a server end on each ring, as two processes would have them.
class RingPair {
 public:
  explicit RingPair(uint16_t start_cursor = 0, uint8_t log2 = kLog2) {
    const uint64_t ring_bytes = RingBytes(log2);
    const uint32_t slots = 1u << log2;
    ring_mem_.reset(static_cast<uint8_t*>(aligned_alloc(64, 2 * ring_bytes)));
    memset(ring_mem_.get(), 0, 2 * ring_bytes);
    buf_mem_.assign(2 * slots * kBuf, 0);
    views_ = {{ring_mem_.get(), 2 * ring_bytes}, {buf_mem_.data(), buf_mem_.size()}};
    c2s_ = reinterpret_cast<RingHeader*>(ring_mem_.get());
    s2c_ = reinterpret_cast<RingHeader*>(ring_mem_.get() + ring_bytes);
    for (RingHeader* r : {c2s_, s2c_}) {
      r->cookie = kCookie;
      r->head = start_cursor;
      r->tail = start_cursor;
    }
    c2s_efd_ = ::eventfd(0, EFD_NONBLOCK);
    s2c_efd_ = ::eventfd(0, EFD_NONBLOCK);
    ClientSlots c2s_slots{1, 0, kBuf};
    ClientSlots s2c_slots{1, slots * kBuf, kBuf};
    client_tx = std::make_unique<TxRing>(Side::kClient, c2s_, log2, views_, c2s_efd_, start_cursor,
                                         c2s_slots);
    server_rx = std::make_unique<RxRing>(Side::kServer, c2s_, log2, views_, c2s_efd_, start_cursor,
                                         ClientSlots{});
    server_tx = std::make_unique<TxRing>(Side::kServer, s2c_, log2, views_, s2c_efd_, start_cursor,
                                         ClientSlots{});
    client_rx = std::make_unique<RxRing>(Side::kClient, s2c_, log2, views_, s2c_efd_, start_cursor,
                                         s2c_slots);
    client_rx->Start();
  }
  ~RingPair() {
    ::close(c2s_efd_);
    ::close(s2c_efd_);
  }

  RingHeader* c2s() { return c2s_; }
  RingHeader* s2c() { return s2c_; }
  int c2s_eventfd() const { return c2s_efd_; }
  int s2c_eventfd() const { return s2c_efd_; }

  std::unique_ptr<TxRing> client_tx;
  std::unique_ptr<RxRing> server_rx;
  std::unique_ptr<TxRing> server_tx;
  std::unique_ptr<RxRing> client_rx;

 private:
  struct Free {
    void operator()(uint8_t* p) const { free(p); }
  };
  std::unique_ptr<uint8_t, Free> ring_mem_;
  std::vector<uint8_t> buf_mem_;
  std::vector<RegionView> views_;
  RingHeader* c2s_;
  RingHeader* s2c_;
  int c2s_efd_;
  int s2c_efd_;
};

std::string Payload(int i, size_t len) {
  std::string s(len, '\0');
  for (size_t k = 0; k < len; ++k) s[k] = static_cast<char>('a' + (i + k) % 26);
  return s;
}

Frame AsFrame(std::string& s) {
  return Frame{reinterpret_cast<uint8_t*>(s.data()), static_cast<uint32_t>(s.size())};
}
std::string AsString(const Frame& f) { return std::string(reinterpret_cast<char*>(f.data), f.len); }

// Sends `frames` from client to server, echoes them back, and checks what the client gets.
void RoundTrip(RingPair& p, std::vector<std::string> frames) {
  std::vector<Frame> out;
  for (auto& s : frames) out.push_back(AsFrame(s));
  ASSERT_EQ(p.client_tx->Transmit(out.data(), out.size()), out.size());
  Frame got[64];
  uint16_t n = p.server_rx->Receive(got, 64);
  ASSERT_EQ(n, frames.size());
  for (size_t i = 0; i < n; ++i) EXPECT_EQ(AsString(got[i]), frames[i]) << "frame " << i;
  ASSERT_EQ(p.server_tx->Transmit(got, n), n);
  p.server_rx->Release();
  Frame back[64];
  ASSERT_EQ(p.client_rx->Receive(back, 64), n);
  for (size_t i = 0; i < n; ++i) EXPECT_EQ(AsString(back[i]), frames[i]) << "frame " << i;
  p.client_rx->Release();
}

TEST(RingTest, FramesRoundTripAcrossCursorWrapAround) {
  // Start just short of the 16-bit wrap so the cursors cross 65535 -> 0 during the test.
  RingPair p(/*start_cursor=*/65530);
  for (int round = 0; round < 10; ++round) {
    RoundTrip(p, {Payload(round, 60), Payload(round + 1, 64), Payload(round + 2, 1)});
  }
  EXPECT_EQ(p.server_rx->stats().frames.Get(), 30u);
  EXPECT_EQ(p.client_rx->stats().frames.Get(), 30u);
  EXPECT_EQ(p.server_rx->error(), nullptr);
  EXPECT_EQ(p.client_tx->error(), nullptr);
  EXPECT_LT(p.c2s()->head, 100);  // wrapped
}

TEST(RingTest, ChainedFramesAreSplitAndReassembled) {
  RingPair p;
  // 3 buffers, exactly 1 buffer, and 2 buffers plus one byte.
  RoundTrip(p, {Payload(1, 3 * kBuf - 10), Payload(2, kBuf), Payload(3, 2 * kBuf + 1)});
  EXPECT_EQ(p.server_rx->stats().chained.Get(), 2u);
  EXPECT_EQ(p.client_rx->stats().chained.Get(), 2u);
}

TEST(RingTest, FullRingTakesWhatFitsAndNeverSplitsAFrame) {
  RingPair p;
  std::vector<std::string> frames;
  for (int i = 0; i < 20; ++i) frames.push_back(Payload(i, 100));
  std::vector<Frame> out;
  for (auto& s : frames) out.push_back(AsFrame(s));
  EXPECT_EQ(p.client_tx->Transmit(out.data(), out.size()), kSlots);
  EXPECT_EQ(p.client_tx->FreeSlots(), 0);
  EXPECT_EQ(p.client_tx->Transmit(out.data(), 1), 0);
  Frame got[32];
  ASSERT_EQ(p.server_rx->Receive(got, 32), kSlots);
  p.server_rx->Release();
  // Now two free... no: all 16 free. A 3-buffer frame after 14 single ones does not fit whole.
  std::string big = Payload(9, 3 * kBuf);
  std::vector<Frame> mix(out.begin(), out.begin() + 14);
  mix.push_back(AsFrame(big));
  EXPECT_EQ(p.client_tx->WouldTake(mix.data(), mix.size()), 14);
  EXPECT_EQ(p.client_tx->Transmit(mix.data(), mix.size()), 14);
  EXPECT_EQ(p.client_tx->FreeSlots(), 2);
}

// WouldTake says what Transmit takes, on both ends, chained frames included: what an engine that
// journals a burst before it goes relies on (it goes whole or not at all).
TEST(RingTest, WouldTakeIsWhatTransmitTakes) {
  RingPair p;
  // The client's ring: 16 slots; frames of 1, 3, 1, 2, 4, 1, 3, 2 buffers (17 slots): 7 fit.
  std::vector<std::string> frames = {
      Payload(1, 10),       Payload(2, 3 * kBuf), Payload(3, kBuf),         Payload(4, kBuf + 1),
      Payload(5, 4 * kBuf), Payload(6, 1),        Payload(7, 2 * kBuf + 5), Payload(8, 2 * kBuf)};
  std::vector<Frame> out;
  for (auto& s : frames) out.push_back(AsFrame(s));
  const uint16_t would = p.client_tx->WouldTake(out.data(), out.size());
  EXPECT_EQ(would, 7);
  EXPECT_EQ(p.client_tx->Transmit(out.data(), out.size()), would);
  // The server's end: the client offered buffers for every slot; the same frames back.
  Frame got[32];
  const uint16_t n = p.server_rx->Receive(got, 32);
  ASSERT_EQ(n, 7);
  EXPECT_EQ(p.server_tx->WouldTake(got, n), n);
  EXPECT_EQ(p.server_tx->Transmit(got, n), n);
  p.server_rx->Release();
  // 15 of its 16 slots are full: a frame of one buffer fits, one of two does not.
  EXPECT_EQ(p.server_tx->WouldTake(&got[0], 1), 1);
  EXPECT_EQ(p.server_tx->WouldTake(&got[3], 1), 0);
  EXPECT_EQ(p.server_tx->Transmit(&got[3], 1), 0);
}

TEST(RingTest, InterruptWrittenOnlyWhenPeerAsks) {
  RingPair p;
  std::string s = Payload(0, 64);
  Frame f = AsFrame(s);
  p.server_rx->SetInterruptMode(false);
  ASSERT_EQ(p.client_tx->Transmit(&f, 1), 1);
  EXPECT_EQ(p.client_tx->stats().interrupts.Get(), 0u);
  uint64_t v;
  EXPECT_EQ(::read(p.c2s_eventfd(), &v, sizeof(v)), -1);  // nothing written
  p.server_rx->SetInterruptMode(true);
  ASSERT_EQ(p.client_tx->Transmit(&f, 1), 1);
  EXPECT_EQ(p.client_tx->stats().interrupts.Get(), 1u);
  EXPECT_EQ(::read(p.c2s_eventfd(), &v, sizeof(v)), static_cast<ssize_t>(sizeof(v)));
  EXPECT_TRUE(p.server_rx->HasPending());
}

// A descriptor the (untrusted) client wrote into the c2s ring, and what the server must make of it.
struct DescriptorCase {
  const char* name;
  Descriptor desc;
  bool accepted;
};

TEST(RingTest, ServerValidatesEveryDescriptor) {
  const DescriptorCase cases[] = {
      {"good", {0, 1, 64, 0, 0}, true},
      {"zero length", {0, 1, 0, 128, 0}, true},
      {"last byte of region", {0, 1, 1, 2 * kSlots * kBuf - 1, 0}, true},
      {"unknown region", {0, 2, 64, 0, 0}, false},
      {"huge region index", {0, 0xffff, 64, 0, 0}, false},
      {"offset past end", {0, 1, 1, 2 * kSlots * kBuf, 0}, false},
      {"length past end", {0, 1, 2 * kSlots * kBuf, 1, 0}, false},
      {"offset+length wraps 32 bits", {0, 1, 0xffffffff, 0x10, 0}, false},
      {"huge offset", {0, 1, 64, 0xfffffff0, 0}, false},
  };
  for (const DescriptorCase& c : cases) {
    SCOPED_TRACE(c.name);
    RingPair p;
    // Write the descriptor as a client would, followed by a good frame.
    p.c2s()->desc[0] = c.desc;
    p.c2s()->desc[1] = Descriptor{0, 1, 10, 512, 0};
    __atomic_store_n(&p.c2s()->head, 2, __ATOMIC_RELEASE);
    Frame got[4];
    uint16_t n = p.server_rx->Receive(got, 4);
    EXPECT_EQ(p.server_rx->stats().bad_descriptors.Get(), c.accepted ? 0u : 1u);
    if (c.accepted) {
      ASSERT_EQ(n, 2);
      EXPECT_EQ(got[1].len, 10u);
      EXPECT_EQ(p.server_rx->error(), nullptr);
      p.server_rx->Release();
      EXPECT_EQ(p.c2s()->tail, 2);  // both slots are given back
    } else {
      // An app that points outside its own memory is broken: the ring stops, nothing is read.
      EXPECT_EQ(n, 0);
      EXPECT_STREQ(p.server_rx->error(), "c2s descriptor outside the app's regions");
    }
  }
}

TEST(RingTest, ServerStopsOnHeadMovedPastRingSize) {
  RingPair p;
  __atomic_store_n(&p.c2s()->head, kSlots + 1, __ATOMIC_RELEASE);
  Frame got[4];
  EXPECT_EQ(p.server_rx->Receive(got, 4), 0);
  ASSERT_NE(p.server_rx->error(), nullptr);
  EXPECT_STREQ(p.server_rx->error(), "c2s ring head moved past the ring size");
  // A stopped ring stays stopped.
  __atomic_store_n(&p.c2s()->head, 1, __ATOMIC_RELEASE);
  EXPECT_EQ(p.server_rx->Receive(got, 4), 0);
}

TEST(RingTest, HeadOfExactlyRingSizeIsLegal) {
  RingPair p;
  for (uint32_t i = 0; i < kSlots; ++i) p.c2s()->desc[i] = Descriptor{0, 1, 8, i * kBuf, 0};
  __atomic_store_n(&p.c2s()->head, kSlots, __ATOMIC_RELEASE);
  Frame got[32];
  EXPECT_EQ(p.server_rx->Receive(got, 32), kSlots);
  EXPECT_EQ(p.server_rx->error(), nullptr);
}

TEST(RingTest, ChainThatFillsTheRingIsAProtocolError) {
  RingPair p;
  for (uint32_t i = 0; i < kSlots; ++i) {
    p.c2s()->desc[i] = Descriptor{kDescFlagNext, 1, 8, i * kBuf, 0};
  }
  __atomic_store_n(&p.c2s()->head, kSlots, __ATOMIC_RELEASE);
  Frame got[4];
  EXPECT_EQ(p.server_rx->Receive(got, 4), 0);
  EXPECT_NE(p.server_rx->error(), nullptr);
}

TEST(RingTest, IncompleteChainWaitsForTheRest) {
  RingPair p;
  p.c2s()->desc[0] = Descriptor{kDescFlagNext, 1, 8, 0, 0};
  __atomic_store_n(&p.c2s()->head, 1, __ATOMIC_RELEASE);
  Frame got[4];
  EXPECT_EQ(p.server_rx->Receive(got, 4), 0);
  EXPECT_EQ(p.server_rx->error(), nullptr);
  p.server_rx->Release();
  p.c2s()->desc[1] = Descriptor{0, 1, 4, kBuf, 0};
  __atomic_store_n(&p.c2s()->head, 2, __ATOMIC_RELEASE);
  ASSERT_EQ(p.server_rx->Receive(got, 4), 1);
  EXPECT_EQ(got[0].len, 12u);
}

TEST(RingTest, ChainWithABadSegmentStopsTheRing) {
  RingPair p;
  p.c2s()->desc[0] = Descriptor{kDescFlagNext, 1, 8, 0, 0};
  p.c2s()->desc[1] = Descriptor{kDescFlagNext, 7, 8, 0, 0};  // bad region
  p.c2s()->desc[2] = Descriptor{0, 1, 8, 0, 0};
  p.c2s()->desc[3] = Descriptor{0, 1, 5, 0, 0};
  __atomic_store_n(&p.c2s()->head, 4, __ATOMIC_RELEASE);
  Frame got[4];
  EXPECT_EQ(p.server_rx->Receive(got, 4), 0);
  EXPECT_EQ(p.server_rx->stats().bad_descriptors.Get(), 1u);
  EXPECT_STREQ(p.server_rx->error(), "c2s descriptor outside the app's regions");
}

TEST(RingTest, ServerRefusesBadBuffersOfferedForTransmit) {
  RingPair p;
  // The client offers a buffer outside its regions in the s2c ring.
  p.s2c()->desc[0] = Descriptor{0, 9, kBuf, 0, 0};
  std::string s = Payload(0, 64);
  Frame f = AsFrame(s);
  EXPECT_EQ(p.server_tx->Transmit(&f, 1), 0);
  EXPECT_EQ(p.server_tx->stats().bad_descriptors.Get(), 1u);
  EXPECT_NE(p.server_tx->error(), nullptr);
}

TEST(RingTest, ServerTreatsZeroCapacityBufferAsBad) {
  RingPair p;
  p.s2c()->desc[0].length = 0;
  std::string s = Payload(0, 64);
  Frame f = AsFrame(s);
  EXPECT_EQ(p.server_tx->Transmit(&f, 1), 0);
  EXPECT_NE(p.server_tx->error(), nullptr);
}

TEST(RingTest, ServerStopsWhenS2cHeadRunsAhead) {
  RingPair p;
  __atomic_store_n(&p.s2c()->head, 3 * kSlots, __ATOMIC_RELEASE);
  std::string s = Payload(0, 64);
  Frame f = AsFrame(s);
  EXPECT_EQ(p.server_tx->Transmit(&f, 1), 0);
  EXPECT_STREQ(p.server_tx->error(), "s2c ring head moved past the ring size");
}

TEST(RingTest, ClientRejectsServerLengthsBeyondItsBuffers) {
  RingPair p;
  // A server that claims to have filled more than the buffer.
  p.s2c()->desc[0].length = kBuf + 1;
  p.s2c()->desc[1].length = 10;
  __atomic_store_n(&p.s2c()->tail, 2, __ATOMIC_RELEASE);
  Frame got[4];
  ASSERT_EQ(p.client_rx->Receive(got, 4), 1);
  EXPECT_EQ(got[0].len, 10u);
  EXPECT_EQ(p.client_rx->stats().bad_descriptors.Get(), 1u);
}

TEST(RingTest, ClientStopsWhenTailPassesItsHead) {
  RingPair p;
  __atomic_store_n(&p.s2c()->tail, kSlots + 1, __ATOMIC_RELEASE);
  Frame got[4];
  EXPECT_EQ(p.client_rx->Receive(got, 4), 0);
  EXPECT_NE(p.client_rx->error(), nullptr);
}

TEST(RingTest, CursorsSurviveManyWraps) {
  RingPair p(65000);
  uint64_t sent = 0;
  for (int round = 0; round < 20000; ++round) {
    std::string s = Payload(round, 1 + round % 300);  // some chained (> kBuf)
    RoundTrip(p, {s});
    ++sent;
  }
  EXPECT_EQ(p.client_rx->stats().frames.Get(), sent);
  EXPECT_EQ(p.server_rx->stats().bad_descriptors.Get(), 0u);
}

TEST(RingTest, DeferredServerPublishesOnlyOnPublish) {
  RingPair p;
  p.server_rx->SetDeferred(true);
  p.server_tx->SetDeferred(true);
  p.client_rx->SetInterruptMode(true);  // the app sleeps: wake it only once frames are visible
  std::string s = Payload(0, 64);
  Frame f = AsFrame(s);
  ASSERT_EQ(p.client_tx->Transmit(&f, 1), 1);
  Frame got[4];
  ASSERT_EQ(p.server_rx->Receive(got, 4), 1);
  ASSERT_EQ(p.server_tx->Transmit(got, 1), 1);
  p.server_rx->Release();
  // Nothing reached the ring headers, and the app was not woken.
  EXPECT_TRUE(p.server_rx->unpublished());
  EXPECT_TRUE(p.server_tx->unpublished());
  EXPECT_EQ(p.c2s()->tail, 0);
  EXPECT_EQ(p.s2c()->tail, 0);
  EXPECT_EQ(p.server_tx->stats().interrupts.Get(), 0u);
  EXPECT_EQ(p.client_rx->Receive(got, 4), 0);
  p.server_tx->Publish();
  p.server_rx->Publish();
  EXPECT_FALSE(p.server_rx->unpublished());
  EXPECT_EQ(p.c2s()->tail, 1);
  EXPECT_EQ(p.server_tx->stats().interrupts.Get(), 1u);
  ASSERT_EQ(p.client_rx->Receive(got, 4), 1);
  EXPECT_EQ(AsString(got[0]), s);
  p.client_rx->Release();
  // Turning deferral off publishes what is left, and later bursts go out at once.
  ASSERT_EQ(p.client_tx->Transmit(&f, 1), 1);
  ASSERT_EQ(p.server_rx->Receive(got, 4), 1);
  p.server_rx->Release();
  EXPECT_EQ(p.c2s()->tail, 1);
  p.server_rx->SetDeferred(false);
  EXPECT_EQ(p.c2s()->tail, 2);
  p.server_tx->SetDeferred(false);
  ASSERT_EQ(p.client_tx->Transmit(&f, 1), 1);
  ASSERT_EQ(p.server_rx->Receive(got, 4), 1);
  ASSERT_EQ(p.server_tx->Transmit(got, 1), 1);
  p.server_rx->Release();
  EXPECT_EQ(p.c2s()->tail, 3);
  EXPECT_EQ(p.s2c()->tail, 2);
}

// Another process (modelled by a second pair of server ends on the same rings) served a burst and
// died before publishing it; this one rolls the cursors it journaled forward.
TEST(RingTest, RollForwardPublishesWhatAnotherServerLeftAndWakesTheApp) {
  RingPair p;
  std::vector<std::string> frames = {Payload(1, 64), Payload(2, 64), Payload(3, 64)};
  std::vector<Frame> out;
  for (auto& s : frames) out.push_back(AsFrame(s));
  ASSERT_EQ(p.client_tx->Transmit(out.data(), 3), 3);
  p.server_rx->SetDeferred(true);
  p.server_tx->SetDeferred(true);
  Frame got[4];
  ASSERT_EQ(p.server_rx->Receive(got, 4), 3);
  ASSERT_EQ(p.server_tx->Transmit(got, 3), 3);
  p.server_rx->Release();
  const uint16_t c2s_tail = p.server_rx->cursor();
  const uint16_t s2c_tail = p.server_tx->cursor();
  p.client_rx->SetInterruptMode(true);
  // The process that takes the rings back: its own view is stale.
  EXPECT_TRUE(p.server_rx->RollForward(c2s_tail));
  EXPECT_TRUE(p.server_tx->RollForward(s2c_tail));
  EXPECT_EQ(p.c2s()->tail, 3);
  EXPECT_EQ(p.s2c()->tail, 3);
  EXPECT_EQ(p.server_tx->stats().interrupts.Get(), 1u);
  ASSERT_EQ(p.client_rx->Receive(got, 4), 3);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(AsString(got[i]), frames[i]);
  p.client_rx->Release();
  // Idempotent: rolling forward to where the ring is already changes nothing.
  EXPECT_TRUE(p.server_rx->RollForward(c2s_tail));
  EXPECT_EQ(p.server_rx->Receive(got, 4), 0);
  // A cursor beyond what the app produced (or behind the published one) is refused.
  EXPECT_FALSE(p.server_rx->RollForward(c2s_tail + 1));
  EXPECT_FALSE(p.server_rx->RollForward(c2s_tail - 1));
  EXPECT_FALSE(p.server_tx->RollForward(s2c_tail + kSlots + 1));
  EXPECT_EQ(p.c2s()->tail, 3);
  EXPECT_EQ(p.server_rx->error(), nullptr);
}

// The app shares the eventfd's open file description and can clear O_NONBLOCK: neither the
// server's kick of a saturated counter nor its drain of an empty one may block (alarm() ends the
// test if one does).
TEST(RingTest, EventfdCallsNeverBlockWhateverThePeerDid) {
  RingPair p;
  int s2c = p.s2c_eventfd();
  int c2s = p.c2s_eventfd();
  for (int fd : {s2c, c2s}) ASSERT_EQ(::fcntl(fd, F_SETFL, 0), 0);  // blocking, as the app made it
  uint64_t full = 0xfffffffffffffffeull;
  ASSERT_EQ(::write(s2c, &full, sizeof(full)), static_cast<ssize_t>(sizeof(full)));
  p.client_rx->SetInterruptMode(true);
  alarm(10);
  std::string s = Payload(0, 64);
  Frame f = AsFrame(s);
  EXPECT_EQ(p.server_tx->Transmit(&f, 1), 1);
  EXPECT_STREQ(p.server_tx->error(), "peer saturated its interrupt eventfd");
  p.server_rx->DrainInterrupt();  // c2s counter is 0 and the fd blocking
  EXPECT_EQ(p.server_rx->error(), nullptr);
  alarm(0);
}

// Descriptors that all say "more follows" are looked at once, then again only when the producer
// adds to the ring: a poller sees nothing pending and may sleep.
TEST(RingTest, IncompleteChainIsNotRescannedUntilTheProducerAdds) {
  RingPair p;
  for (int i = 0; i < 3; ++i) p.c2s()->desc[i] = Descriptor{kDescFlagNext, 1, 8, 0, 0};
  __atomic_store_n(&p.c2s()->head, 3, __ATOMIC_RELEASE);
  Frame got[4];
  EXPECT_TRUE(p.server_rx->HasPending());
  EXPECT_EQ(p.server_rx->Receive(got, 4), 0);
  EXPECT_FALSE(p.server_rx->HasPending());
  // The peer rewrites the descriptors in place without moving head: still nothing to look at.
  for (int i = 0; i < 3; ++i) p.c2s()->desc[i] = Descriptor{0, 1, 8, 0, 0};
  EXPECT_EQ(p.server_rx->Receive(got, 4), 0);
  for (int i = 0; i < 3; ++i) p.c2s()->desc[i] = Descriptor{kDescFlagNext, 1, 8, 0, 0};
  p.c2s()->desc[3] = Descriptor{0, 1, 4, 0, 0};
  __atomic_store_n(&p.c2s()->head, 4, __ATOMIC_RELEASE);
  EXPECT_TRUE(p.server_rx->HasPending());
  ASSERT_EQ(p.server_rx->Receive(got, 4), 1);
  EXPECT_EQ(got[0].len, 28u);
  EXPECT_EQ(p.server_rx->error(), nullptr);
}

// A chain past kMaxChainSegments is dropped once that many segments are in, and its rest is
// skipped as it comes; frames after it flow.
TEST(RingTest, OverlongChainIsDroppedAsItComes) {
  RingPair p(0, /*log2=*/8);
  const uint16_t n = kMaxChainSegments + 10;
  for (uint16_t i = 0; i < n; ++i) p.c2s()->desc[i] = Descriptor{kDescFlagNext, 1, 8, 0, 0};
  __atomic_store_n(&p.c2s()->head, n, __ATOMIC_RELEASE);
  Frame got[4];
  EXPECT_EQ(p.server_rx->Receive(got, 4), 0);
  EXPECT_EQ(p.server_rx->stats().oversize.Get(), 1u);
  p.server_rx->Release();
  EXPECT_EQ(p.c2s()->tail, n);                       // every slot so far is given back
  p.c2s()->desc[n] = Descriptor{0, 1, 8, 0, 0};      // the chain's end
  p.c2s()->desc[n + 1] = Descriptor{0, 1, 6, 0, 0};  // a frame of its own
  __atomic_store_n(&p.c2s()->head, n + 2, __ATOMIC_RELEASE);
  ASSERT_EQ(p.server_rx->Receive(got, 4), 1);
  EXPECT_EQ(got[0].len, 6u);
  EXPECT_EQ(p.server_rx->stats().oversize.Get(), 1u);
  EXPECT_EQ(p.server_rx->error(), nullptr);
}

TEST(RingTest, HeadMovedBackwardsIsAProtocolError) {
  RingPair p;
  for (int i = 0; i < 3; ++i) p.c2s()->desc[i] = Descriptor{kDescFlagNext, 1, 8, 0, 0};
  __atomic_store_n(&p.c2s()->head, 3, __ATOMIC_RELEASE);
  Frame got[4];
  EXPECT_EQ(p.server_rx->Receive(got, 4), 0);             // an incomplete chain
  __atomic_store_n(&p.c2s()->head, 2, __ATOMIC_RELEASE);  // back, to make us look again
  EXPECT_EQ(p.server_rx->Receive(got, 4), 0);
  EXPECT_STREQ(p.server_rx->error(), "c2s ring head moved backwards");
}

}  // namespace
}  // namespace snapd::memif
