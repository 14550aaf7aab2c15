// memif_traffic: a memif client that sends sequenced frames to an echo (memif_echo, dpdk-testpmd in
// io mode, snapd) and checks that every frame comes back, in order. Exits 0 only if none was lost,
// reordered or damaged.
//
//   memif_traffic --socket=PATH [--id=N --secret=S] [--frames=N --size=64 --window=1] [--poll]
#include <errno.h>
#include <signal.h>
#include <string.h>

#include <cstdio>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "clients/traffic.h"
#include "ipc/client.h"
#include "tools/cpu.h"

ABSL_FLAG(std::string, socket, "", "memif control socket of the server (required).");
ABSL_FLAG(uint32_t, id, 0, "Interface id to connect with.");
ABSL_FLAG(std::string, secret, "", "Interface secret, if the server wants one.");
ABSL_FLAG(uint64_t, frames, 10000, "Frames to send.");
ABSL_FLAG(uint32_t, size, 64, "Frame size in bytes (at least 30).");
ABSL_FLAG(int, duration_s, 0, "Stop sending after this many seconds (0: send all --frames).");
ABSL_FLAG(uint32_t, window, 1, "Frames in flight at most (1: ping-pong, with round-trip times).");
ABSL_FLAG(bool, poll, false, "Spin while waiting instead of sleeping on the ring's interrupt.");
ABSL_FLAG(int, core, -1, "Pin to this CPU core.");
ABSL_FLAG(int, lost_after_ms, 0,
          "Give up on the frames in flight when none came back for this long, count them lost, "
          "and go on (0: a lost frame holds its window slot to the end).");
ABSL_FLAG(
    int, gaps_over_ms, 0,
    "Print every stretch longer than this without a frame back (gap: ms, from, to, given up).");
ABSL_FLAG(int, timeout_s, 10, "Give up after this many seconds without progress.");
ABSL_FLAG(bool, hold, false,
          "After the run, stay connected until SIGINT or SIGTERM (to read the peer's counters).");

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Sends sequenced frames over memif and checks the echoes.\n"
      "Usage: memif_traffic --socket=PATH [--id=N] [--frames=N] [--size=B] [--window=W]");
  absl::ParseCommandLine(argc, argv);
  if (absl::GetFlag(FLAGS_hold)) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigprocmask(SIG_BLOCK, &set, nullptr);
  }
  if (absl::GetFlag(FLAGS_socket).empty()) {
    fprintf(stderr, "memif_traffic: --socket=PATH is required\n");
    return 2;
  }
  if (absl::Status pinned = snapd::tools::PinToCore(absl::GetFlag(FLAGS_core)); !pinned.ok()) {
    fprintf(stderr, "memif_traffic: %s\n", std::string(pinned.message()).c_str());
    return 2;
  }
  snapd::memif::ClientOptions copts;
  copts.socket_path = absl::GetFlag(FLAGS_socket);
  copts.id = absl::GetFlag(FLAGS_id);
  copts.secret = absl::GetFlag(FLAGS_secret);
  copts.name = "memif_traffic";
  auto client = snapd::memif::MemifClient::Connect(copts);
  if (!client.ok()) {
    fprintf(stderr, "memif_traffic: %s\n", std::string(client.status().message()).c_str());
    return 1;
  }
  snap::LoadOptions load;
  load.frames = absl::GetFlag(FLAGS_frames);
  load.frame_size = absl::GetFlag(FLAGS_size);
  load.window = absl::GetFlag(FLAGS_window);
  load.poll = absl::GetFlag(FLAGS_poll);
  load.idle_timeout = absl::Seconds(absl::GetFlag(FLAGS_timeout_s));
  load.send_for = absl::Seconds(absl::GetFlag(FLAGS_duration_s));
  load.lost_after = absl::Milliseconds(absl::GetFlag(FLAGS_lost_after_ms));
  load.gaps_over = absl::Milliseconds(absl::GetFlag(FLAGS_gaps_over_ms));
  load.record_rtt = load.window == 1;
  snap::LoadResult r = snap::RunLoad(**client, load);
  printf("memif_traffic: id=%u %s\n", copts.id, snap::Summary(r).c_str());
  fputs(snap::GapLines(r).c_str(), stdout);
  fflush(stdout);
  if (absl::GetFlag(FLAGS_hold)) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    int sig;
    sigwait(&set, &sig);
  }
  (*client)->Disconnect("done");
  return r.clean() ? 0 : 1;
}
