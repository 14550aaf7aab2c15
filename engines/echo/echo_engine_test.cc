#include "engines/echo/echo_engine.h"

#include "engines/registry.h"
#include "engines/testing/fake_port.h"
#include "gtest/gtest.h"

namespace snapd {
namespace {

TEST(EchoEngineTest, ReflectsFramesToTheirPort) {
  auto engine = EngineRegistry::Global().Create("echo", "e", "burst: 4");
  ASSERT_TRUE(engine.ok());
  auto p0 = std::make_unique<FakePort>("p0", PortKind::kApp);
  auto p1 = std::make_unique<FakePort>("p1", PortKind::kNic);
  FakePort* a = p0.get();
  FakePort* b = p1.get();
  ASSERT_TRUE((*engine)->AddPort(std::move(p0), {}).ok());
  ASSERT_TRUE((*engine)->AddPort(std::move(p1), {}).ok());
  for (int i = 0; i < 6; ++i) a->Inject("frame" + std::to_string(i));
  b->Inject("other");
  EXPECT_EQ((*engine)->Poll(), 5u);  // burst of 4 from p0, 1 from p1
  EXPECT_EQ((*engine)->Poll(), 2u);
  EXPECT_EQ(a->TakeSent(),
            (std::vector<std::string>{"frame0", "frame1", "frame2", "frame3", "frame4", "frame5"}));
  EXPECT_EQ(b->TakeSent(), std::vector<std::string>{"other"});
  EXPECT_EQ((*engine)->stats().frames.Get(), 7u);
  EXPECT_EQ((*engine)->stats().batches.Get(), 3u);
}

TEST(EchoEngineTest, SaveAndRestoreCarryCounters) {
  auto engine = EngineRegistry::Global().Create("echo", "e", "");
  auto port = std::make_unique<FakePort>("p0", PortKind::kApp, /*tx_room=*/1);
  FakePort* p = port.get();
  ASSERT_TRUE((*engine)->AddPort(std::move(port), {}).ok());
  p->Inject("a");
  p->Inject("b");
  (*engine)->Poll();
  EXPECT_EQ(p->stats().tx_dropped.Get(), 1u);
  engines::EngineState state;
  ASSERT_TRUE((*engine)->SaveState(&state).ok());
  auto restored = EngineRegistry::Global().Create("echo", "e", "");
  // The new engine's port of the same name continues the old one's counters; another does not.
  auto same = std::make_unique<FakePort>("p0", PortKind::kApp);
  auto other = std::make_unique<FakePort>("p1", PortKind::kApp);
  FakePort* s = same.get();
  FakePort* o = other.get();
  s->stats().drop_takeover.Add(3);  // counted by the new snapd before the move: kept
  ASSERT_TRUE((*restored)->AddPort(std::move(same), {}).ok());
  ASSERT_TRUE((*restored)->AddPort(std::move(other), {}).ok());
  ASSERT_TRUE((*restored)->RestoreState(state).ok());
  EXPECT_EQ((*restored)->stats().frames.Get(), 2u);
  EXPECT_EQ((*restored)->stats().drops.Get(), 1u);
  EXPECT_EQ(s->stats().rx_frames.Get(), 2u);
  EXPECT_EQ(s->stats().tx_frames.Get(), 1u);
  EXPECT_EQ(s->stats().tx_dropped.Get(), 1u);
  EXPECT_EQ(s->stats().drop_takeover.Get(), 3u);
  EXPECT_EQ(o->stats().rx_frames.Get(), 0u);
}

}  // namespace
}  // namespace snapd
