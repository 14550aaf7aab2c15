// ipc_bench: round trips between two processes, each polling on a core of its own, over one memif
// queue pair (our client and memif_echo), and in the same run the same ping-pong over kernel UDP on
// loopback (both ends polling, and both ends blocking) and over a Unix datagram socket pair. Run by
// `tools/bench ipc`. The speedup is against polling UDP, the same shape as memif's ping-pong.
//
// Prints a table and ends with the line
//   ipc_rtt p50_ns=<n> p99_ns=<n> kernel_udp_p50_ns=<n> speedup=<kernel_udp_p50/p50>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "base/clock.h"
#include "clients/traffic.h"
#include "ipc/client.h"
#include "tools/cpu.h"

ABSL_FLAG(std::string, memif_echo, "", "Path of the memif_echo binary (required).");
ABSL_FLAG(int, samples, 200000, "Round trips per measurement.");
ABSL_FLAG(int, client_core, 0, "Core for this process.");
ABSL_FLAG(int, server_core, 1, "Core for the echo process.");

namespace snapd::tools {
namespace {

using snap::LoadOptions;
using snap::LoadResult;
using snap::Percentile;
using snap::RunLoad;
using snapd::MonotonicNs;

void Pin(int core) {
  if (absl::Status pinned = PinToCore(core); !pinned.ok()) {
    fprintf(stderr, "ipc_bench: %s\n", std::string(pinned.message()).c_str());
    exit(1);
  }
}

struct Row {
  std::string name;
  int64_t p50 = 0, p99 = 0, p999 = 0;
  double fps = 0;  // frames per second (streaming rows)
};

Row Summarize(const std::string& name, std::vector<int64_t> rtt) {
  Row row{name};
  row.p50 = Percentile(rtt, 50);
  row.p99 = Percentile(rtt, 99);
  row.p999 = Percentile(rtt, 99.9);
  return row;
}

// Runs `echo` in a child pinned to `core`, `measure` in this process; kills the child after.
template <typename Echo, typename Measure>
auto WithChild(int core, Echo echo, Measure measure) {
  pid_t pid = fork();
  if (pid == 0) {
    Pin(core);
    echo();
    _exit(0);
  }
  auto result = measure();
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  return result;
}

// A datagram ping-pong: `a` sends to its peer and waits for the reply, `samples` times. With
// `spin`, both ends poll with MSG_DONTWAIT instead of blocking in the kernel.
std::vector<int64_t> DatagramPingPong(int a, int b, int samples, int server_core, bool spin) {
  return WithChild(
      server_core,
      [&] {
        char buf[64];
        sockaddr_storage from;
        while (true) {
          socklen_t len = sizeof(from);
          ssize_t n = recvfrom(b, buf, sizeof(buf), spin ? MSG_DONTWAIT : 0,
                               reinterpret_cast<sockaddr*>(&from), &len);
          if (n < 0) continue;
          sendto(b, buf, n, 0,
                 len > sizeof(sa_family_t) ? reinterpret_cast<sockaddr*>(&from) : nullptr,
                 len > sizeof(sa_family_t) ? len : 0);
        }
      },
      [&] {
        std::vector<int64_t> rtt;
        rtt.reserve(samples);
        char buf[64] = {};
        for (int i = 0; i < samples + 1000; ++i) {
          int64_t t0 = MonotonicNs();
          send(a, buf, sizeof(buf), 0);
          while (recv(a, buf, sizeof(buf), spin ? MSG_DONTWAIT : 0) < 0) {
          }
          if (i >= 1000) rtt.push_back(MonotonicNs() - t0);  // the first 1000 warm up
        }
        return rtt;
      });
}

std::vector<int64_t> UdpPingPong(int samples, int server_core, bool spin) {
  int a = socket(AF_INET, SOCK_DGRAM, 0);
  int b = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(b, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(b, reinterpret_cast<sockaddr*>(&addr), &len);
  connect(a, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  auto rtt = DatagramPingPong(a, b, samples, server_core, spin);
  close(a);
  close(b);
  return rtt;
}

std::vector<int64_t> UnixPingPong(int samples, int server_core) {
  int sv[2];
  socketpair(AF_UNIX, SOCK_DGRAM, 0, sv);
  auto rtt = DatagramPingPong(sv[0], sv[1], samples, server_core, false);
  close(sv[0]);
  close(sv[1]);
  return rtt;
}

int Main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const std::string echo_bin = absl::GetFlag(FLAGS_memif_echo);
  if (echo_bin.empty()) {
    fprintf(stderr, "ipc_bench: --memif_echo=PATH is required\n");
    return 2;
  }
  const int samples = absl::GetFlag(FLAGS_samples);
  const int client_core = absl::GetFlag(FLAGS_client_core);
  const int server_core = absl::GetFlag(FLAGS_server_core);
  const std::string sock = absl::StrCat("/tmp/snapd-ipc-bench-", getpid(), ".sock");
  std::vector<Row> rows;

  // memif: memif_echo polling on server_core, this process polling on client_core.
  pid_t echo = fork();
  if (echo == 0) {
    std::string s = "--socket=" + sock, c = absl::StrCat("--core=", server_core);
    freopen("/dev/null", "w", stdout);
    execl(echo_bin.c_str(), echo_bin.c_str(), s.c_str(), "--poll", c.c_str(), (char*)nullptr);
    _exit(127);
  }
  Pin(client_core);
  absl::StatusOr<std::unique_ptr<memif::MemifClient>> client;
  for (int i = 0; i < 500; ++i) {
    memif::ClientOptions options;
    options.socket_path = sock;
    options.name = "ipc_bench";
    client = memif::MemifClient::Connect(options);
    if (client.ok()) break;
    usleep(10000);  // memif_echo is still starting
  }
  if (!client.ok()) {
    fprintf(stderr, "ipc_bench: cannot reach memif_echo: %s\n",
            std::string(client.status().message()).c_str());
    kill(echo, SIGKILL);
    return 1;
  }
  LoadOptions ping;
  ping.frames = 10000;  // warm-up
  RunLoad(**client, ping);
  ping.frames = samples;
  ping.record_rtt = true;
  LoadResult pr = RunLoad(**client, ping);
  rows.push_back(Summarize("memif ping-pong (64 B)", pr.rtt_ns));
  LoadOptions stream;
  stream.frames = 20000000;
  stream.window = 512;
  LoadResult sr = RunLoad(**client, stream);
  Row srow{"memif streaming (64 B, window 512)"};
  srow.fps = sr.received / sr.seconds;
  rows.push_back(srow);
  bool memif_ok = !pr.lost() && !sr.lost() && pr.reordered == 0 && sr.reordered == 0;
  (*client)->Disconnect("bench done");
  client->reset();
  kill(echo, SIGTERM);
  waitpid(echo, nullptr, 0);

  // The baseline is the same ping-pong as memif's: both processes poll on a core of their own. The
  // blocking variant (each end asleep in recv) is slower still here, and printed for reference.
  Row udp =
      Summarize("kernel UDP loopback (busy-poll)", UdpPingPong(samples / 2, server_core, true));
  rows.push_back(udp);
  rows.push_back(
      Summarize("kernel UDP loopback (blocking)", UdpPingPong(samples / 4, server_core, false)));
  rows.push_back(
      Summarize("Unix datagram socketpair (blocking)", UnixPingPong(samples / 4, server_core)));

  printf("%-40s %10s %10s %10s %14s\n",
         absl::StrCat("2 processes, cores ", client_core, " and ", server_core).c_str(), "p50_ns",
         "p99_ns", "p999_ns", "frames/s");
  for (const Row& r : rows) {
    if (r.fps > 0) {
      printf("%-40s %10s %10s %10s %14.0f\n", r.name.c_str(), "-", "-", "-", r.fps);
    } else {
      printf("%-40s %10ld %10ld %10ld %14s\n", r.name.c_str(), r.p50, r.p99, r.p999, "-");
    }
  }
  if (!memif_ok) {
    fprintf(stderr, "ipc_bench: memif frames were lost or reordered\n");
    return 1;
  }
  const Row& m = rows[0];
  printf("ipc_rtt p50_ns=%ld p99_ns=%ld kernel_udp_p50_ns=%ld speedup=%.1f\n", m.p50, m.p99,
         udp.p50, static_cast<double>(udp.p50) / m.p50);
  return 0;
}

}  // namespace
}  // namespace snapd::tools

int main(int argc, char** argv) { return snapd::tools::Main(argc, argv); }
