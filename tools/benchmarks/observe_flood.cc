// observe_flood: app A floods app B through a running snapd, both memif clients of it in this
// process, 64-byte frames in bursts of 32, as engine_bench's app_to_app does in-process; prints
// what B received a second. Run by tools/benchmarks/observe_bench.sh between and during scrapes
// and captures.
//   observe_flood --socket=PATH --seconds=S [--core=N]
//   -> flood mpps=<received Mpps> sent=<n> received=<n> misdelivered=<n>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "base/addr.h"
#include "base/clock.h"
#include "clients/packet.h"
#include "ipc/client.h"
#include "tools/cpu.h"

ABSL_FLAG(std::string, socket, "", "snapd's memif socket.");
ABSL_FLAG(double, seconds, 2, "How long to flood.");
ABSL_FLAG(int, core, -1, "Pin to this core.");
ABSL_FLAG(std::string, a, "1,02:00:00:00:9a:01,10.94.0.1", "The sender: id,mac,ip.");
ABSL_FLAG(std::string, b, "2,02:00:00:00:9a:02,10.94.0.2", "The receiver: id,mac,ip.");

namespace snapd {
namespace {

struct App {
  uint32_t id = 0;
  uint64_t mac = 0;
  uint32_t ip = 0;
};

App Parse(const std::string& s) {
  App a;
  const size_t c1 = s.find(','), c2 = s.find(',', c1 + 1);
  a.id = static_cast<uint32_t>(std::stoul(s.substr(0, c1)));
  ParseMac(s.substr(c1 + 1, c2 - c1 - 1), &a.mac);
  ParseIpv4(s.substr(c2 + 1), &a.ip);
  return a;
}

int Main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  if (!tools::PinToCore(absl::GetFlag(FLAGS_core)).ok()) return 2;
  const App a = Parse(absl::GetFlag(FLAGS_a)), b = Parse(absl::GetFlag(FLAGS_b));
  std::unique_ptr<memif::MemifClient> ca, cb;
  for (auto [app, client] : {std::pair{&a, &ca}, std::pair{&b, &cb}}) {
    memif::ClientOptions o{absl::GetFlag(FLAGS_socket), app->id};
    o.log2_ring_size = 11;
    o.name = "observe_flood";
    auto c = memif::MemifClient::Connect(o);
    if (!c.ok()) {
      fprintf(stderr, "observe_flood: app %u: %s\n", app->id,
              std::string(c.status().message()).c_str());
      return 1;
    }
    *client = std::move(*c);
  }
  std::string f = snap::UdpHeader(a.mac, b.mac, a.ip, b.ip, 9000, 7, 64);
  f.resize(64, 'x');
  memif::Frame burst[32];
  for (auto& fr : burst) fr = memif::Frame{reinterpret_cast<uint8_t*>(f.data()), 64};
  uint64_t sent = 0, received = 0, misdelivered = 0;
  memif::Frame got[256];
  const int64_t start = MonotonicNs(), end = start + int64_t(absl::GetFlag(FLAGS_seconds) * 1e9);
  while (MonotonicNs() < end) {
    sent += ca->tx(0).Transmit(burst, 32);
    const uint16_t n = cb->rx(0).Receive(got, 256);
    for (uint16_t i = 0; i < n; ++i) {
      if (got[i].len != 64 || MacFromBytes(got[i].data) != b.mac) ++misdelivered;
    }
    cb->rx(0).Release();
    received += n;
  }
  const double s = (MonotonicNs() - start) / 1e9;
  printf("flood mpps=%.3f sent=%lu received=%lu misdelivered=%lu\n", received / s / 1e6, sent,
         received, misdelivered);
  return misdelivered == 0 ? 0 : 1;
}

}  // namespace
}  // namespace snapd

int main(int argc, char** argv) { return snapd::Main(argc, argv); }
