// The memif hand-over between two processes: this process plays the old snapd (server A) and the
// app; a forked child plays the new snapd, receives A's listener and connection over the upgrade
// channel and serves the app from then on. The app never reconnects and loses no frame.
#include "upgrade/memif_handoff.h"

#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "ipc/client.h"
#include "upgrade/fd_channel.h"

namespace snapd::upgrade {
namespace {

using memif::Connection;
using memif::Frame;
using memif::MemifClient;
using memif::MemifServer;

memif::ServerOptions Options() {
  memif::ServerOptions options;
  options.socket_path = absl::StrCat("/tmp/snapd-upgrade-test-", getpid(), ".sock");
  options.accept_any_id = true;
  return options;
}

int EchoAll(MemifServer& server) {
  int n = 0;
  Frame frames[32];
  for (Connection* c : server.connections()) {
    uint16_t got = c->rx(0).Receive(frames, 32);
    c->tx(0).Transmit(frames, got);
    c->rx(0).Release();
    n += got;
  }
  return n;
}

// The new snapd: adopt what arrives on `sock`, echo until every app has gone.
int RunNewServer(int sock, memif::ServerOptions options) {
  auto handoff = ReceiveMemifHandoff(sock, absl::Seconds(10));
  if (!handoff.ok()) return 10;
  auto server = MemifServer::Adopt(options, std::move(handoff->listener));
  if (!server.ok()) return 11;
  for (auto& c : handoff->connections) {
    if (!(*server)->AdoptConnection(std::move(c)).ok()) return 12;
  }
  char ready = 'r';
  if (write(sock, &ready, 1) != 1) return 13;
  absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (absl::Now() < deadline) {
    (*server)->Poll(0);
    EchoAll(**server);
    if ((*server)->stats().disconnected.Get() > 0 && (*server)->connections().empty()) return 0;
  }
  return 14;
}

TEST(MemifHandoffTest, AppKeepsItsConnectionAcrossProcesses) {
  memif::ServerOptions options = Options();
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
  pid_t child = fork();  // before any thread starts
  if (child == 0) {
    close(sv[0]);
    _exit(RunNewServer(sv[1], options));
  }
  close(sv[1]);
  UniqueFd channel(sv[0]);

  auto a = MemifServer::Create(options);
  ASSERT_TRUE(a.ok());
  std::unique_ptr<MemifClient> app;
  std::thread attach([&] {
    auto c = MemifClient::Connect({options.socket_path, 5});
    if (c.ok()) app = std::move(*c);
  });
  while (!app) (*a)->Poll(5);
  attach.join();

  uint32_t sent = 0, received = 0;
  auto send = [&](uint32_t count) {
    for (uint32_t i = 0; i < count; ++i, ++sent) {
      uint8_t buf[64] = {};
      memcpy(buf, &sent, 4);
      Frame f{buf, 64};
      ASSERT_EQ(app->tx(0).Transmit(&f, 1), 1);
    }
  };
  auto collect = [&](MemifServer* echo, uint32_t until) {
    for (int spins = 0; received < until && spins < 2000000; ++spins) {
      if (echo != nullptr) EchoAll(*echo);
      Frame got[32];
      uint16_t n = app->rx(0).Receive(got, 32);
      for (uint16_t i = 0; i < n; ++i, ++received) {
        uint32_t seq;
        memcpy(&seq, got[i].data, 4);
        ASSERT_EQ(seq, received) << "lost or reordered";
      }
      app->rx(0).Release();
    }
  };
  send(500);
  collect(a->get(), 500);
  send(300);  // in flight at the hand-over

  ASSERT_TRUE(SendMemifHandoff(channel.get(), **a).ok());
  (*a)->Relinquish();
  a->reset();
  char ready;
  ASSERT_EQ(read(channel.get(), &ready, 1), 1) << "the new server did not adopt";

  collect(nullptr, 800);  // the child echoes now
  EXPECT_EQ(received, 800u);
  send(700);
  collect(nullptr, 1500);
  EXPECT_EQ(received, 1500u);
  EXPECT_TRUE(app->CheckControl().ok()) << "the app saw a disconnect";
  app->Disconnect("done");
  int status;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
}

TEST(FdChannelTest, MalformedMessagesAreRefused) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
  UniqueFd a(sv[0]), b(sv[1]);
  ASSERT_EQ(write(a.get(), "junk", 4), 4);
  EXPECT_EQ(ReceiveFdMessage(b.get(), absl::Seconds(1)).status().code(),
            absl::StatusCode::kInvalidArgument);
  // A message announcing fds that never come: the receiver times out instead of hanging.
  ASSERT_TRUE(SendFdMessage(a.get(), "x", {}).ok());
  auto ok = ReceiveFdMessage(b.get(), absl::Seconds(1));
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->bytes, "x");
  // Indices naming fds that were not sent.
  ASSERT_TRUE(SendFdMessage(a.get(), std::string("\x08\x05", 2), {}).ok());  // listener_fd: 5
  EXPECT_EQ(ReceiveMemifHandoff(b.get(), absl::Seconds(1)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(FdChannelTest, ManyFdsArriveInOrder) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
  UniqueFd a(sv[0]), b(sv[1]);
  std::vector<UniqueFd> pipes;
  std::vector<int> raw;
  for (int i = 0; i < 300; ++i) {  // more than one packet's worth
    int p[2];
    ASSERT_EQ(pipe(p), 0);
    char c = static_cast<char>(i);
    ASSERT_EQ(write(p[1], &c, 1), 1);
    pipes.emplace_back(p[0]);
    close(p[1]);
    raw.push_back(p[0]);
  }
  std::thread sender([&] { EXPECT_TRUE(SendFdMessage(a.get(), "fds", raw).ok()); });
  auto msg = ReceiveFdMessage(b.get(), absl::Seconds(5));
  sender.join();
  ASSERT_TRUE(msg.ok()) << msg.status();
  ASSERT_EQ(msg->fds.size(), 300u);
  for (int i = 0; i < 300; ++i) {
    char c;
    ASSERT_EQ(read(msg->fds[i].get(), &c, 1), 1);
    EXPECT_EQ(static_cast<uint8_t>(c), static_cast<uint8_t>(i));
  }
}

}  // namespace
}  // namespace snapd::upgrade
