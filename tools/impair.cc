// impair: a wire that loses, duplicates, reorders and delays frames, between two interfaces, for
// tests. It does in userspace what tc netem does in the kernel (this machine's kernel is built
// without sch_netem): every frame one interface receives is sent out of the other, after
// --delay_us, unless it is lost (--loss percent); --dup percent of frames go twice; --reorder
// percent go at once, ahead of the delayed ones (netem's "reorder").
//
//   impair --a=IF --b=IF [--loss=1] [--dup=1] [--reorder=10] [--delay_us=1000] [--seed=1]
//
// On SIGTERM or SIGINT prints one line of counts and exits:
//   impair frames=N lost=N duplicated=N reordered=N
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <map>
#include <random>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "base/clock.h"

ABSL_FLAG(std::string, a, "", "One interface.");
ABSL_FLAG(std::string, b, "", "The other.");
ABSL_FLAG(double, loss, 0, "Percent of frames lost.");
ABSL_FLAG(double, dup, 0, "Percent of frames sent twice.");
ABSL_FLAG(double, reorder, 0, "Percent of frames sent at once, ahead of the delayed ones.");
ABSL_FLAG(int64_t, delay_us, 0, "Delay of every other frame, in microseconds.");
ABSL_FLAG(uint32_t, seed, 1, "Random seed.");

namespace {

std::atomic<bool> g_stop{false};
void OnSignal(int) { g_stop = true; }

#ifndef PACKET_IGNORE_OUTGOING
#define PACKET_IGNORE_OUTGOING 23
#endif

int OpenOn(const std::string& name) {
  const int ifindex = static_cast<int>(if_nametoindex(name.c_str()));
  if (ifindex == 0) {
    fprintf(stderr, "impair: no interface %s\n", name.c_str());
    exit(1);
  }
  int fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK, htons(ETH_P_ALL));
  if (fd < 0) {
    perror("impair: socket");
    exit(1);
  }
  sockaddr_ll sll{};
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = htons(ETH_P_ALL);
  sll.sll_ifindex = ifindex;
  if (bind(fd, reinterpret_cast<sockaddr*>(&sll), sizeof(sll)) != 0) {
    perror("impair: bind");
    exit(1);
  }
  packet_mreq mr{};
  mr.mr_ifindex = ifindex;
  mr.mr_type = PACKET_MR_PROMISC;
  setsockopt(fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof(mr));
  int one = 1;
  setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof(one));
  return fd;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "A lossy, reordering, duplicating, delaying wire between two interfaces.\n"
      "Usage: impair --a=IF --b=IF [--loss=PCT] [--dup=PCT] [--reorder=PCT] [--delay_us=N]");
  absl::ParseCommandLine(argc, argv);
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  const int fds[2] = {OpenOn(absl::GetFlag(FLAGS_a)), OpenOn(absl::GetFlag(FLAGS_b))};
  std::mt19937 rng(absl::GetFlag(FLAGS_seed));
  std::uniform_real_distribution<double> pct(0, 100);
  const double loss = absl::GetFlag(FLAGS_loss), dup = absl::GetFlag(FLAGS_dup),
               reorder = absl::GetFlag(FLAGS_reorder);
  const int64_t delay_ns = absl::GetFlag(FLAGS_delay_us) * 1000;
  // Frames waiting for their time, with the socket they go out of.
  std::multimap<int64_t, std::pair<int, std::string>> queue;
  uint64_t frames = 0, lost = 0, duplicated = 0, reordered = 0;
  printf("impair: %s <-> %s loss=%g%% dup=%g%% reorder=%g%% delay_us=%ld\n",
         absl::GetFlag(FLAGS_a).c_str(), absl::GetFlag(FLAGS_b).c_str(), loss, dup, reorder,
         static_cast<long>(delay_ns / 1000));
  fflush(stdout);
  char buf[65536];
  while (!g_stop) {
    int64_t now = snapd::MonotonicNs();
    int timeout_ms = 100;
    if (!queue.empty()) {
      const int64_t wait = queue.begin()->first - now;
      timeout_ms = wait <= 0 ? 0 : static_cast<int>((wait + 999999) / 1000000);
    }
    pollfd p[2] = {{fds[0], POLLIN, 0}, {fds[1], POLLIN, 0}};
    poll(p, 2, timeout_ms);
    now = snapd::MonotonicNs();
    for (int side = 0; side < 2; ++side) {
      while (true) {
        const ssize_t n = recv(fds[side], buf, sizeof(buf), 0);
        if (n <= 0) break;
        ++frames;
        if (pct(rng) < loss) {
          ++lost;
          continue;
        }
        int64_t at = now + delay_ns;
        if (reorder > 0 && pct(rng) < reorder) {
          at = now;
          ++reordered;
        }
        const int out = fds[1 - side];
        queue.emplace(at, std::make_pair(out, std::string(buf, n)));
        if (dup > 0 && pct(rng) < dup) {
          ++duplicated;
          queue.emplace(at, std::make_pair(out, std::string(buf, n)));
        }
      }
    }
    while (!queue.empty() && queue.begin()->first <= now) {
      const auto& [fd, frame] = queue.begin()->second;
      (void)!send(fd, frame.data(), frame.size(), 0);
      queue.erase(queue.begin());
    }
  }
  printf("impair frames=%lu lost=%lu duplicated=%lu reordered=%lu\n", frames, lost, duplicated,
         reordered);
  return 0;
}
