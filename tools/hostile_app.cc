// hostile_app: an app that attacks snapd, one attack class of issue 9 per subcommand, for
// tests/hostile_app_test; and `victim`, a well-behaved app that exchanges sequenced UDP with
// udp_echo at a steady rate and counts every frame it did not expect.
//
// The attacks live in tools/hostile/ (attacks.cc through memif, wire.cc from the wire). They speak
// memif through their own client (RawApp, tools/hostile/raw_app.h) rather than ipc/MemifClient:
// they need what a well-behaved client hides (the interrupt eventfds, the ring headers, regions of
// any kind and size). Each runs for a bounded time and prints what it did and what snapd answered
// on lines starting "hostile_app: "; the test reads them. A line "RESULT: ..." gives the outcome
// where the attack has one (refused, connected, detached).
//
//   hostile_app victim --socket=S --id=2 --dst_mac=M --dst_ip=A [--rate=1000]
//   hostile_app eventfd_write|eventfd_read|spoof|cookie|chain|baddesc|hugetlb|bigregions
//       --socket=S --id=9 [--second_id=10] [--dst_mac=M --dst_ip=A] [--duration_s=N]
//   hostile_app idle --socket=S [--connections=80]      (as another uid than the victims)
//   hostile_app badinit --socket=S [--count=2000]
//   hostile_app macflood --iface=IF [--count=6000]     (in the namespace of the NIC's peer)
//   hostile_app wire_watch --iface=IF                  (likewise: counts hostile frames on the
//   wire)
#include "tools/hostile/attacks.h"
#include "tools/hostile/frames.h"

ABSL_FLAG(std::string, socket, "", "snapd's memif socket.");
ABSL_FLAG(uint32_t, id, 9, "Interface id to attach with.");
ABSL_FLAG(std::string, secret, "", "Interface secret, if registered with one.");
ABSL_FLAG(std::string, dst_mac, "", "MAC of udp_echo (attacks that need snapd to send to them).");
ABSL_FLAG(std::string, dst_ip, "", "IPv4 address of udp_echo.");
ABSL_FLAG(std::string, victim_mac, "", "spoof: also send every spoofed frame to this MAC.");
ABSL_FLAG(double, duration_s, 5, "How long the attack runs (then the app exits).");
ABSL_FLAG(double, hold_s, 2, "eventfd_read: how long to hold, silent, after the last kick.");
ABSL_FLAG(uint32_t, second_id, 10, "eventfd_read: the id of the second connection.");
ABSL_FLAG(uint32_t, connections, 80, "idle: connections to hold open.");
ABSL_FLAG(uint32_t, connects_per_s, 2000, "idle: most new connections a second.");
ABSL_FLAG(uint32_t, slots, 0, "chain: descriptors in the incomplete chain (0: ring size - 1).");
ABSL_FLAG(double, wait_s, 3, "baddesc: how long to wait for snapd to detach each variant.");
ABSL_FLAG(std::string, iface, "", "macflood, wire_watch: the interface (a veth end).");
ABSL_FLAG(uint32_t, count, 6000,
          "macflood: distinct source MACs; badinit: handshakes with an unknown id.");
ABSL_FLAG(uint32_t, passes, 2, "macflood: times each source MAC is sent.");
ABSL_FLAG(uint32_t, rate, 1000, "victim: datagrams a second.");
ABSL_FLAG(uint32_t, window, 64, "victim: datagrams in flight at most.");
ABSL_FLAG(double, loss_after_s, 2, "victim: a datagram not back after this long is lost.");

namespace hostile {
namespace {

// --- The victim --------------------------------------------------------------------------------

// A well-behaved app: sequenced UDP to udp_echo at --rate, at most --window in flight, sleeping on
// its ring's interrupt between sends. Counts what came back, what was lost (skipped over, or not
// back within --loss_after_s), and every frame carrying an attack's marker. Prints a status line
// every 200 ms; exits 0 on SIGTERM if nothing was lost and no hostile frame arrived.
int Victim() {
  uint64_t dst_mac;
  uint32_t dst_ip;
  if (!snapd::ParseMac(absl::GetFlag(FLAGS_dst_mac), &dst_mac) ||
      !snapd::ParseIpv4(absl::GetFlag(FLAGS_dst_ip), &dst_ip)) {
    fprintf(stderr, "victim: --dst_mac and --dst_ip are required\n");
    return 2;
  }
  auto app = snap::App::Attach({absl::GetFlag(FLAGS_socket), absl::GetFlag(FLAGS_id),
                                absl::GetFlag(FLAGS_secret), "victim"});
  if (!app.ok()) {
    printf("victim: cannot attach: %s\n", std::string(app.status().message()).c_str());
    return 1;
  }
  printf("victim: attached as %s %s\n", MacToString((*app)->mac()).c_str(),
         snapd::Ipv4ToString((*app)->ipv4()).c_str());
  fflush(stdout);
  constexpr uint32_t kSize = 96;
  const std::string header =
      snap::UdpHeader((*app)->mac(), dst_mac, (*app)->ipv4(), dst_ip, 9100, 7, kSize);
  const int64_t interval = 1000000000ll / std::max<uint32_t>(1, absl::GetFlag(FLAGS_rate));
  const int64_t loss_after = static_cast<int64_t>(absl::GetFlag(FLAGS_loss_after_s) * 1e9);
  const uint32_t window = absl::GetFlag(FLAGS_window);
  struct Out {
    uint64_t seq;
    int64_t sent_ns;
  };
  std::deque<Out> out;
  uint64_t seq = 0, received = 0, lost = 0, late = 0, hostile = 0, other = 0, ring_full = 0;
  int64_t max_rtt = 0;
  std::map<std::string, uint64_t> kinds;
  std::string detached;
  int64_t next_send = snapd::MonotonicNs(), next_line = 0, next_check = 0;
  std::string frame(kSize, '\0');
  auto line = [&] {
    int64_t oldest = out.empty() ? 0 : (snapd::MonotonicNs() - out.front().sent_ns) / 1000000;
    printf(
        "victim: sent=%lu received=%lu lost=%lu late=%lu inflight=%zu hostile=%lu other=%lu "
        "ring_full=%lu max_rtt_us=%ld oldest_ms=%ld hostile_kinds=%s%s%s\n",
        seq, received, lost, late, out.size(), hostile, other, ring_full, max_rtt / 1000, oldest,
        KindsText(kinds).c_str(), detached.empty() ? "" : " detached: ", detached.c_str());
    fflush(stdout);
  };
  while (!g_stop) {
    int64_t now = snapd::MonotonicNs();
    while (now >= next_send) {
      if (out.size() >= window) {
        next_send = now + interval;  // no credit: the path is stalled, do not queue a burst
        break;
      }
      memcpy(frame.data(), header.data(), header.size());
      memcpy(frame.data() + header.size(), kVictimMagic, 8);
      memcpy(frame.data() + header.size() + 8, &seq, 8);
      memcpy(frame.data() + header.size() + 16, &now, 8);
      snap::Frame f{reinterpret_cast<uint8_t*>(frame.data()), kSize};
      if ((*app)->Send(&f, 1) != 1) {
        ++ring_full;
        next_send = now + interval;
        break;
      }
      out.push_back({seq++, now});
      next_send += interval;
    }
    snap::Frame got[32];
    uint16_t n = (*app)->Receive(got, 32);
    now = snapd::MonotonicNs();
    for (uint16_t i = 0; i < n; ++i) {
      const uint8_t* d = got[i].data;
      uint32_t len = got[i].len;
      std::string k = HostileKind(d, len);
      if (!k.empty()) {
        ++hostile;
        ++kinds[k];
        continue;
      }
      size_t at = header.size();
      if (len < at + 24 || memcmp(d + at, kVictimMagic, 8) != 0) {
        ++other;
        continue;
      }
      uint64_t s;
      memcpy(&s, d + at + 8, 8);
      while (!out.empty() && out.front().seq < s) {
        ++lost;  // skipped over: the path is in order, so it will not come
        out.pop_front();
      }
      if (!out.empty() && out.front().seq == s) {
        max_rtt = std::max(max_rtt, now - out.front().sent_ns);
        ++received;
        out.pop_front();
      } else {
        ++late;
      }
    }
    (*app)->Release();
    while (!out.empty() && now - out.front().sent_ns > loss_after) {
      ++lost;
      out.pop_front();
    }
    if (now >= next_check) {
      absl::Status s = (*app)->CheckConnection();
      if (!s.ok()) {
        detached = std::string(s.message());
        line();
        return 3;
      }
      next_check = now + 100000000;
    }
    if (now >= next_line) {
      line();
      next_line = now + 200000000;
    }
    if (n == 0) {
      int64_t until_send = std::max<int64_t>(0, next_send - snapd::MonotonicNs());
      (*app)->Wait(static_cast<int>(std::min<int64_t>(until_send / 1000000, 5)));
    }
  }
  line();
  return lost == 0 && late == 0 && hostile == 0 ? 0 : 1;
}

}  // namespace
}  // namespace hostile

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Attacks snapd as an app would (tests/hostile_app_test), or plays its victim.\n"
      "Usage: hostile_app "
      "victim|eventfd_write|eventfd_read|idle|badinit|spoof|cookie|chain|baddesc|"
      "hugetlb|bigregions|fdtraps|macflood|wire_watch [flags]");
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  struct sigaction sa {};
  sa.sa_handler = hostile::OnSignal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
  if (args.size() != 2) {
    fprintf(stderr, "hostile_app: one subcommand expected (see --help)\n");
    return 2;
  }
  const std::string cmd = args[1];
  if (cmd == "victim") return hostile::Victim();
  if (cmd == "eventfd_write") return hostile::EventfdWrite();
  if (cmd == "eventfd_read") return hostile::EventfdRead();
  if (cmd == "idle") return hostile::Idle();
  if (cmd == "badinit") return hostile::BadInit();
  if (cmd == "spoof") return hostile::SpoofAttack();
  if (cmd == "cookie") return hostile::CookieAttack();
  if (cmd == "chain") return hostile::ChainAttack();
  if (cmd == "baddesc") return hostile::BadDescAttack();
  if (cmd == "hugetlb") return hostile::HugetlbAttack();
  if (cmd == "bigregions") return hostile::BigRegionsAttack();
  if (cmd == "fdtraps") return hostile::FdTraps();
  if (cmd == "macflood") return hostile::MacFlood();
  if (cmd == "wire_watch") return hostile::WireWatch();
  fprintf(stderr, "hostile_app: unknown subcommand '%s'\n", cmd.c_str());
  return 2;
}
