// MemifClient: the client side of memif (the side an app plays). It owns the memory: it creates
// one region for the rings and one for the buffers (memfd, sealed), connects to a server's socket,
// runs the handshake, and then offers one RxRing/TxRing per queue pair.
//
// Threads: Connect and the control methods run on one thread; each queue pair's rings on one
// thread at a time (it may be another).
#ifndef SNAPD_IPC_CLIENT_H_
#define SNAPD_IPC_CLIENT_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/unique_fd.h"
#include "ipc/memif_protocol.h"
#include "ipc/region.h"
#include "ipc/ring.h"

namespace snapd::memif {

struct ClientOptions {
  std::string socket_path;
  uint32_t id = 0;
  std::string secret;
  std::string name = "snapd-client";  // app name sent in init
  std::string if_name = "memif0";     // interface name sent in connect
  uint16_t queue_pairs = 1;
  uint8_t log2_ring_size = 10;
  uint32_t buffer_size = 2048;
  absl::Duration timeout = absl::Seconds(5);  // for the whole handshake
};

class MemifClient {
 public:
  // Connects and completes the handshake, or fails with the reason the server gave (for a refusal)
  // or the local problem. Blocks up to options.timeout.
  static absl::StatusOr<std::unique_ptr<MemifClient>> Connect(const ClientOptions& options);
  ~MemifClient();

  size_t queue_pairs() const { return rx_.size(); }
  RxRing& rx(size_t q) { return *rx_[q]; }
  TxRing& tx(size_t q) { return *tx_[q]; }
  const std::string& server_name() const { return server_name_; }
  // The interface name the server sent in its connected message.
  const std::string& server_if_name() const { return server_if_name_; }

  // The control socket, readable when the server sends something (a disconnect) or hangs up.
  int control_fd() const { return control_.get(); }
  // Reads pending control messages without blocking. Returns OK while connected, or an error with
  // the server's reason once it has disconnected us.
  absl::Status CheckControl();
  // The server went away without a word (its end of the control socket closed with no disconnect
  // message: it died), as CheckControl() found.
  bool hung_up() const { return hung_up_; }
  // Sends a disconnect with `reason` and closes the control socket.
  void Disconnect(absl::string_view reason);

 private:
  MemifClient() = default;
  absl::Status Setup(const ClientOptions& options, uint16_t pairs, uint8_t log2);
  absl::Status Handshake(const ClientOptions& options, absl::Time deadline);

  UniqueFd control_;
  bool hung_up_ = false;
  std::string server_name_;
  std::string server_if_name_;
  uint16_t pairs_ = 0;
  uint8_t log2_ = 0;
  uint32_t buffer_size_ = 0;
  MappedRegion rings_region_;
  MappedRegion buffers_region_;
  std::vector<RegionView> views_;
  std::vector<UniqueFd> c2s_eventfds_;
  std::vector<UniqueFd> s2c_eventfds_;
  std::vector<std::unique_ptr<RxRing>> rx_;
  std::vector<std::unique_ptr<TxRing>> tx_;
};

}  // namespace snapd::memif

#endif  // SNAPD_IPC_CLIENT_H_
