// pony_echo: a pony server app. It takes every connection offered and answers each message on the
// connection it came on: a message of at most --echo_max bytes with itself, a longer one with 16
// bytes (its length and MessageDigest, big-endian), so that bulk transfers are measured one way.
//
//   pony_echo --id=N [--socket=PATH] [--secret=S] [--echo_max=4096] [--poll]
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <deque>
#include <map>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "base/addr.h"
#include "clients/libsnap.h"
#include "clients/pony.h"

ABSL_FLAG(std::string, socket, "", "snapd's memif socket (default: snapd's default).");
ABSL_FLAG(uint32_t, id, 0, "Interface id registered with snapd (the app's pony id).");
ABSL_FLAG(std::string, secret, "", "Interface secret, if registered with one.");
ABSL_FLAG(uint32_t, echo_max, 4096,
          "Messages up to this size come back whole; longer ones are answered by 16 bytes.");
ABSL_FLAG(bool, poll, false, "Spin while idle instead of sleeping on the ring's interrupt.");

namespace {
std::atomic<bool> g_stop{false};
void OnSignal(int) { g_stop = true; }
}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("Answers pony messages.\nUsage: pony_echo --id=N");
  absl::ParseCommandLine(argc, argv);
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  auto app = snap::App::Attach({absl::GetFlag(FLAGS_socket), absl::GetFlag(FLAGS_id),
                                absl::GetFlag(FLAGS_secret), "pony_echo"});
  if (!app.ok()) {
    fprintf(stderr, "pony_echo: %s\n", std::string(app.status().message()).c_str());
    return 1;
  }
  printf("pony_echo: attached as app %u\n", absl::GetFlag(FLAGS_id));
  fflush(stdout);
  snap::Pony pony(app->get());
  const uint32_t echo_max = absl::GetFlag(FLAGS_echo_max);
  const bool poll = absl::GetFlag(FLAGS_poll);
  // Answers that wait for room in their connection's budget, in order.
  std::map<uint32_t, std::deque<std::string>> waiting;
  uint64_t connections = 0, messages = 0, bytes = 0, closed = 0;
  absl::Status why;
  while (!g_stop) {
    snap::PonyEvent ev;
    if (!pony.Next(&ev)) {
      why = (*app)->CheckConnection();
      if (!why.ok()) break;
      if (!poll) pony.Wait(100);
      continue;
    }
    switch (ev.type) {
      case snap::PonyEvent::kIncoming:
        ++connections;
        printf("pony_echo: connection %u from %s app %u\n", ev.conn,
               snapd::Ipv4ToString(ev.addr).c_str(), ev.app);
        fflush(stdout);
        break;
      case snap::PonyEvent::kMessage: {
        ++messages;
        bytes += ev.message.size();
        std::string answer;
        if (ev.message.size() <= echo_max) {
          answer = std::move(ev.message);
        } else {
          answer.resize(16);
          const uint64_t len = ev.message.size(), digest = snap::MessageDigest(ev.message);
          for (int i = 0; i < 8; ++i) {
            answer[i] = static_cast<char>(len >> (56 - 8 * i));
            answer[8 + i] = static_cast<char>(digest >> (56 - 8 * i));
          }
        }
        waiting[ev.conn].push_back(std::move(answer));
        break;
      }
      case snap::PonyEvent::kClosed:
        ++closed;
        waiting.erase(ev.conn);
        printf("pony_echo: connection %u closed: %s\n", ev.conn, snap::PonyCodeName(ev.code));
        fflush(stdout);
        break;
      default:
        break;
    }
    // Answer what the budgets take.
    for (auto& [conn, answers] : waiting) {
      while (!answers.empty() && pony.Send(conn, answers.front(), 0).ok()) answers.pop_front();
    }
  }
  printf("pony_echo: connections=%lu messages=%lu bytes=%lu closed=%lu%s%s\n", connections,
         messages, bytes, closed,
         why.ok() ? "" : " detached: ", why.ok() ? "" : std::string(why.message()).c_str());
  return 0;
}
