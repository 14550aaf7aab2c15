// NewSnapd: the new side of a live upgrade, in the snapd an old one started with --takeover_fd. It
// adopts the apps' connections and the control listener, builds the engines and their workers
// (brownout), takes in one engine at a time as the old snapd sends them (each one's blackout), and
// journals the moved engines' ring cursors until the old snapd let go, so that it can take back an
// upgrade that fails (upgrade/cursor_journal.h). The plan is upgrade/README.md.
//
// Threads: the main thread, before the daemon's main loop runs.
#ifndef SNAPD_UPGRADE_NEW_SNAPD_H_
#define SNAPD_UPGRADE_NEW_SNAPD_H_

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "base/unique_fd.h"
#include "snapd/daemon/daemon.h"
#include "upgrade/cursor_journal.h"
#include "upgrade/protocol.h"
#include "upgrade/upgrade.pb.h"

namespace snapd::upgrade {

class NewSnapd {
 public:
  // NICs come from `nics` (DPDK's unless a test gives fakes).
  explicit NewSnapd(const Faults& faults, NicDriver& nics = HostNicDriver())
      : faults_(faults), nics_(nics) {}
  // Withdraws a daemon that did not take over (the old snapd takes everything back).
  ~NewSnapd();

  // Takes over from the old snapd at the other end of `channel`. On success returns the daemon,
  // serving on its own, and control_listener() holds the control socket it was handed (empty if
  // none). On failure the old snapd has been told why and in which phase; nothing of ours was
  // touched that it needs.
  absl::StatusOr<std::unique_ptr<Daemon>> Run(UniqueFd channel);
  UniqueFd TakeControlListener() { return std::move(control_listener_); }
  // The metrics endpoint's (empty if none was handed over): checked as it is served
  // (control/metrics_server.h).
  UniqueFd TakeMetricsListener() { return std::move(metrics_listener_); }

 private:
  absl::Status Steps(int channel, std::string* phase);
  // Takes in one engine (its NICs, counters, state, rings and journal) and starts polling it;
  // returns when its worker took it.
  // `fds`: the move's fds (its state, when state_in_fd).
  absl::StatusOr<int64_t> MoveIn(const wire::MoveEngine& m, const std::vector<UniqueFd>& fds);
  // Discards the frames our packet sockets copied beside the old snapd's, counted.
  void DiscardNicCopies(Engine& engine);
  // A capture the old snapd ran: held here for snapctl to resume (Daemon::AdoptCapture).
  absl::Status AdoptCapture(const wire::CarriedCapture& c);
  // Journals the engine's app rings (the journal's area `area_index`).
  absl::Status StartJournal(const std::string& engine, uint32_t area_index);
  // The old snapd let go: every ring publishes at once again.
  void StopJournals();
  void MaybeDie(const std::string& phase) const;

  const Faults faults_;
  NicDriver& nics_;
  // Declared before the daemon: its engines' app ports untrack themselves as they go.
  std::optional<JournalMemory> journal_;
  std::map<std::string, std::unique_ptr<CursorJournal>> journals_;
  std::unique_ptr<Daemon> daemon_;
  std::vector<int> deferred_nics_;
  std::set<std::string> moved_;       // engines moved in
  std::set<uint32_t> journal_areas_;  // their journal areas: one each
  bool nics_opened_ = false;          // the deferred NICs, with the first move
  UniqueFd control_listener_;
  UniqueFd metrics_listener_;
};

}  // namespace snapd::upgrade

#endif  // SNAPD_UPGRADE_NEW_SNAPD_H_
