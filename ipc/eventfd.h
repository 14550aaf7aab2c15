// Interrupt eventfds of memif rings: the producer writes, the consumer blocks on it when idle.
#ifndef SNAPD_IPC_EVENTFD_H_
#define SNAPD_IPC_EVENTFD_H_

#include "absl/status/statusor.h"
#include "base/unique_fd.h"

namespace snapd::memif {

// A new non-blocking, close-on-exec eventfd.
absl::StatusOr<UniqueFd> CreateEventFd();

// Checks that an fd a peer sent is an eventfd, and makes it non-blocking, so that writing it can
// never block the data path (a pipe passed off as an eventfd could fill up).
absl::Status AdoptPeerEventFd(int fd);

}  // namespace snapd::memif

#endif  // SNAPD_IPC_EVENTFD_H_
