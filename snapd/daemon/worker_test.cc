// The engine runtime with real parts: an echo engine whose port is an app's memif queue pair,
// polled by workers, moved between them while sequenced frames flow.
#include "snapd/daemon/worker.h"

#include <dirent.h>
#include <errno.h>
#include <sched.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <future>
#include <memory>
#include <set>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "clients/traffic.h"
#include "engines/registry.h"
#include "gtest/gtest.h"
#include "ipc/client.h"
#include "ipc/peer_fd.h"
#include "ipc/server.h"
#include "snapd/daemon/app_port.h"
#include "snapd/daemon/dpdk.h"
#include "snapd/daemon/echo_app_testing.h"

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

// The cores thread `tid` of this process may run on.
std::set<int> CoresOf(pid_t tid) {
  cpu_set_t set;
  CPU_ZERO(&set);
  EXPECT_EQ(sched_getaffinity(tid, sizeof(set), &set), 0);
  std::set<int> cores;
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (CPU_ISSET(c, &set)) cores.insert(c);
  }
  return cores;
}

// The thread of this process named `name` (a worker's thread is named after it).
pid_t ThreadNamed(const std::string& name) {
  DIR* tasks = opendir("/proc/self/task");
  pid_t found = 0;
  while (dirent* entry = readdir(tasks)) {
    std::string comm;
    std::getline(std::ifstream(std::string("/proc/self/task/") + entry->d_name + "/comm"), comm);
    if (comm == name) found = atoi(entry->d_name);
  }
  closedir(tasks);
  return found;
}

TEST(ReserveCoresTest, KeepsEveryThreadButThePinnedWorkersOffTheReservedCores) {
  const std::set<int> all = CoresOf(0);
  if (all.size() < 2) GTEST_SKIP() << "needs two CPUs";
  const int reserved = *all.rbegin();
  std::set<int> rest = all;
  rest.erase(reserved);
  std::promise<pid_t> other_tid;
  std::promise<void> release;
  std::thread other([&] {
    other_tid.set_value(gettid());
    release.get_future().wait();
  });
  const pid_t other_thread = other_tid.get_future().get();
  Worker pinned("w-pinned", reserved), floating("w-floating");
  ASSERT_NE(ThreadNamed("w-pinned"), 0);
  ASSERT_NE(ThreadNamed("w-floating"), 0);
  Worker::ReserveCores({reserved});
  EXPECT_EQ(CoresOf(0), rest);
  EXPECT_EQ(CoresOf(other_thread), rest);
  EXPECT_EQ(CoresOf(ThreadNamed("w-floating")), rest);
  EXPECT_EQ(CoresOf(ThreadNamed("w-pinned")), std::set<int>{reserved});
  // Threads started later inherit it; a worker pinned later to the reserved core still gets it.
  std::set<int> later;
  std::thread([&] { later = CoresOf(0); }).join();
  EXPECT_EQ(later, rest);
  Worker pinned_later("w-pinned-later", reserved);
  ASSERT_NE(ThreadNamed("w-pinned-later"), 0);
  EXPECT_EQ(CoresOf(ThreadNamed("w-pinned-later")), std::set<int>{reserved});
  // A floating worker re-pinned to "any core" gets the shared ones.
  floating.SetCore(-1);
  EXPECT_EQ(CoresOf(ThreadNamed("w-floating")), rest);
  // Reserving every core reserves none; reserving none gives every core back.
  Worker::ReserveCores(std::vector<int>(all.begin(), all.end()));
  EXPECT_EQ(CoresOf(0), all);
  Worker::ReserveCores({reserved});
  Worker::ReserveCores({});
  EXPECT_EQ(CoresOf(0), all);
  EXPECT_EQ(CoresOf(other_thread), all);
  EXPECT_EQ(CoresOf(ThreadNamed("w-floating")), all);
  EXPECT_EQ(CoresOf(ThreadNamed("w-pinned")), std::set<int>{reserved});
  release.set_value();
  other.join();
}

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

// An engine whose one poll blocks in a read of a pipe, as if inside a call on app 7's fd, until
// a signal interrupts it.
class StuckEngine : public Engine {
 public:
  StuckEngine() : Engine("stuck") { EXPECT_EQ(::pipe(pipe_), 0); }
  ~StuckEngine() override {
    ::close(pipe_[0]);
    ::close(pipe_[1]);
  }
  absl::string_view kind() const override { return "stuck"; }
  absl::Status AddPort(std::unique_ptr<Port>, const engines::PortAttachment&) override {
    return absl::UnimplementedError("no ports");
  }
  std::unique_ptr<Port> RemovePort(absl::string_view) override { return nullptr; }
  std::vector<std::string> PortNames() const override { return {}; }
  void ForEachPort(const std::function<void(Port&)>&) override {}

  std::atomic<int> read_errno{0};

 protected:
  uint32_t PollPorts(uint32_t*) override {
    if (polled_++ > 0) return 0;
    memif::PeerFdCall call(7, /*is_write=*/false);
    char c;
    if (::read(pipe_[0], &c, 1) < 0) read_errno = errno;
    return 1;
  }

 private:
  int pipe_[2];
  int polled_ = 0;
};

TEST(WatchdogTest, ReportsAStuckBatchOnceAndInterruptsTheAppCall) {
  StuckEngine engine;  // outlives the worker
  Worker w("wd");
  w.AddEngine(&engine);  // returns before the first poll, which then blocks
  std::vector<std::string> reports;
  for (int i = 0; i < 400 && engine.read_errno == 0; ++i) {
    usleep(5000);
    std::string r =
        w.Inspect(MonotonicNs(), /*batch_limit_ns=*/20000000, /*call_limit_ns=*/20000000);
    if (!r.empty()) reports.push_back(r);
  }
  EXPECT_EQ(engine.read_errno, EINTR);
  ASSERT_EQ(reports.size(), 1u);  // (the engine outlives the worker: returning here is safe)
  EXPECT_NE(reports[0].find("engine stuck has been in one batch"), std::string::npos) << reports[0];
  EXPECT_NE(reports[0].find("in a read of port app7's interrupt eventfd"), std::string::npos)
      << reports[0];
  EXPECT_EQ(w.stats().stalls.Get(), 1u);
  // The worker goes on: control operations reach it again.
  w.RemoveEngine(&engine);
  EXPECT_EQ(w.Inspect(MonotonicNs(), 20000000, 0), "");
}

}  // namespace
}  // namespace snapd
