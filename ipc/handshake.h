// ServerHandshake: the server's side of memif connection setup as a pure state machine. It checks
// every control message a client sends (type, order, counts, indices, sizes, fd present) and
// records what was negotiated; it owns no fds and maps no memory, so it can be tested with tables
// of cases and fuzzed. The server (server.h) feeds it and acts on what it returns.
//
// Order a client must follow after the server's hello:
//   init -> add-region (1..max, indices 0,1,2..., fd attached) -> add-ring (each with its interrupt
//   eventfd) -> connect.
// Regions and rings may interleave, as long as every ring names a region that exists by connect.
#ifndef SNAPD_IPC_HANDSHAKE_H_
#define SNAPD_IPC_HANDSHAKE_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "ipc/control_message.h"
#include "ipc/memif_protocol.h"

namespace snapd::memif {

struct HandshakeLimits {
  uint16_t max_regions = 16;
  uint16_t max_queue_pairs = 16;  // per direction
  uint8_t max_log2_ring_size = kMaxLog2RingSize;
  uint64_t max_region_size = uint64_t{1} << 32;
};

struct RingSpec {
  uint16_t region = 0;
  uint32_t offset = 0;
  uint8_t log2_size = 0;
  uint16_t private_hdr_size = 0;
};

class ServerHandshake {
 public:
  enum class Phase { kAwaitInit, kAwaitResources, kConnected, kFailed };

  explicit ServerHandshake(const HandshakeLimits& limits) : limits_(limits) {}

  // The hello this server sends first, advertising its limits.
  WireMessage Hello(absl::string_view server_name) const;

  // Takes one message from the client; `has_fd` says whether an fd came with it. Returns the type
  // of the reply the protocol asks for (kAck after init/add-region/add-ring, kConnected after
  // connect, kNone when nothing is to be sent), or an error whose message is the reason to send in
  // the disconnect. After an error the phase is kFailed and every later call fails.
  // A disconnect from the client is returned as a kCancelled error carrying its reason.
  absl::StatusOr<MessageType> OnMessage(const WireMessage& msg, bool has_fd);

  Phase phase() const { return phase_; }
  // For a connection taken over from another server (an upgrade): connected from the start.
  void Resume() { phase_ = Phase::kConnected; }
  const InitMsg& init() const { return init_; }
  const std::vector<uint64_t>& region_sizes() const { return region_sizes_; }
  const std::vector<RingSpec>& c2s_rings() const { return c2s_; }
  const std::vector<RingSpec>& s2c_rings() const { return s2c_; }
  // Number of queue pairs once connected: min(c2s, s2c) rings.
  size_t queue_pairs() const { return std::min(c2s_.size(), s2c_.size()); }

 private:
  absl::StatusOr<MessageType> Fail(absl::Status status);
  absl::StatusOr<MessageType> OnInit(const InitMsg& init);
  absl::StatusOr<MessageType> OnAddRegion(const AddRegionMsg& msg, bool has_fd);
  absl::StatusOr<MessageType> OnAddRing(const AddRingMsg& msg, bool has_fd);
  absl::StatusOr<MessageType> OnConnect();

  HandshakeLimits limits_;
  Phase phase_ = Phase::kAwaitInit;
  InitMsg init_{};
  std::vector<uint64_t> region_sizes_;
  std::vector<RingSpec> c2s_;  // indexed by ring index; log2_size 0 means not yet added
  std::vector<RingSpec> s2c_;
  std::vector<bool> c2s_added_;
  std::vector<bool> s2c_added_;
};

}  // namespace snapd::memif

#endif  // SNAPD_IPC_HANDSHAKE_H_
