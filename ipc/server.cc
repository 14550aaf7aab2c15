#include "ipc/server.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "ipc/control_message.h"
#include "ipc/eventfd.h"
#include "ipc/peer_fd.h"
#include "ipc/socket.h"

namespace snapd::memif {
namespace {

// Disconnect codes we send; peers only log them.
constexpr uint32_t kCodeRefused = 1;
constexpr uint32_t kCodeProtocol = 2;
constexpr uint32_t kCodeShutdown = 3;

// Root and the server's own uid are trusted (SECURITY.md): no per-uid limits.
bool Trusted(uid_t uid) { return uid == 0 || uid == geteuid(); }

// Whether a client of `uid` may connect as `config` (its uid=, when set).
absl::Status CheckOwner(const InterfaceConfig& config, uid_t uid) {
  if (!config.uid.has_value() || *config.uid == uid) return absl::OkStatus();
  return absl::PermissionDeniedError(
      absl::StrCat("interface id ", config.id, " belongs to uid ", *config.uid, ", not ", uid));
}

}  // namespace

const char* Connection::ring_error() const {
  for (const auto& r : rx_) {
    if (r->error() != nullptr) return r->error();
  }
  for (const auto& t : tx_) {
    if (t->error() != nullptr) return t->error();
  }
  return nullptr;
}

absl::StatusOr<std::unique_ptr<MemifServer>> MemifServer::Create(ServerOptions options) {
  if (options.limits.max_regions == 0 || options.limits.max_queue_pairs == 0) {
    return absl::InvalidArgumentError("limits must allow at least one region and queue pair");
  }
  absl::StatusOr<UniqueFd> listener = ListenSeqpacket(options.socket_path);
  if (!listener.ok()) return listener.status();
  return Adopt(std::move(options), std::move(*listener));
}

absl::StatusOr<std::unique_ptr<MemifServer>> MemifServer::Adopt(ServerOptions options,
                                                                UniqueFd listener) {
  if (options.limits.max_regions == 0 || options.limits.max_queue_pairs == 0) {
    return absl::InvalidArgumentError("limits must allow at least one region and queue pair");
  }
  std::unique_ptr<MemifServer> server(new MemifServer(std::move(options)));
  absl::Status status = server->Init(std::move(listener));
  if (!status.ok()) return status;
  return server;
}

absl::Status MemifServer::Init(UniqueFd listener) {
  listener_ = std::move(listener);
  int flags = ::fcntl(listener_.get(), F_GETFL);
  ::fcntl(listener_.get(), F_SETFL, flags | O_NONBLOCK);
  epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
  if (!epoll_) return absl::InternalError(absl::StrCat("epoll: ", strerror(errno)));
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = listener_.get();
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, listener_.get(), &ev) != 0) {
    return absl::InvalidArgumentError(absl::StrCat("listener fd: ", strerror(errno)));
  }
  return absl::OkStatus();
}

MemifServer::~MemifServer() {
  while (!by_fd_.empty()) Close(by_fd_.begin()->second.get(), "server shutting down", true);
  if (listener_) ::unlink(options_.socket_path.c_str());
}

absl::Status MemifServer::AddInterface(const InterfaceConfig& config) {
  if (config.connected_name.size() > kNameSize - 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("connected name is at most ", kNameSize - 1, " bytes"));
  }
  if (config.secret.size() > kSecretSize - 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("secret is ", config.secret.size(), " bytes; at most ", kSecretSize - 1));
  }
  if (!interfaces_.emplace(config.id, config).second) {
    return absl::AlreadyExistsError(absl::StrCat("interface id ", config.id, " already exists"));
  }
  return absl::OkStatus();
}

absl::Status MemifServer::RemoveInterface(uint32_t id, absl::string_view reason) {
  if (interfaces_.erase(id) == 0) {
    return absl::NotFoundError(absl::StrCat("no interface with id ", id));
  }
  Disconnect(id, reason);
  return absl::OkStatus();
}

std::vector<Connection*> MemifServer::connections() const {
  std::vector<Connection*> out;
  for (const auto& [fd, conn] : by_fd_) {
    if (conn->connected_) out.push_back(conn.get());
  }
  return out;
}

void MemifServer::Poll(int timeout_ms) {
  epoll_event events[32];
  int n = ::epoll_wait(epoll_.get(), events, 32, timeout_ms);
  for (int i = 0; i < n; ++i) {
    int fd = events[i].data.fd;
    if (fd == listener_.get()) {
      Accept();
      continue;
    }
    if (by_fd_.count(fd) != 0) OnReadable(fd);
  }
  // Handshakes that take too long hold a slot and an fd: drop them.
  absl::Time now = absl::Now();
  std::vector<Connection*> late;
  for (const auto& [fd, conn] : by_fd_) {
    if (!conn->connected_ && now > conn->deadline_) late.push_back(conn.get());
  }
  for (Connection* conn : late) {
    stats_.timed_out.Add();
    Close(conn, "handshake timed out", true);
  }
}

const char* MemifServer::AcceptRefusal(uid_t uid) const {
  auto held = held_back_.find(uid);
  if (held != held_back_.end() && absl::Now() < held->second) {
    return "this uid made a call on its eventfd block: held back";
  }
  const UidLoad load = LoadOf(uid);
  if (load.handshakes_all >= options_.max_handshakes) return "too many clients connecting";
  if (Trusted(uid)) return "";
  if (load.handshakes >= options_.max_handshakes_per_uid) {
    return "too many clients of this uid connecting";
  }
  if (PeerFdsClosing(uid) > 16) return "too many of this uid's file descriptors still closing";
  if (load.connected >= options_.max_connections_per_uid) {
    return "too many interfaces connected for this uid";
  }
  return "";
}

void MemifServer::Accept() {
  // A bounded number per wake-up: a flood of connects must not hold the control thread.
  for (int i = 0; i < 32; ++i) {
    UniqueFd fd(::accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!fd) return;  // EAGAIN, or a transient error; the listener stays armed
    stats_.accepted.Add();
    ucred cred{};
    socklen_t len = sizeof(cred);
    if (::getsockopt(fd.get(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) continue;
    const char* refusal = AcceptRefusal(cred.uid);
    if (*refusal != 0) {
      (void)SendMessage(fd.get(), MakeDisconnect(kCodeRefused, refusal));
      stats_.refused.Add();
      stats_.busy.Add();
      if (on_refused_) on_refused_(cred, refusal);
      continue;
    }
    int raw = fd.get();
    auto conn = std::unique_ptr<Connection>(new Connection(std::move(fd), options_.limits));
    conn->cred_ = cred;
    conn->deadline_ = absl::Now() + options_.handshake_timeout;
    if (!SendMessage(raw, conn->handshake_.Hello(options_.name)).ok()) continue;
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP;
    ev.data.fd = raw;
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, raw, &ev);
    by_fd_.emplace(raw, std::move(conn));
  }
}

void MemifServer::OnReadable(int fd) {
  // A bounded number of messages per wake-up, so that one chatty client cannot starve the rest.
  for (int i = 0; i < 16; ++i) {
    // Looked up anew for each message: handling the last one may have closed the client (the
    // owner's on_connected can disconnect it, e.g. when its engine refuses the port).
    auto it = by_fd_.find(fd);
    if (it == by_fd_.end()) return;
    Connection* conn = it->second.get();
    Received r = ReceiveMessage(conn->control_.get());
    // Fds we do not keep are closed on the closer's thread: their close may block (peer_fd.h).
    const uid_t uid = conn->cred_.uid;
    absl::Cleanup release = [&r, uid] {
      ReleasePeerFd(r.fd.release(), uid);
      for (UniqueFd& extra : r.unwanted_fds) ReleasePeerFd(extra.release(), uid);
    };
    switch (r.kind) {
      case Received::Kind::kWouldBlock:
        return;
      case Received::Kind::kHangup:
        Close(conn, r.error.empty() ? "peer closed the control socket" : r.error, false);
        return;
      case Received::Kind::kMalformed:
        Close(conn, r.error, true);
        return;
      case Received::Kind::kMessage: {
        absl::Status status = HandleMessage(conn, r.msg, &r.fd);
        if (!status.ok()) {
          // A disconnect from the peer needs no answer.
          Close(conn, status.message(), !absl::IsCancelled(status));
          return;
        }
        break;
      }
    }
  }
}

MemifServer::UidLoad MemifServer::LoadOf(uid_t uid) const {
  UidLoad load;
  for (const auto& [k, conn] : by_fd_) {
    const bool same = conn->cred_.uid == uid;
    if (conn->connected_) {
      load.connected += same;
    } else {
      ++load.handshakes_all;
      load.handshakes += same;
    }
    if (same) load.region_bytes += conn->region_bytes_;
  }
  return load;
}

absl::Status MemifServer::HandleMessage(Connection* conn, const WireMessage& msg, UniqueFd* fd) {
  absl::StatusOr<MessageType> reply = conn->handshake_.OnMessage(msg, fd->valid());
  if (!reply.ok()) return reply.status();
  auto type = static_cast<MessageType>(msg.type);
  if (type == MessageType::kInit) {
    const InitMsg& init = conn->handshake_.init();
    const uint32_t id = init.id;  // a copy: the wire field is packed, unaligned
    auto known = interfaces_.find(id);
    if (known == interfaces_.end() && !options_.accept_any_id) {
      return absl::NotFoundError(absl::StrCat("unknown interface id ", id));
    }
    if (known != interfaces_.end()) {
      absl::Status owner = CheckOwner(known->second, conn->cred_.uid);
      if (!owner.ok()) return owner;
    }
    std::string secret = known == interfaces_.end() ? "" : known->second.secret;
    if (!secret.empty() || init.secret[0] != 0) {
      if (!SecretMatches(secret, init.secret)) {
        return absl::PermissionDeniedError(secret.empty() ? "no secret is configured for this id"
                                                          : "incorrect secret");
      }
    }
    if (by_id_.contains(id)) {
      return absl::AlreadyExistsError(absl::StrCat("interface id ", id, " already connected"));
    }
    // Counted again here: handshakes that began under the limit must not all complete past it.
    const uid_t uid = conn->cred_.uid;
    if (!Trusted(uid) && LoadOf(uid).connected >= options_.max_connections_per_uid) {
      return absl::ResourceExhaustedError("too many interfaces connected for this uid");
    }
    conn->id_ = id;
    conn->peer_name_ = FieldToString(init.name);
    by_id_[id] = conn;
  } else if (type == MessageType::kAddRegion) {
    const uint64_t size = msg.add_region.size;
    if (size > options_.max_region_bytes - conn->region_bytes_) {
      return absl::ResourceExhaustedError(
          absl::StrCat("regions of more than ", options_.max_region_bytes, " bytes in all"));
    }
    const uid_t uid = conn->cred_.uid;
    if (!Trusted(uid) &&
        size > options_.max_region_bytes_per_uid -
                   std::min(options_.max_region_bytes_per_uid, LoadOf(uid).region_bytes)) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "regions of more than ", options_.max_region_bytes_per_uid, " bytes for this uid"));
    }
    absl::StatusOr<MappedRegion> region =
        MappedRegion::MapPeer(std::move(*fd), size, conn->cred_.uid);
    if (!region.ok()) return region.status();
    conn->region_bytes_ += size;
    conn->regions_.push_back(std::move(*region));
  } else if (type == MessageType::kAddRing) {
    absl::Status status = AdoptPeerEventFd(fd->get());
    if (!status.ok()) return status;
    std::vector<UniqueFd>& fds =
        (msg.add_ring.flags & kAddRingFlagC2S) ? conn->c2s_eventfds_ : conn->s2c_eventfds_;
    if (fds.size() <= msg.add_ring.index) fds.resize(msg.add_ring.index + 1);
    fds[msg.add_ring.index] = std::move(*fd);
  } else if (type == MessageType::kConnect) {
    conn->if_name_ = FieldToString(msg.connect.if_name);
    conn->c2s_specs_ = conn->handshake_.c2s_rings();
    conn->s2c_specs_ = conn->handshake_.s2c_rings();
    absl::Status status = Activate(conn, /*fresh=*/true);
    if (!status.ok()) return status;
  }
  if (*reply == MessageType::kAck) return SendMessage(conn->control_.get(), MakeAck());
  if (*reply == MessageType::kConnected) {
    auto known = interfaces_.find(conn->id_);
    const std::string& name = known != interfaces_.end() && !known->second.connected_name.empty()
                                  ? known->second.connected_name
                                  : options_.name;
    absl::Status sent = SendMessage(conn->control_.get(), MakeConnected(name));
    if (!sent.ok()) return sent;
    conn->connected_ = true;
    stats_.connected.Add();
    if (on_connected_) on_connected_(*conn);
  }
  return absl::OkStatus();
}

absl::Status MemifServer::Activate(Connection* conn, bool fresh, bool discard_pending) {
  for (const MappedRegion& r : conn->regions_) conn->views_.push_back({r.base(), r.size()});
  absl::Span<const RegionView> views(conn->views_);
  auto ring_at = [&](const RingSpec& spec) {
    return reinterpret_cast<RingHeader*>(conn->views_[spec.region].base + spec.offset);
  };
  for (const auto* rings : {&conn->c2s_specs_, &conn->s2c_specs_}) {
    for (const RingSpec& spec : *rings) {
      if (__atomic_load_n(&ring_at(spec)->cookie, __ATOMIC_ACQUIRE) != kCookie) {
        return absl::InvalidArgumentError("ring cookie mismatch");
      }
    }
  }
  // Queue pair q is c2s ring q (we receive) and s2c ring q (we transmit). Fresh rings start at 0,
  // as every memif implementation resets them at connect. Resumed rings go on where the last
  // server stopped: it released all it received (c2s tail) and published all it sent (s2c tail),
  // and we are the only writer of both.
  const size_t pairs = std::min(conn->c2s_specs_.size(), conn->s2c_specs_.size());
  for (size_t q = 0; q < pairs; ++q) {
    RingHeader* c2s = ring_at(conn->c2s_specs_[q]);
    RingHeader* s2c = ring_at(conn->s2c_specs_[q]);
    if (fresh) {
      __atomic_store_n(&c2s->head, 0, __ATOMIC_RELAXED);
      __atomic_store_n(&c2s->tail, 0, __ATOMIC_RELAXED);
      __atomic_store_n(&s2c->head, 0, __ATOMIC_RELAXED);
      __atomic_store_n(&s2c->tail, 0, __ATOMIC_RELAXED);
    }
    uint16_t rx_cursor = __atomic_load_n(&c2s->tail, __ATOMIC_ACQUIRE);
    uint16_t tx_cursor = __atomic_load_n(&s2c->tail, __ATOMIC_ACQUIRE);
    // The tails are ours, but the memory is the app's too, and no server watched it in between
    // (a crash): a ring whose cursors no server could have left is refused, not resumed.
    uint16_t c2s_head = 0;
    if (!fresh) {
      for (const auto& [ring, spec] :
           {std::pair{c2s, &conn->c2s_specs_[q]}, std::pair{s2c, &conn->s2c_specs_[q]}}) {
        const uint16_t head = __atomic_load_n(&ring->head, __ATOMIC_ACQUIRE);
        if (ring == c2s) c2s_head = head;
        const uint16_t tail = __atomic_load_n(&ring->tail, __ATOMIC_ACQUIRE);
        if (static_cast<uint16_t>(head - tail) > (1u << spec->log2_size)) {
          return absl::InvalidArgumentError(
              absl::StrCat("handoff: ring cursors out of range (head ", head, ", tail ", tail, ", ",
                           1u << spec->log2_size, " slots)"));
        }
      }
      if (discard_pending) {
        // Consumed unread, up to the head checked above (the client may move it meanwhile): the
        // slots go back to the client, and are counted.
        stats_.discarded.Add(static_cast<uint16_t>(c2s_head - rx_cursor));
        rx_cursor = c2s_head;
        __atomic_store_n(&c2s->tail, c2s_head, __ATOMIC_RELEASE);
      }
    }
    conn->rx_.push_back(std::make_unique<RxRing>(Side::kServer, c2s, conn->c2s_specs_[q].log2_size,
                                                 views, conn->c2s_eventfds_[q].get(), rx_cursor,
                                                 ClientSlots{}));
    conn->tx_.push_back(std::make_unique<TxRing>(Side::kServer, s2c, conn->s2c_specs_[q].log2_size,
                                                 views, conn->s2c_eventfds_[q].get(), tx_cursor,
                                                 ClientSlots{}));
    conn->rx_.back()->set_tag(conn->id_);
    conn->tx_.back()->set_tag(conn->id_);
    // We poll until the owner asks for interrupts. A resumed ring's flags belong to whoever
    // serves it until the hand-over completes: leave them.
    if (fresh) conn->rx_.back()->SetInterruptMode(false);
  }
  return absl::OkStatus();
}

namespace {

absl::StatusOr<UniqueFd> Dup(int fd) {
  UniqueFd copy(::fcntl(fd, F_DUPFD_CLOEXEC, 0));
  if (!copy) return absl::ResourceExhaustedError(absl::StrCat("dup: ", strerror(errno)));
  return copy;
}

}  // namespace

absl::StatusOr<UniqueFd> MemifServer::ExportListener() const { return Dup(listener_.get()); }

absl::StatusOr<ConnectionHandoff> MemifServer::Export(const Connection& conn) {
  ConnectionHandoff h;
  h.id = conn.id_;
  h.peer_name = conn.peer_name_;
  h.peer_if_name = conn.if_name_;
  h.cred = conn.cred_;
  auto control = Dup(conn.control_.get());
  if (!control.ok()) return control.status();
  h.control = std::move(*control);
  for (const MappedRegion& r : conn.regions_) {
    h.region_sizes.push_back(r.size());
    auto rfd = Dup(r.fd());
    if (!rfd.ok()) return rfd.status();
    h.region_fds.push_back(std::move(*rfd));
  }
  h.c2s_rings = conn.c2s_specs_;
  h.s2c_rings = conn.s2c_specs_;
  for (const auto* src : {&conn.c2s_eventfds_, &conn.s2c_eventfds_}) {
    auto& dst = src == &conn.c2s_eventfds_ ? h.c2s_eventfds : h.s2c_eventfds;
    for (const UniqueFd& e : *src) {
      auto efd = Dup(e.get());
      if (!efd.ok()) return efd.status();
      dst.push_back(std::move(*efd));
    }
  }
  return h;
}

absl::StatusOr<std::vector<ConnectionHandoff>> MemifServer::ExportConnections() const {
  std::vector<ConnectionHandoff> out;
  for (const auto& [fd, conn] : by_fd_) {
    if (!conn->connected_) continue;  // clients mid-handshake start over with the next server
    absl::StatusOr<ConnectionHandoff> h = Export(*conn);
    if (!h.ok()) return h.status();
    out.push_back(std::move(*h));
  }
  return out;
}

absl::StatusOr<ConnectionHandoff> MemifServer::ExportConnection(uint32_t id) const {
  auto it = by_id_.find(id);
  if (it == by_id_.end() || !it->second->connected_) {
    return absl::NotFoundError(absl::StrCat("interface id ", id, " is not connected"));
  }
  return Export(*it->second);
}

void MemifServer::Relinquish() {
  for (auto& [fd, conn] : by_fd_) ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
  by_fd_.clear();  // unmaps and closes our copies; the clients notice nothing
  by_id_.clear();
  listener_.reset();  // the socket file is the next server's now
}

namespace {

// The control socket handed over must be the app's connection: a connected Unix seqpacket socket
// whose peer is the process that attached (a crash store's description outlives the fds beside
// it: another app's socket under this one's name is refused).
absl::Status CheckAdoptedControl(int fd, const ucred& cred) {
  if (const char* why = UnixSocketMismatch(fd, SOCK_SEQPACKET); *why != 0) {
    return absl::InvalidArgumentError(absl::StrCat("handoff: control fd: ", why));
  }
  ucred peer{};
  socklen_t len = sizeof(peer);
  // A peer outside our PID namespace shows as pid 0 (snapd under systemd, apps outside it), then
  // and now; a socket without a peer shows uid -1.
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &len) != 0) {
    return absl::InvalidArgumentError("handoff: control socket has no peer");
  }
  if (peer.pid != cred.pid || peer.uid != cred.uid) {
    return absl::InvalidArgumentError(
        absl::StrCat("handoff: control socket's peer is pid ", peer.pid, " uid ", peer.uid,
                     ", not the app's (pid ", cred.pid, " uid ", cred.uid, ")"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status MemifServer::AdoptConnection(ConnectionHandoff h) {
  // A copy of the control socket to tell the client why, should its connection be refused.
  UniqueFd control(h.control ? ::fcntl(h.control.get(), F_DUPFD_CLOEXEC, 0) : -1);
  absl::Status status = AdoptChecked(std::move(h));
  if (!status.ok() && control) {
    (void)SendMessage(control.get(), MakeDisconnect(kCodeProtocol, status.message()));
  }
  return status;
}

absl::Status MemifServer::AdoptChecked(ConnectionHandoff h) {
  // Check what came in as carefully as a handshake would: the peer process is the same untrusted
  // client, and the old server could be anything.
  HandshakeLimits limits = options_.limits;
  if (h.region_sizes.size() != h.region_fds.size() || h.region_sizes.empty() ||
      h.region_sizes.size() > limits.max_regions) {
    return absl::InvalidArgumentError("handoff: bad regions");
  }
  if (h.c2s_rings.empty() || h.c2s_rings.size() != h.c2s_eventfds.size() ||
      h.s2c_rings.size() != h.s2c_eventfds.size() || h.s2c_rings.empty() ||
      h.c2s_rings.size() > limits.max_queue_pairs || h.s2c_rings.size() > limits.max_queue_pairs) {
    return absl::InvalidArgumentError("handoff: bad rings");
  }
  if (by_id_.contains(h.id)) {
    return absl::AlreadyExistsError(absl::StrCat("interface id ", h.id, " already connected"));
  }
  auto known = interfaces_.find(h.id);
  if (!options_.accept_any_id && known == interfaces_.end()) {
    return absl::NotFoundError(absl::StrCat("handoff: unknown interface id ", h.id));
  }
  if (known != interfaces_.end()) {
    absl::Status owner = CheckOwner(known->second, h.cred.uid);
    if (!owner.ok()) return owner;
  }
  absl::Status control = CheckAdoptedControl(h.control.get(), h.cred);
  if (!control.ok()) return control;
  int raw = h.control.get();
  auto conn = std::unique_ptr<Connection>(new Connection(std::move(h.control), options_.limits));
  conn->cred_ = h.cred;
  conn->id_ = h.id;
  conn->peer_name_ = h.peer_name;
  conn->if_name_ = h.peer_if_name;
  conn->handshake_.Resume();
  for (size_t i = 0; i < h.region_fds.size(); ++i) {
    if (h.region_sizes[i] == 0 || h.region_sizes[i] > limits.max_region_size ||
        h.region_sizes[i] > options_.max_region_bytes - conn->region_bytes_) {
      return absl::InvalidArgumentError("handoff: bad region size");
    }
    conn->region_bytes_ += h.region_sizes[i];
    absl::StatusOr<MappedRegion> region =
        MappedRegion::MapPeer(std::move(h.region_fds[i]), h.region_sizes[i]);
    if (!region.ok()) return region.status();
    conn->regions_.push_back(std::move(*region));
  }
  for (const auto* rings : {&h.c2s_rings, &h.s2c_rings}) {
    for (const RingSpec& r : *rings) {
      if (r.region >= h.region_sizes.size() || r.log2_size == 0 ||
          r.log2_size > limits.max_log2_ring_size || r.offset % 16 != 0 ||
          uint64_t{r.offset} + RingBytes(r.log2_size) > h.region_sizes[r.region]) {
        return absl::InvalidArgumentError("handoff: ring outside its region");
      }
    }
  }
  for (auto* fds : {&h.c2s_eventfds, &h.s2c_eventfds}) {
    for (UniqueFd& e : *fds) {
      absl::Status status = AdoptPeerEventFd(e.get());
      if (!status.ok()) return status;
    }
  }
  conn->c2s_specs_ = std::move(h.c2s_rings);
  conn->s2c_specs_ = std::move(h.s2c_rings);
  conn->c2s_eventfds_ = std::move(h.c2s_eventfds);
  conn->s2c_eventfds_ = std::move(h.s2c_eventfds);
  absl::Status status = Activate(conn.get(), /*fresh=*/false, h.discard_pending);
  if (!status.ok()) return status;
  ::fcntl(raw, F_SETFL, ::fcntl(raw, F_GETFL) | O_NONBLOCK);
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLRDHUP;
  ev.data.fd = raw;
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, raw, &ev);
  conn->connected_ = true;
  Connection* c = conn.get();
  by_fd_.emplace(raw, std::move(conn));
  by_id_[c->id_] = c;
  stats_.connected.Add();
  if (on_connected_) on_connected_(*c);
  return absl::OkStatus();
}

void MemifServer::Disconnect(uint32_t id, absl::string_view reason) {
  auto it = by_id_.find(id);
  if (it != by_id_.end()) Close(it->second, reason, true);
}

int MemifServer::DropFailedConnections() {
  std::vector<std::pair<Connection*, std::string>> failed;
  for (const auto& [fd, conn] : by_fd_) {
    const char* error = conn->connected_ ? conn->ring_error() : nullptr;
    if (error == nullptr) continue;
    failed.emplace_back(conn.get(), error);
    // It made a call on its eventfd block until the watchdog interrupted it: a race it can try
    // again, each time holding a worker up; not for a while.
    if (error == kKickBlocked || error == kDrainBlocked) {
      held_back_[conn->cred_.uid] = absl::Now() + options_.blocked_uid_timeout;
    }
  }
  for (auto& [conn, why] : failed) Close(conn, why, true);
  return static_cast<int>(failed.size());
}

void MemifServer::Close(Connection* conn, absl::string_view reason, bool notify) {
  if (notify) {
    uint32_t code = conn->connected_ ? kCodeProtocol : kCodeRefused;
    if (reason == "server shutting down") code = kCodeShutdown;
    (void)SendMessage(conn->control_.get(), MakeDisconnect(code, reason));
  }
  if (conn->connected_) {
    stats_.disconnected.Add();
    if (on_disconnected_) on_disconnected_(*conn, reason);
  } else {
    stats_.refused.Add();
    if (on_refused_) on_refused_(conn->cred_, reason);
  }
  auto id_it = by_id_.find(conn->id_);
  if (id_it != by_id_.end() && id_it->second == conn) by_id_.erase(id_it);
  int fd = conn->control_.get();
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
  by_fd_.erase(fd);  // unmaps regions, closes eventfds and the socket
}

}  // namespace snapd::memif
