// udp_rtt: the kernel-socket side of tools/bench nic. As an echo, it sends every UDP datagram back
// to where it came from; as a client, it ping-pongs datagrams with an echo over a blocking socket,
// as kernel apps do, and prints the round-trip times.
//
//   udp_rtt --echo [--port=7]                   (until killed)
//   udp_rtt --to=10.0.0.2 [--port=7] [--count=2000] [--size=64] [--interval_us=0]
//     -> "udp_rtt: sent=N received=N rtt_p50_ns=N rtt_p99_ns=N"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "base/clock.h"
#include "clients/traffic.h"

ABSL_FLAG(bool, echo, false, "Answer every datagram with itself.");
ABSL_FLAG(std::string, to, "", "The echo's IPv4 address (client).");
ABSL_FLAG(uint16_t, port, 7, "UDP port of the echo.");
ABSL_FLAG(uint32_t, count, 2000, "Round trips (client).");
ABSL_FLAG(uint32_t, size, 64, "Payload bytes (client), at least 16.");
ABSL_FLAG(uint32_t, interval_us, 0, "Pause between round trips (client).");

namespace {

int Echo(uint16_t port) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    fprintf(stderr, "udp_rtt: cannot bind port %u: %s\n", port, strerror(errno));
    return 1;
  }
  std::vector<char> buf(65536);
  while (true) {
    sockaddr_in from{};
    socklen_t len = sizeof(from);
    ssize_t n = recvfrom(fd, buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&from), &len);
    if (n < 0) {
      if (errno == EINTR) continue;
      fprintf(stderr, "udp_rtt: recvfrom: %s\n", strerror(errno));
      return 1;
    }
    sendto(fd, buf.data(), static_cast<size_t>(n), 0, reinterpret_cast<sockaddr*>(&from), len);
  }
}

int Client(const std::string& to, uint16_t port, uint32_t count, uint32_t size,
           uint32_t interval_us) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  if (inet_pton(AF_INET, to.c_str(), &addr.sin_addr) != 1) {
    fprintf(stderr, "udp_rtt: --to=%s is not an IPv4 address\n", to.c_str());
    return 2;
  }
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  timeval timeout{1, 0};  // a lost datagram costs a second, then counts as lost
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    fprintf(stderr, "udp_rtt: cannot reach %s: %s\n", to.c_str(), strerror(errno));
    return 1;
  }
  size = std::max<uint32_t>(size, 16);
  std::vector<char> out(size), in(65536);
  std::vector<int64_t> rtt;
  uint32_t received = 0;
  for (uint64_t seq = 0; seq < count; ++seq) {
    memcpy(out.data(), &seq, 8);
    int64_t sent_at = snapd::MonotonicNs();
    if (send(fd, out.data(), size, 0) < 0) continue;
    while (true) {  // skip replies to earlier datagrams that came late
      ssize_t n = recv(fd, in.data(), in.size(), 0);
      if (n < 0) break;
      uint64_t got;
      memcpy(&got, in.data(), 8);
      if (n == static_cast<ssize_t>(size) && got == seq) {
        rtt.push_back(snapd::MonotonicNs() - sent_at);
        ++received;
        break;
      }
    }
    if (interval_us > 0) usleep(interval_us);
  }
  // The percentiles snap_traffic prints for the app side, by the same rule; -1 with no sample.
  auto pct = [&](double p) { return rtt.empty() ? int64_t{-1} : snap::Percentile(rtt, p); };
  printf("udp_rtt: sent=%u received=%u rtt_p50_ns=%ld rtt_p99_ns=%ld\n", count, received, pct(50),
         pct(99));
  return received == count ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "UDP echo and round-trip client over kernel sockets.\n"
      "Usage: udp_rtt --echo [--port=P] | udp_rtt --to=A [--port=P] [--count=N] [--size=B]");
  absl::ParseCommandLine(argc, argv);
  if (absl::GetFlag(FLAGS_echo)) return Echo(absl::GetFlag(FLAGS_port));
  if (absl::GetFlag(FLAGS_to).empty()) {
    fprintf(stderr, "udp_rtt: --echo or --to=A.B.C.D is required\n");
    return 2;
  }
  return Client(absl::GetFlag(FLAGS_to), absl::GetFlag(FLAGS_port), absl::GetFlag(FLAGS_count),
                absl::GetFlag(FLAGS_size), absl::GetFlag(FLAGS_interval_us));
}
