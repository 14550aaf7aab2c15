// engine_bench: one vswitch engine on a core of its own, 64-byte frames, measured three ways, and
// in the same run the kernel path it replaces. Run by `tools/bench engines`.
//   app_to_app  app A -> vswitch -> app B, both apps memif clients of snapd's memif server
//   nic_to_app  a DPDK net_ring port (its rx ring fed with mbufs) -> vswitch -> app B
//   kernel_udp  UDP from one socket to another on loopback, sendmmsg/recvmmsg batches of 32
// The engine's worker spins on --engine_core; the generator (and the apps' receive side) runs on
// --app_core. Prints a table, then
//   engine_mpps app_to_app=<mpps> nic_to_app=<mpps> kernel_udp_mpps=<mpps>
//   ratio=<app_to_app/kernel>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <rte_eth_ring.h>
#include <rte_mbuf.h>
#include <rte_ring.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "base/clock.h"
#include "clients/packet.h"
#include "clients/traffic.h"
#include "engines/frame.h"
#include "engines/registry.h"
#include "ipc/client.h"
#include "ipc/server.h"
#include "snapd/daemon/app_port.h"
#include "snapd/daemon/dpdk.h"
#include "snapd/daemon/worker.h"
#include "tools/cpu.h"

ABSL_FLAG(int, engine_core, 1, "Core of the engine's worker.");
ABSL_FLAG(int, app_core, 0, "Core of the traffic generator and the receiving app.");
ABSL_FLAG(double, seconds, 1.5, "Seconds per measurement.");
ABSL_FLAG(int, rounds, 3, "Rounds, each with fresh apps and engine; the median is reported.");

namespace snapd {
namespace {

constexpr uint32_t kFrame = 64;
constexpr uint16_t kBurst = 32;
constexpr char kMacA[] = "02:00:00:00:aa:01";
constexpr char kMacB[] = "02:00:00:00:aa:02";
constexpr char kMacHost[] = "02:00:00:00:aa:10";
constexpr char kIpA[] = "10.90.0.1";
constexpr char kIpB[] = "10.90.0.2";

uint64_t Mac(const char* s) {
  uint64_t m = 0;
  ParseMac(s, &m);
  return m;
}
uint32_t Ip(const char* s) {
  uint32_t ip = 0;
  ParseIpv4(s, &ip);
  return ip;
}

std::string Frame(const char* src_mac, const char* dst_mac, const char* src_ip,
                  const char* dst_ip) {
  std::string f =
      snap::UdpHeader(Mac(src_mac), Mac(dst_mac), Ip(src_ip), Ip(dst_ip), 9000, 7, kFrame);
  f.resize(kFrame, 'x');
  return f;
}

struct Result {
  double mpps = 0;
  uint64_t sent = 0, received = 0;
};

// The bench's own snapd in miniature: a memif server, two attached apps, a vswitch on a worker.
class Rig {
 public:
  explicit Rig(int round) {
    memif::ServerOptions options;
    options.socket_path = absl::StrCat("/tmp/snapd-engine-bench-", getpid(), "-", round, ".sock");
    options.accept_any_id = true;
    server_ = std::move(*memif::MemifServer::Create(options));
    server_->set_on_connected([this](memif::Connection& c) { conns_.push_back(&c); });
    engine_ = std::move(*EngineRegistry::Global().Create("vswitch", "vswitch0", "burst: 32"));
    for (uint32_t id : {1u, 2u}) {
      std::thread t([&, id] {
        memif::ClientOptions copts{options.socket_path, id};
        copts.log2_ring_size = 11;
        clients_[id - 1] = std::move(*memif::MemifClient::Connect(copts));
      });
      while (conns_.size() < id) server_->Poll(10);
      t.join();
    }
    Attach(conns_[0], "appA", kMacA, kIpA);
    Attach(conns_[1], "appB", kMacB, kIpB);
  }

  void Attach(memif::Connection* conn, const char* name, const char* mac, const char* ip) {
    engines::PortAttachment att;
    uint8_t b[6];
    MacToBytes(Mac(mac), b);
    att.set_mac(std::string(reinterpret_cast<char*>(b), 6));
    att.set_ipv4(Ip(ip));
    engine_->AddPort(std::make_unique<AppPort>(name, *conn, 0), att);
  }

  ~Rig() {
    engine_.reset();  // its ports point into the server's connections
    for (auto& c : clients_) c.reset();
    server_.reset();
  }

  Engine& engine() { return *engine_; }
  memif::MemifClient& a() { return *clients_[0]; }
  memif::MemifClient& b() { return *clients_[1]; }

 private:
  std::unique_ptr<memif::MemifServer> server_;
  std::vector<memif::Connection*> conns_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<memif::MemifClient> clients_[2];
};

uint64_t g_misdelivered = 0;  // frames app B got that were not addressed to it

// Drains what app B received, checking each frame is addressed to B; returns how many.
uint64_t DrainB(memif::MemifClient& b) {
  static const uint64_t kB = Mac(kMacB);
  memif::Frame got[256];
  uint16_t n = b.rx(0).Receive(got, 256);
  for (uint16_t i = 0; i < n; ++i) {
    if (got[i].len != kFrame || MacFromBytes(got[i].data) != kB) ++g_misdelivered;
  }
  b.rx(0).Release();
  return n;
}

void PrintEngine(const char* what, Engine& e, uint64_t polls0, uint64_t empty0, uint64_t batches0,
                 uint64_t frames0) {
  const EngineStats& s = e.stats();
  uint64_t polls = s.polls.Get() - polls0, empty = s.empty_polls.Get() - empty0;
  uint64_t batches = s.batches.Get() - batches0, frames = s.frames.Get() - frames0;
  // Empty polls mean the engine waited for the generator: the figure is then a lower bound.
  printf("  engine during %s: polls=%lu empty=%.1f%% avg_batch=%.1f\n", what, polls,
         polls ? 100.0 * empty / polls : 0.0, batches ? double(frames) / batches : 0.0);
}

Result AppToApp(Rig& rig, double seconds) {
  const EngineStats& es = rig.engine().stats();
  uint64_t p0 = es.polls.Get(), e0 = es.empty_polls.Get(), b0 = es.batches.Get(),
           f0 = es.frames.Get();
  std::string f = Frame(kMacA, kMacB, kIpA, kIpB);
  memif::Frame burst[kBurst];
  for (auto& fr : burst) fr = memif::Frame{reinterpret_cast<uint8_t*>(f.data()), kFrame};
  Result r;
  int64_t start = snapd::MonotonicNs(), end = start + int64_t(seconds * 1e9);
  while (snapd::MonotonicNs() < end) {
    r.sent += rig.a().tx(0).Transmit(burst, kBurst);
    r.received += DrainB(rig.b());
  }
  double s = (snapd::MonotonicNs() - start) / 1e9;
  r.mpps = r.received / s / 1e6;
  PrintEngine("app_to_app", rig.engine(), p0, e0, b0, f0);
  return r;
}

Result NicToApp(Rig& rig, Worker& worker, double seconds, int round) {
  std::string tag = absl::StrCat(round);
  rte_ring* rx = rte_ring_create(("bench_rx" + tag).c_str(), 4096, rte_socket_id(),
                                 RING_F_SP_ENQ | RING_F_SC_DEQ);
  rte_ring* tx = rte_ring_create(("bench_tx" + tag).c_str(), 4096, rte_socket_id(),
                                 RING_F_SP_ENQ | RING_F_SC_DEQ);
  int port = rte_eth_from_rings(("bench_ring" + tag).c_str(), &rx, 1, &tx, 1, rte_socket_id());
  auto nic = DpdkNic::Adopt(static_cast<uint16_t>(port), "nic0", "bench_ring" + tag, 1);
  if (!nic.ok()) {
    fprintf(stderr, "engine_bench: %s\n", std::string(nic.status().message()).c_str());
    exit(1);
  }
  std::unique_ptr<Port> nic_port = (*nic)->TakeQueuePort(0);
  worker.RunSync([&] { rig.engine().AddPort(std::move(nic_port), {}); });
  std::string f = Frame(kMacHost, kMacB, "10.90.0.100", kIpB);
  rte_mbuf* mbufs[kBurst];
  const EngineStats& es = rig.engine().stats();
  uint64_t p0 = es.polls.Get(), e0 = es.empty_polls.Get(), b0 = es.batches.Get(),
           f0 = es.frames.Get();
  Result r;
  int64_t start = snapd::MonotonicNs(), end = start + int64_t(seconds * 1e9);
  while (snapd::MonotonicNs() < end) {
    if (rte_ring_free_count(rx) >= kBurst &&
        rte_pktmbuf_alloc_bulk(MbufPool(), mbufs, kBurst) == 0) {
      for (rte_mbuf* m : mbufs) {
        memcpy(rte_pktmbuf_mtod(m, void*), f.data(), kFrame);
        m->data_len = m->pkt_len = kFrame;
      }
      unsigned n = rte_ring_enqueue_burst(rx, reinterpret_cast<void**>(mbufs), kBurst, nullptr);
      if (n < kBurst) rte_pktmbuf_free_bulk(mbufs + n, kBurst - n);
      r.sent += n;
    }
    r.received += DrainB(rig.b());
  }
  double s = (snapd::MonotonicNs() - start) / 1e9;
  r.mpps = r.received / s / 1e6;
  PrintEngine("nic_to_app", rig.engine(), p0, e0, b0, f0);
  worker.RunSync([&] { rig.engine().RemovePort("nic0/q0"); });
  nic->reset();
  // Whatever the port left in its rings goes back to the pool.
  void* m;
  while (rte_ring_dequeue(rx, &m) == 0) rte_pktmbuf_free(static_cast<rte_mbuf*>(m));
  while (rte_ring_dequeue(tx, &m) == 0) rte_pktmbuf_free(static_cast<rte_mbuf*>(m));
  rte_ring_free(rx);
  rte_ring_free(tx);
  return r;
}

// UDP between two sockets on loopback: a sender thread (sendmmsg) and this thread receiving
// (recvmmsg), each on its own core; the receiver blocks, or with `spin` polls (MSG_DONTWAIT).
Result KernelUdp(double seconds, int sender_core, int receiver_core, bool spin) {
  int rx = socket(AF_INET, SOCK_DGRAM, 0), tx = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(rx, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(rx, reinterpret_cast<sockaddr*>(&addr), &len);
  connect(tx, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  int buf = 8 << 20;
  setsockopt(rx, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
  timeval tv{0, 100000};
  setsockopt(rx, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  // A 64-byte Ethernet frame carries 22 bytes of UDP payload.
  constexpr size_t kPayload = kFrame - snap::kUdpHeaderBytes;
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> sent{0};
  std::thread sender([&] {
    tools::PinToCore(sender_core).IgnoreError();
    char payload[kBurst][kPayload] = {};
    iovec iov[kBurst];
    mmsghdr msgs[kBurst] = {};
    for (int i = 0; i < kBurst; ++i) {
      iov[i] = {payload[i], kPayload};
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    while (!stop) {
      int n = sendmmsg(tx, msgs, kBurst, 0);
      if (n > 0) sent += n;
    }
  });
  tools::PinToCore(receiver_core).IgnoreError();
  char payload[kBurst][2048];
  iovec iov[kBurst];
  mmsghdr msgs[kBurst] = {};
  for (int i = 0; i < kBurst; ++i) {
    iov[i] = {payload[i], sizeof(payload[i])};
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  Result r;
  int64_t start = snapd::MonotonicNs(), end = start + int64_t(seconds * 1e9);
  while (snapd::MonotonicNs() < end) {
    int n = recvmmsg(rx, msgs, kBurst, spin ? MSG_DONTWAIT : MSG_WAITFORONE, nullptr);
    if (n > 0) r.received += n;
  }
  double s = (snapd::MonotonicNs() - start) / 1e9;
  stop = true;
  sender.join();
  r.sent = sent;
  r.mpps = r.received / s / 1e6;
  close(rx);
  close(tx);
  return r;
}

int Main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const int engine_core = absl::GetFlag(FLAGS_engine_core);
  const int app_core = absl::GetFlag(FLAGS_app_core);
  const double seconds = absl::GetFlag(FLAGS_seconds);
  config::SnapdConfig cfg;
  if (absl::Status s = InitEal(cfg); !s.ok()) {
    fprintf(stderr, "engine_bench: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  if (absl::Status s = tools::PinToCore(app_core); !s.ok()) {
    fprintf(stderr, "engine_bench: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  RegisterDataplaneThread();
  // Each round builds its apps and engine anew: where their rings land in memory changes from one
  // to the next, and so, on these machines, does the rate (by up to 2.5x); the median is reported.
  std::vector<Result> a2a_rounds, n2a_rounds;
  uint64_t drops = 0;
  for (int round = 0; round < absl::GetFlag(FLAGS_rounds); ++round) {
    Rig rig(round);
    Worker worker("bench-engine", engine_core, Worker::Mode::kDedicated);
    worker.AddEngine(&rig.engine());
    a2a_rounds.push_back(AppToApp(rig, seconds));
    n2a_rounds.push_back(NicToApp(rig, worker, seconds, round));
    worker.RemoveEngine(&rig.engine());
    drops += rig.engine().stats().drops.Get();
    printf("  round %d: app_to_app=%.2f Mpps nic_to_app=%.2f Mpps\n", round, a2a_rounds.back().mpps,
           n2a_rounds.back().mpps);
  }
  auto median = [](std::vector<Result> v) {
    std::sort(v.begin(), v.end(), [](const Result& a, const Result& b) { return a.mpps < b.mpps; });
    return v[v.size() / 2];
  };
  Result a2a = median(a2a_rounds), n2a = median(n2a_rounds);
  // The kernel baseline is the better of a blocking and a polling receiver.
  Result udp_block = KernelUdp(seconds, app_core, engine_core, false);
  Result udp_spin = KernelUdp(seconds, app_core, engine_core, true);
  Result udp = udp_spin.mpps > udp_block.mpps ? udp_spin : udp_block;

  printf("%-46s %10s %14s %14s\n", "64-byte frames, engine on its own core (median)", "Mpps",
         "sent", "received");
  printf("%-46s %10.2f %14lu %14lu\n", "app -> vswitch -> app (memif)", a2a.mpps, a2a.sent,
         a2a.received);
  printf("%-46s %10.2f %14lu %14lu\n", "NIC (net_ring) -> vswitch -> app", n2a.mpps, n2a.sent,
         n2a.received);
  printf("%-46s %10.2f %14lu %14lu\n", "kernel UDP, sendmmsg/recvmmsg x32, blocking",
         udp_block.mpps, udp_block.sent, udp_block.received);
  printf("%-46s %10.2f %14lu %14lu\n", "kernel UDP, sendmmsg/recvmmsg x32, polling", udp_spin.mpps,
         udp_spin.sent, udp_spin.received);
  printf("vswitch drops (app B's ring full, counted): %lu; frames B got not addressed to it: %lu\n",
         drops, g_misdelivered);
  printf("engine_mpps app_to_app=%.2f nic_to_app=%.2f kernel_udp_mpps=%.2f ratio=%.1f\n", a2a.mpps,
         n2a.mpps, udp.mpps, udp.mpps > 0 ? a2a.mpps / udp.mpps : 0.0);
  return 0;
}

}  // namespace
}  // namespace snapd

int main(int argc, char** argv) { return snapd::Main(argc, argv); }
