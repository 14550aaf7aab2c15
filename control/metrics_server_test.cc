// The metrics endpoint's socket: snapd's own, served by civetweb, handed from one server to the
// next as an upgrade does, paused and resumed. No daemon: these ask for a page that is not
// /metrics (civetweb's 404 shows who served it); /metrics itself is tests/snapd_metrics_test's.
#include "control/metrics_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>

#include "absl/time/clock.h"
#include "base/unique_fd.h"
#include "gtest/gtest.h"

namespace snapd {
namespace {

// Connects to "127.0.0.1:PORT" and sends a request for /nothing.
UniqueFd Ask(const std::string& address) {
  UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in at{};
  at.sin_family = AF_INET;
  at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  at.sin_port = htons(static_cast<uint16_t>(std::stoi(address.substr(address.rfind(':') + 1))));
  EXPECT_EQ(connect(fd.get(), reinterpret_cast<sockaddr*>(&at), sizeof(at)), 0) << address;
  const std::string req = "GET /nothing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  EXPECT_EQ(write(fd.get(), req.data(), req.size()), static_cast<ssize_t>(req.size()));
  return fd;
}

// The status line of the answer, waiting up to `timeout_ms` for it ("" if none came).
std::string Answer(int fd, int timeout_ms = 10000) {
  pollfd p{fd, POLLIN, 0};
  if (poll(&p, 1, timeout_ms) != 1) return "";
  char buf[512];
  const ssize_t n = read(fd, buf, sizeof(buf));
  if (n <= 0) return "";
  std::string s(buf, n);
  return s.substr(0, s.find("\r\n"));
}

TEST(MetricsServerTest, ServesItsOwnSocket) {
  auto s = MetricsServer::Start(nullptr, "127.0.0.1:0");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ((*s)->address().rfind("127.0.0.1:", 0), 0u) << (*s)->address();
  EXPECT_NE((*s)->address(), "127.0.0.1:0");
  UniqueFd c = Ask((*s)->address());
  EXPECT_EQ(Answer(c.get()), "HTTP/1.1 404 Not Found");
}

TEST(MetricsServerTest, BadAddressesAreRefusedByName) {
  for (const char* bad : {"", "9482", "localhost:", "127.0.0.1:http", "127.0.0.1:70000",
                          "[::1:9482", "example.com:9482"}) {
    auto s = MetricsServer::Start(nullptr, bad);
    ASSERT_FALSE(s.ok()) << bad;
    EXPECT_NE(s.status().message().find("metrics_address"), std::string::npos) << s.status();
  }
}

// An upgrade: the first server pauses (connections wait in the backlog, unanswered), the next one
// serves the same socket and answers them, and the first one going away changes nothing.
TEST(MetricsServerTest, TheSocketMovesToTheNextServerWithoutRefusingAConnection) {
  auto old_server = MetricsServer::Start(nullptr, "127.0.0.1:0");
  ASSERT_TRUE(old_server.ok()) << old_server.status();
  const std::string address = (*old_server)->address();
  UniqueFd handed(fcntl((*old_server)->fd(), F_DUPFD_CLOEXEC, 0));
  (*old_server)->Pause(true);
  UniqueFd waiting = Ask(address);
  EXPECT_EQ(Answer(waiting.get(), 300), "") << "a paused server answered";
  std::string refused;
  auto new_server = MetricsServer::Start(nullptr, address, std::move(handed), &refused);
  ASSERT_TRUE(new_server.ok()) << new_server.status();
  EXPECT_EQ(refused, "");
  EXPECT_EQ((*new_server)->address(), address);
  EXPECT_EQ(Answer(waiting.get()), "HTTP/1.1 404 Not Found");
  old_server->reset();
  UniqueFd after = Ask(address);
  EXPECT_EQ(Answer(after.get()), "HTTP/1.1 404 Not Found");
}

// A failed upgrade: the old server takes its connections again.
TEST(MetricsServerTest, APausedServerResumes) {
  auto s = MetricsServer::Start(nullptr, "127.0.0.1:0");
  ASSERT_TRUE(s.ok()) << s.status();
  (*s)->Pause(true);
  UniqueFd waiting = Ask((*s)->address());
  EXPECT_EQ(Answer(waiting.get(), 300), "");
  (*s)->Pause(false);
  EXPECT_EQ(Answer(waiting.get()), "HTTP/1.1 404 Not Found");
}

// What an upgrade hands over comes from another process: anything but a TCP socket listening on
// the configured address is closed, and the address is bound anew.
TEST(MetricsServerTest, AHandedSocketThatIsNotTheConfiguredListenerIsRefused) {
  int pair[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
  UniqueFd other_end(pair[1]);
  std::string refused;
  auto s = MetricsServer::Start(nullptr, "127.0.0.1:0", UniqueFd(pair[0]), &refused);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(refused, "not listening");
  UniqueFd c = Ask((*s)->address());
  EXPECT_EQ(Answer(c.get()), "HTTP/1.1 404 Not Found");

  // Listening, but elsewhere than configured.
  auto elsewhere = MetricsServer::Start(nullptr, "127.0.0.1:0");
  ASSERT_TRUE(elsewhere.ok());
  auto third = MetricsServer::Start(
      nullptr, (*s)->address(), UniqueFd(fcntl((*elsewhere)->fd(), F_DUPFD_CLOEXEC, 0)), &refused);
  EXPECT_FALSE(third.ok()) << "bound the address the first server holds";
  EXPECT_NE(refused.find("not on the address configured"), std::string::npos) << refused;
  refused.clear();
  auto ud = MetricsServer::Start(nullptr, "127.0.0.1:0", UniqueFd(socket(AF_INET, SOCK_DGRAM, 0)),
                                 &refused);
  ASSERT_TRUE(ud.ok());
  EXPECT_EQ(refused, "not a stream socket");
}

// Requests arriving all through a hand-over (the old server paused, the new one starting on the
// same socket, the old one going away) each get an answer.
TEST(MetricsServerTest, EveryRequestThroughAHandOverIsAnswered) {
  auto old_server = MetricsServer::Start(nullptr, "127.0.0.1:0");
  ASSERT_TRUE(old_server.ok());
  const std::string address = (*old_server)->address();
  std::atomic<bool> stop{false};
  std::atomic<int> asked{0}, answered{0};
  std::thread client([&] {
    while (!stop) {
      UniqueFd c = Ask(address);
      ++asked;
      if (Answer(c.get()) == "HTTP/1.1 404 Not Found") ++answered;
    }
  });
  absl::SleepFor(absl::Milliseconds(100));
  UniqueFd handed(fcntl((*old_server)->fd(), F_DUPFD_CLOEXEC, 0));
  (*old_server)->Pause(true);
  absl::SleepFor(absl::Milliseconds(20));
  auto new_server = MetricsServer::Start(nullptr, address, std::move(handed));
  ASSERT_TRUE(new_server.ok());
  old_server->reset();
  absl::SleepFor(absl::Milliseconds(300));
  stop = true;
  client.join();
  EXPECT_GT(asked.load(), 10);
  EXPECT_EQ(answered.load(), asked.load());
}

}  // namespace
}  // namespace snapd
