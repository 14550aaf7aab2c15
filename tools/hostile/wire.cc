// hostile_app's attacks from the wire: a MAC flood, and a watch for hostile frames that got out.
#include "tools/hostile/attacks.h"
#include "tools/hostile/frames.h"

namespace hostile {

namespace {

absl::StatusOr<UniqueFd> PacketSocket(const std::string& iface) {
  UniqueFd fd(::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL)));
  if (!fd) return absl::InternalError(absl::StrCat("packet socket: ", strerror(errno)));
  sockaddr_ll sll{};
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = htons(ETH_P_ALL);
  sll.sll_ifindex = static_cast<int>(if_nametoindex(iface.c_str()));
  if (sll.sll_ifindex == 0) return absl::NotFoundError(absl::StrCat("no interface ", iface));
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&sll), sizeof(sll)) != 0) {
    return absl::InternalError(absl::StrCat("bind ", iface, ": ", strerror(errno)));
  }
  return fd;
}

}  // namespace

// Issue 9 item 4: frames from `count` distinct source MACs into the NIC, to an unknown unicast MAC.
int MacFlood() {
  auto fd = PacketSocket(absl::GetFlag(FLAGS_iface));
  if (!fd.ok()) return Say(std::string(fd.status().message())), 1;
  const uint32_t count = absl::GetFlag(FLAGS_count);
  uint64_t sent = 0, failed = 0;
  for (uint32_t pass = 0; pass < absl::GetFlag(FLAGS_passes); ++pass) {
    for (uint32_t i = 0; i < count; ++i) {
      uint8_t src[6] = {0x02,
                        0xf1,
                        static_cast<uint8_t>(i >> 24),
                        static_cast<uint8_t>(i >> 16),
                        static_cast<uint8_t>(i >> 8),
                        static_cast<uint8_t>(i)};
      std::string f =
          Marked(EthHeader(MacOf("02:ee:ee:ee:ee:ee"), MacFromBytes(src), 0x88b5), "macflood");
      if (::send(fd->get(), f.data(), f.size(), 0) == static_cast<ssize_t>(f.size())) {
        ++sent;
      } else {
        ++failed;
      }
      // ~50k frames a second: fast, but slow enough for af_packet's ring at snapd's end.
      if (i % 50 == 0) absl::SleepFor(absl::Milliseconds(1));
    }
  }
  Say(absl::StrCat("macflood: ", count, " source MACs x ", absl::GetFlag(FLAGS_passes),
                   " passes: sent=", sent, " failed=", failed));
  return 0;
}

// Counts the hostile frames that reach the wire (the namespace behind the NIC), until SIGTERM or
// the duration. Prints a line every 200 ms.
int WireWatch() {
  auto fd = PacketSocket(absl::GetFlag(FLAGS_iface));
  if (!fd.ok()) return Say(std::string(fd.status().message())), 1;
  uint64_t frames = 0, hostile = 0;
  std::map<std::string, uint64_t> kinds;
  absl::Time until = Deadline();
  int64_t next_line = 0;
  uint8_t buf[16384];
  auto line = [&] {
    printf("wire_watch: frames=%lu hostile=%lu hostile_kinds=%s\n", frames, hostile,
           KindsText(kinds).c_str());
    fflush(stdout);
  };
  while (absl::Now() < until && !g_stop) {
    pollfd p{fd->get(), POLLIN, 0};
    if (::poll(&p, 1, 50) > 0) {
      ssize_t n;
      while ((n = ::recv(fd->get(), buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
        ++frames;
        std::string k = HostileKind(buf, static_cast<uint32_t>(n));
        // The flood this tool sends from here is ours, not an app's.
        if (!k.empty() && k != "macflood") {
          ++hostile;
          ++kinds[k];
        }
      }
    }
    if (snapd::MonotonicNs() >= next_line) {
      line();
      next_line = snapd::MonotonicNs() + 200000000;
    }
  }
  line();
  return 0;
}

}  // namespace hostile
