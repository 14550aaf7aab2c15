// Handing a memif server's listener and connections to another server, as an upgrade does: the
// client keeps its connection, its frames in flight are served by the new server, in order, and it
// never sees a disconnect.
#include <unistd.h>

#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "ipc/client.h"
#include "ipc/server.h"

namespace snapd::memif {
namespace {

ServerOptions Options() {
  ServerOptions options;
  options.socket_path = absl::StrCat("/tmp/snapd-handoff-test-", getpid(), ".sock");
  options.accept_any_id = true;
  return options;
}

// Connects a client while the test thread drives the server's control loop.
std::unique_ptr<MemifClient> ConnectWhilePolling(MemifServer& server, const std::string& path,
                                                 uint32_t id) {
  std::unique_ptr<MemifClient> client;
  std::thread t([&] {
    auto c = MemifClient::Connect({path, id});
    EXPECT_TRUE(c.ok()) << c.status();
    if (c.ok()) client = std::move(*c);
  });
  while (server.connections().size() < server.stats().accepted.Get() || !client) {
    server.Poll(5);
    if (client) break;
  }
  t.join();
  return client;
}

// Echoes whatever waits on every connection; returns how many frames.
int EchoOnce(MemifServer& server) {
  int n = 0;
  Frame frames[32];
  for (Connection* c : server.connections()) {
    uint16_t got = c->rx(0).Receive(frames, 32);
    EXPECT_EQ(c->tx(0).Transmit(frames, got), got);
    c->rx(0).Release();
    n += got;
  }
  return n;
}

void Send(MemifClient& client, uint32_t first, uint32_t count) {
  for (uint32_t seq = first; seq < first + count; ++seq) {
    uint8_t buf[64] = {};
    memcpy(buf, &seq, 4);
    Frame f{buf, 64};
    ASSERT_EQ(client.tx(0).Transmit(&f, 1), 1);
  }
}

// Receives `count` frames, checking they carry first, first+1, ...
void ExpectBack(MemifClient& client, MemifServer& server, uint32_t first, uint32_t count) {
  uint32_t next = first;
  for (int spins = 0; next < first + count && spins < 100000; ++spins) {
    EchoOnce(server);
    Frame got[32];
    uint16_t n = client.rx(0).Receive(got, 32);
    for (uint16_t i = 0; i < n; ++i) {
      uint32_t seq;
      memcpy(&seq, got[i].data, 4);
      ASSERT_EQ(seq, next);
      ++next;
    }
    client.rx(0).Release();
  }
  EXPECT_EQ(next, first + count);
}

// A hands its listener and connections over and goes away without a word to its clients; B
// serves on A's listener. Returns B (nullptr if any step failed) and what A exported.
struct HandedOver {
  std::unique_ptr<MemifServer> server;
  std::vector<ConnectionHandoff> connections;
};
HandedOver HandOver(std::unique_ptr<MemifServer> a, const ServerOptions& options) {
  HandedOver out;
  auto listener = a->ExportListener();
  auto conns = a->ExportConnections();
  EXPECT_TRUE(listener.ok() && conns.ok());
  if (!listener.ok() || !conns.ok()) return out;
  a->Relinquish();
  a.reset();  // A is gone; it said nothing to the client and left the socket file
  auto b = MemifServer::Adopt(options, std::move(*listener));
  EXPECT_TRUE(b.ok()) << b.status();
  if (b.ok()) out.server = std::move(*b);
  out.connections = std::move(*conns);
  return out;
}

TEST(HandoffTest, ClientKeepsItsConnectionAcrossServers) {
  ServerOptions options = Options();
  auto a = MemifServer::Create(options);
  ASSERT_TRUE(a.ok());
  std::unique_ptr<MemifClient> client = ConnectWhilePolling(**a, options.socket_path, 7);
  ASSERT_NE(client, nullptr);
  // Frames before, several ring wraps' worth, served by A.
  for (uint32_t round = 0; round < 10; ++round) {
    Send(*client, round * 300, 300);
    ExpectBack(*client, **a, round * 300, 300);
  }
  // Frames in flight at the hand-over: written by the client, not yet read by A.
  Send(*client, 3000, 200);

  HandedOver h = HandOver(std::move(*a), options);
  ASSERT_NE(h.server, nullptr);
  ASSERT_EQ(h.connections.size(), 1u);
  MemifServer& b = *h.server;
  std::vector<uint32_t> connected;
  b.set_on_connected([&](Connection& c) { connected.push_back(c.id()); });
  ASSERT_TRUE(b.AdoptConnection(std::move(h.connections[0])).ok());
  EXPECT_EQ(connected, std::vector<uint32_t>{7});
  // The frames in flight come back from B, in order, then new ones.
  ExpectBack(*client, b, 3000, 200);
  Send(*client, 3200, 500);
  ExpectBack(*client, b, 3200, 500);
  b.Poll(0);
  EXPECT_TRUE(client->CheckControl().ok()) << "the client saw a disconnect";
  // New clients reach B on the same socket path.
  std::unique_ptr<MemifClient> second = ConnectWhilePolling(b, options.socket_path, 8);
  ASSERT_NE(second, nullptr);
  EXPECT_EQ(b.connections().size(), 2u);
}

// A server that resumes after a crash loop drops what waited in the client's ring, counts it, and
// serves what comes next.
TEST(HandoffTest, DiscardPendingDropsWhatWaitedAndServesOn) {
  ServerOptions options = Options();
  auto a = MemifServer::Create(options);
  ASSERT_TRUE(a.ok());
  std::unique_ptr<MemifClient> client = ConnectWhilePolling(**a, options.socket_path, 5);
  ASSERT_NE(client, nullptr);
  Send(*client, 0, 100);
  ExpectBack(*client, **a, 0, 100);
  Send(*client, 100, 300);  // waiting at the crash
  HandedOver h = HandOver(std::move(*a), options);
  ASSERT_NE(h.server, nullptr);
  ASSERT_EQ(h.connections.size(), 1u);
  MemifServer& b = *h.server;
  h.connections[0].discard_pending = true;
  ASSERT_TRUE(b.AdoptConnection(std::move(h.connections[0])).ok());
  EXPECT_EQ(b.stats().discarded.Get(), 300u);
  // Nothing of the 300 comes back; the next frames do, in order, and the ring has room for them.
  EXPECT_EQ(EchoOnce(b), 0);
  Send(*client, 400, 1000);
  ExpectBack(*client, b, 400, 1000);
  EXPECT_TRUE(client->CheckControl().ok());
}

TEST(HandoffTest, BadHandoffIsRefusedAndTheClientToldWhy) {
  ServerOptions options = Options();
  auto a = MemifServer::Create(options);
  ASSERT_TRUE(a.ok());
  std::unique_ptr<MemifClient> client = ConnectWhilePolling(**a, options.socket_path, 3);
  auto conns = (*a)->ExportConnections();
  ASSERT_TRUE(conns.ok());
  ConnectionHandoff h = std::move((*conns)[0]);
  h.c2s_rings[0].offset = 1 << 30;  // a ring outside its region
  ServerOptions other = options;
  other.socket_path += ".b";
  auto b = MemifServer::Create(other);
  ASSERT_TRUE(b.ok());
  absl::Status status = (*b)->AdoptConnection(std::move(h));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_TRUE((*b)->connections().empty());
  // B will not serve it: the client is told why (at an upgrade it then connects again).
  absl::Status told;
  for (int i = 0; i < 5000 && told.ok(); ++i) {
    told = client->CheckControl();
    if (told.ok()) usleep(1000);
  }
  EXPECT_NE(told.message().find("handoff: ring outside its region"), std::string::npos) << told;
}

}  // namespace
}  // namespace snapd::memif
