// libsnap: what an app links to talk to snapd. It attaches over memif (any memif client would do;
// this one also learns the MAC and IPv4 address snapd gave the app) and offers burst send and
// receive, and a wait that sleeps on the ring's interrupt instead of spinning.
//
//   auto app = snap::App::Attach({.id = 1});
//   snapd::memif::Frame frames[32];
//   uint16_t n = (*app)->Receive(frames, 32);  ...  (*app)->Release();
//
// Threads: one thread at a time per App.
#ifndef SNAPD_CLIENTS_LIBSNAP_H_
#define SNAPD_CLIENTS_LIBSNAP_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
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

  // Up to `max` received frames, as views valid until Release().
  uint16_t Receive(Frame* frames, uint16_t max) { return client_->rx(0).Receive(frames, max); }
  void Release() { client_->rx(0).Release(); }
  // Copies up to `n` frames to snapd; returns how many fit.
  uint16_t Send(const Frame* frames, uint16_t n) { return client_->tx(0).Transmit(frames, n); }

  // Sleeps until a frame is waiting or `timeout_ms` passes; returns whether one is waiting.
  bool Wait(int timeout_ms);
  // OK while attached; snapd's reason once it has detached the app.
  absl::Status CheckConnection() { return client_->CheckControl(); }

  snapd::memif::MemifClient& memif() { return *client_; }

 private:
  App() = default;
  std::unique_ptr<snapd::memif::MemifClient> client_;
  uint64_t mac_ = 0;
  uint32_t ipv4_ = 0;
};

}  // namespace snap

#endif  // SNAPD_CLIENTS_LIBSNAP_H_
