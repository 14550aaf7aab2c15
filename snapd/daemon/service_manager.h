// Telling the service manager (systemd's sd_notify protocol) how snapd is doing: READY=1 once it
// serves, STOPPING=1 as it stops, and, at a live upgrade, MAINPID= the new snapd, sent by the old
// one (the main process, so `NotifyAccess=main` suffices) before it exits, so that systemd follows
// the service to the new process instead of taking the old one's exit for the service's end. See
// snapd/snapd.service.
#ifndef SNAPD_SNAPD_DAEMON_SERVICE_MANAGER_H_
#define SNAPD_SNAPD_DAEMON_SERVICE_MANAGER_H_

#include "absl/strings/string_view.h"

namespace snapd {

// Sends `state` ("READY=1", "MAINPID=42\nSTATUS=...") to $NOTIFY_SOCKET. Returns false when there
// is none (not started by a service manager) or the send failed; snapd goes on either way. Any
// thread.
bool NotifyServiceManager(absl::string_view state);

}  // namespace snapd

#endif  // SNAPD_SNAPD_DAEMON_SERVICE_MANAGER_H_
