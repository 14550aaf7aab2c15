// The engine runtime with real parts: an echo engine whose port is an app's memif queue pair,
// polled by workers, moved between them while sequenced frames flow.
#include "snapd/worker.h"

#include <unistd.h>

#include <atomic>
#include <memory>
#include <thread>

#include "absl/strings/str_cat.h"
#include "clients/traffic.h"
#include "engines/registry.h"
#include "gtest/gtest.h"
#include "ipc/client.h"
#include "ipc/server.h"
#include "snapd/app_port.h"
#include "snapd/dpdk.h"
#include "snapd/echo_app_testing.h"

namespace snapd {
namespace {

class WorkerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    config::SnapdConfig cfg;
    cfg.mutable_eal()->set_memory_mb(256);
    absl::Status status = InitEal(cfg);
    ASSERT_TRUE(status.ok()) << status;
  }

  void SetUp() override { ASSERT_NO_FATAL_FAILURE(app_.Connect("worker-test", 1)); }

  EchoApp app_;
};

TEST_F(WorkerTest, RunSyncRunsOnTheWorkerBetweenPolls) {
  Worker w("w0");
  w.AddEngine(app_.engine.get());
  std::thread::id ran_on;
  w.RunSync([&] { ran_on = std::this_thread::get_id(); });
  EXPECT_NE(ran_on, std::this_thread::get_id());
  EXPECT_EQ(w.engines(), std::vector<Engine*>{app_.engine.get()});
  w.RemoveEngine(app_.engine.get());
  EXPECT_TRUE(w.engines().empty());
}

TEST_F(WorkerTest, ThousandMovesUnderTrafficLoseNothing) {
  Worker a("wa"), b("wb");
  a.AddEngine(app_.engine.get());
  snap::LoadResult result;
  std::atomic<bool> done{false};
  std::thread traffic([&] {
    snap::LoadOptions load;
    load.frames = 300000;
    load.window = 64;
    load.idle_timeout = absl::Seconds(20);
    result = snap::RunLoad(*app_.client, load);
    done = true;
  });
  int moves = 0;
  while (!done || moves < 1000) {
    if (moves % 2 == 0) {
      MoveEngine(app_.engine.get(), a, b);
    } else {
      MoveEngine(app_.engine.get(), b, a);
    }
    ++moves;
    if (done && moves >= 1000) break;
  }
  traffic.join();
  EXPECT_GE(moves, 1000);
  EXPECT_EQ(result.received, 300000u);
  EXPECT_EQ(result.reordered, 0u);
  EXPECT_EQ(result.corrupt, 0u);
  EXPECT_FALSE(result.timed_out);
  EXPECT_EQ(app_.engine->stats().drops.Get(), 0u);
  (moves % 2 == 0 ? a : b).RemoveEngine(app_.engine.get());
}

}  // namespace
}  // namespace snapd
