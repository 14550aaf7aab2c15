// Talking to the service manager (systemd, or any supervisor that speaks its protocol:
// docs/operations.md), through libsystemd: READY=1 once snapd serves, STOPPING=1 as it stops,
// WATCHDOG=1 while its main loop turns, MAINPID= at a live upgrade (the old snapd, still the main
// process, names the new one before it exits, so systemd follows the service instead of taking
// the old one's exit for its end), and the file descriptor store, which keeps what apps'
// connections are made of across a crash of snapd (upgrade/crash_store.h).
//
// Every call is a no-op returning false outside a service manager ($NOTIFY_SOCKET unset). Any
// thread.
#ifndef SNAPD_SNAPD_DAEMON_SERVICE_MANAGER_H_
#define SNAPD_SNAPD_DAEMON_SERVICE_MANAGER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "base/unique_fd.h"

namespace snapd {

// Sends `state` ("READY=1", "MAINPID=42\nSTATUS=..."). False when there is no service manager or
// the send failed; snapd goes on either way.
bool NotifyServiceManager(absl::string_view state);

// Whether a service manager listens ($NOTIFY_SOCKET is set).
bool UnderServiceManager();

// Keeps `fds` in the service's file descriptor store under `name` (FDSTORE=1, FDNAME=; names are
// at most 255 printable characters without ':'). The manager keeps its own copies: it gives them
// back at the next start (TakeStoredFds) and closes them when the service stops for good. An fd
// the store holds already (the same open file) is not added twice.
bool StoreFds(absl::string_view name, const std::vector<int>& fds);
// Whether the service manager takes `name` as a stored fd's name (systemd's rule: 1-255 printable
// ASCII characters, no ':'). StoreFds and RemoveStoredFds refuse others (an engine's name, from
// the config or an RPC, goes into "journal.<engine>": a newline would start another field).
bool ValidFdName(absl::string_view name);
// Drops every fd stored under `name` (FDSTOREREMOVE=1).
bool RemoveStoredFds(absl::string_view name);

// The fds the service manager passed this process at start ($LISTEN_FDS, $LISTEN_FDNAMES for this
// pid): what its fd store held. Taken once: the variables are unset so that no child sees them.
struct StoredFd {
  std::string name;
  UniqueFd fd;
};
std::vector<StoredFd> TakeStoredFds();

// How often the service manager wants WATCHDOG=1 ($WATCHDOG_USEC), in ns; 0 for no watchdog. The
// variable is read whatever $WATCHDOG_PID says: a snapd started by a live upgrade inherits its
// predecessor's, and pings once it is the main process.
int64_t WatchdogIntervalNs();

}  // namespace snapd

#endif  // SNAPD_SNAPD_DAEMON_SERVICE_MANAGER_H_
