// What both sides of a live upgrade share: the protocol version, the deadlines, and one Envelope
// (upgrade/upgrade.proto) per message over the channel, fds beside it (fd_channel.h).
#ifndef SNAPD_UPGRADE_PROTOCOL_H_
#define SNAPD_UPGRADE_PROTOCOL_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/unique_fd.h"
#include "snapd/daemon/blackout_histogram.h"
#include "snapd/daemon/event_log.h"
#include "snapd/daemon/nic_stats.h"
#include "upgrade/upgrade.pb.h"

namespace snapd::upgrade {

inline constexpr uint32_t kProtocolVersion = 1;
// The new binary's start (its EAL and engines) and each step after.
inline constexpr absl::Duration kStartTimeout = absl::Seconds(30);
inline constexpr absl::Duration kStepTimeout = absl::Seconds(10);

absl::Status Send(int channel, const wire::Envelope& e, const std::vector<UniqueFd>& fds = {});

struct Received {
  wire::Envelope envelope;
  std::vector<UniqueFd> fds;
};
// The next message, within `timeout`. ABORTED when it says the other side failed (its phase and
// reason in the message); INVALID_ARGUMENT when it does not parse.
absl::StatusOr<Received> Receive(int channel, absl::Duration timeout);

// An engine's state that would not fit in one channel message (a pony engine's unacknowledged
// messages) travels in a sealed memfd (MoveEngine.state_in_fd; a SEQPACKET message must fit the
// socket's send buffer, 208 KiB by default): bytes into a memfd sealed against
// any change, and back, checking the seals and the size (at most max_bytes).
inline constexpr size_t kInlineStateBytes = 64 << 10;  // well below a socket's send buffer
inline constexpr size_t kMaxStateBytes = size_t{1} << 30;
absl::StatusOr<UniqueFd> SealedMemfd(const std::string& bytes);
absl::StatusOr<std::string> ReadSealedMemfd(int fd, size_t max_bytes);

// NicStats <-> its wire form (every counter of SNAPD_NIC_COUNTERS).
void NicCountersToWire(int index, const NicStats& s, wire::NicCounters* out);
NicStats NicCountersFromWire(const wire::NicCounters& in);

// BlackoutHistogram <-> its wire form. From the wire (another snapd's, or a checkpoint a dead one
// left): false, and *out untouched, unless it has the buckets this build counts and their counts
// add up.
void BlackoutsToWire(const BlackoutHistogram& h, wire::Blackouts* out);
bool BlackoutsFromWire(const wire::Blackouts& in, BlackoutHistogram* out);

// The event log's last kMaxHandedEvents events into Done (each part cut to kMaxEventText bytes:
// the message stays well inside a socket's buffer), and back.
inline constexpr size_t kMaxHandedEvents = 200;
inline constexpr size_t kMaxEventText = 240;
void EventsToWire(const std::vector<Event>& events, uint64_t log_id, wire::Done* out);
std::vector<Event> EventsFromWire(const wire::Done& in);

// Fault injection, for tests only: set in the new snapd from its --upgrade_* flags (main.cc;
// `snapctl upgrade --new_args=...` passes them).
inline constexpr absl::Duration kSlowMove = absl::Milliseconds(300);
struct Faults {
  // Die as a kill -9 would in this phase: "brownout", "blackout", "half" (once half the engines
  // moved), "publish" (a worker, in the middle of publishing a batch, once engines moved); or
  // "error": refuse the first move with an error; "slow": take kSlowMove more over each move (a
  // blackout a rollout's gate must catch, deploy/ansible/).
  std::string fault;
  // Claim this protocol version instead of ours (0: ours).
  uint32_t claim_version = 0;
  // Open no NIC beside the old snapd, as with a PCI device that cannot be open in two processes:
  // each moves in the first blackout.
  bool defer_nics = false;
};

}  // namespace snapd::upgrade

#endif  // SNAPD_UPGRADE_PROTOCOL_H_
