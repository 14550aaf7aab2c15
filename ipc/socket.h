// The memif control channel's socket operations: a SOCK_SEQPACKET Unix socket carrying one 128-byte
// message per packet, with at most one fd attached (SCM_RIGHTS). Callable from any thread; each
// function works on the fds it is given and keeps no state.
#ifndef SNAPD_IPC_SOCKET_H_
#define SNAPD_IPC_SOCKET_H_

#include <sys/socket.h>
#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "base/unique_fd.h"
#include "ipc/memif_protocol.h"

namespace snapd::memif {

// Binds and listens on a filesystem SOCK_SEQPACKET socket at `path`, non-blocking, close-on-exec.
// A stale socket file (nobody accepting) is replaced; a live one is an ALREADY_EXISTS error, so a
// second server on the same path fails with a clear message.
absl::StatusOr<UniqueFd> ListenSeqpacket(absl::string_view path, int backlog = 64);

// Sets the mode of the socket file at `path` and, unless `gid` is -1, its group. The last
// component is never followed: if it is not a socket (a symlink planted there, say), nothing is
// changed and FAILED_PRECONDITION says what is there. Other errors: PERMISSION_DENIED or
// UNAVAILABLE with the failed call. The directory above is trusted to be closed to others (snapd's
// run dir is, see SECURITY.md): who can write there can swap the file after this returns.
absl::Status SetSocketFileAccess(absl::string_view path, mode_t mode, gid_t gid = -1);

// Connects to the SOCK_SEQPACKET socket at `path`. The fd returned is blocking, close-on-exec.
absl::StatusOr<UniqueFd> ConnectSeqpacket(absl::string_view path);

// Sends one message, with `attached_fd` passed by SCM_RIGHTS when it is >= 0.
absl::Status SendMessage(int sock, const WireMessage& msg, int attached_fd = -1);

// Takes ownership of every fd the SCM_RIGHTS control messages of a received `mh` carried, in order.
std::vector<UniqueFd> TakeRightsFds(msghdr& mh);

// Outcome of reading one packet from a control socket.
struct Received {
  enum class Kind {
    kMessage,     // `msg` holds a full-size message; `fd` any fd that came with it
    kWouldBlock,  // non-blocking socket with nothing to read
    kHangup,      // the peer closed its end
    kMalformed,   // wrong size or truncated ancillary data; `error` says which
  };
  Kind kind = Kind::kMalformed;
  WireMessage msg{};
  UniqueFd fd;
  // Fds beyond the first, and any fd of a malformed packet: the caller disposes of them (a peer's
  // fd may be one whose close blocks: see ReleasePeerFd in ipc/peer_fd.h).
  std::vector<UniqueFd> unwanted_fds;
  std::string error;
};

// Reads one packet. Fds beyond the first, and an fd that arrives with a malformed packet, are
// handed back in unwanted_fds: a peer can never leak descriptors into this process as long as the
// caller closes them.
Received ReceiveMessage(int sock);

}  // namespace snapd::memif

#endif  // SNAPD_IPC_SOCKET_H_
