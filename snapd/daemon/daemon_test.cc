// The Daemon with fake NICs: no DPDK, no devices. What only the daemon does: NIC queues and apps
// become ports of their engines, control operations check before they change anything, NICs'
// counters carry over a close and reopen (what an upgrade does), withdrawing leaves everything
// to a successor, and the driver is stopped once, unless the daemon handed over.
#include "snapd/daemon/daemon.h"

#include <algorithm>
#include <thread>

#include "absl/strings/str_cat.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "ipc/client.h"
#include "snapd/daemon/config.h"
#include "snapd/daemon/testing/fake_nic.h"
#include "snapd/daemon/testing/run_dir.h"

namespace snapd {
namespace {

config::SnapdConfig TwoEnginesOneNic(const std::string& nic = "fake0") {
  config::SnapdConfig cfg;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(
      absl::StrCat(R"(
        engines { name: "sw" kind: "vswitch" }
        engines { name: "echo" kind: "echo" }
        nics { devargs: ")",
                   nic, R"(" queues: 2 engines: "sw" engines: "echo" }
        apps { id: 1 mac: "02:00:00:00:00:01" ipv4: "10.0.0.1" engine: "sw" }
      )"),
      &cfg));
  cfg.set_run_dir(FreshRunDir());
  EXPECT_TRUE(CompleteConfig(&cfg).ok());
  return cfg;
}

std::vector<std::string> PortsOf(Daemon& d, const std::string& engine) {
  std::vector<std::string> ports;
  for (const auto& slot : d.scheduler().engines()) {
    if (slot->config.name() != engine) continue;
    d.scheduler().OnEngine(*slot, [&] { ports = slot->engine->PortNames(); });
  }
  std::sort(ports.begin(), ports.end());
  return ports;
}

TEST(DaemonTest, NicQueuesBecomePortsOfTheirEngines) {
  FakeNicDriver driver;
  {
    auto d = Daemon::Start(TwoEnginesOneNic(), driver);
    ASSERT_TRUE(d.ok()) << d.status();
    EXPECT_EQ(PortsOf(**d, "sw"), std::vector<std::string>{"nic0/q0"});
    EXPECT_EQ(PortsOf(**d, "echo"), std::vector<std::string>{"nic0/q1"});
    EXPECT_EQ(driver.starts, 1);
    EXPECT_EQ(driver.opens, 1);
    EXPECT_EQ(driver.stops, 0);
  }
  EXPECT_EQ(driver.stops, 1);  // stopped once, after the NICs closed
}

TEST(DaemonTest, StartFailsWithTheReasonAndASecondSnapdIsRefused) {
  FakeNicDriver driver;
  auto broken = Daemon::Start(TwoEnginesOneNic("broken"), driver);
  ASSERT_FALSE(broken.ok());
  EXPECT_NE(broken.status().message().find("cannot open NIC 'broken'"), absl::string_view::npos);

  config::SnapdConfig cfg = TwoEnginesOneNic();
  auto first = Daemon::Start(cfg, driver);
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = Daemon::Start(cfg, driver);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kAlreadyExists) << second.status();
}

TEST(DaemonTest, ControlOperationsCheckBeforeTheyChangeAnything) {
  FakeNicDriver driver;
  auto d = Daemon::Start(TwoEnginesOneNic(), driver);
  ASSERT_TRUE(d.ok()) << d.status();
  Daemon& daemon = **d;
  config::App app;
  app.set_id(1);  // taken
  app.set_mac("02:00:00:00:00:09");
  app.set_ipv4("10.0.0.9");
  EXPECT_EQ(daemon.AddApp(app).code(), absl::StatusCode::kAlreadyExists);
  app.set_id(2);
  app.set_engine("nowhere");
  EXPECT_EQ(daemon.AddApp(app).code(), absl::StatusCode::kInvalidArgument);
  app.clear_engine();  // the first engine
  ASSERT_TRUE(daemon.AddApp(app).ok());
  EXPECT_EQ(daemon.apps().at(2).config.engine(), "sw");
  EXPECT_EQ(daemon.RemoveApp(7).code(), absl::StatusCode::kNotFound);
  // An engine that serves a NIC queue or an app is not destroyed; the error names them.
  absl::Status busy = daemon.DestroyEngine("sw");
  EXPECT_EQ(busy.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(busy.message().find("ports nic0/q0 apps 1,2"), absl::string_view::npos) << busy;
  EXPECT_EQ(daemon.DestroyEngine("none").code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(daemon
                  .CreateEngine([] {
                    config::Engine e;
                    e.set_name("spare");
                    e.set_kind("echo");
                    return e;
                  }())
                  .ok());
  ASSERT_TRUE(daemon.DestroyEngine("spare").ok());
  EXPECT_EQ(daemon.scheduler().engines().size(), 2u);
}

// An app that attaches becomes a port of its engine and leaves it when it goes; the daemon's
// loop serves it (this thread is the main thread).
TEST(DaemonTest, AnAppAttachesAsAPortOfItsEngine) {
  FakeNicDriver driver;
  config::SnapdConfig cfg = TwoEnginesOneNic();
  auto d = Daemon::Start(cfg, driver);
  ASSERT_TRUE(d.ok()) << d.status();
  Daemon& daemon = **d;
  std::vector<std::string> attached, detached;
  std::thread app([&] {
    auto client = memif::MemifClient::Connect({cfg.memif_socket(), 1});
    EXPECT_TRUE(client.ok()) << client.status();
    // The attach is done by the time the handshake ends (the main thread adds the port first).
    (void)daemon.RunOnMain([&] { attached = PortsOf(daemon, "sw"); });
    client->reset();
    for (int i = 0; i < 500 && detached.size() != 1; ++i) {
      (void)daemon.RunOnMain([&] { detached = PortsOf(daemon, "sw"); });
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    daemon.Stop();
  });
  daemon.Run();
  app.join();
  EXPECT_EQ(attached, (std::vector<std::string>{"app1", "nic0/q0"}));
  EXPECT_EQ(detached, std::vector<std::string>{"nic0/q0"});
}

// What an upgrade does to NICs: closed with their ports' counters saved, reopened with both
// continuing; and withdrawing leaves the driver running for the successor.
TEST(DaemonTest, NicCountersCarryOverACloseAndWithdrawLeavesTheDriver) {
  FakeNicDriver driver;
  {
    auto d = Daemon::Start(TwoEnginesOneNic(), driver);
    ASSERT_TRUE(d.ok()) << d.status();
    Daemon& daemon = **d;
    EXPECT_TRUE(daemon.NicPolled(0));
    daemon.OnEngine("sw", [&] {
      daemon.FindEngine("sw")->ForEachPort([](Port& p) { p.stats().drop_takeover.Add(3); });
    });
    NicStats before = daemon.nic(0)->Stats();
    std::vector<engines::PortCounters> saved;
    daemon.CloseNic(0, &saved);
    EXPECT_EQ(daemon.nic(0), nullptr);
    EXPECT_EQ(PortsOf(daemon, "sw"), std::vector<std::string>{});
    ASSERT_EQ(saved.size(), 2u);
    ASSERT_TRUE(daemon.OpenNic(0).ok());
    daemon.nic(0)->ContinueFrom(before);
    daemon.AddPortCounters(saved);
    EXPECT_EQ(daemon.nic(0)->Stats().rx_frames, before.rx_frames + 10);
    uint64_t carried = 0;
    daemon.OnEngine("sw", [&] {
      daemon.FindEngine("sw")->ForEachPort(
          [&](Port& p) { carried += p.stats().drop_takeover.Get(); });
    });
    EXPECT_EQ(carried, 3u);
    daemon.Withdraw();
    EXPECT_TRUE(daemon.handed_over());
    EXPECT_EQ(PortsOf(daemon, "sw"), std::vector<std::string>{});
  }
  EXPECT_EQ(driver.stops, 0);  // handed over: the successor's devices stay up
}

}  // namespace
}  // namespace snapd
