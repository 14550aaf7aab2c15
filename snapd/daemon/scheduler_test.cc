// The scheduler with real workers and echo engines: no DPDK, no root, no NIC.
#include "snapd/daemon/scheduler.h"

#include <sys/eventfd.h>

#include <set>

#include "base/unique_fd.h"
#include "gtest/gtest.h"
#include "snapd/daemon/config.h"

namespace snapd {
namespace {

config::Group GroupOf(const std::string& name, const std::string& mode,
                      std::vector<int> cores = {}) {
  config::Group g;
  g.set_name(name);
  g.set_mode(mode);
  for (int c : cores) g.add_cores(c);
  EXPECT_TRUE(CheckGroup(&g, "").ok());
  return g;
}

config::Engine EchoIn(const std::string& name, const std::string& group) {
  config::Engine e;
  e.set_name(name);
  e.set_kind("echo");
  e.set_group(group);
  return e;
}

class SchedulerTest : public ::testing::Test {
 protected:
  // The number of distinct workers the group's engines run on, each engine polled.
  size_t WorkersOf(const std::string& group) {
    std::set<Worker*> workers;
    for (const auto& slot : scheduler_.engines()) {
      if (slot->config.group() != group) continue;
      EXPECT_TRUE(slot->polled) << slot->config.name();
      workers.insert(slot->worker);
    }
    for (const GroupView& g : scheduler_.Groups()) {
      if (g.config->name() == group) EXPECT_EQ(g.workers, workers.size());
    }
    return workers.size();
  }

  UniqueFd overload_{eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)};
  Scheduler scheduler_{overload_.get()};
};

TEST_F(SchedulerTest, SpreadingGivesEachEngineAWorkerAndCompactingPacksThem) {
  scheduler_.AddGroup(GroupOf("g", "spreading"));
  ASSERT_TRUE(scheduler_.AddEngine(EchoIn("a", "g")).ok());
  ASSERT_TRUE(scheduler_.AddEngine(EchoIn("b", "g")).ok());
  ASSERT_TRUE(scheduler_.PlaceAll().ok());
  EXPECT_EQ(WorkersOf("g"), 2u);
  // Idle engines fit on one worker.
  ASSERT_TRUE(scheduler_.SetGroup("g", "compacting", std::nullopt, std::nullopt).ok());
  EXPECT_EQ(WorkersOf("g"), 1u);
  ASSERT_TRUE(scheduler_.SetGroup("g", "spreading", std::nullopt, std::nullopt).ok());
  EXPECT_EQ(WorkersOf("g"), 2u);
}

TEST_F(SchedulerTest, AChangeThatCannotPlaceChangesNothing) {
  scheduler_.AddGroup(GroupOf("g", "compacting"));
  ASSERT_TRUE(scheduler_.AddEngine(EchoIn("a", "g")).ok());
  ASSERT_TRUE(scheduler_.AddEngine(EchoIn("b", "g")).ok());
  ASSERT_TRUE(scheduler_.PlaceAll().ok());
  // Dedicated needs a core per engine: one core for two engines does not place.
  absl::Status status = scheduler_.SetGroup("g", "dedicated", std::vector<int>{0}, std::nullopt);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_EQ(scheduler_.Groups()[0].config->mode(), "compacting");
  EXPECT_EQ(WorkersOf("g"), 1u);
  // Nor does a third engine in a dedicated group of one core: it is not created.
  ASSERT_TRUE(scheduler_.SetGroup("d", "dedicated", std::vector<int>{0}, std::nullopt).ok());
  ASSERT_TRUE(scheduler_.CreateEngine(EchoIn("c", "d")).ok());
  status = scheduler_.CreateEngine(EchoIn("e", "d"));
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_EQ(scheduler_.Find("e"), nullptr);
  EXPECT_EQ(scheduler_.engines().size(), 3u);
}

TEST_F(SchedulerTest, RefusalsNameWhatIsWrong) {
  scheduler_.AddGroup(GroupOf("default", "spreading"));
  ASSERT_TRUE(scheduler_.CreateEngine(EchoIn("a", "")).ok());  // the default group
  EXPECT_EQ(scheduler_.Find("a")->config.group(), "default");
  EXPECT_EQ(scheduler_.CreateEngine(EchoIn("a", "")).code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(scheduler_.CreateEngine(EchoIn("", "")).code(), absl::StatusCode::kInvalidArgument);
  absl::Status status = scheduler_.CreateEngine(EchoIn("b", "nowhere"));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(status.message().find("group"), absl::string_view::npos) << status;
  config::Engine bad_kind = EchoIn("b", "");
  bad_kind.set_kind("no-such-kind");
  EXPECT_FALSE(scheduler_.CreateEngine(bad_kind).ok());
  EXPECT_EQ(scheduler_.SetGroup("default", "sideways", std::nullopt, std::nullopt).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(scheduler_.SetGroup("default", std::nullopt, std::nullopt, 0).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(scheduler_.DestroyEngine("zz").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(scheduler_.engines().size(), 1u);
}

TEST_F(SchedulerTest, DestroyingAnEngineDropsItsWorker) {
  scheduler_.AddGroup(GroupOf("g", "spreading"));
  ASSERT_TRUE(scheduler_.CreateEngine(EchoIn("a", "g")).ok());
  ASSERT_TRUE(scheduler_.CreateEngine(EchoIn("b", "g")).ok());
  EXPECT_EQ(WorkersOf("g"), 2u);
  ASSERT_TRUE(scheduler_.DestroyEngine("a").ok());
  EXPECT_EQ(scheduler_.Find("a"), nullptr);
  EXPECT_EQ(WorkersOf("g"), 1u);
}

TEST_F(SchedulerTest, TheSloIsKeptInNanosecondsAtMicrosecondGrain) {
  scheduler_.AddGroup(GroupOf("g", "compacting"));
  ASSERT_TRUE(scheduler_.SetGroup("g", std::nullopt, std::nullopt, 350000).ok());
  EXPECT_EQ(PolicyOf(*scheduler_.Groups()[0].config).slo_ns, 350000);
  EXPECT_EQ(PolicyOf(*scheduler_.Groups()[0].config).mode, SchedulingMode::kCompacting);
}

// An upgrade's new side: every engine is built and its worker made before any moves in; each
// move only adds its engine to its worker; the end of holding drops nothing that is used.
TEST_F(SchedulerTest, HoldingPlacesEnginesThatAreNotReadyYet) {
  scheduler_.AddGroup(GroupOf("g", "spreading"));
  for (const char* name : {"a", "b"}) {
    auto slot = scheduler_.AddEngine(EchoIn(name, "g"));
    ASSERT_TRUE(slot.ok());
    (*slot)->ready = false;
  }
  scheduler_.set_holding(true);
  ASSERT_TRUE(scheduler_.ReplaceAll().ok());
  EXPECT_EQ(scheduler_.Groups()[0].workers, 2u);
  for (const auto& slot : scheduler_.engines()) EXPECT_FALSE(slot->polled);
  EngineSlot* a = scheduler_.Find("a");
  a->ready = true;
  ASSERT_TRUE(scheduler_.Replace("g").ok());
  EXPECT_TRUE(a->polled);
  EXPECT_GT(a->polled_since_ns, 0);
  EXPECT_FALSE(scheduler_.Find("b")->polled);
  EXPECT_EQ(scheduler_.Groups()[0].workers, 2u);  // b's worker is kept for it
  scheduler_.Find("b")->ready = true;
  scheduler_.set_holding(false);
  ASSERT_TRUE(scheduler_.ReplaceAll().ok());
  EXPECT_EQ(WorkersOf("g"), 2u);
  // Stop and Resume: what an upgrade's blackout and rollback do.
  const int64_t stopped = scheduler_.Stop(*a);
  EXPECT_GT(stopped, 0);
  EXPECT_FALSE(a->polled);
  scheduler_.Resume(*a);
  EXPECT_TRUE(a->polled);
}

TEST_F(SchedulerTest, TickSamplesLoadsAndAsksToBeCalledAgain) {
  scheduler_.AddGroup(GroupOf("g", "compacting"));
  ASSERT_TRUE(scheduler_.CreateEngine(EchoIn("a", "g")).ok());
  const int64_t next = scheduler_.Tick();
  EXPECT_GT(next, 0);
  EXPECT_GT(scheduler_.Find("a")->sampled_at_ns, 0);
  EXPECT_EQ(scheduler_.Find("a")->frames_per_s, 0);
  EXPECT_EQ(scheduler_.Find("a")->delays.size(), 1u);  // snapctl top's percentiles have a sample
  EXPECT_EQ(scheduler_.Find("a")->DelayPercentile(99), 0);
}

}  // namespace
}  // namespace snapd

namespace snapd {
namespace {

TEST(EngineSlotTest, DelayPercentilesOfTheSamples) {
  EngineSlot slot;
  EXPECT_EQ(slot.DelayPercentile(50), 0);
  for (int64_t d = 100; d >= 1; --d) slot.delays.push_back(d * 1000);
  EXPECT_EQ(slot.DelayPercentile(50), 51000);
  EXPECT_EQ(slot.DelayPercentile(99), 100000);
  EXPECT_EQ(slot.DelayPercentile(0), 1000);
}

}  // namespace
}  // namespace snapd
