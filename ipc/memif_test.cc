// The memif server and client together, in one process: real sockets, memfds and eventfds.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "ipc/client.h"
#include "ipc/control_message.h"
#include "ipc/eventfd.h"
#include "ipc/peer_fd.h"
#include "ipc/region.h"
#include "ipc/server.h"
#include "ipc/socket.h"

namespace snapd::memif {
namespace {

// Bazel's TEST_TMPDIR is too deep for a Unix socket path (108 bytes), so sockets live in /tmp under
// a name unique to this process.
std::string TestSocket(absl::string_view name) {
  return absl::StrCat("/tmp/snapd-test-", getpid(), "-", name, ".sock");
}

// Options for a server that serves any interface id, on a socket unique to this test.
ServerOptions AnyId(absl::string_view name) {
  ServerOptions options{TestSocket(name)};
  options.accept_any_id = true;
  return options;
}

// A server on its own thread that reflects every frame back on the queue it came from, the way
// memif_echo does. Everything touching the server runs on that thread.
class EchoServer {
 public:
  explicit EchoServer(ServerOptions options, std::vector<InterfaceConfig> interfaces = {}) {
    auto server = MemifServer::Create(std::move(options));
    EXPECT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    for (const auto& i : interfaces) EXPECT_TRUE(server_->AddInterface(i).ok());
    server_->set_on_disconnected([this](Connection& c, absl::string_view reason) {
      std::lock_guard<std::mutex> lock(mu_);
      reasons_.push_back(std::string(reason));
    });
    thread_ = std::thread([this] { Run(); });
  }
  ~EchoServer() {
    stop_ = true;
    thread_.join();
    server_.reset();  // its callbacks write reasons_, which must still exist
  }
  const ServerStats& stats() const { return server_->stats(); }
  std::vector<std::string> disconnect_reasons() {
    std::lock_guard<std::mutex> lock(mu_);
    return reasons_;
  }
  // Waits until `pred` holds for the server's stats, or 10 s.
  template <typename Pred>
  bool WaitFor(Pred pred) {
    for (int i = 0; i < 10000; ++i) {
      if (pred(server_->stats())) return true;
      usleep(1000);
    }
    return false;
  }

 private:
  void Run() {
    Frame frames[32];
    while (!stop_) {
      server_->Poll(0);
      bool idle = true;
      for (Connection* c : server_->connections()) {
        for (size_t q = 0; q < c->queue_pairs(); ++q) {
          uint16_t n = c->rx(q).Receive(frames, 32);
          if (n > 0) {
            idle = false;
            c->tx(q).Transmit(frames, n);
          }
          c->rx(q).Release();
        }
      }
      server_->DropFailedConnections();
      if (idle) usleep(50);
    }
  }

  std::unique_ptr<MemifServer> server_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  // std::mutex rather than absl::Mutex: the system's Abseil is not built with TSan, so TSan cannot
  // see absl::Mutex's locking.
  std::mutex mu_;
  std::vector<std::string> reasons_;  // guarded by mu_
};

// Sends `count` frames carrying their sequence numbers and checks they come back in order.
void ExchangeSequenced(MemifClient& client, int count, size_t frame_len = 64, size_t queue = 0) {
  int sent = 0, received = 0;
  std::vector<uint8_t> buf(frame_len);
  for (int spins = 0; received < count && spins < 10000000; ++spins) {
    if (sent < count) {
      memcpy(buf.data(), &sent, sizeof(sent));
      Frame f{buf.data(), static_cast<uint32_t>(frame_len)};
      sent += client.tx(queue).Transmit(&f, 1);
    }
    Frame got[32];
    uint16_t n = client.rx(queue).Receive(got, 32);
    for (uint16_t i = 0; i < n; ++i) {
      int seq;
      ASSERT_EQ(got[i].len, frame_len);
      memcpy(&seq, got[i].data, sizeof(seq));
      ASSERT_EQ(seq, received) << "frame out of order";
      ++received;
    }
    client.rx(queue).Release();
    if (n == 0) usleep(10);
  }
  EXPECT_EQ(received, count);
}

TEST(MemifTest, ClientAndServerExchangeFrames) {
  ServerOptions options{TestSocket("exchange")};
  EchoServer server(options, {{7, ""}});
  ClientOptions copts{options.socket_path, 7};
  copts.queue_pairs = 2;
  auto client = MemifClient::Connect(copts);
  ASSERT_TRUE(client.ok()) << client.status();
  EXPECT_EQ((*client)->queue_pairs(), 2u);
  EXPECT_EQ((*client)->server_name(), "snapd");
  ExchangeSequenced(**client, 5000);
  ExchangeSequenced(**client, 5000, 64, /*queue=*/1);
  ExchangeSequenced(**client, 50, 5000);  // chained: 3 buffers each way
}

TEST(MemifTest, RefusalsCarryTheReason) {
  ServerOptions options{TestSocket("refusals")};
  EchoServer server(options, {{1, ""}, {2, "letmein"}});
  auto unknown = MemifClient::Connect({options.socket_path, 9});
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("unknown interface id 9"), std::string::npos)
      << unknown.status();

  ClientOptions wrong{options.socket_path, 2};
  wrong.secret = "guess";
  auto bad_secret = MemifClient::Connect(wrong);
  ASSERT_FALSE(bad_secret.ok());
  EXPECT_NE(bad_secret.status().message().find("incorrect secret"), std::string::npos);

  ClientOptions none{options.socket_path, 2};
  EXPECT_FALSE(MemifClient::Connect(none).ok());

  ClientOptions right{options.socket_path, 2};
  right.secret = "letmein";
  auto good = MemifClient::Connect(right);
  ASSERT_TRUE(good.ok()) << good.status();

  auto twice = MemifClient::Connect(right);
  ASSERT_FALSE(twice.ok());
  EXPECT_NE(twice.status().message().find("already connected"), std::string::npos);
  ExchangeSequenced(**good, 100);
}

TEST(MemifTest, SecondServerOnTheSamePathFails) {
  ServerOptions options{TestSocket("twice")};
  auto first = MemifServer::Create(options);
  ASSERT_TRUE(first.ok());
  auto second = MemifServer::Create(options);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kAlreadyExists);
}

TEST(MemifTest, SixteenClientsAndOneVanishes) {
  ServerOptions options = AnyId("sixteen");
  EchoServer server(options);
  std::vector<std::unique_ptr<MemifClient>> clients;
  for (uint32_t id = 0; id < 16; ++id) {
    auto c = MemifClient::Connect({options.socket_path, id});
    ASSERT_TRUE(c.ok()) << c.status();
    clients.push_back(std::move(*c));
  }
  for (auto& c : clients) ExchangeSequenced(*c, 200);
  // Client 5 goes away without a word, as a killed process would.
  clients[5].reset();
  ASSERT_TRUE(server.WaitFor([](const ServerStats& s) { return s.disconnected.Get() == 1; }));
  for (size_t i = 0; i < clients.size(); ++i) {
    if (clients[i]) ExchangeSequenced(*clients[i], 200);
  }
  // Its id is free again.
  auto again = MemifClient::Connect({options.socket_path, 5});
  ASSERT_TRUE(again.ok()) << again.status();
  ExchangeSequenced(**again, 100);
}

// A client that speaks the protocol by hand, to send what a well-behaved client never would.
class RawClient {
 public:
  explicit RawClient(const std::string& path) {
    auto fd = ConnectSeqpacket(path);
    EXPECT_TRUE(fd.ok());
    fd_ = std::move(*fd);
    Expect(MessageType::kHello);
  }
  void Send(const WireMessage& msg, int fd = -1) {
    ASSERT_TRUE(SendMessage(fd_.get(), msg, fd).ok());
  }
  // Returns the next message's type, and the disconnect reason if it is one.
  MessageType Next(std::string* reason = nullptr) {
    for (int i = 0; i < 5000; ++i) {
      Received r = ReceiveMessage(fd_.get());
      if (r.kind == Received::Kind::kWouldBlock) {
        usleep(1000);
        continue;
      }
      if (r.kind != Received::Kind::kMessage) return MessageType::kNone;
      if (reason && r.msg.type == static_cast<uint16_t>(MessageType::kDisconnect)) {
        *reason = FieldToString(r.msg.disconnect.string);
      }
      return static_cast<MessageType>(r.msg.type);
    }
    return MessageType::kNone;
  }
  void Expect(MessageType type) { ASSERT_EQ(Next(), type); }
  // Sends init (any id) and checks the ack.
  void Init() {
    Send(MakeInit(1, InterfaceMode::kEthernet, "", "raw"));
    Expect(MessageType::kAck);
  }
  // Sends init and one region of 64 KiB, and checks both acks: ready for add_ring.
  void InitWithRegion() {
    Init();
    auto region = MappedRegion::Create("r", 1 << 16);
    ASSERT_TRUE(region.ok());
    Send(MakeAddRegion(0, 1 << 16), region->fd());
    Expect(MessageType::kAck);
  }
  // Sends `msg` with `fd` and returns the reason of the disconnect that must follow.
  std::string RefusalOf(const WireMessage& msg, int fd = -1) {
    Send(msg, fd);
    std::string reason;
    EXPECT_EQ(Next(&reason), MessageType::kDisconnect);
    return reason;
  }
  int fd() const { return fd_.get(); }

 private:
  UniqueFd fd_;
};

TEST(MemifTest, UnsealedRegionIsRefused) {
  ServerOptions options = AnyId("unsealed");
  EchoServer server(options);
  RawClient raw(options.socket_path);
  raw.Init();
  UniqueFd mem(::memfd_create("unsealed", MFD_CLOEXEC));
  ASSERT_EQ(::ftruncate(mem.get(), 4096), 0);
  std::string reason = raw.RefusalOf(MakeAddRegion(0, 4096), mem.get());
  EXPECT_NE(reason.find("F_SEAL_SHRINK"), std::string::npos) << reason;
}

TEST(MemifTest, RegionSmallerThanAnnouncedIsRefused) {
  ServerOptions options = AnyId("small");
  EchoServer server(options);
  RawClient raw(options.socket_path);
  raw.Init();
  auto region = MappedRegion::Create("small", 4096);
  ASSERT_TRUE(region.ok());
  std::string reason = raw.RefusalOf(MakeAddRegion(0, 1 << 20), region->fd());
  EXPECT_NE(reason.find("smaller than"), std::string::npos) << reason;
}

TEST(MemifTest, InterruptFdMustBeAnEventfd) {
  ServerOptions options = AnyId("notevent");
  EchoServer server(options);
  RawClient raw(options.socket_path);
  ASSERT_NO_FATAL_FAILURE(raw.InitWithRegion());
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  EXPECT_EQ(raw.RefusalOf(MakeAddRing(true, 0, 0, 0, 4), pipe_fds[1]),
            "interrupt fd is not an eventfd");
  ::close(pipe_fds[0]);
  ::close(pipe_fds[1]);
}

TEST(MemifTest, BadRingCookieIsRefused) {
  ServerOptions options = AnyId("cookie");
  EchoServer server(options);
  RawClient raw(options.socket_path);
  raw.Init();
  auto region = MappedRegion::Create("r", 1 << 16);  // all zero: no cookie in the rings
  ASSERT_TRUE(region.ok());
  raw.Send(MakeAddRegion(0, 1 << 16), region->fd());
  raw.Expect(MessageType::kAck);
  auto e1 = CreateEventFd();
  auto e2 = CreateEventFd();
  raw.Send(MakeAddRing(true, 0, 0, 0, 4), e1->get());
  raw.Expect(MessageType::kAck);
  raw.Send(MakeAddRing(false, 0, 0, 4096, 4), e2->get());
  raw.Expect(MessageType::kAck);
  EXPECT_EQ(raw.RefusalOf(MakeConnect("x")), "ring cookie mismatch");
}

TEST(MemifTest, MalformedMessageClosesTheConnection) {
  ServerOptions options = AnyId("malformed");
  EchoServer server(options);
  RawClient raw(options.socket_path);
  char junk[7] = "abcdef";
  ASSERT_EQ(::send(raw.fd(), junk, sizeof(junk), 0), 7);
  std::string reason;
  EXPECT_EQ(raw.Next(&reason), MessageType::kDisconnect);
  EXPECT_NE(reason.find("7 bytes"), std::string::npos) << reason;
}

TEST(MemifTest, CursorAbuseDisconnectsOnlyTheOffender) {
  ServerOptions options = AnyId("abuse");
  EchoServer server(options);
  auto good = MemifClient::Connect({options.socket_path, 1});
  ASSERT_TRUE(good.ok());
  // Every fd from here on belongs to the bad client (or the server's copy of its regions).
  int watermark = ::dup(0);
  ::close(watermark);
  auto bad = MemifClient::Connect({options.socket_path, 2});
  ASSERT_TRUE(bad.ok());
  // The bad client writes a head far past the ring into its own c2s ring, through its memfd.
  int ring_fd = -1;
  for (int fd = watermark; fd < 1024 && ring_fd < 0; ++fd) {
    char path[64], target[256] = {};
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(path, target, sizeof(target) - 1);
    if (n > 0 && strstr(target, "memfd:memif-rings") != nullptr) ring_fd = fd;
  }
  ASSERT_GE(ring_fd, 0);
  void* mem = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, ring_fd, 0);
  ASSERT_NE(mem, MAP_FAILED);
  auto* c2s = static_cast<RingHeader*>(mem);
  __atomic_store_n(&c2s->head, static_cast<uint16_t>(c2s->tail + 5000), __ATOMIC_RELEASE);
  ::munmap(mem, 4096);
  ASSERT_TRUE(server.WaitFor([](const ServerStats& s) { return s.disconnected.Get() == 1; }));
  EXPECT_EQ(server.disconnect_reasons().at(0), "c2s ring head moved past the ring size");
  absl::Status status;
  for (int i = 0; i < 1000 && status.ok(); ++i) {
    status = (*bad)->CheckControl();
    usleep(1000);
  }
  EXPECT_NE(status.message().find("head moved past"), std::string::npos) << status;
  ExchangeSequenced(**good, 500);
}

TEST(MemifTest, SilentClientIsDroppedAfterTheHandshakeTimeout) {
  ServerOptions options = AnyId("silent");
  options.handshake_timeout = absl::Milliseconds(100);
  EchoServer server(options);
  RawClient raw(options.socket_path);
  std::string reason;
  EXPECT_EQ(raw.Next(&reason), MessageType::kDisconnect);
  EXPECT_EQ(reason, "handshake timed out");
  EXPECT_EQ(server.stats().timed_out.Get(), 1u);
}

TEST(MemifTest, TooManyHandshakesAtOnceAreRefused) {
  ServerOptions options = AnyId("crowd");
  options.max_handshakes = 1;
  EchoServer server(options);
  RawClient first(options.socket_path);
  auto second = ConnectSeqpacket(options.socket_path);
  ASSERT_TRUE(second.ok());
  Received r;
  for (int i = 0; i < 5000; ++i) {
    r = ReceiveMessage(second->get());
    if (r.kind != Received::Kind::kWouldBlock) break;
    usleep(1000);
  }
  ASSERT_EQ(r.kind, Received::Kind::kMessage);
  EXPECT_EQ(FieldToString(r.msg.disconnect.string), "too many clients connecting");
  // The first one can still finish.
  first.Init();
}

// Runs `fn` in a child process as uid and gid 65534 (the per-uid limits do not apply to root) and
// returns its exit status: fn's value, or 2 if the child could not become that user. The child
// makes no gtest assertions; it says what went wrong on stderr.
int AsNobody(const std::function<int()>& fn) {
  pid_t child = fork();
  if (child == 0) {
    if (setgid(65534) != 0 || setuid(65534) != 0) _exit(2);
    _exit(fn());
  }
  int status = 0;
  if (child < 0 || waitpid(child, &status, 0) != child) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// A raw connection that has had its hello: it holds a handshake slot and says nothing.
UniqueFd IdleConnection(const std::string& path) {
  auto fd = ConnectSeqpacket(path);
  if (!fd.ok()) return UniqueFd();
  for (int i = 0; i < 5000; ++i) {
    Received r = ReceiveMessage(fd->get());
    if (r.kind == Received::Kind::kMessage) return std::move(*fd);
    if (r.kind != Received::Kind::kWouldBlock) break;
    usleep(1000);
  }
  return UniqueFd();
}

TEST(MemifTest, OneUidCannotHoldEveryHandshakeSlot) {
  ServerOptions options = AnyId("peruid");
  options.max_handshakes_per_uid = 2;
  EchoServer server(options);
  ASSERT_EQ(::chmod(options.socket_path.c_str(), 0666), 0);
  int told[2], done[2];
  ASSERT_EQ(::pipe(told), 0);
  ASSERT_EQ(::pipe(done), 0);
  std::thread other([&] {
    // Once nobody holds its two slots and was refused a third, root still gets in.
    char c = 0;
    if (::read(told[0], &c, 1) == 1 && c == 'r') {
      auto root = MemifClient::Connect({options.socket_path, 2});
      EXPECT_TRUE(root.ok()) << root.status();
    }
    (void)!::write(done[1], "x", 1);
  });
  int status = AsNobody([&] {
    UniqueFd idle1 = IdleConnection(options.socket_path);
    UniqueFd idle2 = IdleConnection(options.socket_path);
    if (!idle1 || !idle2) return fprintf(stderr, "nobody: no idle connections\n"), 3;
    auto third = MemifClient::Connect({options.socket_path, 1});
    if (third.ok() ||
        third.status().message().find("too many clients of this uid") == std::string::npos) {
      fprintf(stderr, "nobody's third: %s\n", third.status().ToString().c_str());
      return 4;
    }
    (void)!::write(told[1], "r", 1);
    char c;
    (void)!::read(done[0], &c, 1);  // hold the slots until root has connected
    return 0;
  });
  if (status != 0) (void)!::write(told[1], "f", 1);
  other.join();
  EXPECT_EQ(status, 0);
  EXPECT_GE(server.stats().busy.Get(), 1u);
  for (int fd : {told[0], told[1], done[0], done[1]}) ::close(fd);
}

TEST(MemifTest, InterfaceOfAnotherUidIsRefused) {
  ServerOptions options{TestSocket("uid")};
  InterfaceConfig mine{7};
  mine.uid = getuid();
  InterfaceConfig theirs{8};
  theirs.uid = getuid() + 4242;
  EchoServer server(options, {mine, theirs});
  auto refused = MemifClient::Connect({options.socket_path, 8});
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("belongs to uid"), std::string::npos)
      << refused.status();
  auto ok = MemifClient::Connect({options.socket_path, 7});
  ASSERT_TRUE(ok.ok()) << ok.status();
  ExchangeSequenced(**ok, 100);
}

TEST(MemifTest, RegionBytesOfAConnectionAreCapped) {
  ServerOptions options = AnyId("cap");
  options.max_region_bytes = 1 << 16;
  EchoServer server(options);
  auto c = MemifClient::Connect({options.socket_path, 1});  // 1024 x 2048-byte buffers
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("regions of more than 65536 bytes"), std::string::npos)
      << c.status();
}

TEST(MemifTest, HugetlbfsRegionIsRefused) {
  UniqueFd huge(::memfd_create("huge", MFD_CLOEXEC | MFD_HUGETLB | MFD_ALLOW_SEALING));
  if (!huge) GTEST_SKIP() << "no hugetlbfs memfd here: " << strerror(errno);
  auto region = MappedRegion::MapPeer(std::move(huge), 2 << 20);
  ASSERT_FALSE(region.ok());
  EXPECT_NE(region.status().message().find("hugetlbfs"), std::string::npos) << region.status();
}

// The owner may disconnect a client from within on_connected (snapd does when the engine refuses
// the port): the server must not touch the freed connection afterwards (ASan checks).
TEST(MemifTest, DisconnectFromOnConnectedIsSafe) {
  ServerOptions options = AnyId("uaf");
  auto server = MemifServer::Create(options);
  ASSERT_TRUE(server.ok()) << server.status();
  MemifServer* s = server->get();
  s->set_on_connected([s](Connection& c) { s->Disconnect(c.id(), "engine refused the port"); });
  std::atomic<bool> stop{false};
  std::thread poller([&] {
    while (!stop) s->Poll(1);
  });
  for (int i = 0; i < 3; ++i) {
    auto c = MemifClient::Connect({options.socket_path, 1});
    if (!c.ok()) {
      EXPECT_NE(c.status().message().find("engine refused"), std::string::npos) << c.status();
      continue;
    }
    absl::Status status;
    for (int k = 0; k < 5000 && status.ok(); ++k) {
      status = (*c)->CheckControl();
      usleep(1000);
    }
    EXPECT_NE(status.message().find("engine refused the port"), std::string::npos) << status;
  }
  stop = true;
  poller.join();
  EXPECT_EQ(s->stats().disconnected.Get(), 3u);
}

// An app that clears O_NONBLOCK on the interrupt eventfd it shares with us, saturates it and asks
// for interrupts: the server's transmit must not block. The app is disconnected with the reason;
// another app goes on.
TEST(MemifTest, SaturatedInterruptFdDisconnectsOnlyThatApp) {
  ServerOptions options = AnyId("saturate");
  EchoServer server(options);
  auto good = MemifClient::Connect({options.socket_path, 1});
  ASSERT_TRUE(good.ok());
  auto bad = MemifClient::Connect({options.socket_path, 2});
  ASSERT_TRUE(bad.ok());
  int efd = (*bad)->rx(0).eventfd();  // the s2c ring's: the server writes it
  ASSERT_EQ(::fcntl(efd, F_SETFL, ::fcntl(efd, F_GETFL) & ~O_NONBLOCK), 0);
  uint64_t full = 0xfffffffffffffffeull;
  ASSERT_EQ(::write(efd, &full, sizeof(full)), static_cast<ssize_t>(sizeof(full)));
  (*bad)->rx(0).SetInterruptMode(true);
  uint8_t byte[64] = {};
  Frame f{byte, sizeof(byte)};
  ASSERT_EQ((*bad)->tx(0).Transmit(&f, 1), 1);  // the echo of it wakes the app
  if (!server.WaitFor([](const ServerStats& s) { return s.disconnected.Get() == 1; })) {
    fprintf(stderr, "the server is stuck on the app's eventfd\n");
    abort();  // its thread cannot be joined
  }
  EXPECT_EQ(server.disconnect_reasons().at(0), "peer saturated its interrupt eventfd");
  ExchangeSequenced(**good, 500);
}

TEST(MemifTest, RegionBytesOfAUidAreCapped) {
  ServerOptions options = AnyId("uidcap");
  options.max_region_bytes_per_uid = 6 << 20;  // one default client maps a bit over 4 MiB
  EchoServer server(options);
  ASSERT_EQ(::chmod(options.socket_path.c_str(), 0666), 0);
  int status = AsNobody([&] {
    auto first = MemifClient::Connect({options.socket_path, 1});
    if (!first.ok()) return fprintf(stderr, "first: %s\n", first.status().ToString().c_str()), 3;
    auto second = MemifClient::Connect({options.socket_path, 2});
    if (second.ok() || second.status().message().find("bytes for this uid") == std::string::npos) {
      fprintf(stderr, "second: %s\n", second.status().ToString().c_str());
      return 4;
    }
    first->reset();  // its bytes are free again once the server has seen it go
    absl::Status third;
    for (int i = 0; i < 500; ++i) {
      auto c = MemifClient::Connect({options.socket_path, 3});
      third = c.status();
      if (c.ok()) return 0;
      usleep(10000);
    }
    return fprintf(stderr, "third: %s\n", third.ToString().c_str()), 5;
  });
  EXPECT_EQ(status, 0);
}

TEST(MemifTest, SemaphoreEventfdIsRefused) {
  ServerOptions options = AnyId("semaphore");
  EchoServer server(options);
  RawClient raw(options.socket_path);
  ASSERT_NO_FATAL_FAILURE(raw.InitWithRegion());
  UniqueFd sem(::eventfd(0, EFD_SEMAPHORE | EFD_CLOEXEC));
  ASSERT_TRUE(sem.valid());
  std::string reason = raw.RefusalOf(MakeAddRing(true, 0, 0, 0, 4), sem.get());
  EXPECT_NE(reason.find("semaphore"), std::string::npos) << reason;
}

// Closing the last reference to a TCP socket whose SO_LINGER is long, with unsent data, blocks for
// the linger time. An app that attaches such a socket to a message (and closes its copy) must not
// hold the server's thread: the server closes what it does not keep on a thread of its own.
TEST(MemifTest, ClosingAnAppsFdNeverBlocksTheServer) {
  ServerOptions options = AnyId("linger");
  EchoServer server(options);
  UniqueFd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), len), 0);
  ASSERT_EQ(::listen(listener.get(), 1), 0);
  ASSERT_EQ(::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&addr), &len), 0);
  UniqueFd tcp(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_EQ(::connect(tcp.get(), reinterpret_cast<sockaddr*>(&addr), len), 0);
  ASSERT_EQ(::fcntl(tcp.get(), F_SETFL, O_NONBLOCK), 0);
  char junk[65536] = {};
  while (::send(tcp.get(), junk, sizeof(junk), MSG_NOSIGNAL) > 0) {
  }
  linger lg{1, 600};
  ASSERT_EQ(::setsockopt(tcp.get(), SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
  {
    RawClient raw(options.socket_path);
    raw.Send(MakeInit(1, InterfaceMode::kEthernet, "", "raw"), tcp.get());
    tcp.reset();  // the server's copy is now the last one
    std::string reason;
    EXPECT_EQ(raw.Next(&reason), MessageType::kDisconnect);
  }
  // The server still serves: a new client connects and exchanges frames.
  auto c = MemifClient::Connect({options.socket_path, 2});
  ASSERT_TRUE(c.ok()) << c.status();
  ExchangeSequenced(**c, 100);
  // And the socket was closed abortively, not after its linger time.
  for (int i = 0; i < 5000 && PeerFdsClosing(getuid()) > 0; ++i) usleep(1000);
  EXPECT_EQ(PeerFdsClosing(getuid()), 0u);
}

}  // namespace
}  // namespace snapd::memif
