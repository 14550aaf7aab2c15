#include "snapd/daemon/placement.h"

#include "gtest/gtest.h"

namespace snapd {
namespace {

constexpr int64_t kMs = 1000000;

GroupPolicy Policy(SchedulingMode mode, std::vector<int> cores = {}, int64_t slo_ns = 0) {
  GroupPolicy p;
  p.mode = mode;
  p.cores = std::move(cores);
  p.slo_ns = slo_ns;
  return p;
}

struct Case {
  const char* name;
  std::vector<EngineLoad> engines;
  GroupPolicy policy;
  std::vector<std::vector<std::string>> workers;  // expected
  std::vector<int> cores;                         // expected
};

TEST(PlacementTest, Table) {
  const Case cases[] = {
      {"dedicated: one pinned worker each",
       {{"a"}, {"b"}},
       Policy(SchedulingMode::kDedicated, {0, 1}),
       {{"a"}, {"b"}},
       {0, 1}},
      {"spreading: one unpinned worker each",
       {{"a"}, {"b"}, {"c"}},
       Policy(SchedulingMode::kSpreading),
       {{"a"}, {"b"}, {"c"}},
       {-1, -1, -1}},
      {"compacting: idle engines share one worker",
       {{"a", 0.01}, {"b", 0.02}, {"c", 0.0}},
       Policy(SchedulingMode::kCompacting),
       {{"a", "b", "c"}},
       {-1}},
      {"compacting: loads split under the cap",
       {{"a", 0.5}, {"b", 0.4}, {"c", 0.3}},
       Policy(SchedulingMode::kCompacting),
       {{"a", "c"}, {"b"}},
       {-1, -1}},
      {"compacting: an engine at the cap is alone",
       {{"a", 0.9}, {"b", 0.1}, {"c", 0.1}},
       Policy(SchedulingMode::kCompacting),
       {{"a"}, {"b", "c"}},
       {-1, -1}},
      {"compacting: over the SLO is alone even if light",
       {{"a", 0.1, 50 * kMs}, {"b", 0.1}, {"c", 0.1}},
       Policy(SchedulingMode::kCompacting, {}, 10 * kMs),
       {{"a"}, {"b", "c"}},
       {-1, -1}},
      {"compacting: workers pinned to the allowed cores in order",
       {{"a", 0.9}, {"b", 0.9}, {"c", 0.9}},
       Policy(SchedulingMode::kCompacting, {1, 0}),
       {{"a"}, {"b"}, {"c"}},
       {1, 0, -1}},
      {"no engines", {}, Policy(SchedulingMode::kCompacting), {}, {}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    absl::StatusOr<Placement> p = Place(c.engines, c.policy);
    ASSERT_TRUE(p.ok()) << p.status();
    EXPECT_EQ(p->workers, c.workers);
    EXPECT_EQ(p->cores, c.cores);
  }
}

TEST(PlacementTest, DedicatedNeedsACorePerEngine) {
  auto p = Place({{"a"}, {"b"}, {"c"}}, Policy(SchedulingMode::kDedicated, {0, 1}));
  EXPECT_EQ(p.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(p.status().message().find("3 engines, 2 cores"), std::string::npos);
}

TEST(PlacementTest, ModeNames) {
  SchedulingMode m;
  for (const char* name : {"dedicated", "spreading", "compacting"}) {
    ASSERT_TRUE(ParseSchedulingMode(name, &m));
    EXPECT_STREQ(SchedulingModeName(m), name);
  }
  EXPECT_FALSE(ParseSchedulingMode("turbo", &m));
}

TEST(RebalanceTest, LoadStepScalesOutThenBackIn) {
  GroupPolicy policy = Policy(SchedulingMode::kCompacting, {}, 2 * kMs);
  std::vector<EngineLoad> idle = {{"a", 0.05}, {"b", 0.05}};
  Placement packed = *Place(idle, policy);
  ASSERT_EQ(packed.workers.size(), 1u);
  // A load step on a: its queueing delay passes the SLO; it moves out at once.
  std::vector<EngineLoad> step = {{"a", 0.95, 5 * kMs}, {"b", 0.05}};
  Placement out = *Rebalance(step, policy, packed, 100 * kMs);
  EXPECT_EQ(out.workers.size(), 2u);
  EXPECT_NE(out.WorkerOf("a"), out.WorkerOf("b"));
  // Load gone: packed back in, once the (longer) scale-in interval has passed.
  EXPECT_EQ(Rebalance(idle, policy, out, 1 * kMs)->workers.size(), 2u);
  EXPECT_EQ(Rebalance(idle, policy, out, 10 * kMs)->workers.size(), 2u);
  EXPECT_EQ(Rebalance(idle, policy, out, 60 * kMs)->workers.size(), 1u);
}

TEST(RebalanceTest, NoFlappingBackIntoOverload) {
  GroupPolicy policy = Policy(SchedulingMode::kCompacting, {}, 2 * kMs);
  Placement out = *Place({{"a", 0.95, 5 * kMs}, {"b", 0.05}}, policy);
  ASSERT_EQ(out.workers.size(), 2u);
  // On its own core, a keeps up (no delay) at 60% busy: packing it back would fit under the cap,
  // but would overload it again; it stays out.
  std::vector<EngineLoad> alone = {{"a", 0.6}, {"b", 0.05}};
  ASSERT_EQ(Place(alone, policy)->workers.size(), 1u);
  EXPECT_EQ(Rebalance(alone, policy, out, 1000 * kMs)->workers.size(), 2u);
  // Light now, but an engine missed the SLO 10 ms ago: no scale-in yet.
  std::vector<EngineLoad> light = {{"a", 0.3}, {"b", 0.05}};
  EXPECT_EQ(Rebalance(light, policy, out, 1000 * kMs, 10 * kMs)->workers.size(), 2u);
  EXPECT_EQ(Rebalance(light, policy, out, 1000 * kMs, 100 * kMs)->workers.size(), 1u);
}

TEST(RebalanceTest, SmallChangesDoNotMoveEngines) {
  GroupPolicy policy = Policy(SchedulingMode::kCompacting);
  Placement current = *Place({{"a", 0.5}, {"b", 0.2}, {"c", 0.2}}, policy);
  ASSERT_EQ(current.workers, (std::vector<std::vector<std::string>>{{"a", "b"}, {"c"}}));
  // Loads shift so that a fresh packing would pair a with c instead; the worker count stays, so
  // nothing moves (every move costs a pause at a batch boundary).
  std::vector<EngineLoad> shifted = {{"a", 0.2}, {"b", 0.2}, {"c", 0.55}};
  ASSERT_NE(Place(shifted, policy)->workers, current.workers);
  EXPECT_EQ(*Rebalance(shifted, policy, current, 100 * kMs), current);
}

TEST(RebalanceTest, NewEngineIsPlacedAtOnce) {
  GroupPolicy policy = Policy(SchedulingMode::kCompacting);
  Placement current = *Place({{"a", 0.1}}, policy);
  Placement next = *Rebalance({{"a", 0.1}, {"b", 0.1}}, policy, current, 0);
  EXPECT_GE(next.WorkerOf("b"), 0);
}

}  // namespace
}  // namespace snapd
