#include "ipc/client.h"

#include <poll.h>
#include <string.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "ipc/control_message.h"
#include "ipc/eventfd.h"
#include "ipc/socket.h"

namespace snapd::memif {
namespace {

constexpr uint64_t kCacheLine = 64;

uint64_t RoundUp(uint64_t n, uint64_t to) { return (n + to - 1) / to * to; }

// Waits for the next message from the server until `deadline`. A disconnect becomes an error
// carrying the server's reason.
absl::StatusOr<WireMessage> Await(int fd, absl::Time deadline, MessageType want) {
  while (true) {
    absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) {
      return absl::DeadlineExceededError(absl::StrCat("timed out waiting for ",
                                                      MessageTypeName(static_cast<uint16_t>(want)),
                                                      " from the server"));
    }
    pollfd p{fd, POLLIN, 0};
    int ms = static_cast<int>(absl::ToInt64Milliseconds(left)) + 1;
    if (::poll(&p, 1, ms) < 0 && errno != EINTR) {
      return absl::InternalError(absl::StrCat("poll: ", strerror(errno)));
    }
    Received r = ReceiveMessage(fd);
    switch (r.kind) {
      case Received::Kind::kWouldBlock:
        continue;
      case Received::Kind::kHangup:
        return absl::UnavailableError("server closed the connection");
      case Received::Kind::kMalformed:
        return absl::InvalidArgumentError(absl::StrCat("bad message from server: ", r.error));
      case Received::Kind::kMessage:
        break;
    }
    if (r.msg.type == static_cast<uint16_t>(MessageType::kDisconnect)) {
      return absl::PermissionDeniedError(
          absl::StrCat("server refused: ", FieldToString(r.msg.disconnect.string)));
    }
    if (r.msg.type != static_cast<uint16_t>(want)) {
      return absl::InvalidArgumentError(
          absl::StrCat("expected ", MessageTypeName(static_cast<uint16_t>(want)),
                       " from server, got ", MessageTypeName(r.msg.type)));
    }
    return r.msg;
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<MemifClient>> MemifClient::Connect(const ClientOptions& options) {
  if (options.queue_pairs == 0) return absl::InvalidArgumentError("queue_pairs must be positive");
  if (options.log2_ring_size == 0 || options.log2_ring_size > kMaxLog2RingSize) {
    return absl::InvalidArgumentError(absl::StrCat("log2_ring_size must be 1..", kMaxLog2RingSize));
  }
  if (options.buffer_size < 64 || options.buffer_size % 64 != 0 || options.buffer_size > 65536) {
    return absl::InvalidArgumentError("buffer_size must be a multiple of 64 in 64..65536");
  }
  if (options.secret.size() >= kSecretSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("secret is at most ", kSecretSize - 1, " bytes"));
  }
  absl::Time deadline = absl::Now() + options.timeout;
  std::unique_ptr<MemifClient> client(new MemifClient());
  absl::StatusOr<UniqueFd> fd = ConnectSeqpacket(options.socket_path);
  if (!fd.ok()) return fd.status();
  client->control_ = std::move(*fd);
  absl::Status status = client->Handshake(options, deadline);
  if (!status.ok()) return status;
  return client;
}

MemifClient::~MemifClient() {
  // Rings point into the regions: destroy them first.
  rx_.clear();
  tx_.clear();
}

absl::Status MemifClient::Setup(const ClientOptions& options, uint16_t pairs, uint8_t log2) {
  pairs_ = pairs;
  log2_ = log2;
  buffer_size_ = options.buffer_size;
  const uint64_t ring_bytes = RoundUp(RingBytes(log2), kCacheLine);
  const uint64_t slots = uint64_t{1} << log2;
  const uint64_t rings_size = RoundUp(ring_bytes * 2 * pairs, 4096);
  const uint64_t buffers_size = RoundUp(slots * buffer_size_ * 2 * pairs, 4096);
  if (buffers_size > UINT32_MAX) {
    return absl::InvalidArgumentError("rings x slots x buffer size exceed 4 GiB");
  }
  absl::StatusOr<MappedRegion> rings = MappedRegion::Create("memif-rings", rings_size);
  if (!rings.ok()) return rings.status();
  absl::StatusOr<MappedRegion> buffers = MappedRegion::Create("memif-buffers", buffers_size);
  if (!buffers.ok()) return buffers.status();
  rings_region_ = std::move(*rings);
  buffers_region_ = std::move(*buffers);
  views_ = {{rings_region_.base(), rings_region_.size()},
            {buffers_region_.base(), buffers_region_.size()}};
  // Ring r (c2s 0..pairs-1, then s2c 0..pairs-1) sits at r * ring_bytes in region 0 and its
  // buffers at r * slots * buffer_size in region 1.
  for (uint64_t r = 0; r < 2u * pairs; ++r) {
    auto* ring = reinterpret_cast<RingHeader*>(rings_region_.base() + r * ring_bytes);
    ring->flags = 0;
    ring->head = 0;
    ring->tail = 0;
    __atomic_store_n(&ring->cookie, kCookie, __ATOMIC_RELEASE);
  }
  for (uint16_t q = 0; q < pairs; ++q) {
    absl::StatusOr<UniqueFd> c2s_fd = CreateEventFd();
    absl::StatusOr<UniqueFd> s2c_fd = CreateEventFd();
    if (!c2s_fd.ok()) return c2s_fd.status();
    if (!s2c_fd.ok()) return s2c_fd.status();
    c2s_eventfds_.push_back(std::move(*c2s_fd));
    s2c_eventfds_.push_back(std::move(*s2c_fd));
  }
  return absl::OkStatus();
}

absl::Status MemifClient::Handshake(const ClientOptions& options, absl::Time deadline) {
  int fd = control_.get();
  absl::StatusOr<WireMessage> hello = Await(fd, deadline, MessageType::kHello);
  if (!hello.ok()) return hello.status();
  if (hello->hello.min_version > kVersion || hello->hello.max_version < kVersion) {
    (void)SendMessage(fd, MakeDisconnect(0, "incompatible memif version"));
    return absl::FailedPreconditionError("server does not speak memif 2.0");
  }
  server_name_ = FieldToString(hello->hello.name);
  uint16_t pairs = options.queue_pairs;
  pairs = std::min<uint32_t>(pairs, uint32_t{hello->hello.max_c2s_ring} + 1);
  pairs = std::min<uint32_t>(pairs, uint32_t{hello->hello.max_s2c_ring} + 1);
  uint8_t log2 = std::min(options.log2_ring_size, hello->hello.max_log2_ring_size);
  if (log2 == 0) return absl::FailedPreconditionError("server allows no ring size");
  absl::Status status = Setup(options, pairs, log2);
  if (!status.ok()) return status;

  // Each request is answered before the next goes out, as every memif server expects.
  auto request = [&](const WireMessage& msg, int attached, MessageType want) -> absl::Status {
    absl::Status sent = SendMessage(fd, msg, attached);
    if (!sent.ok()) return sent;
    return Await(fd, deadline, want).status();
  };
  status = request(MakeInit(options.id, InterfaceMode::kEthernet, options.secret, options.name), -1,
                   MessageType::kAck);
  if (!status.ok()) return status;
  status = request(MakeAddRegion(0, rings_region_.size()), rings_region_.fd(), MessageType::kAck);
  if (!status.ok()) return status;
  status =
      request(MakeAddRegion(1, buffers_region_.size()), buffers_region_.fd(), MessageType::kAck);
  if (!status.ok()) return status;
  const uint64_t ring_bytes = RoundUp(RingBytes(log2), kCacheLine);
  for (uint16_t q = 0; q < pairs; ++q) {
    status = request(MakeAddRing(true, q, 0, static_cast<uint32_t>(q * ring_bytes), log2),
                     c2s_eventfds_[q].get(), MessageType::kAck);
    if (!status.ok()) return status;
  }
  for (uint16_t q = 0; q < pairs; ++q) {
    status =
        request(MakeAddRing(false, q, 0, static_cast<uint32_t>((pairs + q) * ring_bytes), log2),
                s2c_eventfds_[q].get(), MessageType::kAck);
    if (!status.ok()) return status;
  }
  status = SendMessage(fd, MakeConnect(options.if_name));
  if (!status.ok()) return status;
  absl::StatusOr<WireMessage> connected = Await(fd, deadline, MessageType::kConnected);
  if (!connected.ok()) return connected.status();
  server_if_name_ = FieldToString(connected->connected.if_name);

  absl::Span<const RegionView> views(views_);
  const uint32_t ring_buffers = (uint32_t{1} << log2) * buffer_size_;
  for (uint16_t q = 0; q < pairs; ++q) {
    auto* c2s = reinterpret_cast<RingHeader*>(rings_region_.base() + q * ring_bytes);
    auto* s2c = reinterpret_cast<RingHeader*>(rings_region_.base() + (pairs + q) * ring_bytes);
    tx_.push_back(std::make_unique<TxRing>(Side::kClient, c2s, log2, views, c2s_eventfds_[q].get(),
                                           0, ClientSlots{1, q * ring_buffers, buffer_size_}));
    rx_.push_back(
        std::make_unique<RxRing>(Side::kClient, s2c, log2, views, s2c_eventfds_[q].get(), 0,
                                 ClientSlots{1, (pairs + q) * ring_buffers, buffer_size_}));
    rx_.back()->SetInterruptMode(false);
    rx_.back()->Start();
  }
  return absl::OkStatus();
}

absl::Status MemifClient::CheckControl() {
  if (!control_) return absl::UnavailableError("disconnected");
  while (true) {
    Received r = ReceiveMessage(control_.get());
    switch (r.kind) {
      case Received::Kind::kWouldBlock:
        return absl::OkStatus();
      case Received::Kind::kHangup:
        control_.reset();
        hung_up_ = true;
        return absl::UnavailableError("server closed the connection");
      case Received::Kind::kMalformed:
        control_.reset();
        return absl::InvalidArgumentError(absl::StrCat("bad message from server: ", r.error));
      case Received::Kind::kMessage:
        if (r.msg.type == static_cast<uint16_t>(MessageType::kDisconnect)) {
          control_.reset();
          return absl::UnavailableError(
              absl::StrCat("server disconnected: ", FieldToString(r.msg.disconnect.string)));
        }
        break;  // acks and the like: nothing to do
    }
  }
}

void MemifClient::Disconnect(absl::string_view reason) {
  if (!control_) return;
  (void)SendMessage(control_.get(), MakeDisconnect(0, reason));
  control_.reset();
}

}  // namespace snapd::memif
