// libsnap: what an app links to talk to snapd. It attaches over memif (any memif client would do;
// this one also learns the MAC and IPv4 address snapd gave the app) and offers burst send and
// receive, and a wait that sleeps on the ring's interrupt instead of spinning.
//
//   auto app = snap::App::Attach({.id = 1});
//   snapd::memif::Frame frames[32];
//   uint16_t n = (*app)->Receive(frames, 32);  ...  (*app)->Release();
//
// When snapd goes away without a word (it died: the control socket closed with no disconnect
// message), the app attaches again on its own: CheckConnection() keeps trying, backing off from
// 10 ms to at most 250 ms between tries (so within a quarter second of snapd's return), and says so
// on stderr. A snapd under systemd keeps its apps' connections across a crash, and they never
// notice; this is for the rest (no service manager, or a store that no longer held the connection
// whole). An app told to go (snapd stopping, detaching it with a reason, or refusing to take back
// a connection that failed its checks) is not attached again.
//
// Threads: one thread at a time per App.
#ifndef SNAPD_CLIENTS_LIBSNAP_H_
#define SNAPD_CLIENTS_LIBSNAP_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "ipc/client.h"

namespace snap {

using Frame = snapd::memif::Frame;

struct AttachOptions {
  // snapd's memif socket; empty: the default ($XDG_RUNTIME_DIR/snapd/memif.sock, or
  // /run/snapd/memif.sock as root), as snapd uses it.
  std::string socket;
  uint32_t id = 0;
  std::string secret;
  std::string name = "libsnap";  // shows in snapd's log
  uint8_t log2_ring_size = 10;
  // How long to keep trying to attach again after snapd went away without a word; zero: never.
  absl::Duration reconnect_for = absl::Seconds(30);
};

// The memif socket snapd listens on by default.
std::string DefaultSocket();

// Reads "snap/<mac hex>/<ipv4 hex>", the interface name snapd sends at connect.
bool ParseConnectedName(const std::string& name, uint64_t* mac, uint32_t* ipv4);

class App {
 public:
  // Connects and completes the memif handshake; fails with snapd's reason when refused (unknown
  // id, wrong secret) or when the peer is not snapd (no addresses in its connected message).
  static absl::StatusOr<std::unique_ptr<App>> Attach(const AttachOptions& options);

  // The addresses snapd gave this app (MAC packed as snapd::MacFromBytes, IPv4 network order).
  uint64_t mac() const { return mac_; }
  uint32_t ipv4() const { return ipv4_; }

  // Up to `max` received frames, as views valid until Release() (nothing while attaching again).
  uint16_t Receive(Frame* frames, uint16_t max) {
    return away() ? 0 : client_->rx(0).Receive(frames, max);
  }
  void Release() {
    if (!away()) client_->rx(0).Release();
  }
  // Copies up to `n` frames to snapd; returns how many fit (none while attaching again).
  uint16_t Send(const Frame* frames, uint16_t n) {
    return away() ? 0 : client_->tx(0).Transmit(frames, n);
  }

  // Sleeps until a frame is waiting or `timeout_ms` passes; returns whether one is waiting. While
  // attaching again, sleeps until the next try is due (at most `timeout_ms` if not negative).
  bool Wait(int timeout_ms);
  // OK while attached or attaching again (see above: this is what tries); snapd's reason once it
  // has detached the app, or why attaching again failed once reconnect_for has passed. Release
  // every received frame before calling it: attaching again replaces the rings.
  absl::Status CheckConnection();
  // Whether the app is between a snapd that went away and the next.
  bool reattaching() const { return reattaching_; }
  // Times it attached again.
  uint64_t reconnects() const { return reconnects_; }

  // The current connection (replaced when attaching again).
  snapd::memif::MemifClient& memif() { return *client_; }

 private:
  App() = default;
  absl::Status Connect(absl::Duration timeout);  // client_ and the addresses, anew
  absl::Status TryAgain();

  AttachOptions options_;
  std::unique_ptr<snapd::memif::MemifClient> client_;
  uint64_t mac_ = 0;
  uint32_t ipv4_ = 0;
  bool away() const { return reattaching_ || !gave_up_.ok(); }  // no rings to use

  bool reattaching_ = false;
  absl::Status lost_;     // why the last connection ended
  absl::Status gave_up_;  // not OK once reconnect_for passed without snapd back: for good
  absl::Time lost_at_;
  absl::Time next_try_;
  absl::Duration backoff_;
  int tries_ = 0;
  uint64_t reconnects_ = 0;
};

}  // namespace snap

#endif  // SNAPD_CLIENTS_LIBSNAP_H_
