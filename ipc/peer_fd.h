// Calls on file descriptors an app shares with snapd: the interrupt eventfds of its rings. The app
// holds the same open file description as we do, so it can clear O_NONBLOCK under us, saturate the
// counter (a write then blocks) or drain it (a read then blocks). These calls never block, whatever
// the app did:
//  - a write checks with poll() that the counter has room first; a full counter is the app's doing
//    (we add one per kick) and is reported, not waited on;
//  - a read asks for RWF_NOWAIT (eventfds honour it for reads since Linux 5.12), else polls first.
// Between the check and the write the app can still fill the counter (a race it must win while we
// are in that window). For that case a thread registers a PeerFdCalls record; while it is inside a
// call the record says so, and a watchdog on another thread that sees a call last too long
// interrupts it with InterruptPeerFdCall(): the call then fails with EINTR and is reported as
// blocked.
//
// Threads: KickEventFd and DrainEventFd on any thread; the record of a thread is written only by it
// and read by the watchdog.
#ifndef SNAPD_IPC_PEER_FD_H_
#define SNAPD_IPC_PEER_FD_H_

#include <pthread.h>
#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>

namespace snapd::memif {

enum class PeerFdResult {
  kOk,
  kSaturated,  // write: the counter has no room (the app filled it)
  kEmpty,      // read: nothing to read
  kBlocked,    // the call blocked and was interrupted (the app raced the check)
  kError,      // anything else (a bad fd)
};

// What one thread is doing on an app's fd, for a watchdog to see.
struct PeerFdCalls {
  pthread_t thread{};
  std::atomic<int64_t> since_ns{0};  // CLOCK_MONOTONIC when the current call began; 0: none
  std::atomic<uint32_t> tag{0};      // whose fd: the connection's memif id
  std::atomic<bool> is_write{false};
};

// Marks the calling thread, in its record, as inside a call on `tag`'s fd while it lives. Every
// call on an app's fd runs inside one (KickEventFd and DrainEventFd do).
class PeerFdCall {
 public:
  PeerFdCall(uint32_t tag, bool is_write);
  ~PeerFdCall();
  PeerFdCall(const PeerFdCall&) = delete;
  PeerFdCall& operator=(const PeerFdCall&) = delete;

 private:
  PeerFdCalls* const calls_;
};

// Closes an fd a peer sent that snapd does not keep (unchecked, or refused by a check) on a closer
// thread. Closing the last reference to a socket whose SO_LINGER the peer set, or to a file on a
// FUSE mount the peer serves, blocks for as long as the peer likes: a socket is first set to close
// abortively, and the closer runs a few threads so that one stuck close holds up no other.
// `owner` is the peer's uid. Any thread.
void ReleasePeerFd(int fd, uid_t owner);
// How many fds of `owner` wait to be closed (a peer with many is stalling the closer). Any thread.
size_t PeerFdsClosing(uid_t owner);

// The ring errors a watchdog's interruption leads to (ring.h's error() returns these pointers).
inline constexpr char kKickBlocked[] = "a write to the peer's interrupt eventfd blocked";
inline constexpr char kDrainBlocked[] = "a read of the peer's interrupt eventfd blocked";

// Registers `calls` as the calling thread's record (nullptr: none), and installs the no-op handler
// of the interrupting signal (without SA_RESTART) the first time.
void WatchPeerFdCalls(PeerFdCalls* calls);

// Interrupts the call `calls` reports, if it is still inside one. Watchdog thread.
void InterruptPeerFdCall(PeerFdCalls& calls);
// What /proc/self/fd says `fd` is ("anon_inode:[eventfd]", "socket:[123]", "/memfd:x (deleted)"),
// "" if it cannot say. Touches no filesystem the fd lives on, so it never blocks.
std::string FdLink(int fd);

// Why `fd` is not a Unix socket of `type` (SOCK_STREAM, SOCK_SEQPACKET...): "not a Unix socket",
// "a socket of another type"; "" if it is.
const char* UnixSocketMismatch(int fd, int type);

// "a write to port app7's interrupt eventfd": the call `calls` reports, for a log line.
std::string DescribePeerFdCall(const PeerFdCalls& calls);

// Adds one to the eventfd `fd` (wakes the app) without blocking. `tag` names the fd's owner in the
// thread's record.
PeerFdResult KickEventFd(int fd, uint32_t tag);
// Reads and discards the eventfd's counter without blocking.
PeerFdResult DrainEventFd(int fd, uint32_t tag);

}  // namespace snapd::memif

#endif  // SNAPD_IPC_PEER_FD_H_
