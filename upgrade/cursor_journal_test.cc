// The cursor journal against a real death: a forked child (the new snapd) serves an app's rings
// through the journal and dies at each point of a batch; the parent (the old snapd, whose own view
// of the rings is stale, as across processes) takes the rings back and serves on. The app must get
// every frame exactly once, whatever the point.
#include "upgrade/cursor_journal.h"

#include <sys/wait.h>
#include <unistd.h>

#include <memory>
#include <optional>
#include <thread>

#include "absl/strings/str_cat.h"
#include "engines/registry.h"
#include "gtest/gtest.h"
#include "ipc/client.h"
#include "ipc/server.h"
#include "snapd/daemon/app_port.h"
#include "snapd/daemon/echo_app_testing.h"

namespace snapd {
namespace {

constexpr int kFrames = 8;

// Where the child dies in its one batch.
enum class Death { kBeforeCommit, kAfterCommit, kAfterS2cPublished, kAfterPublish };

class CursorJournalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(app_.Connect("journal-test", 7));
    auto memory = JournalMemory::Create(/*areas=*/2, /*capacity=*/4);
    ASSERT_TRUE(memory.ok()) << memory.status();
    memory_ = std::move(*memory);
  }

  void SendFrames() {
    memif::Frame frames[kFrames];
    for (int i = 0; i < kFrames; ++i) {
      payload_[i] = static_cast<uint8_t>(i);
      frames[i] = memif::Frame{&payload_[i], 1};
    }
    ASSERT_EQ(app_.client->tx(0).Transmit(frames, kFrames), kFrames);
  }

  // What the app has received so far, by frame number.
  void Collect(int* seen) {
    memif::Frame got[32];
    uint16_t n;
    while ((n = app_.client->rx(0).Receive(got, 32)) > 0) {
      for (uint16_t i = 0; i < n; ++i) {
        ASSERT_EQ(got[i].len, 1u);
        ASSERT_LT(got[i].data[0], kFrames);
        ++seen[got[i].data[0]];
      }
      app_.client->rx(0).Release();
    }
  }

  EchoApp app_;
  std::optional<JournalMemory> memory_;
  uint8_t payload_[kFrames];
};

class CursorJournalDeathTest : public CursorJournalTest,
                               public ::testing::WithParamInterface<Death> {};

// The child's batch, cut short where `death` says.
class DyingObserver : public BatchObserver {
 public:
  DyingObserver(CursorJournal& journal, memif::Connection& conn, Death death)
      : journal_(journal), conn_(conn), death_(death) {}
  void BatchDone() override {
    if (death_ == Death::kBeforeCommit) _exit(0);
    if (!journal_.Commit()) _exit(2);  // the batch moved no cursor: the test is broken
    if (death_ == Death::kAfterCommit) _exit(0);
    if (death_ == Death::kAfterS2cPublished) {
      conn_.tx(0).Publish();  // the echoes are visible, their slots not yet given back
      _exit(0);
    }
    journal_.Publish();
    _exit(0);
  }

 private:
  CursorJournal& journal_;
  memif::Connection& conn_;
  const Death death_;
};

TEST_P(CursorJournalDeathTest, AppGetsEveryFrameOnceWhereverTheNewSnapdDies) {
  SendFrames();
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // The new snapd: resumes the rings where the old one left them and journals its batch.
    app_.port->Resync();
    CursorJournal journal(memory_->area(1), memory_->capacity());
    if (!journal.Track(app_.port).ok()) _exit(3);
    DyingObserver dying(journal, *app_.conn, GetParam());
    app_.engine->set_batch_observer(&dying);
    app_.engine->Poll();
    _exit(4);  // the observer always exits
  }
  int wstatus = 0;
  ASSERT_EQ(waitpid(child, &wstatus, 0), child);
  ASSERT_TRUE(WIFEXITED(wstatus));
  ASSERT_EQ(WEXITSTATUS(wstatus), 0);

  // The old snapd takes the engine back: completes a committed batch, resyncs, serves on.
  int moved = RollForward(*memory_->area(1), memory_->capacity(),
                          [&](uint32_t app) { return app == 7 ? app_.port : nullptr; });
  const bool committed = GetParam() != Death::kBeforeCommit;
  const bool published = GetParam() == Death::kAfterPublish;
  EXPECT_EQ(moved, committed && !published ? (GetParam() == Death::kAfterS2cPublished ? 1 : 2) : 0);
  app_.port->Resync();
  for (int i = 0; i < 3; ++i) app_.engine->Poll();

  int seen[kFrames] = {};
  Collect(seen);
  for (int i = 0; i < kFrames; ++i) EXPECT_EQ(seen[i], 1) << "frame " << i;
  // The app can go on: its c2s slots all came back.
  EXPECT_EQ(app_.client->tx(0).FreeSlots(), app_.client->tx(0).size());
}

INSTANTIATE_TEST_SUITE_P(Deaths, CursorJournalDeathTest,
                         ::testing::Values(Death::kBeforeCommit, Death::kAfterCommit,
                                           Death::kAfterS2cPublished, Death::kAfterPublish));

// Without the journal, a death between the two publications repeats the batch: the case the
// journal exists for (so the test above can fail).
TEST_F(CursorJournalTest, WithoutJournalTheSameDeathRepeatsTheBatch) {
  SendFrames();
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    app_.port->Resync();
    app_.conn->rx(0).SetDeferred(true);  // hold the c2s tail, as a death before its store would
    app_.engine->Poll();
    _exit(0);
  }
  int wstatus = 0;
  ASSERT_EQ(waitpid(child, &wstatus, 0), child);
  app_.port->Resync();
  app_.engine->Poll();
  int seen[kFrames] = {};
  Collect(seen);
  for (int i = 0; i < kFrames; ++i) EXPECT_EQ(seen[i], 2) << "frame " << i;
}

}  // namespace
}  // namespace snapd
