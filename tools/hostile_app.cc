// hostile_app: an app that attacks snapd, one attack class of issue 9 per subcommand, for
// tests/hostile_app_test; and `victim`, a well-behaved app that exchanges sequenced UDP with
// udp_echo at a steady rate and counts every frame it did not expect.
//
// The attacks speak memif through their own client (RawApp below) rather than ipc/MemifClient:
// they need what a well-behaved client hides (the interrupt eventfds, the ring headers, regions of
// any kind and size). Each runs for a bounded time and prints what it did and what snapd answered
// on lines starting "hostile_app: "; the test reads them. A line "RESULT: ..." gives the outcome
// where the attack has one (refused, connected, detached).
//
//   hostile_app victim --socket=S --id=2 --dst_mac=M --dst_ip=A [--rate=1000]
//   hostile_app eventfd_write|eventfd_read|spoof|cookie|chain|baddesc|hugetlb|bigregions
//       --socket=S --id=9 [--second_id=10] [--dst_mac=M --dst_ip=A] [--duration_s=N]
//   hostile_app idle --socket=S [--connections=80]      (as another uid than the victims)
//   hostile_app badinit --socket=S [--count=2000]
//   hostile_app macflood --iface=IF [--count=6000]     (in the namespace of the NIC's peer)
//   hostile_app wire_watch --iface=IF                  (likewise: counts hostile frames on the
//   wire)
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "base/clock.h"
#include "base/unique_fd.h"
#include "clients/libsnap.h"
#include "clients/packet.h"
#include "engines/frame.h"
#include "ipc/control_message.h"
#include "ipc/eventfd.h"
#include "ipc/memif_protocol.h"
#include "ipc/region.h"
#include "ipc/ring.h"
#include "ipc/socket.h"

ABSL_FLAG(std::string, socket, "", "snapd's memif socket.");
ABSL_FLAG(uint32_t, id, 9, "Interface id to attach with.");
ABSL_FLAG(std::string, secret, "", "Interface secret, if registered with one.");
ABSL_FLAG(std::string, dst_mac, "", "MAC of udp_echo (attacks that need snapd to send to them).");
ABSL_FLAG(std::string, dst_ip, "", "IPv4 address of udp_echo.");
ABSL_FLAG(std::string, victim_mac, "", "spoof: also send every spoofed frame to this MAC.");
ABSL_FLAG(double, duration_s, 5, "How long the attack runs (then the app exits).");
ABSL_FLAG(double, hold_s, 2, "eventfd_read: how long to hold, silent, after the last kick.");
ABSL_FLAG(uint32_t, second_id, 10, "eventfd_read: the id of the second connection.");
ABSL_FLAG(uint32_t, connections, 80, "idle: connections to hold open.");
ABSL_FLAG(uint32_t, connects_per_s, 2000, "idle: most new connections a second.");
ABSL_FLAG(uint32_t, slots, 0, "chain: descriptors in the incomplete chain (0: ring size - 1).");
ABSL_FLAG(double, wait_s, 3, "baddesc: how long to wait for snapd to detach each variant.");
ABSL_FLAG(std::string, iface, "", "macflood, wire_watch: the interface (a veth end).");
ABSL_FLAG(uint32_t, count, 6000,
          "macflood: distinct source MACs; badinit: handshakes with an unknown id.");
ABSL_FLAG(uint32_t, passes, 2, "macflood: times each source MAC is sent.");
ABSL_FLAG(uint32_t, rate, 1000, "victim: datagrams a second.");
ABSL_FLAG(uint32_t, window, 64, "victim: datagrams in flight at most.");
ABSL_FLAG(double, loss_after_s, 2, "victim: a datagram not back after this long is lost.");

namespace {

using snapd::MacFromBytes;
using snapd::MacToBytes;
using snapd::MacToString;
using snapd::UniqueFd;
using snapd::memif::ClientSlots;
using snapd::memif::Descriptor;
using snapd::memif::Frame;
using snapd::memif::kCookie;
using snapd::memif::kDescFlagNext;
using snapd::memif::kRingFlagMaskInt;
using snapd::memif::MappedRegion;
using snapd::memif::MessageType;
using snapd::memif::RegionView;
using snapd::memif::RingHeader;
using snapd::memif::RxRing;
using snapd::memif::Side;
using snapd::memif::TxRing;
using snapd::memif::WireMessage;

// Every frame an attack sends carries this marker and the kind of frame, "HOSTILE:kind;", so that
// whoever receives it (victim, wire_watch) can tell which one got through.
constexpr char kMarker[] = "HOSTILE:";
// The victim's datagrams start their payload with this.
constexpr char kVictimMagic[8] = {'V', 'I', 'C', 'T', 'I', 'M', 0, 0};

std::atomic<bool> g_stop{false};
void OnSignal(int) { g_stop = true; }

void Say(const std::string& line) {
  printf("hostile_app: %s\n", line.c_str());
  fflush(stdout);
}

uint64_t RoundUp(uint64_t n, uint64_t to) { return (n + to - 1) / to * to; }

// --- A memif client that keeps every handle --------------------------------------------------

// An extra region offered after the two the rings and buffers live in: any fd, any size.
struct ExtraRegion {
  UniqueFd fd;
  uint64_t size = 0;
};

struct RawAppOptions {
  std::string socket;
  uint32_t id = 0;
  std::string secret;
  uint8_t log2 = 10;
  uint32_t buffer_size = 2048;
  uint64_t pad_regions_to = 0;  // regions 0 (rings) and 1 (buffers) at least this big
  std::vector<ExtraRegion> extra;
  int share_c2s_eventfd = -1;  // >= 0: hand snapd this eventfd (another connection's) for c2s
};

// One queue pair: c2s ring at offset 0 of region 0, s2c ring after it; their buffers in region 1
// (c2s slots first). Once connected it holds client-side TxRing/RxRing for ordinary traffic, and
// hands out the raw ring headers and eventfds for the attacks.
class RawApp {
 public:
  // Runs the handshake. Returns OK once connected, or the server's refusal (PERMISSION_DENIED with
  // "server refused: reason") or a local problem.
  absl::Status Connect(RawAppOptions options) {
    options_ = std::move(options);
    absl::StatusOr<UniqueFd> fd = snapd::memif::ConnectSeqpacket(options_.socket);
    if (!fd.ok()) return fd.status();
    control_ = std::move(*fd);
    absl::Time deadline = absl::Now() + absl::Seconds(5);
    absl::StatusOr<WireMessage> hello = Await(deadline, MessageType::kHello);
    if (!hello.ok()) return hello.status();
    log2_ = std::min(options_.log2, hello->hello.max_log2_ring_size);
    size_ = 1u << log2_;
    ring_bytes_ = RoundUp(snapd::memif::RingBytes(log2_), 64);
    uint64_t rings_size =
        std::max<uint64_t>(RoundUp(2 * ring_bytes_, 4096), options_.pad_regions_to);
    uint64_t buffers_size = std::max<uint64_t>(
        RoundUp(uint64_t{2} * size_ * options_.buffer_size, 4096), options_.pad_regions_to);
    auto rings = MappedRegion::Create("hostile-rings", rings_size);
    if (!rings.ok()) return rings.status();
    auto buffers = MappedRegion::Create("hostile-buffers", buffers_size);
    if (!buffers.ok()) return buffers.status();
    rings_ = std::move(*rings);
    buffers_ = std::move(*buffers);
    views_ = {{rings_.base(), rings_.size()}, {buffers_.base(), buffers_.size()}};
    for (RingHeader* r : {c2s(), s2c()}) {
      r->flags = 0;
      r->head = 0;
      r->tail = 0;
      __atomic_store_n(&r->cookie, kCookie, __ATOMIC_RELEASE);
    }
    auto c2s_efd = options_.share_c2s_eventfd >= 0
                       ? absl::StatusOr<UniqueFd>(
                             UniqueFd(::fcntl(options_.share_c2s_eventfd, F_DUPFD_CLOEXEC, 0)))
                       : snapd::memif::CreateEventFd();
    auto s2c_efd = snapd::memif::CreateEventFd();
    if (!c2s_efd.ok()) return c2s_efd.status();
    if (!s2c_efd.ok()) return s2c_efd.status();
    c2s_efd_ = std::move(*c2s_efd);
    s2c_efd_ = std::move(*s2c_efd);

    using snapd::memif::MakeAddRegion;
    using snapd::memif::MakeAddRing;
    absl::Status s =
        Request(snapd::memif::MakeInit(options_.id, snapd::memif::InterfaceMode::kEthernet,
                                       options_.secret, "hostile_app"),
                -1, MessageType::kAck, deadline);
    if (!s.ok()) return s;
    s = Request(MakeAddRegion(0, rings_.size()), rings_.fd(), MessageType::kAck, deadline);
    if (!s.ok()) return s;
    s = Request(MakeAddRegion(1, buffers_.size()), buffers_.fd(), MessageType::kAck, deadline);
    if (!s.ok()) return s;
    for (size_t i = 0; i < options_.extra.size(); ++i) {
      s = Request(MakeAddRegion(static_cast<uint16_t>(2 + i), options_.extra[i].size),
                  options_.extra[i].fd.get(), MessageType::kAck, deadline);
      if (!s.ok()) return s;
    }
    s = Request(MakeAddRing(true, 0, 0, 0, log2_), c2s_efd_.get(), MessageType::kAck, deadline);
    if (!s.ok()) return s;
    s = Request(MakeAddRing(false, 0, 0, static_cast<uint32_t>(ring_bytes_), log2_), s2c_efd_.get(),
                MessageType::kAck, deadline);
    if (!s.ok()) return s;
    s = snapd::memif::SendMessage(control_.get(), snapd::memif::MakeConnect("hostile0"));
    if (!s.ok()) return s;
    absl::StatusOr<WireMessage> connected = Await(deadline, MessageType::kConnected);
    if (!connected.ok()) return connected.status();
    std::string name = snapd::memif::FieldToString(connected->connected.if_name);
    if (!snap::ParseConnectedName(name, &mac_, &ip_)) {
      return absl::FailedPreconditionError(absl::StrCat("no addresses in '", name, "'"));
    }
    tx_ = std::make_unique<TxRing>(Side::kClient, c2s(), log2_, views_, c2s_efd_.get(), 0,
                                   ClientSlots{1, 0, options_.buffer_size});
    rx_ = std::make_unique<RxRing>(Side::kClient, s2c(), log2_, views_, s2c_efd_.get(), 0,
                                   ClientSlots{1, s2c_first_offset(), options_.buffer_size});
    rx_->SetInterruptMode(false);
    rx_->Start();
    return absl::OkStatus();
  }

  ~RawApp() {
    tx_.reset();
    rx_.reset();
  }

  RingHeader* c2s() { return reinterpret_cast<RingHeader*>(rings_.base()); }
  RingHeader* s2c() { return reinterpret_cast<RingHeader*>(rings_.base() + ring_bytes_); }
  int c2s_eventfd() const { return c2s_efd_.get(); }
  int s2c_eventfd() const { return s2c_efd_.get(); }
  uint32_t ring_size() const { return size_; }
  uint32_t buffer_size() const { return options_.buffer_size; }
  uint64_t buffers_region_size() const { return buffers_.size(); }
  uint32_t s2c_first_offset() const { return size_ * options_.buffer_size; }
  uint8_t* buffer(uint32_t offset) { return buffers_.base() + offset; }
  TxRing& tx() { return *tx_; }
  RxRing& rx() { return *rx_; }
  uint64_t mac() const { return mac_; }
  uint32_t ip() const { return ip_; }

  // OK while connected; the reason once snapd has disconnected us (or hung up).
  absl::Status CheckControl() {
    if (!control_) return absl::UnavailableError(gone_);
    while (true) {
      snapd::memif::Received r = snapd::memif::ReceiveMessage(control_.get());
      switch (r.kind) {
        case snapd::memif::Received::Kind::kWouldBlock:
          return absl::OkStatus();
        case snapd::memif::Received::Kind::kHangup:
          gone_ = "snapd closed the connection without a reason";
          control_.reset();
          return absl::UnavailableError(gone_);
        case snapd::memif::Received::Kind::kMalformed:
          gone_ = "malformed message from snapd: " + r.error;
          control_.reset();
          return absl::UnavailableError(gone_);
        case snapd::memif::Received::Kind::kMessage:
          if (r.msg.type == static_cast<uint16_t>(MessageType::kDisconnect)) {
            gone_ = snapd::memif::FieldToString(r.msg.disconnect.string);
            control_.reset();
            return absl::UnavailableError(gone_);
          }
          break;
      }
    }
  }

  // Waits up to `seconds` for snapd to disconnect us; returns its reason, or "" if it did not.
  std::string AwaitDetach(double seconds) {
    absl::Time until = absl::Now() + absl::Seconds(seconds);
    while (absl::Now() < until) {
      absl::Status s = CheckControl();
      if (!s.ok()) return std::string(s.message());
      DrainRx();
      pollfd p{control_.get(), POLLIN, 0};
      ::poll(&p, 1, 20);
    }
    return "";
  }

  void Disconnect(absl::string_view reason) {
    if (!control_) return;
    (void)snapd::memif::SendMessage(control_.get(), snapd::memif::MakeDisconnect(0, reason));
    control_.reset();
  }

  // Puts `f` on the c2s ring without writing the eventfd (snapd finds it when it next polls).
  // Not to be mixed with tx() on one connection. Returns false when the ring is full.
  bool SendQuiet(const std::string& f) {
    RingHeader* ring = c2s();
    if (!quiet_started_) {
      quiet_head_ = __atomic_load_n(&ring->head, __ATOMIC_ACQUIRE);
      quiet_started_ = true;
    }
    uint16_t tail = __atomic_load_n(&ring->tail, __ATOMIC_ACQUIRE);
    if (static_cast<uint16_t>(quiet_head_ - tail) >= size_ || f.size() > options_.buffer_size) {
      return false;
    }
    uint32_t slot = quiet_head_ & (size_ - 1);
    uint32_t offset = slot * options_.buffer_size;
    memcpy(buffers_.base() + offset, f.data(), f.size());
    Descriptor* d = &ring->desc[slot];
    d->flags = 0;
    d->region = 1;
    d->offset = offset;
    d->length = static_cast<uint32_t>(f.size());
    __atomic_store_n(&ring->head, ++quiet_head_, __ATOMIC_RELEASE);
    return true;
  }

  // Takes and releases whatever snapd sent us, without touching the eventfd. Returns how many.
  uint32_t DrainRx() {
    if (!rx_ || !control_) return 0;
    Frame f[32];
    uint32_t total = 0;
    uint16_t n;
    while ((n = rx_->Receive(f, 32)) > 0) {
      total += n;
      rx_->Release();
    }
    rx_->Release();
    return total;
  }

 private:
  absl::StatusOr<WireMessage> Await(absl::Time deadline, MessageType want) {
    while (true) {
      absl::Duration left = deadline - absl::Now();
      if (left <= absl::ZeroDuration()) {
        return absl::DeadlineExceededError(absl::StrCat(
            "timed out waiting for ", snapd::memif::MessageTypeName(static_cast<uint16_t>(want))));
      }
      pollfd p{control_.get(), POLLIN, 0};
      ::poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(left)) + 1);
      snapd::memif::Received r = snapd::memif::ReceiveMessage(control_.get());
      switch (r.kind) {
        case snapd::memif::Received::Kind::kWouldBlock:
          continue;
        case snapd::memif::Received::Kind::kHangup:
          return absl::UnavailableError("server closed the connection");
        case snapd::memif::Received::Kind::kMalformed:
          return absl::InvalidArgumentError("bad message from server: " + r.error);
        case snapd::memif::Received::Kind::kMessage:
          break;
      }
      if (r.msg.type == static_cast<uint16_t>(MessageType::kDisconnect)) {
        return absl::PermissionDeniedError(
            absl::StrCat("server refused: ", snapd::memif::FieldToString(r.msg.disconnect.string)));
      }
      if (r.msg.type != static_cast<uint16_t>(want)) {
        return absl::InvalidArgumentError(
            absl::StrCat("expected ", snapd::memif::MessageTypeName(static_cast<uint16_t>(want)),
                         ", got ", snapd::memif::MessageTypeName(r.msg.type)));
      }
      return r.msg;
    }
  }

  absl::Status Request(const WireMessage& msg, int fd, MessageType want, absl::Time deadline) {
    absl::Status sent = snapd::memif::SendMessage(control_.get(), msg, fd);
    if (!sent.ok()) return sent;
    return Await(deadline, want).status();
  }

  RawAppOptions options_;
  UniqueFd control_;
  std::string gone_;
  uint8_t log2_ = 0;
  uint32_t size_ = 0;
  uint64_t ring_bytes_ = 0;
  MappedRegion rings_;
  MappedRegion buffers_;
  std::vector<RegionView> views_;
  UniqueFd c2s_efd_;
  UniqueFd s2c_efd_;
  std::unique_ptr<TxRing> tx_;
  std::unique_ptr<RxRing> rx_;
  uint64_t mac_ = 0;
  uint32_t ip_ = 0;
  bool quiet_started_ = false;
  uint16_t quiet_head_ = 0;
};

RawAppOptions OptionsFromFlags() {
  RawAppOptions o;
  o.socket = absl::GetFlag(FLAGS_socket);
  o.id = absl::GetFlag(FLAGS_id);
  o.secret = absl::GetFlag(FLAGS_secret);
  return o;
}

// Connects with the flags' socket and id; on failure says why and returns null.
std::unique_ptr<RawApp> ConnectOrSay(RawAppOptions options) {
  auto app = std::make_unique<RawApp>();
  absl::Status s = app->Connect(std::move(options));
  if (!s.ok()) {
    Say(absl::StrCat("cannot attach: ", s.message()));
    return nullptr;
  }
  Say(absl::StrCat("attached as ", MacToString(app->mac()), " ", snapd::Ipv4ToString(app->ip())));
  return app;
}

// --- Frames ----------------------------------------------------------------------------------

void PutMac(std::string* f, size_t at, uint64_t mac) {
  uint8_t b[6];
  MacToBytes(mac, b);
  f->replace(at, 6, reinterpret_cast<char*>(b), 6);
}

uint64_t MacOf(const char* text) {
  uint64_t m = 0;
  snapd::ParseMac(text, &m);
  return m;
}

// Pads `f` to at least 96 bytes with the marker for `kind` (twice, so that a receiver that sees
// only part of the frame still finds one).
std::string Marked(std::string f, const std::string& kind) {
  std::string mark = absl::StrCat(kMarker, kind, ";");
  f += mark;
  while (f.size() < 96) f += mark;
  return f;
}

// A UDP/IPv4 frame with the marker as payload.
std::string UdpFrame(uint64_t src_mac, uint64_t dst_mac, uint32_t src_ip, uint32_t dst_ip,
                     const std::string& kind) {
  std::string mark = absl::StrCat(kMarker, kind, ";");
  std::string payload;
  while (payload.size() < 54) payload += mark;
  std::string f = snap::UdpHeader(src_mac, dst_mac, src_ip, dst_ip, 9999, 7,
                                  static_cast<uint32_t>(snap::kUdpHeaderBytes + payload.size()));
  return f + payload;
}

// `f` with a VLAN tag (tpid, vid) inserted after the MACs.
std::string Tagged(const std::string& f, uint16_t tpid, uint16_t vid) {
  char tag[4] = {static_cast<char>(tpid >> 8), static_cast<char>(tpid & 0xff),
                 static_cast<char>(vid >> 8), static_cast<char>(vid & 0xff)};
  return f.substr(0, 12) + std::string(tag, 4) + f.substr(12);
}

std::string EthHeader(uint64_t dst, uint64_t src, uint16_t type) {
  std::string h(14, '\0');
  PutMac(&h, 0, dst);
  PutMac(&h, 6, src);
  h[12] = static_cast<char>(type >> 8);
  h[13] = static_cast<char>(type & 0xff);
  return h;
}

// An IPv6 frame: ICMPv6 router advertisement from fe80::66 to ff02::1 (multicast dst 33:33:0:0:0:1)
// when dst_mac is 0, else a UDP datagram to fe80::2 at dst_mac.
std::string Ipv6Frame(uint64_t src_mac, uint64_t dst_mac, const std::string& kind) {
  std::string payload = Marked("", kind);
  bool ra = dst_mac == 0;
  std::string l4;
  if (ra) {
    l4 = std::string("\x86\x00\x00\x00\x40\x00\x07\x08\x00\x00\x00\x00\x00\x00\x00\x00", 16);
  } else {
    l4 = std::string("\x27\x0f\x00\x07", 4);
    uint16_t len = static_cast<uint16_t>(8 + payload.size());
    l4 += static_cast<char>(len >> 8);
    l4 += static_cast<char>(len & 0xff);
    l4 += std::string("\x00\x00", 2);
  }
  l4 += payload;
  std::string ip6(40, '\0');
  ip6[0] = 0x60;
  ip6[4] = static_cast<char>(l4.size() >> 8);
  ip6[5] = static_cast<char>(l4.size() & 0xff);
  ip6[6] = ra ? 58 : 17;
  ip6[7] = static_cast<char>(255);
  const char src[16] = {'\xfe', '\x80', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x66};
  const char all[16] = {'\xff', 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01};
  const char one[16] = {'\xfe', '\x80', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02};
  ip6.replace(8, 16, src, 16);
  ip6.replace(24, 16, ra ? all : one, 16);
  uint64_t dst = ra ? MacOf("33:33:00:00:00:01") : dst_mac;
  return EthHeader(dst, src_mac, 0x86dd) + ip6 + l4;
}

struct Spoof {
  std::string kind;
  std::string frame;
};

// Every frame the spoofing class names (and a few neighbours), from `app`, each to `dst`
// (broadcast or a victim's MAC) unless the kind has its own destination.
std::vector<Spoof> SpoofFrames(const RawApp& app, uint64_t dst, uint32_t victim_ip) {
  const uint64_t me = app.mac();
  const uint32_t my_ip = app.ip();
  uint32_t other_ip;
  snapd::ParseIpv4("10.85.0.66", &other_ip);
  std::vector<Spoof> out;
  out.push_back(
      {"src_mac", UdpFrame(MacOf("02:66:66:66:66:66"), dst, my_ip, victim_ip, "src_mac")});
  out.push_back({"src_ip", UdpFrame(me, dst, other_ip, victim_ip, "src_ip")});
  {
    // ARP claiming the victim's address (gratuitous reply to everyone).
    std::string arp = snap::ArpRequest(me, victim_ip, victim_ip);
    PutMac(&arp, 0, dst);
    out.push_back({"arp_claim", Marked(arp, "arp_claim")});
  }
  out.push_back({"ipv6_ra", Ipv6Frame(me, 0, "ipv6_ra")});
  out.push_back({"ipv6_udp", Ipv6Frame(me, dst, "ipv6_udp")});
  // LLDP: TLVs chassis id, port id, ttl, end.
  out.push_back({"lldp", Marked(EthHeader(MacOf("01:80:c2:00:00:0e"), me, 0x88cc) +
                                    std::string("\x02\x07\x04\x02\x00\x00\x00\x00\x09"
                                                "\x04\x03\x02\x70\x31\x06\x02\x00\x78\x00\x00",
                                                20),
                                "lldp")});
  {
    // STP configuration BPDU: 802.3 length, LLC 42 42 03, claiming root with priority 0.
    std::string bpdu(
        "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
        "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80\x01\x00\x14\x00\x02\x00\x0f\x00",
        35);
    std::string llc("\x42\x42\x03", 3);
    uint16_t len = static_cast<uint16_t>(llc.size() + bpdu.size());
    out.push_back(
        {"stp", Marked(EthHeader(MacOf("01:80:c2:00:00:00"), me, len) + llc + bpdu, "stp")});
  }
  out.push_back({"pause", Marked(EthHeader(MacOf("01:80:c2:00:00:01"), me, 0x8808) +
                                     std::string("\x00\x01\xff\xff", 4),
                                 "pause")});
  out.push_back({"vlan1", Tagged(UdpFrame(me, dst, my_ip, victim_ip, "vlan1"), 0x8100, 10)});
  out.push_back(
      {"vlan3", Tagged(Tagged(Tagged(UdpFrame(me, dst, other_ip, victim_ip, "vlan3"), 0x8100, 30),
                              0x8100, 20),
                       0x8100, 10)});
  out.push_back(
      {"tpid9100", Tagged(UdpFrame(me, dst, other_ip, victim_ip, "tpid9100"), 0x9100, 10)});
  out.push_back(
      {"qinq88a8",
       Tagged(Tagged(UdpFrame(me, dst, other_ip, victim_ip, "qinq88a8"), 0x8100, 20), 0x88a8, 10)});
  out.push_back({"ethertype_other", Marked(EthHeader(dst, me, 0x88b5), "ethertype_other")});
  return out;
}

// Sends `f` on `app`'s ring (retrying while the ring is full, up to 100 ms). Returns whether it
// went.
bool SendFrame(RawApp& app, const std::string& f) {
  Frame frame{reinterpret_cast<uint8_t*>(const_cast<char*>(f.data())),
              static_cast<uint32_t>(f.size())};
  absl::Time until = absl::Now() + absl::Milliseconds(100);
  while (app.tx().Transmit(&frame, 1) == 0) {
    if (absl::Now() > until) return false;
    app.DrainRx();
    absl::SleepFor(absl::Microseconds(200));
  }
  return true;
}

// A UDP datagram from the app's own addresses to udp_echo, which answers it: makes snapd send to
// the app.
bool SendToEcho(RawApp& app, const std::string& kind) {
  uint64_t dst_mac;
  uint32_t dst_ip;
  if (!snapd::ParseMac(absl::GetFlag(FLAGS_dst_mac), &dst_mac) ||
      !snapd::ParseIpv4(absl::GetFlag(FLAGS_dst_ip), &dst_ip)) {
    return false;
  }
  return SendFrame(app, UdpFrame(app.mac(), dst_mac, app.ip(), dst_ip, kind));
}

bool HaveEcho() {
  uint64_t m;
  uint32_t i;
  return snapd::ParseMac(absl::GetFlag(FLAGS_dst_mac), &m) &&
         snapd::ParseIpv4(absl::GetFlag(FLAGS_dst_ip), &i);
}

bool ClearNonBlock(int fd) {
  int flags = ::fcntl(fd, F_GETFL);
  return flags >= 0 && ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) == 0;
}

absl::Time Deadline() { return absl::Now() + absl::Seconds(absl::GetFlag(FLAGS_duration_s)); }

// Holds the connection until the deadline, saying when snapd detaches us.
void HoldUntil(RawApp& app, absl::Time until) {
  do {
    absl::Status s = app.CheckControl();
    if (!s.ok()) {
      Say(absl::StrCat("RESULT: detached: ", s.message()));
      return;
    }
    app.DrainRx();
    absl::SleepFor(absl::Milliseconds(20));
  } while (absl::Now() < until && !g_stop);
  Say("RESULT: still attached at the end");
}

// --- Attacks -----------------------------------------------------------------------------------

// Issue 9 item 2, write side: the s2c eventfd made blocking and saturated, interrupts unmasked,
// and udp_echo asked to answer, so that snapd's worker writes the eventfd.
int EventfdWrite() {
  if (!HaveEcho()) return Say("eventfd_write needs --dst_mac and --dst_ip"), 2;
  auto app = ConnectOrSay(OptionsFromFlags());
  if (!app) return 1;
  int efd = app->s2c_eventfd();
  if (!ClearNonBlock(efd)) return Say(absl::StrCat("fcntl: ", strerror(errno))), 1;
  uint64_t max = 0xfffffffffffffffeull;
  if (::write(efd, &max, sizeof(max)) != sizeof(max)) {
    return Say(absl::StrCat("saturating the eventfd: ", strerror(errno))), 1;
  }
  __atomic_fetch_and(&app->s2c()->flags, static_cast<uint16_t>(~kRingFlagMaskInt),
                     __ATOMIC_SEQ_CST);
  Say("s2c eventfd: O_NONBLOCK cleared, counter at 0xfffffffffffffffe, interrupts unmasked");
  absl::Time until = Deadline();
  uint64_t sent = 0, replies = 0;
  while (absl::Now() < until && !g_stop) {
    if (!app->CheckControl().ok()) break;
    // Keep the mask clear (a well-behaved snapd never sets it, but be sure).
    __atomic_fetch_and(&app->s2c()->flags, static_cast<uint16_t>(~kRingFlagMaskInt),
                       __ATOMIC_SEQ_CST);
    if (SendToEcho(*app, "eventfd_write")) ++sent;
    replies += app->DrainRx();
    absl::SleepFor(absl::Milliseconds(10));
  }
  Say(absl::StrCat("eventfd_write: sent ", sent, " datagrams to udp_echo, ", replies,
                   " replies came back"));
  HoldUntil(*app, absl::Now());
  return 0;
}

// Issue 9 item 2, read side: snapd must never block reading an eventfd an app handed it. The c2s
// eventfd is made blocking and handed to snapd twice, by two connections (--id and --second_id),
// so that one kick wakes the worker through both and its second read finds the counter empty; a
// thread of ours also drains it right after each kick (the race the issue describes). After each
// kick a datagram to udp_echo, put on the ring without a kick, must come back: when it does not,
// the worker is stuck and we stop kicking (a kick would free it) and hold, silent.
int EventfdRead() {
  if (!HaveEcho()) return Say("eventfd_read needs --dst_mac and --dst_ip"), 2;
  auto app = ConnectOrSay(OptionsFromFlags());
  if (!app) return 1;
  int efd = app->c2s_eventfd();
  RawAppOptions second = OptionsFromFlags();
  second.id = absl::GetFlag(FLAGS_second_id);
  second.share_c2s_eventfd = efd;
  auto twin = ConnectOrSay(std::move(second));
  if (!twin) Say("eventfd_read: the second connection failed; racing the drain alone");
  if (!ClearNonBlock(efd)) return Say(absl::StrCat("fcntl: ", strerror(errno))), 1;
  Say("c2s eventfd: O_NONBLOCK cleared, shared by two connections, drained by a thread of ours");
  // Shared with a thread that outlives this function (it is blocked in read when we exit).
  auto drained = std::make_shared<std::atomic<uint64_t>>(0);
  std::thread drainer([efd, drained] {
    uint64_t v;
    while (true) {
      if (::read(efd, &v, sizeof(v)) == sizeof(v)) drained->fetch_add(1);
    }
  });
  drainer.detach();  // blocked in read when we exit; the process ends it
  uint64_t dst_mac;
  uint32_t dst_ip;
  snapd::ParseMac(absl::GetFlag(FLAGS_dst_mac), &dst_mac);
  snapd::ParseIpv4(absl::GetFlag(FLAGS_dst_ip), &dst_ip);
  const std::string probe = UdpFrame(app->mac(), dst_mac, app->ip(), dst_ip, "eventfd_read");
  absl::Time until = Deadline();
  uint64_t kicks = 0, answered = 0;
  bool stuck = false;
  while (absl::Now() < until && !g_stop && !stuck) {
    if (!app->CheckControl().ok() || (twin && !twin->CheckControl().ok())) break;
    uint64_t one = 1;
    if (::write(efd, &one, sizeof(one)) == sizeof(one)) ++kicks;
    absl::SleepFor(absl::Milliseconds(5));
    if (!app->SendQuiet(probe)) app->DrainRx();
    absl::Time wait_until = absl::Now() + absl::Milliseconds(500);
    uint32_t got = 0;
    while (got == 0 && absl::Now() < wait_until) {
      got = app->DrainRx();
      if (got == 0) absl::SleepFor(absl::Milliseconds(1));
    }
    if (got == 0) {
      stuck = true;
    } else {
      ++answered;
      absl::SleepFor(absl::Milliseconds(15));
    }
  }
  Say(absl::StrCat("eventfd_read: ", kicks, " kicks, ", drained->load(), " drained by us, ",
                   answered, " probes answered",
                   stuck ? "; the last probe was not answered: snapd's worker is stuck" : "",
                   "; holding ", absl::GetFlag(FLAGS_hold_s), " s"));
  HoldUntil(*app, absl::Now() + absl::Seconds(absl::GetFlag(FLAGS_hold_s)));
  return 0;
}

// Issue 9 item 6: many connections that never get past hello, reopened as soon as snapd drops
// them. Run it as another uid than the victims.
int Idle() {
  const uint32_t want = absl::GetFlag(FLAGS_connections);
  const std::string path = absl::GetFlag(FLAGS_socket);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) return Say("socket path too long"), 2;
  memcpy(addr.sun_path, path.data(), path.size());
  std::vector<UniqueFd> conns(want);
  std::map<std::string, uint64_t> reasons;
  uint64_t opened = 0, failed = 0, dropped = 0;
  const int64_t gap_ns = 1000000000ll / std::max<uint32_t>(1, absl::GetFlag(FLAGS_connects_per_s));
  int64_t next_connect = 0;
  absl::Time until = Deadline();
  Say(absl::StrCat("idle: holding ", want, " connections that never send init (uid ", getuid(),
                   ")"));
  while (absl::Now() < until && !g_stop) {
    for (UniqueFd& c : conns) {
      if (c || snapd::MonotonicNs() < next_connect) continue;
      next_connect = snapd::MonotonicNs() + gap_ns;
      UniqueFd fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
      if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 &&
          errno != EINPROGRESS) {
        ++failed;
        ++reasons[absl::StrCat("connect: ", strerror(errno))];
        continue;
      }
      ++opened;
      c = std::move(fd);
    }
    std::vector<pollfd> p;
    for (UniqueFd& c : conns) {
      if (c) p.push_back({c.get(), POLLIN, 0});
    }
    ::poll(p.data(), p.size(), 5);
    for (UniqueFd& c : conns) {
      if (!c) continue;
      while (true) {
        snapd::memif::Received r = snapd::memif::ReceiveMessage(c.get());
        if (r.kind == snapd::memif::Received::Kind::kWouldBlock) break;
        if (r.kind == snapd::memif::Received::Kind::kMessage &&
            r.msg.type == static_cast<uint16_t>(MessageType::kHello)) {
          continue;  // and never answer it
        }
        std::string why = r.kind == snapd::memif::Received::Kind::kMessage &&
                                  r.msg.type == static_cast<uint16_t>(MessageType::kDisconnect)
                              ? snapd::memif::FieldToString(r.msg.disconnect.string)
                              : "closed";
        ++reasons[why];
        ++dropped;
        c.reset();
        break;
      }
    }
  }
  size_t held = 0;
  for (UniqueFd& c : conns) held += c ? 1 : 0;
  std::vector<std::string> rs;
  for (const auto& [why, n] : reasons) rs.push_back(absl::StrCat(n, "x '", why, "'"));
  Say(absl::StrCat("idle: opened=", opened, " dropped_by_snapd=", dropped, " connect_failed=",
                   failed, " held_at_end=", held, " reasons: ", absl::StrJoin(rs, ", ")));
  return 0;
}

// Issue 9 item 6, the log: handshakes refused one after another (an id snapd does not know), as
// fast as snapd answers. Each refusal used to log a WARNING.
int BadInit() {
  const uint32_t count = absl::GetFlag(FLAGS_count);
  uint64_t refused = 0, other = 0;
  std::map<std::string, uint64_t> reasons;
  absl::Time until = Deadline();
  for (uint32_t i = 0; i < count && absl::Now() < until && !g_stop; ++i) {
    RawAppOptions o = OptionsFromFlags();
    o.id = 0x7fff0000u + i;
    RawApp app;
    absl::Status s = app.Connect(std::move(o));
    if (absl::IsPermissionDenied(s)) {
      ++refused;
    } else {
      ++other;
    }
    if (reasons.size() < 8) ++reasons[std::string(s.message())];
  }
  std::vector<std::string> rs;
  for (const auto& [why, n] : reasons) rs.push_back(absl::StrCat(n, "x '", why, "'"));
  Say(absl::StrCat("badinit: refused=", refused, " other=", other,
                   " reasons: ", absl::StrJoin(rs, ", ")));
  return 0;
}

// Issue 9 item 5: frames no app should ever get onto the vswitch, each to broadcast and to the
// victim, again and again for the duration.
int SpoofAttack() {
  auto app = ConnectOrSay(OptionsFromFlags());
  if (!app) return 1;
  uint64_t victim_mac = 0;
  uint32_t victim_ip = 0;
  snapd::ParseMac(absl::GetFlag(FLAGS_victim_mac), &victim_mac);
  if (!snapd::ParseIpv4(absl::GetFlag(FLAGS_dst_ip), &victim_ip)) {
    snapd::ParseIpv4("10.85.0.2", &victim_ip);
  }
  std::vector<Spoof> frames = SpoofFrames(*app, MacOf("ff:ff:ff:ff:ff:ff"), victim_ip);
  if (victim_mac != 0) {
    for (Spoof& s : SpoofFrames(*app, victim_mac, victim_ip)) frames.push_back(std::move(s));
  }
  std::map<std::string, uint64_t> sent;
  absl::Time until = Deadline();
  while (absl::Now() < until && !g_stop) {
    if (!app->CheckControl().ok()) break;
    for (const Spoof& s : frames) {
      if (SendFrame(*app, s.frame)) ++sent[s.kind];
    }
    app->DrainRx();
    absl::SleepFor(absl::Milliseconds(20));
  }
  std::vector<std::string> parts;
  for (const auto& [k, n] : sent) parts.push_back(absl::StrCat(k, "=", n));
  Say(absl::StrCat("spoof: sent ", absl::StrJoin(parts, " ")));
  HoldUntil(*app, absl::Now());
  return 0;
}

// Issue 9 item 7: after connecting, the app overwrites its rings' cookies; the test then upgrades
// snapd. We hold on and say whether, and why, snapd detached us.
int CookieAttack() {
  auto app = ConnectOrSay(OptionsFromFlags());
  if (!app) return 1;
  __atomic_store_n(&app->c2s()->cookie, 0xbad0c00cu, __ATOMIC_RELEASE);
  __atomic_store_n(&app->s2c()->cookie, 0xbad0c00cu, __ATOMIC_RELEASE);
  Say("cookie: both ring cookies overwritten with 0xbad0c00c");
  HoldUntil(*app, Deadline());
  return 0;
}

// Issue 9 item 8: a head advanced over descriptors that all carry NEXT: a chain that never ends.
int ChainAttack() {
  auto app = ConnectOrSay(OptionsFromFlags());
  if (!app) return 1;
  RingHeader* ring = app->c2s();
  uint32_t n = absl::GetFlag(FLAGS_slots);
  if (n == 0 || n >= app->ring_size()) n = app->ring_size() - 1;
  uint16_t head = __atomic_load_n(&ring->head, __ATOMIC_ACQUIRE);
  for (uint32_t i = 0; i < n; ++i) {
    uint16_t cur = static_cast<uint16_t>(head + i);
    Descriptor* d = &ring->desc[cur & (app->ring_size() - 1)];
    d->flags = kDescFlagNext;
    d->region = 1;
    d->offset = (cur & (app->ring_size() - 1)) * app->buffer_size();
    d->length = 64;
    memcpy(app->buffer(d->offset), "HOSTILE:chain;", 14);
  }
  __atomic_store_n(&ring->head, static_cast<uint16_t>(head + n), __ATOMIC_RELEASE);
  Say(absl::StrCat("chain: head advanced over ", n, " descriptors, every one with NEXT"));
  HoldUntil(*app, Deadline());
  return 0;
}

// Issue 9 ("an app that breaks the protocol is detached with a reason"): descriptors outside the
// regions (c2s), buffers offered outside the regions (s2c), a head moved past the ring size. One
// connection each; each must end with snapd detaching us.
int BadDescAttack() {
  if (!HaveEcho()) return Say("baddesc needs --dst_mac and --dst_ip"), 2;
  const double wait_s = absl::GetFlag(FLAGS_wait_s);
  int failures = 0;
  for (const std::string variant : {"c2s_outside", "s2c_outside", "head_past_size"}) {
    auto app = ConnectOrSay(OptionsFromFlags());
    if (!app) return 1;
    uint32_t size = app->ring_size();
    if (variant == "c2s_outside") {
      RingHeader* ring = app->c2s();
      uint16_t head = __atomic_load_n(&ring->head, __ATOMIC_ACQUIRE);
      for (uint32_t i = 0; i < 32; ++i) {
        Descriptor* d = &ring->desc[static_cast<uint16_t>(head + i) & (size - 1)];
        d->flags = 0;
        // Alternately: a region that does not exist, and a buffer straddling the region's end.
        d->region = i % 2 == 0 ? 7 : 1;
        d->offset = i % 2 == 0 ? 0 : static_cast<uint32_t>(app->buffers_region_size() - 16);
        d->length = 1024;
      }
      __atomic_store_n(&ring->head, static_cast<uint16_t>(head + 32), __ATOMIC_RELEASE);
    } else if (variant == "s2c_outside") {
      RingHeader* ring = app->s2c();
      for (uint32_t i = 0; i < size; ++i) {
        ring->desc[i].region = 1;
        ring->desc[i].offset = static_cast<uint32_t>(app->buffers_region_size() + 4096);
      }
      SendToEcho(*app, "s2c_outside");  // the echo's answer makes snapd use an offered buffer
    } else {
      RingHeader* ring = app->c2s();
      uint16_t tail = __atomic_load_n(&ring->tail, __ATOMIC_ACQUIRE);
      __atomic_store_n(&ring->head, static_cast<uint16_t>(tail + size + 7), __ATOMIC_RELEASE);
    }
    std::string why = app->AwaitDetach(wait_s);
    if (why.empty()) {
      Say(absl::StrCat("RESULT: baddesc/", variant, ": NOT detached within ", wait_s, " s"));
      app->Disconnect("hostile_app: next variant");
      ++failures;
    } else {
      Say(absl::StrCat("RESULT: baddesc/", variant, ": detached: ", why));
    }
    // Let snapd forget the id before the next variant attaches with it.
    absl::SleepFor(absl::Milliseconds(300));
  }
  return failures == 0 ? 0 : 3;
}

// Issue 9 item 9: a hugetlbfs memfd offered as a region. Exits 77 when this machine cannot make
// and map one (no MFD_HUGETLB, or no free huge page).
int HugetlbAttack() {
  constexpr uint64_t kSize = 2 << 20;
  UniqueFd fd(::memfd_create("hostile-huge", MFD_HUGETLB | MFD_ALLOW_SEALING | MFD_CLOEXEC));
  if (!fd) return Say(absl::StrCat("SKIP: memfd_create(MFD_HUGETLB): ", strerror(errno))), 77;
  if (::ftruncate(fd.get(), kSize) != 0) {
    return Say(absl::StrCat("SKIP: ftruncate hugetlb memfd: ", strerror(errno))), 77;
  }
  if (::fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) != 0) {
    return Say(absl::StrCat("SKIP: sealing a hugetlb memfd: ", strerror(errno))), 77;
  }
  void* p = ::mmap(nullptr, kSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  if (p == MAP_FAILED) {
    return Say(absl::StrCat("SKIP: mapping a hugetlb memfd here: ", strerror(errno),
                            " (no free huge page?)")),
           77;
  }
  memset(p, 0, 64);
  ::munmap(p, kSize);
  RawAppOptions o = OptionsFromFlags();
  o.extra.push_back({std::move(fd), kSize});
  auto app = std::make_unique<RawApp>();
  absl::Status s = app->Connect(std::move(o));
  if (!s.ok()) {
    Say(absl::StrCat("RESULT: refused: ", s.message()));
    return 0;
  }
  Say("RESULT: connected (a hugetlbfs region was accepted)");
  return 0;
}

// Issue 9 item 9: 16 sparse regions of 4 GiB each (the handshake's largest), all charged to snapd.
int BigRegionsAttack() {
  constexpr uint64_t kSize = uint64_t{1} << 32;
  RawAppOptions o = OptionsFromFlags();
  o.pad_regions_to = kSize;
  for (int i = 0; i < 14; ++i) {
    UniqueFd fd(::memfd_create("hostile-sparse", MFD_ALLOW_SEALING | MFD_CLOEXEC));
    if (!fd || ::ftruncate(fd.get(), kSize) != 0 ||
        ::fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) != 0) {
      return Say(absl::StrCat("cannot make a sparse memfd: ", strerror(errno))), 1;
    }
    o.extra.push_back({std::move(fd), kSize});
  }
  Say("bigregions: offering 16 regions of 4 GiB (64 GiB, sparse)");
  auto app = std::make_unique<RawApp>();
  absl::Status s = app->Connect(std::move(o));
  if (!s.ok()) {
    Say(absl::StrCat("RESULT: refused: ", s.message()));
    return 0;
  }
  Say("RESULT: connected (64 GiB of regions accepted)");
  return 0;
}

// Found in review: fds snapd does not keep are closed by snapd, and closing the last reference to
// a TCP socket whose SO_LINGER is long, with unsent data, blocks for the linger time. Each of
// --count (at most 32) raw connections attaches such a socket to its init message, then we close
// ours. Then a semaphore eventfd (it would wake an idle worker on every sleep, for good) offered
// in add_ring. snapd must refuse both and go on serving (the test's checks after each class).
int FdTraps() {
  using snapd::memif::Received;
  UniqueFd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
      ::listen(listener.get(), 64) != 0 ||
      ::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return Say(absl::StrCat("loopback listener: ", strerror(errno))), 1;
  }
  // The next message on `conn`, waiting up to 5 s.
  auto next = [](int conn) {
    Received r;
    for (int i = 0; i < 5000; ++i) {
      r = snapd::memif::ReceiveMessage(conn);
      if (r.kind != Received::Kind::kWouldBlock) break;
      ::poll(nullptr, 0, 1);
    }
    return r;
  };
  auto reason = [](const Received& r) -> std::string {
    if (r.kind != Received::Kind::kMessage) return "(no message)";
    if (r.msg.type != static_cast<uint16_t>(MessageType::kDisconnect)) {
      return absl::StrCat("(message type ", r.msg.type, ")");
    }
    return snapd::memif::FieldToString(r.msg.disconnect.string);
  };
  const uint32_t traps = std::min<uint32_t>(absl::GetFlag(FLAGS_count), 32);
  uint32_t refused = 0;
  std::string why;
  for (uint32_t i = 0; i < traps && !g_stop; ++i) {
    UniqueFd tcp(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (::connect(tcp.get(), reinterpret_cast<sockaddr*>(&addr), len) != 0) {
      return Say(absl::StrCat("loopback connect: ", strerror(errno))), 1;
    }
    ::fcntl(tcp.get(), F_SETFL, O_NONBLOCK);
    static char junk[65536];
    while (::send(tcp.get(), junk, sizeof(junk), MSG_NOSIGNAL) > 0) {
    }
    linger lg{1, 3600};
    ::setsockopt(tcp.get(), SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    auto conn = snapd::memif::ConnectSeqpacket(absl::GetFlag(FLAGS_socket));
    if (!conn.ok()) return Say(absl::StrCat("memif socket: ", conn.status().message())), 1;
    Received hello = next(conn->get());
    if (hello.kind != Received::Kind::kMessage) {
      Say(absl::StrCat("RESULT: linger: snapd sent no hello within 5 s after ", i,
                       " lingering sockets (stuck closing one?)"));
      return 1;
    }
    absl::Status sent = snapd::memif::SendMessage(
        conn->get(),
        snapd::memif::MakeInit(absl::GetFlag(FLAGS_id), snapd::memif::InterfaceMode::kEthernet,
                               absl::GetFlag(FLAGS_secret), "hostile-linger"),
        tcp.get());
    if (!sent.ok()) return Say(absl::StrCat("init: ", sent.message())), 1;
    tcp.reset();  // snapd's copy is the last one now
    Received r = next(conn->get());
    if (r.kind == Received::Kind::kMessage &&
        r.msg.type == static_cast<uint16_t>(MessageType::kDisconnect)) {
      ++refused;
      why = reason(r);
    }
  }
  Say(absl::StrCat("RESULT: linger: ", refused, " of ", traps, " inits with a lingering socket ",
                   "refused (", why, ")"));
  // A semaphore eventfd, past init and a good region.
  auto conn = snapd::memif::ConnectSeqpacket(absl::GetFlag(FLAGS_socket));
  if (!conn.ok()) return Say(absl::StrCat("memif socket: ", conn.status().message())), 1;
  (void)next(conn->get());  // hello
  (void)snapd::memif::SendMessage(
      conn->get(),
      snapd::memif::MakeInit(absl::GetFlag(FLAGS_id), snapd::memif::InterfaceMode::kEthernet,
                             absl::GetFlag(FLAGS_secret), "hostile-semaphore"));
  Received ack = next(conn->get());
  if (ack.kind != Received::Kind::kMessage ||
      ack.msg.type != static_cast<uint16_t>(MessageType::kAck)) {
    return Say(absl::StrCat("RESULT: semaphore: init not acked: ", reason(ack))), 1;
  }
  auto region = snapd::memif::MappedRegion::Create("hostile-sem", 1 << 16);
  if (!region.ok()) return Say("memfd"), 1;
  (void)snapd::memif::SendMessage(conn->get(), snapd::memif::MakeAddRegion(0, 1 << 16),
                                  region->fd());
  (void)next(conn->get());  // ack
  UniqueFd sem(::eventfd(0, EFD_SEMAPHORE | EFD_CLOEXEC));
  (void)snapd::memif::SendMessage(conn->get(), snapd::memif::MakeAddRing(true, 0, 0, 0, 4),
                                  sem.get());
  Say(absl::StrCat("RESULT: semaphore: ", reason(next(conn->get()))));
  return 0;
}

// --- On the wire -------------------------------------------------------------------------------

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

// Finds "HOSTILE:kind;" in a frame; returns the kind, or "" when the marker is not there.
std::string HostileKind(const uint8_t* data, uint32_t len) {
  const void* at = memmem(data, len, kMarker, sizeof(kMarker) - 1);
  if (at == nullptr) return "";
  const char* k = static_cast<const char*>(at) + sizeof(kMarker) - 1;
  const char* end = reinterpret_cast<const char*>(data) + len;
  std::string kind;
  while (k < end && *k != ';' && kind.size() < 24) kind += *k++;
  return kind.empty() ? "?" : kind;
}

std::string KindsText(const std::map<std::string, uint64_t>& kinds) {
  std::vector<std::string> parts;
  for (const auto& [k, n] : kinds) parts.push_back(absl::StrCat(k, ":", n));
  return parts.empty() ? "none" : absl::StrJoin(parts, ",");
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

// --- The victim --------------------------------------------------------------------------------

// A well-behaved app: sequenced UDP to udp_echo at --rate, at most --window in flight, sleeping on
// its ring's interrupt between sends. Counts what came back, what was lost (skipped over, or not
// back within --loss_after_s), and every frame carrying an attack's marker. Prints a status line
// every 200 ms; exits 0 on SIGTERM if nothing was lost and no hostile frame arrived.
int Victim() {
  uint64_t dst_mac;
  uint32_t dst_ip;
  if (!snapd::ParseMac(absl::GetFlag(FLAGS_dst_mac), &dst_mac) ||
      !snapd::ParseIpv4(absl::GetFlag(FLAGS_dst_ip), &dst_ip)) {
    fprintf(stderr, "victim: --dst_mac and --dst_ip are required\n");
    return 2;
  }
  auto app = snap::App::Attach({absl::GetFlag(FLAGS_socket), absl::GetFlag(FLAGS_id),
                                absl::GetFlag(FLAGS_secret), "victim"});
  if (!app.ok()) {
    printf("victim: cannot attach: %s\n", std::string(app.status().message()).c_str());
    return 1;
  }
  printf("victim: attached as %s %s\n", MacToString((*app)->mac()).c_str(),
         snapd::Ipv4ToString((*app)->ipv4()).c_str());
  fflush(stdout);
  constexpr uint32_t kSize = 96;
  const std::string header =
      snap::UdpHeader((*app)->mac(), dst_mac, (*app)->ipv4(), dst_ip, 9100, 7, kSize);
  const int64_t interval = 1000000000ll / std::max<uint32_t>(1, absl::GetFlag(FLAGS_rate));
  const int64_t loss_after = static_cast<int64_t>(absl::GetFlag(FLAGS_loss_after_s) * 1e9);
  const uint32_t window = absl::GetFlag(FLAGS_window);
  struct Out {
    uint64_t seq;
    int64_t sent_ns;
  };
  std::deque<Out> out;
  uint64_t seq = 0, received = 0, lost = 0, late = 0, hostile = 0, other = 0, ring_full = 0;
  int64_t max_rtt = 0;
  std::map<std::string, uint64_t> kinds;
  std::string detached;
  int64_t next_send = snapd::MonotonicNs(), next_line = 0, next_check = 0;
  std::string frame(kSize, '\0');
  auto line = [&] {
    int64_t oldest = out.empty() ? 0 : (snapd::MonotonicNs() - out.front().sent_ns) / 1000000;
    printf(
        "victim: sent=%lu received=%lu lost=%lu late=%lu inflight=%zu hostile=%lu other=%lu "
        "ring_full=%lu max_rtt_us=%ld oldest_ms=%ld hostile_kinds=%s%s%s\n",
        seq, received, lost, late, out.size(), hostile, other, ring_full, max_rtt / 1000, oldest,
        KindsText(kinds).c_str(), detached.empty() ? "" : " detached: ", detached.c_str());
    fflush(stdout);
  };
  while (!g_stop) {
    int64_t now = snapd::MonotonicNs();
    while (now >= next_send) {
      if (out.size() >= window) {
        next_send = now + interval;  // no credit: the path is stalled, do not queue a burst
        break;
      }
      memcpy(frame.data(), header.data(), header.size());
      memcpy(frame.data() + header.size(), kVictimMagic, 8);
      memcpy(frame.data() + header.size() + 8, &seq, 8);
      memcpy(frame.data() + header.size() + 16, &now, 8);
      snap::Frame f{reinterpret_cast<uint8_t*>(frame.data()), kSize};
      if ((*app)->Send(&f, 1) != 1) {
        ++ring_full;
        next_send = now + interval;
        break;
      }
      out.push_back({seq++, now});
      next_send += interval;
    }
    snap::Frame got[32];
    uint16_t n = (*app)->Receive(got, 32);
    now = snapd::MonotonicNs();
    for (uint16_t i = 0; i < n; ++i) {
      const uint8_t* d = got[i].data;
      uint32_t len = got[i].len;
      std::string k = HostileKind(d, len);
      if (!k.empty()) {
        ++hostile;
        ++kinds[k];
        continue;
      }
      size_t at = header.size();
      if (len < at + 24 || memcmp(d + at, kVictimMagic, 8) != 0) {
        ++other;
        continue;
      }
      uint64_t s;
      memcpy(&s, d + at + 8, 8);
      while (!out.empty() && out.front().seq < s) {
        ++lost;  // skipped over: the path is in order, so it will not come
        out.pop_front();
      }
      if (!out.empty() && out.front().seq == s) {
        max_rtt = std::max(max_rtt, now - out.front().sent_ns);
        ++received;
        out.pop_front();
      } else {
        ++late;
      }
    }
    (*app)->Release();
    while (!out.empty() && now - out.front().sent_ns > loss_after) {
      ++lost;
      out.pop_front();
    }
    if (now >= next_check) {
      absl::Status s = (*app)->CheckConnection();
      if (!s.ok()) {
        detached = std::string(s.message());
        line();
        return 3;
      }
      next_check = now + 100000000;
    }
    if (now >= next_line) {
      line();
      next_line = now + 200000000;
    }
    if (n == 0) {
      int64_t until_send = std::max<int64_t>(0, next_send - snapd::MonotonicNs());
      (*app)->Wait(static_cast<int>(std::min<int64_t>(until_send / 1000000, 5)));
    }
  }
  line();
  return lost == 0 && late == 0 && hostile == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Attacks snapd as an app would (tests/hostile_app_test), or plays its victim.\n"
      "Usage: hostile_app "
      "victim|eventfd_write|eventfd_read|idle|badinit|spoof|cookie|chain|baddesc|"
      "hugetlb|bigregions|fdtraps|macflood|wire_watch [flags]");
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
  if (args.size() != 2) {
    fprintf(stderr, "hostile_app: one subcommand expected (see --help)\n");
    return 2;
  }
  const std::string cmd = args[1];
  if (cmd == "victim") return Victim();
  if (cmd == "eventfd_write") return EventfdWrite();
  if (cmd == "eventfd_read") return EventfdRead();
  if (cmd == "idle") return Idle();
  if (cmd == "badinit") return BadInit();
  if (cmd == "spoof") return SpoofAttack();
  if (cmd == "cookie") return CookieAttack();
  if (cmd == "chain") return ChainAttack();
  if (cmd == "baddesc") return BadDescAttack();
  if (cmd == "hugetlb") return HugetlbAttack();
  if (cmd == "bigregions") return BigRegionsAttack();
  if (cmd == "fdtraps") return FdTraps();
  if (cmd == "macflood") return MacFlood();
  if (cmd == "wire_watch") return WireWatch();
  fprintf(stderr, "hostile_app: unknown subcommand '%s'\n", cmd.c_str());
  return 2;
}
