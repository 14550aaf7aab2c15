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

  // A memif server with one connected client, whose queue pair becomes an AppPort of an echo
  // engine.
  void SetUp() override {
    memif::ServerOptions options;
    options.socket_path = absl::StrCat("/tmp/snapd-worker-test-", getpid(), ".sock");
    options.accept_any_id = true;
    auto server = memif::MemifServer::Create(options);
    ASSERT_TRUE(server.ok());
    server_ = std::move(*server);
    memif::Connection* conn = nullptr;
    server_->set_on_connected([&](memif::Connection& c) { conn = &c; });
    std::thread client_thread([&] {
      auto client = memif::MemifClient::Connect({options.socket_path, 1});
      ASSERT_TRUE(client.ok());
      client_ = std::move(*client);
    });
    while (conn == nullptr) server_->Poll(10);
    client_thread.join();
    auto engine = EngineRegistry::Global().Create("echo", "echo0", "");
    ASSERT_TRUE(engine.ok());
    engine_ = std::move(*engine);
    ASSERT_TRUE(engine_->AddPort(std::make_unique<AppPort>("app1", *conn, 0), {}).ok());
  }

  void TearDown() override {
    engine_.reset();
    client_.reset();
    server_.reset();
  }

  std::unique_ptr<memif::MemifServer> server_;
  std::unique_ptr<memif::MemifClient> client_;
  std::unique_ptr<Engine> engine_;
};

TEST_F(WorkerTest, RunSyncRunsOnTheWorkerBetweenPolls) {
  Worker w("w0");
  w.AddEngine(engine_.get());
  std::thread::id ran_on;
  w.RunSync([&] { ran_on = std::this_thread::get_id(); });
  EXPECT_NE(ran_on, std::this_thread::get_id());
  EXPECT_EQ(w.engines(), std::vector<Engine*>{engine_.get()});
  w.RemoveEngine(engine_.get());
  EXPECT_TRUE(w.engines().empty());
}

TEST_F(WorkerTest, ThousandMovesUnderTrafficLoseNothing) {
  Worker a("wa"), b("wb");
  a.AddEngine(engine_.get());
  snap::LoadResult result;
  std::atomic<bool> done{false};
  std::thread traffic([&] {
    snap::LoadOptions load;
    load.frames = 300000;
    load.window = 64;
    load.idle_timeout = absl::Seconds(20);
    result = snap::RunLoad(*client_, load);
    done = true;
  });
  int moves = 0;
  while (!done || moves < 1000) {
    if (moves % 2 == 0) {
      MoveEngine(engine_.get(), a, b);
    } else {
      MoveEngine(engine_.get(), b, a);
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
  EXPECT_EQ(engine_->stats().drops.Get(), 0u);
  (moves % 2 == 0 ? a : b).RemoveEngine(engine_.get());
}

}  // namespace
}  // namespace snapd
