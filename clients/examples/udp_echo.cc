// udp_echo: an app on snapd that answers ARP for its address and ICMP echo (ping), and sends every
// UDP datagram back to where it came from. It sleeps on its ring's interrupt when idle.
//
//   udp_echo --id=1 [--socket=PATH] [--secret=S]
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "base/addr.h"
#include "clients/libsnap.h"
#include "clients/packet.h"

ABSL_FLAG(std::string, socket, "", "snapd's memif socket (default: snapd's default).");
ABSL_FLAG(uint32_t, id, 0, "Interface id registered with snapd.");
ABSL_FLAG(std::string, secret, "", "Interface secret, if registered with one.");

namespace {
std::atomic<bool> g_stop{false};
void OnSignal(int) { g_stop = true; }
}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("Answers ARP, ping and UDP on snapd.\nUsage: udp_echo --id=N");
  absl::ParseCommandLine(argc, argv);
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  auto app = snap::App::Attach({absl::GetFlag(FLAGS_socket), absl::GetFlag(FLAGS_id),
                                absl::GetFlag(FLAGS_secret), "udp_echo"});
  if (!app.ok()) {
    fprintf(stderr, "udp_echo: %s\n", std::string(app.status().message()).c_str());
    return 1;
  }
  printf("udp_echo: attached as %s %s\n", snapd::MacToString((*app)->mac()).c_str(),
         snapd::Ipv4ToString((*app)->ipv4()).c_str());
  fflush(stdout);
  uint64_t arp = 0, icmp = 0, udp = 0, ignored = 0, dropped = 0;
  snap::Frame frames[32], replies[32];
  absl::Status why;  // why snapd detached us, if it did
  while (!g_stop) {
    uint16_t n = (*app)->Receive(frames, 32);
    if (n == 0) {
      (*app)->Release();
      why = (*app)->CheckConnection();
      if (!why.ok()) break;
      (*app)->Wait(100);
      continue;
    }
    uint16_t k = 0;
    for (uint16_t i = 0; i < n; ++i) {
      switch (snap::AnswerInPlace(frames[i].data, frames[i].len, (*app)->mac(), (*app)->ipv4())) {
        case snap::Reply::kNone:
          ++ignored;
          continue;
        case snap::Reply::kArp:
          ++arp;
          break;
        case snap::Reply::kIcmpEcho:
          ++icmp;
          break;
        case snap::Reply::kUdpEcho:
          ++udp;
          break;
      }
      replies[k++] = frames[i];
    }
    dropped += k - (*app)->Send(replies, k);
    (*app)->Release();
  }
  printf("udp_echo: arp=%lu icmp=%lu udp=%lu ignored=%lu dropped=%lu%s%s\n", arp, icmp, udp,
         ignored, dropped,
         why.ok() ? "" : " detached: ", why.ok() ? "" : std::string(why.message()).c_str());
  return 0;
}
