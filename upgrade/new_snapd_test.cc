// NewSnapd against an old snapd played by the test, over a real channel, with fake NICs (no DPDK):
// a whole upgrade of two engines; and an old snapd that breaks the protocol (finishes before every
// engine moved, moves an engine twice, gives two engines one journal area, sends a config that
// names no engine) is refused with the reason, sent back as Failed, and nothing is left running.
#include "upgrade/new_snapd.h"

#include <sys/socket.h>
#include <unistd.h>

#include <future>
#include <thread>

#include "absl/strings/str_cat.h"
#include "engines/registry.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "ipc/server.h"
#include "snapd/daemon/config.h"
#include "snapd/daemon/testing/fake_nic.h"
#include "snapd/daemon/testing/run_dir.h"
#include "upgrade/memif_handoff.h"
#include "upgrade/protocol.h"

namespace snapd::upgrade {
namespace {

class NewSnapdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    int sv[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
    old_side_ = UniqueFd(sv[0]);
    new_end_ = UniqueFd(sv[1]);
    ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(R"(
        engines { name: "e0" kind: "echo" }
        engines { name: "e1" kind: "echo" }
        nics { devargs: "fake0" queues: 2 engines: "e0" engines: "e1" }
      )",
                                                              &config_));
    config_.set_run_dir(FreshRunDir());
    ASSERT_TRUE(CompleteConfig(&config_).ok());
    mkdir(config_.run_dir().c_str(), 0700);
    memif::ServerOptions options;
    options.socket_path = config_.memif_socket();
    auto server = memif::MemifServer::Create(options);
    ASSERT_TRUE(server.ok()) << server.status();
    memif_ = std::move(*server);
  }

  // Runs the new side on its own thread (as main would), returning its result.
  std::future<absl::Status> StartNewSide() {
    return std::async(std::launch::async, [this] {
      NewSnapd upgrade(Faults{}, driver_);
      auto daemon = upgrade.Run(std::move(new_end_));
      if (daemon.ok()) {
        last_upgrade_ = (*daemon)->history().last_upgrade;
        events_ = (*daemon)->events().All();
        (*daemon)->Withdraw();  // the test's old side still "serves"
      }
      return daemon.status();
    });
  }

  // Hello, then Brownout (config, memif hand-over, no control listener, no journal), then Ready.
  void Brownout(const config::SnapdConfig& config,
                const std::vector<wire::CarriedCapture>& captures = {}) {
    auto hello = Receive(old_side_.get(), kStepTimeout);
    ASSERT_TRUE(hello.ok()) << hello.status();
    ASSERT_TRUE(hello->envelope.has_hello());
    EXPECT_EQ(hello->envelope.hello().version(), kProtocolVersion);
    wire::Envelope e;
    wire::Brownout* b = e.mutable_brownout();
    *b->mutable_config() = config;
    std::vector<UniqueFd> fds;
    ASSERT_TRUE(ExportMemifHandoff(*memif_, b->mutable_memif(), &fds).ok());
    memif_->Relinquish();
    b->set_control_listener_fd(UINT32_MAX);
    b->set_journal_fd(UINT32_MAX);
    b->set_upgrades(4);
    b->set_pid(4242);
    for (const wire::CarriedCapture& c : captures) *b->add_captures() = c;
    ASSERT_TRUE(Send(old_side_.get(), e, fds).ok());
  }

  absl::StatusOr<Received> Ready() { return Receive(old_side_.get(), kStartTimeout); }

  absl::Status Move(const std::string& engine, uint32_t area) {
    wire::Envelope e;
    wire::MoveEngine* m = e.mutable_move_engine();
    m->set_name(engine);
    m->set_journal_area(area);
    auto saved = EngineRegistry::Global().Create("echo", engine, "");
    if (!saved.ok()) return saved.status();
    absl::Status status = (*saved)->SaveState(m->mutable_state());
    if (!status.ok()) return status;
    return Send(old_side_.get(), e);
  }

  absl::Status Done(const wire::Done& done = wire::Done()) {
    wire::Envelope e;
    *e.mutable_done() = done;
    return Send(old_side_.get(), e);
  }

  // The new side's answer to a broken step: Failed, with its reason.
  void ExpectFailed(const std::string& reason) {
    auto reply = Receive(old_side_.get(), kStepTimeout);
    ASSERT_FALSE(reply.ok());
    EXPECT_EQ(reply.status().code(), absl::StatusCode::kAborted);
    EXPECT_NE(reply.status().message().find(reason), absl::string_view::npos) << reply.status();
  }

  UpgradeReport last_upgrade_;  // the new snapd's record, once it took over
  std::vector<Event> events_;   // and its event log
  FakeNicDriver driver_;
  config::SnapdConfig config_;
  std::unique_ptr<memif::MemifServer> memif_;
  UniqueFd old_side_;
  UniqueFd new_end_;
};

TEST_F(NewSnapdTest, TakesOverTwoEngines) {
  auto result = StartNewSide();
  Brownout(config_);
  auto ready = Ready();
  ASSERT_TRUE(ready.ok()) << ready.status();
  ASSERT_TRUE(ready->envelope.has_ready());
  EXPECT_EQ(ready->envelope.ready().deferred_nics_size(), 0);
  for (uint32_t i = 0; i < 2; ++i) {
    const std::string name = absl::StrCat("e", i);
    ASSERT_TRUE(Move(name, i).ok());
    auto moved = Receive(old_side_.get(), kStepTimeout);
    ASSERT_TRUE(moved.ok()) << moved.status();
    EXPECT_EQ(moved->envelope.moved().name(), name);
    EXPECT_GT(moved->envelope.moved().polling_since_ns(), 0);
  }
  ASSERT_TRUE(Done().ok());
  auto serving = Receive(old_side_.get(), kStepTimeout);
  ASSERT_TRUE(serving.ok()) << serving.status();
  EXPECT_TRUE(serving->envelope.has_serving());
  old_side_.reset();  // we let go
  EXPECT_TRUE(result.get().ok());
  EXPECT_EQ(driver_.opens, 1);
}

// What the new snapd keeps of the upgrade that started it (snapctl info's last_upgrade, which a
// rollout gates on): the engines in the order moved, with the old snapd's figures, bounded.
TEST_F(NewSnapdTest, RecordsTheUpgradeThatStartedIt) {
  auto result = StartNewSide();
  Brownout(config_);
  ASSERT_TRUE(Ready().ok());
  for (uint32_t i : {1, 0}) {
    ASSERT_TRUE(Move(absl::StrCat("e", i), i).ok());
    ASSERT_TRUE(Receive(old_side_.get(), kStepTimeout).ok());
  }
  wire::Done done;
  done.add_blackout_us(120);
  done.add_blackout_us(uint64_t{1} << 50);  // not believed: at most an hour
  done.add_blackout_us(7);                  // a third, for an engine that did not move: ignored
  done.add_handover_us(300);
  done.set_brownout_us(5000);
  done.set_old_build("snapd 0.2.9 (/usr/sbin/snapd, written 2026-11-01 10:00:00 UTC)");
  done.add_notes("app 7 detached: ...");
  ASSERT_TRUE(Done(done).ok());
  ASSERT_TRUE(Receive(old_side_.get(), kStepTimeout).ok());  // serving
  old_side_.reset();
  ASSERT_TRUE(result.get().ok());
  EXPECT_EQ(last_upgrade_.old_pid, 4242);
  EXPECT_EQ(last_upgrade_.new_pid, getpid());
  EXPECT_GT(last_upgrade_.finished_unix_ms, 0);
  EXPECT_EQ(last_upgrade_.brownout_us, 5000);
  EXPECT_EQ(last_upgrade_.old_build, done.old_build());
  EXPECT_NE(last_upgrade_.new_build.find("snapd "), std::string::npos);
  ASSERT_EQ(last_upgrade_.engines.size(), 2u);
  EXPECT_EQ(last_upgrade_.engines[0].name, "e1");
  EXPECT_EQ(last_upgrade_.engines[0].blackout_us, 120);
  EXPECT_EQ(last_upgrade_.engines[0].handover_us, 300);
  EXPECT_EQ(last_upgrade_.engines[1].name, "e0");
  EXPECT_EQ(last_upgrade_.engines[1].blackout_us, 3600000000);
  EXPECT_EQ(last_upgrade_.engines[1].handover_us, 0);
  EXPECT_EQ(last_upgrade_.notes, std::vector<std::string>{"app 7 detached: ..."});
}

// A carried capture the new snapd cannot take (here, a filter program that is no BPF) ends with an
// event saying why, and the upgrade goes on.
TEST_F(NewSnapdTest, ACaptureItCannotTakeEndsWithAnEvent) {
  auto result = StartNewSide();
  wire::CarriedCapture c;
  c.set_id(7);
  c.add_ports("nic0/q0");
  c.set_rx(true);
  c.set_ring_bytes(1 << 20);
  c.set_filter("ip");
  c.set_filter_program("not bpf");
  Brownout(config_, {c});
  ASSERT_TRUE(Ready().ok());
  for (uint32_t i = 0; i < 2; ++i) {
    ASSERT_TRUE(Move(absl::StrCat("e", i), i).ok());
    ASSERT_TRUE(Receive(old_side_.get(), kStepTimeout).ok());
  }
  ASSERT_TRUE(Done().ok());
  ASSERT_TRUE(Receive(old_side_.get(), kStepTimeout).ok());  // serving
  old_side_.reset();
  ASSERT_TRUE(result.get().ok());
  bool told = false;
  for (const Event& e : events_) {
    told |= e.kind == "capture" && e.subject == "capture 7" &&
            e.message ==
                "ended: the new snapd could not take it over: filter 'ip': a program of 7 bytes is "
                "no BPF program";
  }
  EXPECT_TRUE(told);
}

TEST_F(NewSnapdTest, DoneBeforeEveryEngineMovedIsRefused) {
  auto result = StartNewSide();
  Brownout(config_);
  ASSERT_TRUE(Ready().ok());
  ASSERT_TRUE(Move("e0", 0).ok());
  ASSERT_TRUE(Receive(old_side_.get(), kStepTimeout).ok());
  ASSERT_TRUE(Done().ok());
  ExpectFailed("done after 1 of 2 engines moved");
  EXPECT_FALSE(result.get().ok());
  EXPECT_EQ(driver_.stops, 0);  // withdrawn: the old snapd's devices are left alone
}

TEST_F(NewSnapdTest, AnEngineMovedTwiceIsRefused) {
  auto result = StartNewSide();
  Brownout(config_);
  ASSERT_TRUE(Ready().ok());
  ASSERT_TRUE(Move("e0", 0).ok());
  ASSERT_TRUE(Receive(old_side_.get(), kStepTimeout).ok());
  ASSERT_TRUE(Move("e0", 1).ok());
  ExpectFailed("moved in already");
  EXPECT_FALSE(result.get().ok());
}

TEST_F(NewSnapdTest, OneJournalAreaForTwoEnginesIsRefused) {
  auto result = StartNewSide();
  Brownout(config_);
  ASSERT_TRUE(Ready().ok());
  ASSERT_TRUE(Move("e0", 0).ok());
  ASSERT_TRUE(Receive(old_side_.get(), kStepTimeout).ok());
  ASSERT_TRUE(Move("e1", 0).ok());
  ExpectFailed("journal area 0 given to a second engine");
  EXPECT_FALSE(result.get().ok());
}

TEST_F(NewSnapdTest, AConfigThatDoesNotCheckIsRefused) {
  auto result = StartNewSide();
  config::SnapdConfig bad = config_;
  bad.mutable_nics(0)->set_engines(1, "nowhere");
  Brownout(bad);
  ExpectFailed("the old snapd's config");
  EXPECT_FALSE(result.get().ok());
  EXPECT_EQ(driver_.opens, 0);
}

}  // namespace
}  // namespace snapd::upgrade
