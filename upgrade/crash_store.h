// Surviving a crash of snapd without apps noticing. The service manager's file descriptor store
// (systemd's FDSTORE=1, snapd/daemon/service_manager.h) keeps copies of what each app's connection
// is made of while snapd runs; a snapd that dies (kill -9, an abort, a watchdog kill) leaves them
// open there, so no app sees its connection close. The snapd the manager starts next gets them
// back ($LISTEN_FDS), rebuilds its engines from the last checkpointed configuration, adopts each
// connection as an upgrade's new snapd does (MemifServer::AdoptConnection: regions mapped and
// checked, rings resumed at the cursors in shared memory) and serves again.
//
// The store's names:
//   memif, control        the memif and gRPC listeners
//   config.<generation>   a Checkpoint (upgrade.proto: configuration and the service's lineage)
//                         in a sealed memfd, at each change; the last two are kept
//   app<id>.<n>           fd n of app <id>'s connection (control socket, regions, ring eventfds),
//                         numbered as its wire::MemifConnection numbers them
//   app<id>.conn          that wire::MemifConnection in a sealed memfd, stored after the fds and
//                         removed before them: a connection without it is not taken back
//   journal.<engine>      an engine's journal (upgrade/engine_journals.h: pony's connections),
//                         a memfd the engine writes as it runs
//   restarting            stored by a snapd restarting after a crash before it takes the apps
//                         back, removed once it has served a while (--crash_loop_window_ms, 1 s):
//                         a snapd that finds it knows the one before died soon after taking the
//                         apps back (perhaps of a frame waiting in a ring, which it would serve
//                         again), and drops the frames waiting in the apps' rings
//
// Everything that comes back is checked as app input would be (a store the dead snapd left in any
// state, fds an app may have changed): a listener must listen on the configured path, each
// connection must be whole and pass the adoption's checks; what fails is dropped, counted and
// named in the log, and the rest comes back.
//
// Threads: main thread only.
#ifndef SNAPD_UPGRADE_CRASH_STORE_H_
#define SNAPD_UPGRADE_CRASH_STORE_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "base/unique_fd.h"
#include "ipc/server.h"
#include "snapd/daemon/daemon.h"
#include "snapd/daemon/service_manager.h"
#include "upgrade/engine_journals.h"
#include "upgrade/upgrade.pb.h"

namespace snapd::upgrade {

// What the store held when this snapd started.
struct Recovered {
  UniqueFd memif_listener;                     // invalid if none (or not usable)
  UniqueFd control_listener;                   // the same
  std::optional<wire::Checkpoint> checkpoint;  // the newest that parses
  std::vector<memif::ConnectionHandoff> connections;
  std::map<uint32_t, std::vector<std::string>> names;  // each connection's names in the store
  std::map<std::string, UniqueFd> journals;            // by engine name
  std::vector<std::string> dropped;                    // what was left out, and why
  std::vector<std::string> stale;  // names to remove from the store: all but what was taken
  size_t fds = 0;                  // how many the manager passed
  bool crash_loop = false;         // "restarting" was there: see above
};

// Sorts the fds the manager passed (TakeStoredFds) into the above. Checks the checkpoint's seals
// and the listeners' kinds here; connections are checked as they are adopted.
Recovered Recover(std::vector<StoredFd> stored);

// Stores "restarting" (before the apps are taken back), and removes it `after` from now (once
// serving: a thread of its own waits).
void MarkRestarting();
void UnmarkRestartingAfter(absl::Duration after);
void UnmarkRestarting();  // now

// The listeners must be bound where the configuration says (a foreign socket is dropped).
// Returns why not, or "".
std::string CheckListener(int fd, int type, const std::string& path);

// What the store keeps of one app's connection, in the order it is stored: its fds, then its
// description (the names above).
absl::StatusOr<std::vector<StoredFd>> AppStoreEntries(memif::ConnectionHandoff h);

class CrashStore : public StateObserver {
 public:
  // `journals` keep the engines' journals in the store too (outlives this and the daemon).
  CrashStore(Daemon& daemon, EngineJournals& journals) : daemon_(daemon), journals_(journals) {}

  // A snapd started fresh: stores the listeners, the checkpoint and every connected app.
  void Begin();
  // A snapd that took over from one that kept a store (a crash restart, with the apps it adopted,
  // or a live upgrade, with all of them): those are stored already (the same open files: the
  // manager would not add them twice). Writes the next checkpoint and removes `stale` names.
  void Continue(const std::vector<uint32_t>& stored_apps, const std::vector<std::string>& stale);
  // A clean stop: empties the store, so that the next start reads the configuration anew (the
  // daemon's stop detached the apps, each removed as it went). The daemon may be gone.
  void Clear();

  // StateObserver.
  void AppAttached(uint32_t id) override;
  void AppDetached(uint32_t id) override;
  void ConfigChanged() override;

 private:
  void StoreApp(uint32_t id);
  void Checkpoint();

  Daemon& daemon_;
  EngineJournals& journals_;
  std::map<uint32_t, size_t> apps_;  // stored apps: how many fds each
  uint64_t generation_ = 0;          // of the checkpoint stored last
};

}  // namespace snapd::upgrade

#endif  // SNAPD_UPGRADE_CRASH_STORE_H_
