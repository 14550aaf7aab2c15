// Moving a memif server's listener and connected apps from one snapd process to the next over an
// upgrade channel (FdChannel): the old process exports and sends, then relinquishes; the new one
// receives, checks, and adopts each connection (MemifServer::AdoptConnection), resuming the rings
// at their cursors. Apps keep their connections and never reconnect.
#ifndef SNAPD_UPGRADE_MEMIF_HANDOFF_H_
#define SNAPD_UPGRADE_MEMIF_HANDOFF_H_

#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "ipc/server.h"
#include "upgrade/handoff.pb.h"

namespace snapd::upgrade {

// Sends `server`'s listener and connections. The caller stops polling the rings first (a batch
// boundary) and relinquishes the server once this returns OK.
absl::Status SendMemifHandoff(int sock, const memif::MemifServer& server);

struct MemifHandoff {
  UniqueFd listener;
  std::vector<memif::ConnectionHandoff> connections;
};

// Receives what SendMemifHandoff sent. Every index must name a received fd, each used once.
absl::StatusOr<MemifHandoff> ReceiveMemifHandoff(int sock, absl::Duration timeout);

// The two halves of the above, for a hand-over that travels inside a larger message: Export
// describes `server` in *msg and appends the fds it names (by index into *fds); Take rebuilds the
// hand-over from the message and the received fds, taking the ones it names.
absl::Status ExportMemifHandoff(const memif::MemifServer& server, wire::MemifHandoff* msg,
                                std::vector<UniqueFd>* fds);
absl::StatusOr<MemifHandoff> TakeMemifHandoff(const wire::MemifHandoff& msg,
                                              std::vector<UniqueFd>* fds);

// One connection as a message: appends its fds to *fds, which the message names by index.
void ConnectionToWire(memif::ConnectionHandoff h, wire::MemifConnection* c,
                      std::vector<UniqueFd>* fds);
// And back, taking the fds it names from *fds; an index out of range or taken before (*used, as
// long as *fds) is an error.
absl::StatusOr<memif::ConnectionHandoff> ConnectionFromWire(const wire::MemifConnection& c,
                                                            std::vector<UniqueFd>* fds,
                                                            std::vector<bool>* used);

}  // namespace snapd::upgrade

#endif  // SNAPD_UPGRADE_MEMIF_HANDOFF_H_
