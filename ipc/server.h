// MemifServer: the server side of memif (the side snapd plays for apps). It listens on a Unix
// SOCK_SEQPACKET socket, runs the handshake of every client (ServerHandshake checks each message),
// maps the regions the client sends, checks its rings, and hands each connected interface to its
// owner as a Connection with one RxRing/TxRing per queue pair.
//
// Threads: every method runs on one control thread (snapd's main thread). The rings of a Connection
// may be polled by another thread while it is connected; the owner stops that polling in
// on_disconnect, which runs before the connection's memory is unmapped.
#ifndef SNAPD_IPC_SERVER_H_
#define SNAPD_IPC_SERVER_H_

#include <sys/socket.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "base/counter.h"
#include "base/unique_fd.h"
#include "ipc/handshake.h"
#include "ipc/region.h"
#include "ipc/ring.h"

namespace snapd::memif {

struct InterfaceConfig {
  uint32_t id = 0;
  std::string secret;  // empty: no secret
  // Interface name sent to the client in the connected message (at most 31 bytes; default: the
  // server's name). snapd tells an app its MAC and address this way (see clients/libsnap).
  std::string connected_name;
  // The only uid (SO_PEERCRED) that may connect with this id; unset: any uid that may open the
  // socket.
  std::optional<uid_t> uid;
};

struct ServerOptions {
  std::string socket_path;
  std::string name = "snapd";
  HandshakeLimits limits;
  // A diagnostic server (memif_echo) serves any interface id not already connected; snapd serves
  // only the ids registered with AddInterface.
  bool accept_any_id = false;
  // A client that has not connected this long after accept is dropped.
  absl::Duration handshake_timeout = absl::Seconds(5);
  // Most clients in the middle of a handshake at once; more are refused at accept.
  size_t max_handshakes = 64;
  // Most of those from one uid (SO_PEERCRED), so that one local user cannot hold every slot. The
  // per-uid limits (handshakes, connections, region bytes) do not apply to root and the server's
  // own uid, which SECURITY.md trusts.
  size_t max_handshakes_per_uid = 8;
  // Most connected interfaces of one uid.
  size_t max_connections_per_uid = 64;
  // Most bytes of shared memory one connection may map (all its regions together): regions may be
  // sparse, but each costs address space and page tables here.
  uint64_t max_region_bytes = uint64_t{1} << 30;
  // ...and all connections of one uid together.
  uint64_t max_region_bytes_per_uid = uint64_t{4} << 30;
  // A uid whose app made a call on its interrupt eventfd block (it raced our check; the watchdog
  // interrupted the call) may not connect again for this long.
  absl::Duration blocked_uid_timeout = absl::Seconds(10);
};

// A connected interface as fds and numbers: what one server hands another (an upgrade), so that
// the new one serves the same client without it reconnecting.
struct ConnectionHandoff {
  uint32_t id = 0;
  std::string peer_name;
  std::string peer_if_name;
  ucred cred{};
  UniqueFd control;
  std::vector<uint64_t> region_sizes;
  std::vector<UniqueFd> region_fds;
  std::vector<RingSpec> c2s_rings;
  std::vector<RingSpec> s2c_rings;
  std::vector<UniqueFd> c2s_eventfds;
  std::vector<UniqueFd> s2c_eventfds;
  // Drop the frames waiting in the client's rings instead of serving them (counted in
  // ServerStats::discarded): the server that died before may have died of one of them.
  bool discard_pending = false;
};

// One connected interface.
class Connection {
 public:
  uint32_t id() const { return id_; }
  const std::string& peer_name() const { return peer_name_; }   // app name from init
  const std::string& peer_if_name() const { return if_name_; }  // interface name from connect
  const ucred& peer_cred() const { return cred_; }
  size_t queue_pairs() const { return rx_.size(); }
  RxRing& rx(size_t q) { return *rx_[q]; }
  TxRing& tx(size_t q) { return *tx_[q]; }
  // The first protocol error any ring has hit, or nullptr.
  const char* ring_error() const;

 private:
  friend class MemifServer;
  Connection(UniqueFd control, const HandshakeLimits& limits)
      : control_(std::move(control)), handshake_(limits) {}

  UniqueFd control_;
  ucred cred_{};
  absl::Time deadline_;
  ServerHandshake handshake_;
  bool connected_ = false;
  uint32_t id_ = 0;
  std::string peer_name_;
  std::string if_name_;
  std::vector<MappedRegion> regions_;
  uint64_t region_bytes_ = 0;  // all of regions_
  std::vector<RegionView> views_;
  std::vector<RingSpec> c2s_specs_;
  std::vector<RingSpec> s2c_specs_;
  std::vector<UniqueFd> c2s_eventfds_;
  std::vector<UniqueFd> s2c_eventfds_;
  std::vector<std::unique_ptr<RxRing>> rx_;
  std::vector<std::unique_ptr<TxRing>> tx_;
};

struct ServerStats {
  Counter accepted;
  Counter connected;
  Counter refused;       // handshakes the server ended: bad message, unknown id, bad secret...
  Counter disconnected;  // connected interfaces that went away, for any reason
  Counter timed_out;     // handshakes that did not finish in time
  Counter busy;          // clients refused at accept: too many handshakes (in all, or of its uid),
                         // its fds still being closed, or its uid held back after blocking us
  Counter discarded;     // ring slots (frames, or parts of chained ones) an adopted connection had
                         // waiting, dropped (discard_pending)
};

class MemifServer {
 public:
  using ConnectedFn = std::function<void(Connection&)>;
  using DisconnectedFn = std::function<void(Connection&, absl::string_view reason)>;
  using RefusedFn = std::function<void(const ucred& peer, absl::string_view reason)>;

  // Listens on options.socket_path. Fails if the path is unusable or another server listens there.
  static absl::StatusOr<std::unique_ptr<MemifServer>> Create(ServerOptions options);
  // A server on a listening socket another server handed over (an upgrade): no bind, and the
  // socket file stays where it is.
  static absl::StatusOr<std::unique_ptr<MemifServer>> Adopt(ServerOptions options,
                                                            UniqueFd listener);
  ~MemifServer();

  // Registers an interface id a client may connect with. ALREADY_EXISTS for a known id.
  absl::Status AddInterface(const InterfaceConfig& config);
  // Forgets an interface; a client connected with it is disconnected. NOT_FOUND for an unknown id.
  absl::Status RemoveInterface(uint32_t id, absl::string_view reason = "interface removed");

  // Called when a client completes its handshake, and when a connected client goes away (hang-up,
  // disconnect message, protocol error, Disconnect()) just before its memory is unmapped.
  void set_on_connected(ConnectedFn fn) { on_connected_ = std::move(fn); }
  void set_on_disconnected(DisconnectedFn fn) { on_disconnected_ = std::move(fn); }
  // Called when a client is dropped before it connected (refused, timed out, hung up), with why.
  void set_on_refused(RefusedFn fn) { on_refused_ = std::move(fn); }

  // An fd that becomes readable when Poll has work; for the owner's own epoll loop.
  int epoll_fd() const { return epoll_.get(); }

  // Handles every pending control event: accepts, handshake messages, hang-ups, timeouts. Waits up
  // to timeout_ms for the first event (0: returns at once).
  void Poll(int timeout_ms);

  // Disconnects the client connected with `id`, sending `reason`. No-op for an unknown id.
  void Disconnect(uint32_t id, absl::string_view reason);

  // Disconnects every connection whose rings hit a protocol error, with the error as the reason.
  // Returns how many it dropped.
  int DropFailedConnections();

  // The connected interfaces, by id.
  std::vector<Connection*> connections() const;

  // Handing over to another server (an upgrade). Export duplicates the fds of the listener and of
  // every connected interface; the rings must not be polled from then on (every RxRing released),
  // so that the cursors in the rings' headers are where the next server resumes. Relinquish then
  // lets go of it all without a word to the clients and leaves the socket file in place; the
  // server is empty afterwards.
  absl::StatusOr<UniqueFd> ExportListener() const;
  absl::StatusOr<std::vector<ConnectionHandoff>> ExportConnections() const;
  // One connected interface's, the same way (a crash store keeps each app's as it attaches; the
  // rings may go on being polled: whoever adopts them resumes from the cursors they hold then).
  absl::StatusOr<ConnectionHandoff> ExportConnection(uint32_t id) const;
  void Relinquish();
  // Serves a connection another server exported: maps its regions, checks its rings, and resumes
  // at the cursors the rings hold. on_connected runs as for a new client. If the exporting server
  // still serves the rings for a while (an upgrade's brownout), Resync them (RxRing/TxRing) once
  // it has stopped, before polling. A connection that fails the checks is refused and its client
  // told why (a disconnect message); the error says the same.
  absl::Status AdoptConnection(ConnectionHandoff handoff);
  const ServerStats& stats() const { return stats_; }
  const std::string& socket_path() const { return options_.socket_path; }

 private:
  explicit MemifServer(ServerOptions options) : options_(std::move(options)) {}
  void Accept();
  // Handles the messages waiting on the client at `fd`; the client may be gone when it returns.
  void OnReadable(int fd);
  // Why a client of `uid` may not start a handshake now, or "".
  const char* AcceptRefusal(uid_t uid) const;
  // Takes *fd when the message keeps it.
  absl::Status HandleMessage(Connection* conn, const WireMessage& msg, UniqueFd* fd);
  // What the clients of one uid hold, for the per-uid limits (and the handshakes of all uids).
  struct UidLoad {
    size_t handshakes_all = 0;
    size_t handshakes = 0;
    size_t connected = 0;
    uint64_t region_bytes = 0;
  };
  UidLoad LoadOf(uid_t uid) const;
  // Builds the rings of a connection whose regions are mapped: fresh (cursors reset to 0, as at
  // connect) or resumed (cursors from the ring headers, as after a hand-over).
  absl::Status Activate(Connection* conn, bool fresh, bool discard_pending = false);
  absl::Status Init(UniqueFd listener);
  absl::Status AdoptChecked(ConnectionHandoff handoff);
  // Duplicates what `conn` is made of.
  static absl::StatusOr<ConnectionHandoff> Export(const Connection& conn);
  // Sends a disconnect (when `notify`), tells the owner if it was connected, and frees it all.
  void Close(Connection* conn, absl::string_view reason, bool notify);

  ServerOptions options_;
  UniqueFd listener_;
  UniqueFd epoll_;
  std::map<int, std::unique_ptr<Connection>> by_fd_;  // every accepted client
  absl::flat_hash_map<uint32_t, InterfaceConfig> interfaces_;
  absl::flat_hash_map<uint32_t, Connection*> by_id_;  // connected or handshaking with an id
  absl::flat_hash_map<uid_t, absl::Time> held_back_;  // uids refused until then
  ConnectedFn on_connected_;
  DisconnectedFn on_disconnected_;
  RefusedFn on_refused_;
  ServerStats stats_;
};

}  // namespace snapd::memif

#endif  // SNAPD_IPC_SERVER_H_
