// Engine: the unit of dataplane work. An engine owns its ports and polls them to completion: Poll()
// takes a batch from each port, finishes every frame (parse, decide, transmit) and returns how many
// it handled. It never blocks, never allocates on the steady path and takes no locks; everything
// else (adding and removing ports, saving state) reaches it through its worker's mailbox and so
// runs on the same thread.
//
// Batching is adaptive in the IX sense: a port gives whatever is waiting, up to the engine's cap,
// without waiting for more; at low load that is one frame, under load the cap.
#ifndef SNAPD_ENGINES_ENGINE_H_
#define SNAPD_ENGINES_ENGINE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "base/clock.h"
#include "base/counter.h"
#include "engines/engine.pb.h"
#include "engines/port.h"

namespace snapd {

// Written by the engine's thread only; read by anyone.
// Every engine counter an upgrade carries over, declared once: X(name, meaning). EngineStats, the
// saved state (engines::EngineCounters in engine.proto) and the API (v1::EngineStats in
// control/proto/snapd.proto) come from this list: a new counter is one line here and a field of
// the same name in those two messages.
#define SNAPD_ENGINE_COUNTERS(X)                         \
  X(frames, "frames handled")                            \
  X(bytes, "bytes handled")                              \
  X(batches, "non-empty port bursts")                    \
  X(polls, "polls")                                      \
  X(empty_polls, "polls that found nothing on any port") \
  X(drops, "frames the engine dropped, for any reason (ports say which)")

struct alignas(64) EngineStats {
#define SNAPD_ENGINE_COUNTER_FIELD(name, meaning) Counter name;
  SNAPD_ENGINE_COUNTERS(SNAPD_ENGINE_COUNTER_FIELD)
#undef SNAPD_ENGINE_COUNTER_FIELD
  Counter busy_ns;  // time spent in polls that found work (this process's: not carried over)
  // Since when the engine has had work waiting without a break (0: it caught up last poll).
  std::atomic<int64_t> backlog_since_ns{0};
};

// Told on the engine's thread when a Poll has finished every frame of its batch: the batch
// boundary, where an upgrade's new snapd publishes the ring cursors it journaled.
class BatchObserver {
 public:
  virtual ~BatchObserver() = default;
  virtual void BatchDone() = 0;
};

// One connection of a transport engine (pony), as snapctl lists it.
struct ConnectionInfo {
  uint32_t id = 0;
  uint16_t app = 0;      // the app's id on this host
  uint32_t peer_ip = 0;  // network order
  uint16_t peer_app = 0;
  std::string state;
  double cwnd = 0;  // packets
  int64_t srtt_ns = 0;
  uint64_t retransmits = 0;
  uint64_t tx_bytes = 0, rx_bytes = 0;
  uint64_t tx_messages = 0, rx_messages = 0;
};

class Engine {
 public:
  virtual ~Engine() = default;

  const std::string& name() const { return name_; }
  virtual absl::string_view kind() const = 0;

  // One batch from every port. Engine thread only. Returns frames handled.
  uint32_t Poll();

  // Attaches a port (engine thread only). Fails if a port of that name is attached already, or
  // the attachment is invalid for this kind.
  virtual absl::Status AddPort(std::unique_ptr<Port> port,
                               const engines::PortAttachment& attachment) = 0;
  // Detaches a port and hands it back; nullptr if no port has that name. Engine thread only.
  virtual std::unique_ptr<Port> RemovePort(absl::string_view name) = 0;
  // Names of the attached ports. Engine thread only.
  virtual std::vector<std::string> PortNames() const = 0;
  // Calls fn on each attached port. Engine thread only.
  virtual void ForEachPort(const std::function<void(Port&)>& fn) = 0;

  // Saves counters (its own and its ports') and the kind's state; restores them into a fresh
  // engine of the same kind (engine thread only). A restored engine forwards as the saved one did,
  // and its counters and its ports' continue the saved ones.
  absl::Status SaveState(engines::EngineState* state);
  absl::Status RestoreState(const engines::EngineState& state);
  // The port named in `saved`, if the engine has it, continues from the saved counters (added to
  // its own). Engine thread only.
  void ContinuePortCounters(const engines::PortCounters& saved);

  // The kind's own counters, by name (the vswitch's "mac_table_full"), for stats. Any thread.
  virtual void ForEachKindCounter(
      const std::function<void(absl::string_view name, uint64_t value)>& fn) const {}

  // When the engine has timed work to do (a retransmission, a handshake's retry) though no frame
  // arrives: a worker that sleeps wakes by then to poll it. INT64_MAX (the default): none. Read
  // on the engine's thread, after a Poll.
  virtual int64_t NextDeadlineNs() const { return INT64_MAX; }

  // A transport engine's connections (none for other kinds). Engine thread only.
  virtual std::vector<ConnectionInfo> Connections() const { return {}; }

  // Crash survival. A kind whose state cannot be rebuilt from its config (pony's connections)
  // keeps it in memory that outlives the process: CheckpointBytes says how much (0: nothing to
  // keep, the default), UseCheckpoint gives it that memory, zeroed (recover false: it starts
  // keeping its state there) or as a snapd that died left it (recover true: it picks its state up
  // from there, checking all of it, and keeps it there from then on). Returns a line for the log
  // (what was picked up, what was dropped and why); an error only if it cannot use the memory at
  // all. Engine thread only, or while no worker polls the engine.
  virtual size_t CheckpointBytes() const { return 0; }
  virtual absl::StatusOr<std::string> UseCheckpoint(void* memory, size_t bytes, bool recover) {
    return std::string();
  }

  // Engine thread only (or while no worker polls the engine); nullptr for none.
  void set_batch_observer(BatchObserver* observer) { observer_ = observer; }

  // How long work has been waiting, 0 if the engine kept up at its last poll. Any thread.
  int64_t QueueingDelayNs(int64_t now_ns) const;

  EngineStats& stats() { return stats_; }
  const EngineStats& stats() const { return stats_; }

 protected:
  explicit Engine(std::string name) : name_(std::move(name)) {}

  // The kind's batch of work: handles up to `cap` frames per port and returns how many it handled
  // in all, and in *full how many port bursts came back full (work is still waiting).
  virtual uint32_t PollPorts(uint32_t* full_bursts) = 0;
  // When the current Poll started (MonotonicNs): a kind that needs the time need not read the
  // clock again (an idle worker polls hundreds of times before it sleeps).
  int64_t poll_start_ns() const { return poll_start_ns_; }
  virtual absl::Status SaveKindState(std::string* out) const {
    out->clear();
    return absl::OkStatus();
  }
  virtual absl::Status RestoreKindState(const std::string& in) { return absl::OkStatus(); }

 private:
  const std::string name_;
  EngineStats stats_;
  BatchObserver* observer_ = nullptr;
  int64_t poll_start_ns_ = 0;
};

// A port's counters as a saved state carries them, and back: AddPortCounters adds the saved
// values to the port's (whose thread must be the caller's).
void SavePortCounters(const Port& port, engines::PortCounters* out);
void AddPortCounters(const engines::PortCounters& saved, Port& port);

}  // namespace snapd

#endif  // SNAPD_ENGINES_ENGINE_H_
