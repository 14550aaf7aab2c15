#include "snapd/daemon/dpdk.h"

#include <fcntl.h>
#include <linux/bpf.h>
#include <net/if.h>
#include <rte_bus_vdev.h>
#include <rte_dev.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iterator>
#include <regex>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "engines/frame.h"
#include "glog/logging.h"
#include "snapd/daemon/config.h"

// Where CPUID does not give the TSC's frequency (most VMs, these machines'), the EAL measures it
// at start: two reads of the TSC and of CLOCK_MONOTONIC_RAW around nanosleep(100 ms), the count
// divided by the time that passed, rounded to 10 MHz (get_tsc_freq, lib/eal/linux/eal_timer.c).
// A tenth of a second of every start, and of the time apps wait after a crash. This definition
// comes before libc's for the EAL (an executable's symbols come first), and while rte_eal_init
// runs on this thread it makes that one sleep 10 ms: the same frequency, measured over a tenth of
// the time (a few parts in ten thousand, well inside the rounding; snapd keeps time with
// clock_gettime, not the TSC). Every other call sleeps as asked.
namespace snapd {
thread_local bool t_eal_starting = false;  // the thread is in rte_eal_init
}  // namespace snapd

extern "C" int nanosleep(const struct timespec* request, struct timespec* remaining) {
  static constexpr struct timespec kTscMeasurement = {0, 10 * 1000 * 1000};
  if (snapd::t_eal_starting && request != nullptr && request->tv_sec == 0 &&
      request->tv_nsec == 100 * 1000 * 1000) {
    request = &kTscMeasurement;
  }
  return static_cast<int>(syscall(SYS_nanosleep, request, remaining));
}

namespace snapd {
namespace {

rte_mempool* g_pool = nullptr;
int g_starting_mount_namespace = -1;  // HideUnusedPmdPlugins
constexpr uint16_t kRxDescriptors = 512;
constexpr uint16_t kTxDescriptors = 512;
constexpr uint16_t kMaxBurst = 256;
constexpr unsigned kMbufCache = 256;
// Drivers snapd links (snapd/BUILD): NICs of these need no plugin.
constexpr const char* kLinkedDrivers[] = {"net_af_packet", "net_tap", "net_ring", "net_null",
                                          "net_memif"};

bool IsPciAddress(const std::string& devargs) {
  static const std::regex pci("^([0-9a-fA-F]{4}:)?[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\\.[0-7]$");
  return std::regex_match(DeviceName(devargs), pci);
}

bool IsDpdkNic(const config::Nic& nic) {
  return !absl::StartsWith(nic.devargs(), kPacketNicPrefix);
}

// Mbufs for every NIC queue's rings full plus a burst in flight each way, every thread's cache,
// and room for engines holding frames: the next 2^n - 1 (what a mempool fills best).
unsigned MbufsFor(const config::SnapdConfig& config) {
  uint64_t n = 1024;
  for (const config::Nic& nic : config.nics()) {
    if (!IsDpdkNic(nic)) continue;
    n += uint64_t{std::max(nic.queues(), 1u)} * (kRxDescriptors + kTxDescriptors + 2 * kMaxBurst);
  }
  cpu_set_t cpus;
  int cpu_count = sched_getaffinity(0, sizeof(cpus), &cpus) == 0 ? CPU_COUNT(&cpus) : 2;
  n += uint64_t{kMbufCache} * static_cast<uint64_t>(cpu_count);
  uint64_t size = 1;
  while (size - 1 < n) size <<= 1;
  return static_cast<unsigned>(std::min<uint64_t>(size - 1, (1u << 20) - 1));
}

std::string DpdkError(int ret) { return rte_strerror(ret < 0 ? -ret : ret); }

// Why net_af_xdp cannot run on this kernel, "" when it may: the PMD loads an XDP program, which
// some kernels (these machines') refuse even to root.
std::string AfXdpRefusal(const std::string& iface) {
  // The smallest XDP program: return XDP_PASS.
  bpf_insn prog[2] = {};
  prog[0].code = BPF_ALU64 | BPF_MOV | BPF_K;
  prog[0].imm = XDP_PASS;
  prog[1].code = BPF_JMP | BPF_EXIT;
  bpf_attr attr{};
  attr.prog_type = BPF_PROG_TYPE_XDP;
  attr.insns = reinterpret_cast<uintptr_t>(prog);
  attr.insn_cnt = 2;
  static const char kLicense[] = "GPL";
  attr.license = reinterpret_cast<uintptr_t>(kLicense);
  int fd = static_cast<int>(syscall(__NR_bpf, BPF_PROG_LOAD, &attr, sizeof(attr)));
  if (fd >= 0) {
    close(fd);
    return "";
  }
  return absl::StrCat(
      "this kernel refuses to load XDP programs (bpf: ", strerror(errno),
      geteuid() == 0 ? "" : "; snapd is not root: it needs CAP_BPF and CAP_NET_ADMIN",
      "), so net_af_xdp cannot run here; use af_packet:", iface.empty() ? "IFACE" : iface,
      " instead");
}

// One NIC queue as a Port. Receive hands out views of the mbufs' data; Release frees them;
// Transmit copies frames into new mbufs (chained when a frame is larger than one).
class NicQueuePort : public Port {
 public:
  NicQueuePort(std::string name, std::string link, uint16_t port_id, uint16_t queue,
               bool rx_interrupts, bool never_receives)
      : Port(std::move(name), PortKind::kNic, std::move(link)),
        port_id_(port_id),
        queue_(queue),
        never_receives_(never_receives) {
    if (rx_interrupts) {
      intr_fd_ = rte_eth_dev_rx_intr_ctl_q_get_fd(port_id, queue);
      char target[64] = {};
      std::string link_path = absl::StrCat("/proc/self/fd/", intr_fd_);
      intr_is_eventfd_ = intr_fd_ >= 0 &&
                         readlink(link_path.c_str(), target, sizeof(target) - 1) > 0 &&
                         std::string(target) == "anon_inode:[eventfd]";
    }
  }
  ~NicQueuePort() override { Release(); }

  // Rx interrupts, where the PMD has them. A wake-up can be missed for a frame that came just
  // before arming (not every PMD can count its queue), so wake_reliable() is false: the worker
  // still bounds its sleep.
  int wake_fd() const override { return intr_fd_; }
  // A queue that never receives (net_null with no-rx=1, the default config's NIC) has nothing to
  // wake anyone for: it does not bound the worker's sleep either.
  bool wake_reliable() const override { return never_receives_; }
  void ArmWake(bool armed) override {
    if (intr_fd_ < 0) return;
    if (armed) {
      rte_eth_dev_rx_intr_enable(port_id_, queue_);
    } else {
      rte_eth_dev_rx_intr_disable(port_id_, queue_);
    }
  }
  bool Pending() const override {
    return intr_fd_ >= 0 && rte_eth_rx_queue_count(port_id_, queue_) > 0;
  }
  void DrainWake() override {
    // An eventfd counts interrupts and must be read; other fds (tap's own) are readable while
    // frames wait, and reading them would take a frame.
    uint64_t count;
    if (intr_is_eventfd_) (void)!read(intr_fd_, &count, sizeof(count));
  }

  uint16_t DoReceive(Packet* pkts, uint16_t max) override {
    if (max > kMaxBurst) max = kMaxBurst;
    uint16_t n = rte_eth_rx_burst(port_id_, queue_, rx_, max);
    uint16_t k = 0;
    for (uint16_t i = 0; i < n; ++i) {
      rte_mbuf* m = rx_[i];
      if (ABSL_PREDICT_FALSE(m->nb_segs != 1)) {  // frames larger than one mbuf: not supported
        stats().rx_errors.Add();
        rte_pktmbuf_free(m);
        continue;
      }
      rx_[k] = m;
      pkts[k++] = Packet{rte_pktmbuf_mtod(m, uint8_t*), m->data_len};
    }
    held_ = k;
    return k;
  }

  void Release() override {
    if (held_ > 0) rte_pktmbuf_free_bulk(rx_, held_);
    held_ = 0;
  }

  uint16_t DoTransmit(const Packet* pkts, uint16_t n) override {
    if (n > kMaxBurst) n = kMaxBurst;
    if (ABSL_PREDICT_FALSE(rte_pktmbuf_alloc_bulk(g_pool, tx_, n) != 0)) return 0;
    uint16_t built = 0;
    for (; built < n; ++built) {
      if (!Fill(tx_[built], pkts[built])) break;
    }
    if (built < n) rte_pktmbuf_free_bulk(tx_ + built, n - built);
    uint16_t sent = rte_eth_tx_burst(port_id_, queue_, tx_, built);
    if (sent < built) rte_pktmbuf_free_bulk(tx_ + sent, built - sent);
    return sent;
  }

 private:
  // Copies `pkt` into `m`, chaining more mbufs when it does not fit in one.
  static bool Fill(rte_mbuf* m, const Packet& pkt) {
    uint32_t room = rte_pktmbuf_tailroom(m);
    if (ABSL_PREDICT_TRUE(pkt.len <= room)) {
      rte_memcpy(rte_pktmbuf_mtod(m, void*), pkt.data, pkt.len);
      m->data_len = static_cast<uint16_t>(pkt.len);
      m->pkt_len = pkt.len;
      return true;
    }
    uint32_t done = 0;
    rte_mbuf* seg = m;
    while (true) {
      uint32_t chunk = std::min(pkt.len - done, static_cast<uint32_t>(rte_pktmbuf_tailroom(seg)));
      rte_memcpy(rte_pktmbuf_mtod(seg, void*), pkt.data + done, chunk);
      seg->data_len = static_cast<uint16_t>(chunk);
      if (seg != m) {
        seg->pkt_len = chunk;
        if (rte_pktmbuf_chain(m, seg) != 0) {
          rte_pktmbuf_free(seg);
          return false;
        }
      } else {
        m->pkt_len = chunk;
      }
      done += chunk;
      if (done == pkt.len) return true;
      seg = rte_pktmbuf_alloc(g_pool);
      if (seg == nullptr) return false;
    }
  }

  const uint16_t port_id_;
  const uint16_t queue_;
  const bool never_receives_;
  int intr_fd_ = -1;
  bool intr_is_eventfd_ = false;
  rte_mbuf* rx_[kMaxBurst];
  rte_mbuf* tx_[kMaxBurst];
  uint16_t held_ = 0;
};

}  // namespace

void HideUnusedPmdPlugins(const config::SnapdConfig& config) {
  if (!config.eal().args().empty()) return;  // the operator's EAL arguments may name any driver
  for (const config::Nic& nic : config.nics()) {
    if (!IsDpdkNic(nic)) continue;
    const std::string device = DeviceName(nic.devargs());
    if (std::none_of(std::begin(kLinkedDrivers), std::end(kLinkedDrivers),
                     [&](const char* d) { return absl::StartsWith(device, d); })) {
      return;
    }
  }
  struct stat st;
  if (stat(RTE_EAL_PMD_PATH, &st) != 0 || !S_ISDIR(st.st_mode)) return;
  const int starting = open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC);
  if (starting < 0 || unshare(CLONE_NEWNS) != 0) {
    LOG(INFO) << "DPDK's plugins stay in sight (" << RTE_EAL_PMD_PATH
              << "): no mount namespace of snapd's own: " << strerror(errno);
    if (starting >= 0) close(starting);
    return;
  }
  g_starting_mount_namespace = starting;
  if (mount(nullptr, "/", nullptr, MS_REC | MS_SLAVE, nullptr) != 0 ||
      mount("snapd-no-plugins", RTE_EAL_PMD_PATH, "tmpfs",
            MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=4k,mode=0755") != 0) {
    LOG(INFO) << "DPDK's plugins stay in sight (" << RTE_EAL_PMD_PATH << "): " << strerror(errno);
  }
}

int StartingMountNamespace() { return g_starting_mount_namespace; }

absl::Status InitEal(const config::SnapdConfig& config) {
  std::vector<std::string> args = {"snapd"};
  if (!config.eal().args().empty()) {
    args.insert(args.end(), config.eal().args().begin(), config.eal().args().end());
  } else {
    uint32_t mb = config.eal().memory_mb() == 0 ? 512 : config.eal().memory_mb();
    // No telemetry: snapctl is the way in, and DPDK's socket would stay behind in /var/run/dpdk
    // whenever snapd does not clean up (kill -9, or the old side of an upgrade).
    args.insert(args.end(), {"--no-huge", "-m", std::to_string(mb), "--no-shconf", "--no-telemetry",
                             "--log-level=lib.eal:error", "--log-level=pmd:warning"});
    std::vector<std::string> pci;
    for (const config::Nic& nic : config.nics()) {
      if (IsPciAddress(nic.devargs())) pci.push_back(nic.devargs());
    }
    if (pci.empty()) {
      args.push_back("--no-pci");
    } else {
      for (const std::string& p : pci) args.insert(args.end(), {"-a", p});
    }
  }
  // The EAL pins the main thread to its lcore; remember the process's CPUs to give them back, so
  // that threads started later (workers) are free to go anywhere.
  cpu_set_t cpus;
  sched_getaffinity(0, sizeof(cpus), &cpus);
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  t_eal_starting = true;
  int ret = rte_eal_init(static_cast<int>(argv.size()), argv.data());
  t_eal_starting = false;
  sched_setaffinity(0, sizeof(cpus), &cpus);
  if (ret < 0) {
    return absl::UnavailableError(absl::StrCat("DPDK EAL failed to start: ", DpdkError(rte_errno)));
  }
  g_pool = rte_pktmbuf_pool_create("snapd_mbufs", MbufsFor(config), kMbufCache, 0,
                                   RTE_MBUF_DEFAULT_BUF_SIZE, rte_socket_id());
  if (g_pool == nullptr) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "cannot create the mbuf pool: ", DpdkError(rte_errno), " (raise eal.memory_mb)"));
  }
  return absl::OkStatus();
}

rte_mempool* MbufPool() { return g_pool; }

void CleanupEal() {
  if (g_pool != nullptr) rte_mempool_free(g_pool);
  g_pool = nullptr;
  rte_eal_cleanup();
}

void RegisterDataplaneThread() {
  if (rte_lcore_id() == LCORE_ID_ANY) rte_thread_register();
}

void UnregisterDataplaneThread() {
  if (rte_lcore_id() != LCORE_ID_ANY) rte_thread_unregister();
}

absl::StatusOr<std::unique_ptr<DpdkNic>> DpdkNic::Open(const config::Nic& cfg, int index) {
  std::string devargs = cfg.devargs();
  uint16_t queues = static_cast<uint16_t>(cfg.queues() == 0 ? 1 : cfg.queues());
  // af_packet opens one socket per queue pair; ask for as many as queues.
  if (absl::StartsWith(devargs, "net_af_packet") && queues > 1 &&
      devargs.find("qpairs=") == std::string::npos) {
    absl::StrAppend(&devargs, ",qpairs=", queues);
  }
  std::string device = DeviceName(devargs);
  if (!IsPciAddress(devargs)) {
    int ret = rte_dev_probe(devargs.c_str());
    if (ret < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("cannot open NIC '", devargs, "': ", DpdkError(ret)));
    }
  }
  uint16_t port;
  if (rte_eth_dev_get_port_by_name(device.c_str(), &port) != 0) {
    return absl::NotFoundError(absl::StrCat("NIC '", devargs, "' has no ethdev port"));
  }
  auto nic = Adopt(port, absl::StrCat("nic", index), device, queues);
  if (!nic.ok()) {
    std::string why;
    if (absl::StartsWith(devargs, "net_af_xdp")) {
      std::smatch iface;
      std::regex_search(devargs, iface, std::regex("iface=([^,]*)"));
      why = AfXdpRefusal(iface.empty() ? "" : iface[1].str());
    }
    if (!why.empty()) {
      return absl::FailedPreconditionError(absl::StrCat("NIC '", devargs, "': ", why));
    }
    return absl::Status(nic.status().code(),
                        absl::StrCat("NIC '", devargs, "': ", nic.status().message()));
  }
  (*nic)->never_receives_ =
      absl::StartsWith(device, "net_null") && absl::StrContains(devargs, "no-rx=1");
  return nic;
}

absl::StatusOr<std::unique_ptr<DpdkNic>> DpdkNic::Adopt(uint16_t port, const std::string& name,
                                                        const std::string& device,
                                                        uint16_t queues) {
  std::unique_ptr<DpdkNic> nic(new DpdkNic());
  nic->name_ = name;
  nic->device_ = device;
  nic->port_id_ = port;
  rte_eth_dev_info info;
  int ret = rte_eth_dev_info_get(port, &info);
  if (ret != 0) return absl::InternalError(absl::StrCat("device info: ", DpdkError(ret)));
  if (queues > info.max_rx_queues || queues > info.max_tx_queues) {
    return absl::InvalidArgumentError(absl::StrCat("has at most ",
                                                   std::min(info.max_rx_queues, info.max_tx_queues),
                                                   " queue pairs; ", queues, " asked"));
  }
  uint64_t rss = info.flow_type_rss_offloads & (RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP);
  nic->rss_ = queues > 1 && rss != 0;
  // Configures and starts the port, with rx interrupts or without.
  auto bring_up = [&](bool rx_interrupts) -> absl::Status {
    rte_eth_conf conf{};
    if (nic->rss_) {
      conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
      conf.rx_adv_conf.rss_conf.rss_hf = rss;
    }
    conf.intr_conf.rxq = rx_interrupts ? 1 : 0;
    int r = rte_eth_dev_configure(port, queues, queues, &conf);
    if (r != 0) return absl::InternalError(absl::StrCat("configure: ", DpdkError(r)));
    uint16_t rxd = kRxDescriptors, txd = kTxDescriptors;
    rte_eth_dev_adjust_nb_rx_tx_desc(port, &rxd, &txd);
    for (uint16_t q = 0; q < queues; ++q) {
      r = rte_eth_rx_queue_setup(port, q, rxd, rte_eth_dev_socket_id(port), nullptr, g_pool);
      if (r == 0) r = rte_eth_tx_queue_setup(port, q, txd, rte_eth_dev_socket_id(port), nullptr);
      if (r != 0) return absl::InternalError(absl::StrCat("queue ", q, " setup: ", DpdkError(r)));
    }
    r = rte_eth_dev_start(port);
    if (r != 0) return absl::InternalError(absl::StrCat("start: ", DpdkError(r)));
    return absl::OkStatus();
  };
  // Rx interrupts let an idle worker sleep until frames come. PMDs without them (af_packet,
  // af_xdp, null, ring) are polled with a back-off instead, and are not even asked: af_xdp fails
  // to start with them and then holds its queues, so that a second setup fails too.
  static const char* const kNoRxInterrupts[] = {"net_af_packet", "net_af_xdp", "net_null",
                                                "net_ring"};
  bool ask = std::none_of(std::begin(kNoRxInterrupts), std::end(kNoRxInterrupts),
                          [&](const char* d) { return std::string(info.driver_name) == d; });
  absl::Status status = absl::UnimplementedError("no rx interrupts");
  if (ask) status = bring_up(true);
  nic->rx_interrupts_ = status.ok() && rte_eth_dev_rx_intr_ctl_q_get_fd(port, 0) >= 0;
  if (!nic->rx_interrupts_) {
    if (status.ok()) rte_eth_dev_stop(port);
    status = bring_up(false);
    if (!status.ok()) return status;
  }
  ret = rte_eth_promiscuous_enable(port);
  if (ret != 0 && ret != -ENOTSUP) {
    LOG(WARNING) << name << ": promiscuous mode not enabled: " << DpdkError(ret);
  }
  nic->queues_ = queues;
  nic->taken_.assign(queues, false);
  LOG(INFO) << name << ": " << device << " (port " << port << ", " << queues << " queue pair(s)"
            << (nic->rss_ ? ", RSS" : "") << (nic->rx_interrupts_ ? ", rx interrupts" : "")
            << ", driver " << info.driver_name << ")";
  char ifname[IF_NAMESIZE];
  if (info.if_index != 0 && if_indextoname(info.if_index, ifname) != nullptr) {
    nic->kernel_ifindex_ = info.if_index;
    nic->kernel_ifname_ = ifname;
  }
  return nic;
}

std::string DpdkNic::mac() const {
  rte_ether_addr a{};
  rte_eth_macaddr_get(port_id_, &a);
  return MacToString(MacFromBytes(a.addr_bytes));
}

bool DpdkNic::KernelInterfaceHere() const {
  return kernel_ifindex_ == 0 || if_nametoindex(kernel_ifname_.c_str()) == kernel_ifindex_;
}

DpdkNic::~DpdkNic() {
  if (abandoned_) return;  // another process runs the device now; our fds close at exit
  rte_eth_dev_stop(port_id_);
  rte_eth_dev_close(port_id_);
  if (!IsPciAddress(device_)) rte_eal_hotplug_remove("vdev", device_.c_str());
}

std::unique_ptr<Port> DpdkNic::TakeQueuePort(uint16_t q) {
  if (q >= queues_ || taken_[q]) return nullptr;
  taken_[q] = true;
  return std::make_unique<NicQueuePort>(absl::StrCat(name_, "/q", q), name_, port_id_, q,
                                        rx_interrupts_, never_receives_);
}

NicStats DpdkNic::Stats() const {
  NicStats s = DeviceStats();
#define SNAPD_CONTINUE(name, column, meaning) s.name = s.name - zero_.name + carried_.name;
  SNAPD_NIC_COUNTERS(SNAPD_CONTINUE)
#undef SNAPD_CONTINUE
  return s;
}

void DpdkNic::ContinueFrom(const NicStats& before) {
  carried_ = before;
  zero_ = DeviceStats();
}

NicStats DpdkNic::DeviceStats() const {
  NicStats s;
  rte_eth_link link;
  if (rte_eth_link_get_nowait(port_id_, &link) == 0) {
    s.link_up = link.link_status == RTE_ETH_LINK_UP;
    s.speed_mbps = link.link_speed;
  }
  rte_eth_stats st;
  if (rte_eth_stats_get(port_id_, &st) == 0) {
    s.rx_frames = st.ipackets;
    s.tx_frames = st.opackets;
    s.rx_bytes = st.ibytes;
    s.tx_bytes = st.obytes;
    s.rx_missed = st.imissed;
    s.rx_errors = st.ierrors;
    s.tx_errors = st.oerrors;
    s.rx_nombuf = st.rx_nombuf;
  }
  return s;
}

namespace {

class DpdkDriver final : public NicDriver {
 public:
  absl::Status Start(const config::SnapdConfig& config) override { return InitEal(config); }
  absl::StatusOr<std::unique_ptr<Nic>> Open(const config::Nic& cfg, int index) override {
    auto nic = DpdkNic::Open(cfg, index);
    if (!nic.ok()) return nic.status();
    return std::unique_ptr<Nic>(std::move(*nic));
  }
  void Stop() override { CleanupEal(); }
};

}  // namespace

NicDriver& DpdkNicDriver() {
  static auto* driver = new DpdkDriver();
  return *driver;
}

}  // namespace snapd
