// snap_traffic: a traffic generator app on snapd. It resolves its peer by ARP (or takes --dst_mac),
// sends sequenced UDP datagrams to it and checks that every one comes back (from udp_echo, or any
// UDP echo behind snapd), in order. Exits 0 only if none was lost, reordered or damaged.
//
//   snap_traffic --id=2 --dst_ip=10.0.0.1 [--frames=N --size=64 --window=1]
//   snap_traffic --id=2 --raw_hex=FRAME[,FRAME...] [--frames=N]   (sends those bytes as they are)
#include <ctype.h>

#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/time/clock.h"
#include "base/addr.h"
#include "clients/libsnap.h"
#include "clients/packet.h"
#include "clients/traffic.h"
#include "clients/traffic_flags.h"

ABSL_FLAG(std::string, socket, "", "snapd's memif socket (default: snapd's default).");
ABSL_FLAG(uint32_t, id, 0, "Interface id registered with snapd.");
ABSL_FLAG(std::string, secret, "", "Interface secret, if registered with one.");
ABSL_FLAG(std::string, dst_ip, "", "IPv4 address of the echo (required).");
ABSL_FLAG(std::string, dst_mac, "", "MAC of the echo (default: ask by ARP).");
ABSL_FLAG(uint16_t, dst_port, 7, "UDP port of the echo.");
ABSL_FLAG(std::string, src_ip, "",
          "Source IPv4 address to send from (default: the app's own; another one is spoofing, "
          "which snapd drops and counts).");
ABSL_FLAG(std::vector<std::string>, raw_hex, {},
          "Instead of the UDP load: send each of these frames (hex; ':', '.' and '-' ignored) "
          "--frames times, as they are, and exit (to try what snapd lets an app send).");
ABSL_FLAG(bool, print_start, false,
          "Print to stderr the wall-clock time the first frame goes out (unix_ns=...).");

namespace {

// "02:00:00..." or "020000..." -> bytes; false on anything else.
bool FromHex(const std::string& hex, std::string* out) {
  std::string digits;
  for (char c : hex) {
    if (c == ':' || c == '.' || c == '-') continue;
    if (!isxdigit(static_cast<unsigned char>(c))) return false;
    digits.push_back(c);
  }
  if (digits.empty() || digits.size() % 2 != 0) return false;
  out->clear();
  for (size_t i = 0; i < digits.size(); i += 2) {
    out->push_back(static_cast<char>(std::stoi(digits.substr(i, 2), nullptr, 16)));
  }
  return true;
}

// Sends each of `frames` `count` times and waits until snapd took them; returns how many went out
// before `timeout` passed with the ring full.
uint64_t SendRaw(snap::App& app, std::vector<std::string> frames, uint64_t count,
                 absl::Duration timeout) {
  uint64_t sent = 0;
  for (std::string& bytes : frames) {
    for (uint64_t i = 0; i < count; ++i) {
      snap::Frame f{reinterpret_cast<uint8_t*>(bytes.data()), static_cast<uint32_t>(bytes.size())};
      absl::Time give_up = absl::Now() + timeout;
      while (app.Send(&f, 1) == 0) {
        if (absl::Now() > give_up) return sent;
        app.Wait(1);
      }
      ++sent;
    }
  }
  // Stay attached until snapd has taken every frame off the ring.
  const auto& tx = app.memif().tx(0);
  absl::Time give_up = absl::Now() + timeout;
  while (tx.FreeSlots() < tx.size() && absl::Now() < give_up) absl::SleepFor(absl::Milliseconds(1));
  return sent;
}

// Asks for `ip`'s MAC by ARP, a few times, for up to ~3 s.
bool Resolve(snap::App& app, uint32_t ip, uint64_t* mac) {
  std::string request = snap::ArpRequest(app.mac(), app.ipv4(), ip);
  for (int attempt = 0; attempt < 30; ++attempt) {
    snap::Frame f{reinterpret_cast<uint8_t*>(request.data()),
                  static_cast<uint32_t>(request.size())};
    app.Send(&f, 1);
    absl::Time until = absl::Now() + absl::Milliseconds(100);
    while (absl::Now() < until) {
      snap::Frame got[32];
      app.Wait(10);
      uint16_t n = app.Receive(got, 32);
      bool found = false;
      for (uint16_t i = 0; i < n && !found; ++i) {
        found = snap::ParseArpReply(got[i].data, got[i].len, ip, mac);
      }
      app.Release();
      if (found) return true;
    }
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Sends sequenced UDP over snapd to an echo and checks every reply.\n"
      "Usage: snap_traffic --id=N --dst_ip=A [--frames=N] [--size=B] [--window=W]");
  absl::ParseCommandLine(argc, argv);
  std::vector<std::string> raw;
  for (const std::string& hex : absl::GetFlag(FLAGS_raw_hex)) {
    raw.emplace_back();
    if (!FromHex(hex, &raw.back())) {
      fprintf(stderr, "snap_traffic: --raw_hex: '%s' is not hex bytes\n", hex.c_str());
      return 2;
    }
  }
  uint32_t dst_ip = 0;
  if (raw.empty() && !snapd::ParseIpv4(absl::GetFlag(FLAGS_dst_ip), &dst_ip)) {
    fprintf(stderr, "snap_traffic: --dst_ip=A.B.C.D is required\n");
    return 2;
  }
  auto app = snap::App::Attach({absl::GetFlag(FLAGS_socket), absl::GetFlag(FLAGS_id),
                                absl::GetFlag(FLAGS_secret), "snap_traffic"});
  if (!app.ok()) {
    fprintf(stderr, "snap_traffic: %s\n", std::string(app.status().message()).c_str());
    return 1;
  }
  if (!raw.empty()) {
    uint64_t want = raw.size() * absl::GetFlag(FLAGS_frames);
    uint64_t sent = SendRaw(**app, raw, absl::GetFlag(FLAGS_frames),
                            absl::Seconds(absl::GetFlag(FLAGS_timeout_s)));
    printf("snap_traffic: raw frames sent=%lu of %lu\n", sent, want);
    return sent == want ? 0 : 1;
  }
  uint64_t dst_mac;
  if (!absl::GetFlag(FLAGS_dst_mac).empty()) {
    if (!snapd::ParseMac(absl::GetFlag(FLAGS_dst_mac), &dst_mac)) {
      fprintf(stderr, "snap_traffic: --dst_mac is not a MAC\n");
      return 2;
    }
  } else if (!Resolve(**app, dst_ip, &dst_mac)) {
    fprintf(stderr, "snap_traffic: no ARP reply from %s\n", absl::GetFlag(FLAGS_dst_ip).c_str());
    return 1;
  }
  snap::LoadOptions load = snap::LoadOptionsFromFlags();
  load.frame_size = std::max<uint32_t>(load.frame_size, snap::kUdpHeaderBytes + 16);
  uint32_t src_ip = (*app)->ipv4();
  if (!absl::GetFlag(FLAGS_src_ip).empty() &&
      !snapd::ParseIpv4(absl::GetFlag(FLAGS_src_ip), &src_ip)) {
    fprintf(stderr, "snap_traffic: --src_ip is not an IPv4 address\n");
    return 2;
  }
  load.header = snap::UdpHeader((*app)->mac(), dst_mac, src_ip, dst_ip, 9000,
                                absl::GetFlag(FLAGS_dst_port), load.frame_size);
  load.record_rtt = load.window == 1;
  // When the first frame goes out, for measurements that start there (tools/bench modes).
  if (absl::GetFlag(FLAGS_print_start)) {
    fprintf(stderr, "snap_traffic: sending from unix_ns=%ld\n", absl::ToUnixNanos(absl::Now()));
  }
  snap::LoadResult r = snap::RunLoad((*app)->memif(), load);
  printf("snap_traffic: %s\n", snap::Summary(r).c_str());
  fputs(snap::GapLines(r).c_str(), stdout);
  return r.clean() ? 0 : 1;
}
