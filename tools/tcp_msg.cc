// tcp_msg: pony_echo and pony_bench on kernel TCP, for tools/bench pony: the same messages, the
// same answers and the same measurements, over a TCP connection used as an RPC system uses it
// (TCP_NODELAY, a 4-byte length before each message, one send per message, blocking sockets).
//
//   tcp_msg --server [--port=7472] [--echo_max=4096]
//   tcp_msg --peer=IP [--port=7472] --mode=rpc|pipeline|bulk [--size=64] [--count=10000]
//           [--window=32] [--duration_s=3]
//
// The server answers a message of at most --echo_max bytes with itself, a longer one with 16 bytes
// (its length and MessageDigest). The client prints one line, as pony_bench does:
//   tcp_msg rpc rounds=N p50_us=X p99_us=Y errors=0 | pipeline msgs=N msgs_per_s=X errors=0 |
//   bulk bytes=N gbps=X errors=0
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <deque>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "base/clock.h"
#include "clients/pony.h"
#include "clients/traffic.h"

ABSL_FLAG(bool, server, false, "Answer messages (as pony_echo does).");
ABSL_FLAG(std::string, peer, "", "Client: the server's IPv4 address.");
ABSL_FLAG(uint16_t, port, 7472, "TCP port.");
ABSL_FLAG(std::string, mode, "rpc", "Client: rpc, pipeline or bulk.");
ABSL_FLAG(uint32_t, size, 64, "Message bytes (bulk: default 1 MiB).");
ABSL_FLAG(uint64_t, count, 10000, "rpc: round trips.");
ABSL_FLAG(uint32_t, window, 32, "pipeline: messages in flight.");
ABSL_FLAG(double, duration_s, 3, "pipeline, bulk: seconds.");
ABSL_FLAG(uint32_t, echo_max, 4096, "Messages up to this size come back whole.");

namespace {

[[noreturn]] void Die(const char* what) {
  fprintf(stderr, "tcp_msg: %s: %s\n", what, strerror(errno));
  exit(1);
}

bool ReadFull(int fd, char* p, size_t n) {
  while (n > 0) {
    const ssize_t r = read(fd, p, n);
    if (r <= 0) return false;
    p += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

bool WriteFull(int fd, const char* p, size_t n) {
  while (n > 0) {
    const ssize_t r = send(fd, p, n, MSG_NOSIGNAL);
    if (r <= 0) return false;
    p += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

// One message: its length and bytes in one buffer, handed to one send.
bool SendMessage(int fd, const std::string& m, std::string* buf) {
  buf->resize(4 + m.size());
  const uint32_t len = htonl(static_cast<uint32_t>(m.size()));
  memcpy(buf->data(), &len, 4);
  memcpy(buf->data() + 4, m.data(), m.size());
  return WriteFull(fd, buf->data(), buf->size());
}

bool ReadMessage(int fd, std::string* m) {
  uint32_t len;
  if (!ReadFull(fd, reinterpret_cast<char*>(&len), 4)) return false;
  len = ntohl(len);
  if (len > (64u << 20)) return false;
  m->resize(len);
  return ReadFull(fd, m->data(), len);
}

std::string Answer(std::string m, uint32_t echo_max) {
  if (m.size() <= echo_max) return m;
  std::string a(16, '\0');
  const uint64_t len = m.size(), digest = snap::MessageDigest(m);
  for (int i = 0; i < 8; ++i) {
    a[i] = static_cast<char>(len >> (56 - 8 * i));
    a[8 + i] = static_cast<char>(digest >> (56 - 8 * i));
  }
  return a;
}

void NoDelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

int Serve() {
  const int ls = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(absl::GetFlag(FLAGS_port));
  if (bind(ls, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) Die("bind");
  if (listen(ls, 16) != 0) Die("listen");
  printf("tcp_msg: listening on port %u\n", absl::GetFlag(FLAGS_port));
  fflush(stdout);
  const uint32_t echo_max = absl::GetFlag(FLAGS_echo_max);
  while (true) {
    const int fd = accept(ls, nullptr, nullptr);
    if (fd < 0) continue;
    NoDelay(fd);
    std::thread([fd, echo_max] {
      std::string m, buf;
      while (ReadMessage(fd, &m)) {
        if (!SendMessage(fd, Answer(std::move(m), echo_max), &buf)) break;
      }
      close(fd);
    }).detach();
  }
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "pony_echo and pony_bench on kernel TCP.\nUsage: tcp_msg --server | tcp_msg --peer=IP "
      "--mode=rpc|pipeline|bulk");
  absl::ParseCommandLine(argc, argv);
  if (absl::GetFlag(FLAGS_server)) return Serve();
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(absl::GetFlag(FLAGS_port));
  if (inet_pton(AF_INET, absl::GetFlag(FLAGS_peer).c_str(), &a.sin_addr) != 1) {
    fprintf(stderr, "tcp_msg: --peer=IPv4 is required\n");
    return 1;
  }
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) Die("connect");
  NoDelay(fd);
  const std::string mode = absl::GetFlag(FLAGS_mode);
  const uint32_t echo_max = absl::GetFlag(FLAGS_echo_max);
  uint32_t size = absl::GetFlag(FLAGS_size);
  if (mode == "bulk" && size == 64) size = 1 << 20;
  std::string m(size, 'x');
  for (size_t i = 0; i < m.size(); ++i) m[i] = static_cast<char>(i * 131 + 7);
  const std::string expected = Answer(m, echo_max);
  std::string reply, buf;
  uint64_t errors = 0;
  if (mode == "rpc") {
    std::vector<int64_t> rtt;
    const uint64_t count = absl::GetFlag(FLAGS_count);
    for (uint64_t i = 0; i < count; ++i) {
      const int64_t t0 = snapd::MonotonicNs();
      if (!SendMessage(fd, m, &buf) || !ReadMessage(fd, &reply)) Die("connection");
      rtt.push_back(snapd::MonotonicNs() - t0);
      errors += reply != expected;
    }
    printf("tcp_msg rpc rounds=%lu p50_us=%ld p99_us=%ld errors=%lu\n", count,
           snap::Percentile(rtt, 50) / 1000, snap::Percentile(rtt, 99) / 1000, errors);
    return errors > 0;
  }
  const uint32_t window = mode == "bulk" ? 8 : std::max<uint32_t>(1, absl::GetFlag(FLAGS_window));
  const int64_t duration_ns = static_cast<int64_t>(absl::GetFlag(FLAGS_duration_s) * 1e9);
  const int64_t start = snapd::MonotonicNs();
  uint64_t answers = 0, bytes = 0;
  for (uint32_t i = 0; i < window; ++i) {
    if (!SendMessage(fd, m, &buf)) Die("send");
  }
  uint32_t outstanding = window;
  while (outstanding > 0) {
    if (!ReadMessage(fd, &reply)) Die("connection");
    --outstanding;
    ++answers;
    bytes += m.size();
    errors += reply != expected;
    if (snapd::MonotonicNs() - start < duration_ns) {
      if (!SendMessage(fd, m, &buf)) Die("send");
      ++outstanding;
    }
  }
  const double s = (snapd::MonotonicNs() - start) / 1e9;
  if (mode == "pipeline") {
    printf("tcp_msg pipeline msgs=%lu msgs_per_s=%.0f errors=%lu\n", answers, answers / s, errors);
  } else {
    printf("tcp_msg bulk bytes=%lu gbps=%.2f errors=%lu\n", bytes, bytes * 8 / s / 1e9, errors);
  }
  close(fd);
  return errors > 0;
}
