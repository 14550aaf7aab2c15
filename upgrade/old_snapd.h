// OldSnapd: the old side of a live upgrade. It starts the new binary, hands it the apps'
// connections and the control listener while this snapd keeps serving (brownout), moves the
// engines one at a time (each one's blackout: stopped at a batch boundary, saved, restored in the
// new snapd), and lets go. On failure it takes back what moved and the daemon goes on serving.
// The plan is upgrade/README.md; the messages are upgrade/upgrade.proto.
//
// Threads: the daemon's main thread, which it holds throughout, answering read-only RPCs while it
// waits (MainLoop::WaitReadable); never re-entered (the RPC refuses a second upgrade first).
#ifndef SNAPD_UPGRADE_OLD_SNAPD_H_
#define SNAPD_UPGRADE_OLD_SNAPD_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "snapd/daemon/upgrade_host.h"
#include "upgrade/cursor_journal.h"
#include "upgrade/upgrade.pb.h"

namespace snapd::upgrade {

// What an upgrade did, for the operator (snapctl upgrade): snapd/daemon/upgrade_host.h.
using Report = UpgradeReport;

class OldSnapd {
 public:
  explicit OldSnapd(UpgradeHost& host) : host_(host) {}

  // Runs `binary` (checked: snapd/daemon/trusted_path.h) with `extra_args` (allowlisted) as the
  // new snapd and moves everything to it, the engines named in `order` first. On success
  // everything is the new snapd's and the host's main loop is stopped; on failure the host has
  // taken back what moved and serves on, and the error says in which phase and why
  // (FAILED_PRECONDITION before anything moved or for an incompatible binary, else ABORTED).
  absl::StatusOr<Report> Run(const std::string& binary, const std::vector<std::string>& extra_args,
                             const std::vector<std::string>& order);

 private:
  // The engines in the order they move: those named first, then the rest in the host's order.
  absl::StatusOr<std::vector<std::string>> MoveOrder(const std::vector<std::string>& order);
  // The brownout message and its fds; the cursor journal is made here.
  absl::Status PrepareBrownout(wire::Brownout* b, std::vector<UniqueFd>* fds);
  // The NICs' part of a move: the first closes those the new snapd could not open beside us
  // (their counters and their ports' go with it); each carries the counters of the NICs no
  // engine of ours polls any more.
  void HandOverNics(wire::MoveEngine* move);
  // Notes on taps the new snapd had to create anew.
  void NoteMovedTaps(Report* report);
  // A failed upgrade: completes the batch the new snapd committed in the journal but may not
  // have published, picks up the rings' cursors, reopens the NICs we closed (their counters
  // continuing) and gives every stopped engine back to its worker.
  void TakeBack();
  // The index of an engine in the host's order (its area of the cursor journal).
  uint32_t AreaOf(const std::string& engine) const;

  UpgradeHost& host_;
  std::vector<std::string> engines_;  // the host's engines, in its order
  std::optional<JournalMemory> journal_;
  std::vector<std::string> stopped_;  // engines stopped for a move
  std::vector<int> deferred_nics_;    // NICs the new snapd opens only once we closed them
  // The deferred NICs once closed: their indices and counters, and their queue ports' counters.
  std::vector<int> closed_nics_;
  std::map<int, NicStats> closed_stats_;
  std::vector<engines::PortCounters> closed_ports_;
  std::vector<int>
      nics_left_;  // NICs whose counters went with a move: no engine of ours polls them
};

}  // namespace snapd::upgrade

#endif  // SNAPD_UPGRADE_OLD_SNAPD_H_
