// RawApp: a memif client that keeps every handle a well-behaved one hides (the interrupt
// eventfds, the ring headers, regions of any kind and size), for hostile_app's attacks.
#ifndef SNAPD_TOOLS_HOSTILE_RAW_APP_H_
#define SNAPD_TOOLS_HOSTILE_RAW_APP_H_

#include "tools/hostile/common.h"

namespace hostile {

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

inline RawAppOptions OptionsFromFlags() {
  RawAppOptions o;
  o.socket = absl::GetFlag(FLAGS_socket);
  o.id = absl::GetFlag(FLAGS_id);
  o.secret = absl::GetFlag(FLAGS_secret);
  return o;
}

// Connects with the flags' socket and id; on failure says why and returns null.
inline std::unique_ptr<RawApp> ConnectOrSay(RawAppOptions options) {
  auto app = std::make_unique<RawApp>();
  absl::Status s = app->Connect(std::move(options));
  if (!s.ok()) {
    Say(absl::StrCat("cannot attach: ", s.message()));
    return nullptr;
  }
  Say(absl::StrCat("attached as ", MacToString(app->mac()), " ", snapd::Ipv4ToString(app->ip())));
  return app;
}

}  // namespace hostile

#endif  // SNAPD_TOOLS_HOSTILE_RAW_APP_H_
