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
#include "clients/traffic_flags.h"
#include "ipc/client.h"
#include "tools/cpu.h"

ABSL_FLAG(std::string, socket, "", "memif control socket of the server (required).");
ABSL_FLAG(uint32_t, id, 0, "Interface id to connect with.");
ABSL_FLAG(std::string, secret, "", "Interface secret, if the server wants one.");
ABSL_FLAG(int, core, -1, "Pin to this CPU core.");
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
  snap::LoadOptions load = snap::LoadOptionsFromFlags();
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
