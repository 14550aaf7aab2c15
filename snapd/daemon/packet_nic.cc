#include "snapd/daemon/packet_nic.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/ethtool.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/addr.h"
#include "base/clock.h"
#include "base/counter.h"
#include "base/log_limiter.h"
#include "engines/frame.h"
#include "glog/logging.h"
#include "snapd/daemon/config.h"

namespace snapd {
namespace {

constexpr uint16_t kMaxBurst = 256;
constexpr uint32_t kMinFrames = 64;
constexpr uint32_t kMaxFrames = 1 << 16;
// A VLAN tag: what the kernel may take off a received frame (snapd puts it back in front, in the
// slot's room before the frame), and what a frame may carry past the MTU.
constexpr uint32_t kVlanLen = 4;
// PACKET_FANOUT_FLAG_IGNORE_OUTGOING (Linux 6.9), which Debian 12's headers do not have.
constexpr uint32_t kFanoutIgnoreOutgoing = 0x4000;

std::string Errno(int err) { return strerror(err); }

uint32_t Align(uint32_t v, uint32_t to) { return (v + to - 1) / to * to; }

tpacket2_hdr* Slot(uint8_t* ring, const RingGeometry& g, uint32_t i) {
  // Slots never straddle blocks: a block holds block_size / frame_size of them.
  uint32_t per_block = g.block_size / g.frame_size;
  return reinterpret_cast<tpacket2_hdr*>(ring + size_t{i / per_block} * g.block_size +
                                         size_t{i % per_block} * g.frame_size);
}

int64_t RealtimeNs() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

uint32_t LoadStatus(const tpacket2_hdr* h) {
  return __atomic_load_n(&h->tp_status, __ATOMIC_ACQUIRE);
}
void StoreStatus(tpacket2_hdr* h, uint32_t status) {
  __atomic_store_n(&h->tp_status, status, __ATOMIC_RELEASE);
}

// Opens one queue's socket on `ifindex` with its receive ring mapped; joins fanout group `*group`
// (0: creates one and sets *group) when `fanout`.
absl::StatusOr<std::unique_ptr<PacketNic::Queue>> OpenQueue(const PacketNicArgs& args,
                                                            unsigned ifindex, uint32_t mtu,
                                                            bool fanout, uint32_t* group);

}  // namespace

absl::StatusOr<PacketNicArgs> ParsePacketNicArgs(const std::string& devargs) {
  if (!absl::StartsWith(devargs, kPacketNicPrefix)) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", devargs, "' is not ", kPacketNicPrefix, "IFACE"));
  }
  std::vector<std::string> parts =
      absl::StrSplit(devargs.substr(sizeof(kPacketNicPrefix) - 1), ',');
  PacketNicArgs args;
  args.iface = parts[0];
  if (args.iface.empty() || args.iface.size() >= IF_NAMESIZE ||
      args.iface.find_first_of("/ \t") != std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", devargs, "': want ", kPacketNicPrefix, "IFACE with an interface name"));
  }
  for (size_t i = 1; i < parts.size(); ++i) {
    std::pair<std::string, std::string> kv = absl::StrSplit(parts[i], absl::MaxSplits('=', 1));
    uint32_t* field = kv.first == "rx_frames" ? &args.rx_frames : nullptr;
    if (field == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("'", devargs, "': unknown option '", kv.first, "' (want rx_frames)"));
    }
    if (!absl::SimpleAtoi(kv.second, field) || *field < kMinFrames || *field > kMaxFrames) {
      return absl::InvalidArgumentError(
          absl::StrCat("'", devargs, "': ", kv.first, " must be ", kMinFrames, "..", kMaxFrames));
    }
  }
  return args;
}

RingGeometry RingFor(uint32_t mtu, uint32_t frames, uint32_t page_size) {
  // A received frame starts at TPACKET_ALIGN(TPACKET2_HDRLEN + 16) - 14 (the kernel aligns the
  // network header).
  uint32_t need = TPACKET_ALIGN(TPACKET2_HDRLEN + 16) + mtu + ETH_HLEN + kVlanLen;
  RingGeometry g;
  g.frame_size = Align(need, 2048);
  // The kernel allocates each block as a power of two pages: blocks of twice the slot's power of
  // two waste at most a third of a block (a 10240-byte slot: 3 in 32 KiB), and a page holds two
  // 2048-byte slots.
  uint32_t pow2 = 1;
  while (pow2 < g.frame_size) pow2 *= 2;
  g.block_size = std::max(page_size, pow2 == g.frame_size ? pow2 : 2 * pow2);
  uint32_t per_block = g.block_size / g.frame_size;
  g.frames = Align(frames, per_block);
  return g;
}

// One queue: a packet socket and its receive ring. Shared by the NIC (for its counters) and the
// port that uses it, so that either may go first.
struct PacketNic::Queue {
  UniqueFd fd;
  uint8_t* map = nullptr;
  size_t map_size = 0;
  RingGeometry rx;
  uint8_t* rx_ring = nullptr;
  // Written by the engine's thread, read by Stats.
  Counter rx_frames, rx_bytes, tx_frames, tx_bytes, rx_truncated, rx_wait_ns;
  bool taken = false;

  ~Queue() {
    if (map != nullptr) munmap(map, map_size);
  }
};

// One queue as a Port: see packet_nic.h.
class PacketQueuePort final : public Port {
 public:
  PacketQueuePort(std::string name, std::string link, std::shared_ptr<PacketNic::Queue> q,
                  uint32_t mtu, const std::string& iface)
      : Port(std::move(name), PortKind::kNic, std::move(link)),
        q_(std::move(q)),
        mtu_(mtu),
        max_tx_len_(mtu + ETH_HLEN + kVlanLen),
        iface_(iface) {}
  ~PacketQueuePort() override { Release(); }

  uint16_t DoReceive(Packet* pkts, uint16_t max) override {
    if (max > kMaxBurst) max = kMaxBurst;
    uint16_t k = 0;
    uint64_t bytes = 0;
    int64_t now = 0;  // CLOCK_REALTIME, the clock of the kernel's receive timestamps
    int64_t waited = 0;
    while (k < max && held_ < q_->rx.frames) {
      tpacket2_hdr* h = Slot(q_->rx_ring, q_->rx, (rx_next_ + held_) % q_->rx.frames);
      uint32_t status = LoadStatus(h);
      if (!(status & TP_STATUS_USER)) break;
      ++held_;
      uint8_t* data = reinterpret_cast<uint8_t*>(h) + h->tp_mac;
      uint32_t len = h->tp_snaplen;
      const bool tagged = status & TP_STATUS_VLAN_VALID;
      const sockaddr_ll* from = reinterpret_cast<const sockaddr_ll*>(
          reinterpret_cast<uint8_t*>(h) + TPACKET_ALIGN(sizeof(tpacket2_hdr)));
      bool take = true;
      if (ABSL_PREDICT_FALSE(from->sll_pkttype == PACKET_OUTGOING)) {
        // This host sending out of the interface, not the wire (a kernel without
        // PACKET_FANOUT_FLAG_IGNORE_OUTGOING lets a fanout group see it): not ours.
        take = false;
      } else if (ABSL_PREDICT_FALSE(len < h->tp_len || len < ETH_HLEN ||
                                    h->tp_mac + len > q_->rx.frame_size ||
                                    (tagged && h->tp_mac < sizeof(tpacket2_hdr) + kVlanLen))) {
        // Longer than a slot: larger than the MTU the ring was made for, or a segmentation
        // offload's super-frame that never was on a wire.
        q_->rx_truncated.Add();
        take = false;
        std::string more;
        if (truncated_log_.Allow(MonotonicNs(), &more)) {
          LOG(WARNING) << name() << ": dropped a " << h->tp_len << "-byte frame, larger than "
                       << iface_ << "'s MTU when the NIC opened (with offloads on: turn off "
                       << "segmentation offloads on the host that sent it, ethtool -K DEV tso off "
                       << "gso off, and receive offloads here, ethtool -K " << iface_
                       << " gro off lro off)" << more;
        }
      }
      if (ABSL_PREDICT_FALSE(!take)) {
        // A slot no view points into goes back at once: a burst of nothing but such frames
        // must still return the ring to the kernel, as the socket polls readable while the
        // slot the kernel filled last is ours.
        if (k == 0 && held_ == 1) {
          StoreStatus(h, TP_STATUS_KERNEL);
          rx_next_ = (rx_next_ + 1) % q_->rx.frames;
          held_ = 0;
        }
        continue;
      }
      if (status & TP_STATUS_CSUMNOTREADY) {
        // Sent by this host with its checksum left to the NIC (checksum offload): the sum is
        // not done yet, and a frame forwarded as it is would be dropped by whoever gets it.
        std::string more;
        if (!FinishL4Checksum(data, len) && csum_log_.Allow(MonotonicNs(), &more)) {
          LOG(WARNING) << name() << ": a frame from " << iface_ << " with its checksum left to "
                       << "the NIC is not TCP or UDP right after IPv4 or IPv6; forwarded as it is"
                       << more;
        }
      }
      if (tagged) {
        // The kernel took the tag off into the header: put it back, in the room before the frame.
        uint16_t tpid = (status & TP_STATUS_VLAN_TPID_VALID) ? h->tp_vlan_tpid : ETH_P_8021Q;
        data -= kVlanLen;
        memmove(data, data + kVlanLen, 2 * ETH_ALEN);
        uint16_t tag[2] = {htons(tpid), htons(h->tp_vlan_tci)};
        memcpy(data + 2 * ETH_ALEN, tag, sizeof(tag));
        len += kVlanLen;
      }
      if (now == 0) now = RealtimeNs();
      const int64_t age =
          std::max<int64_t>(0, now - (int64_t{h->tp_sec} * 1000000000 + h->tp_nsec));
      ages_[k] = age;
      waited += age;
      pkts[k++] = Packet{data, len};
      bytes += len;
    }
    if (k > 0) {
      q_->rx_frames.Add(k);
      q_->rx_bytes.Add(bytes);
      q_->rx_wait_ns.Add(static_cast<uint64_t>(waited));
    }
    return k;
  }

  int64_t RxAgeNs(uint16_t index) const override { return index < kMaxBurst ? ages_[index] : -1; }

  void Release() override {
    for (; held_ > 0; --held_) {
      StoreStatus(Slot(q_->rx_ring, q_->rx, rx_next_), TP_STATUS_KERNEL);
      rx_next_ = (rx_next_ + 1) % q_->rx.frames;
    }
  }

  uint16_t DoTransmit(const Packet* pkts, uint16_t n) override {
    if (n > kMaxBurst) n = kMaxBurst;
    // Engines drop what the MTU does not allow (Port::mtu); a frame the kernel would refuse ends
    // the burst here, and the engine counts it and the rest as not taken.
    uint16_t ready = 0;
    for (; ready < n; ++ready) {
      const Packet& p = pkts[ready];
      if (ABSL_PREDICT_FALSE(p.len < ETH_HLEN || p.len > max_tx_len_)) break;
      iov_[ready] = iovec{p.data, p.len};
      msgs_[ready].msg_hdr.msg_iov = &iov_[ready];
      msgs_[ready].msg_hdr.msg_iovlen = 1;
    }
    if (ready == 0) return 0;
    // One system call for the burst; the kernel copies each frame once and hands it straight to
    // the driver. It stops at a frame it cannot take now (a full send buffer, a device that
    // dropped it: ENOBUFS), and the engine counts the rest as not taken.
    int r = sendmmsg(q_->fd.get(), msgs_, ready, MSG_DONTWAIT);
    if (ABSL_PREDICT_FALSE(r < 0)) {
      int err = errno;
      std::string more;
      if (err != EAGAIN && err != ENOBUFS && err != EINTR &&
          send_log_.Allow(MonotonicNs(), &more)) {
        LOG(WARNING) << name() << ": sending on " << iface_ << " failed: " << Errno(err) << more;
      }
      return 0;
    }
    uint16_t sent = static_cast<uint16_t>(r);
    uint64_t bytes = 0;
    for (uint16_t i = 0; i < sent; ++i) bytes += pkts[i].len;
    q_->tx_frames.Add(sent);
    q_->tx_bytes.Add(bytes);
    return sent;
  }

  uint32_t mtu() const override { return mtu_; }
  int wake_fd() const override { return q_->fd.get(); }
  bool Pending() const override { return RxWaiting(); }
  void DrainWake() override {
    // The socket polls readable while frames wait (nothing to read), and with an error (the
    // interface went down): reading the error clears it, else every sleep would end at once.
    int err = 0;
    socklen_t len = sizeof(err);
    getsockopt(q_->fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
  }

 private:
  bool RxWaiting() const {
    return held_ < q_->rx.frames &&
           (LoadStatus(Slot(q_->rx_ring, q_->rx, (rx_next_ + held_) % q_->rx.frames)) &
            TP_STATUS_USER);
  }

  const std::shared_ptr<PacketNic::Queue> q_;
  const uint32_t mtu_;
  const uint32_t max_tx_len_;  // what the kernel sends: MTU + Ethernet header + a VLAN tag
  iovec iov_[kMaxBurst];
  mmsghdr msgs_[kMaxBurst] = {};
  const std::string iface_;
  uint32_t rx_next_ = 0;  // the oldest slot we hold or will look at next
  uint32_t held_ = 0;     // slots from rx_next_ on that Receive gave out
  LogLimiter truncated_log_{1}, send_log_{1}, csum_log_{1};
  int64_t ages_[kMaxBurst] = {};  // RxAgeNs of the last Receive's frames
};

absl::StatusOr<std::unique_ptr<PacketNic>> PacketNic::Open(const config::Nic& cfg, int index) {
  auto args = ParsePacketNicArgs(cfg.devargs());
  if (!args.ok()) return args.status();
  std::unique_ptr<PacketNic> nic(new PacketNic());
  nic->name_ = absl::StrCat("nic", index);
  nic->device_ = DeviceName(cfg.devargs());
  nic->args_ = *args;
  const std::string& iface = args->iface;
  nic->ifindex_ = if_nametoindex(iface.c_str());
  if (nic->ifindex_ == 0) {
    return absl::NotFoundError(absl::StrCat("NIC '", cfg.devargs(), "': no interface '", iface,
                                            "' in snapd's network namespace"));
  }
  UniqueFd probe(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  ifreq ifr{};
  memcpy(ifr.ifr_name, iface.data(), iface.size());
  if (ioctl(probe.get(), SIOCGIFMTU, &ifr) != 0) {
    return absl::InternalError(absl::StrCat("NIC '", cfg.devargs(), "': MTU: ", Errno(errno)));
  }
  nic->mtu_ = static_cast<uint32_t>(ifr.ifr_mtu);
  if (ioctl(probe.get(), SIOCGIFHWADDR, &ifr) != 0 || ifr.ifr_hwaddr.sa_family != ARPHRD_ETHER) {
    return absl::InvalidArgumentError(
        absl::StrCat("NIC '", cfg.devargs(), "': ", iface, " is not an Ethernet interface"));
  }
  nic->mac_ = MacToString(MacFromBytes(reinterpret_cast<uint8_t*>(ifr.ifr_hwaddr.sa_data)));
  uint16_t queues = static_cast<uint16_t>(cfg.queues() == 0 ? 1 : cfg.queues());
  uint32_t group = 0;
  for (uint16_t q = 0; q < queues; ++q) {
    auto queue = OpenQueue(*args, nic->ifindex_, nic->mtu_, queues > 1, &group);
    if (!queue.ok()) {
      return absl::Status(queue.status().code(), absl::StrCat("NIC '", cfg.devargs(), "' queue ", q,
                                                              ": ", queue.status().message()));
    }
    nic->queues_.push_back(std::move(*queue));
  }
  LOG(INFO) << nic->name_ << ": " << iface << " through packet sockets (" << queues
            << " queue pair(s)" << (queues > 1 ? " sharing flows by hash" : "") << ", MTU "
            << nic->mtu_ << ", receive rings of " << nic->queues_[0]->rx.frames << " slots of "
            << nic->queues_[0]->rx.frame_size << " bytes)";
  return nic;
}

namespace {

absl::StatusOr<std::unique_ptr<PacketNic::Queue>> OpenQueue(const PacketNicArgs& args,
                                                            unsigned ifindex, uint32_t mtu,
                                                            bool fanout, uint32_t* group) {
  auto q = std::make_unique<PacketNic::Queue>();
  // Protocol 0: no frame comes in before the rings are ready and the socket is bound.
  q->fd = UniqueFd(socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0));
  if (!q->fd.valid()) {
    int err = errno;
    return absl::PermissionDeniedError(
        absl::StrCat("packet socket: ", Errno(err),
                     err == EPERM ? " (snapd needs CAP_NET_RAW for af_packet NICs)" : ""));
  }
  int fd = q->fd.get();
  auto set = [fd](int level, int opt, const void* v, socklen_t len, const char* what) {
    return setsockopt(fd, level, opt, v, len) == 0
               ? absl::OkStatus()
               : absl::InternalError(absl::StrCat(what, ": ", Errno(errno)));
  };
  int version = TPACKET_V2, one = 1;
  absl::Status s = set(SOL_PACKET, PACKET_VERSION, &version, sizeof(version), "PACKET_VERSION");
  if (s.ok()) s = set(SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof(one), "PACKET_QDISC_BYPASS");
  if (s.ok()) {
    s = set(SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof(one), "PACKET_IGNORE_OUTGOING");
  }
  // A full send buffer ends a burst early: room for many bursts of frames in flight.
  int sndbuf = 8 << 20;
  if (s.ok() && setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof(sndbuf)) != 0) {
    s = set(SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf), "SO_SNDBUF");
  }
  uint32_t page = static_cast<uint32_t>(sysconf(_SC_PAGESIZE));
  q->rx = RingFor(mtu, args.rx_frames, page);
  uint32_t blocks = q->rx.frames / (q->rx.block_size / q->rx.frame_size);
  tpacket_req req{q->rx.block_size, blocks, q->rx.frame_size, q->rx.frames};
  if (s.ok()) s = set(SOL_PACKET, PACKET_RX_RING, &req, sizeof(req), "PACKET_RX_RING");
  if (!s.ok()) return s;
  q->map_size = size_t{q->rx.block_size} * blocks;
  void* map = mmap(nullptr, q->map_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
  if (map == MAP_FAILED) return absl::ResourceExhaustedError(absl::StrCat("mmap: ", Errno(errno)));
  q->map = static_cast<uint8_t*>(map);
  q->rx_ring = q->map;
  sockaddr_ll sll{};
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = htons(ETH_P_ALL);
  sll.sll_ifindex = static_cast<int>(ifindex);
  if (bind(fd, reinterpret_cast<sockaddr*>(&sll), sizeof(sll)) != 0) {
    return absl::InternalError(absl::StrCat("bind: ", Errno(errno)));
  }
  packet_mreq mr{};
  mr.mr_ifindex = static_cast<int>(ifindex);
  mr.mr_type = PACKET_MR_PROMISC;
  s = set(SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof(mr), "promiscuous mode");
  if (!s.ok()) return s;
  if (fanout) {
    // A group of our own: a new snapd's queues, opened beside ours during an upgrade, must get
    // copies of the frames, not a share of ours.
    // The group, not the socket, decides whether the host's own outgoing frames come in: ask it
    // not to where the kernel knows how (6.9); Receive skips them on older ones.
    uint32_t type = PACKET_FANOUT_HASH | kFanoutIgnoreOutgoing;
    uint32_t fanout_arg = (*group & 0xffff) | type << 16 |
                          (*group == 0 ? uint32_t{PACKET_FANOUT_FLAG_UNIQUEID} << 16 : 0);
    int r = setsockopt(fd, SOL_PACKET, PACKET_FANOUT, &fanout_arg, sizeof(fanout_arg));
    if (r != 0 && errno == EINVAL) {  // a kernel before 6.9: without the flag
      fanout_arg &= ~(kFanoutIgnoreOutgoing << 16);
      r = setsockopt(fd, SOL_PACKET, PACKET_FANOUT, &fanout_arg, sizeof(fanout_arg));
    }
    if (r != 0) return absl::InternalError(absl::StrCat("PACKET_FANOUT: ", Errno(errno)));
    if (*group == 0) {
      uint32_t got = 0;
      socklen_t len = sizeof(got);
      if (getsockopt(fd, SOL_PACKET, PACKET_FANOUT, &got, &len) != 0) {
        return absl::InternalError(absl::StrCat("PACKET_FANOUT id: ", Errno(errno)));
      }
      *group = got & 0xffff;
    }
  }
  return q;
}

}  // namespace

PacketNic::~PacketNic() = default;

bool PacketNic::KernelInterfaceHere() const {
  return if_nametoindex(args_.iface.c_str()) == ifindex_;
}

std::unique_ptr<Port> PacketNic::TakeQueuePort(uint16_t q) {
  if (q >= queues_.size() || queues_[q]->taken) return nullptr;
  queues_[q]->taken = true;
  return std::make_unique<PacketQueuePort>(absl::StrCat(name_, "/q", q), name_, queues_[q], mtu_,
                                           args_.iface);
}

NicStats PacketNic::CountedStats() const {
  NicStats s;
  ifreq ifr{};
  // By index: the interface may have been renamed since.
  if (if_indextoname(ifindex_, ifr.ifr_name) == nullptr) return s;
  int fd = queues_[0]->fd.get();
  if (ioctl(fd, SIOCGIFFLAGS, &ifr) == 0) {
    s.link_up = (ifr.ifr_flags & IFF_UP) && (ifr.ifr_flags & IFF_RUNNING);
  }
  ethtool_cmd cmd{};
  cmd.cmd = ETHTOOL_GSET;
  ifr.ifr_data = reinterpret_cast<char*>(&cmd);
  if (ioctl(fd, SIOCETHTOOL, &ifr) == 0 && ethtool_cmd_speed(&cmd) != SPEED_UNKNOWN) {
    s.speed_mbps = ethtool_cmd_speed(&cmd);
  }
  MutexLock lock(&stats_mu_);
  for (const auto& q : queues_) {
    s.rx_frames += q->rx_frames.Get();
    s.rx_bytes += q->rx_bytes.Get();
    s.tx_frames += q->tx_frames.Get();
    s.tx_bytes += q->tx_bytes.Get();
    s.rx_errors += q->rx_truncated.Get();
    s.rx_wait_ns += q->rx_wait_ns.Get();
    tpacket_stats st{};
    socklen_t len = sizeof(st);
    // Reading the kernel's counters resets them: sum them up here.
    if (getsockopt(q->fd.get(), SOL_PACKET, PACKET_STATISTICS, &st, &len) == 0) {
      kernel_drops_ += st.tp_drops;
    }
  }
  s.rx_missed = kernel_drops_;
  return s;
}

NicStats PacketNic::Stats() const {
  NicStats s = CountedStats();
  MutexLock lock(&stats_mu_);
#define SNAPD_CONTINUE(name, column, meaning) s.name = s.name - zero_.name + carried_.name;
  SNAPD_NIC_COUNTERS(SNAPD_CONTINUE)
#undef SNAPD_CONTINUE
  return s;
}

void PacketNic::ContinueFrom(const NicStats& before) {
  NicStats zero = CountedStats();
  MutexLock lock(&stats_mu_);
  carried_ = before;
  zero_ = zero;
}

}  // namespace snapd
