#include "ipc/socket.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"

namespace snapd::memif {
namespace {

absl::StatusOr<sockaddr_un> UnixAddress(absl::string_view path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat("socket path '", path, "' must be 1 to ",
                                                   sizeof(addr.sun_path) - 1, " bytes long"));
  }
  memcpy(addr.sun_path, path.data(), path.size());
  return addr;
}

absl::Status ErrnoError(absl::string_view what, absl::string_view path) {
  int err = errno;
  return absl::Status(err == EACCES || err == EPERM ? absl::StatusCode::kPermissionDenied
                                                    : absl::StatusCode::kUnavailable,
                      absl::StrCat(what, " ", path, ": ", strerror(err)));
}

}  // namespace

absl::StatusOr<UniqueFd> ListenSeqpacket(absl::string_view path, int backlog) {
  absl::StatusOr<sockaddr_un> addr = UnixAddress(path);
  if (!addr.ok()) return addr.status();
  UniqueFd fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return ErrnoError("socket() for", path);
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&*addr), sizeof(*addr)) != 0) {
    if (errno != EADDRINUSE) return ErrnoError("cannot bind", path);
    // Someone left a socket file. If a server still accepts on it, refuse; else replace it.
    UniqueFd probe(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    if (probe &&
        ::connect(probe.get(), reinterpret_cast<const sockaddr*>(&*addr), sizeof(*addr)) == 0) {
      return absl::AlreadyExistsError(
          absl::StrCat("another server is already listening on ", path));
    }
    ::unlink(std::string(path).c_str());
    if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&*addr), sizeof(*addr)) != 0) {
      return ErrnoError("cannot bind", path);
    }
  }
  if (::listen(fd.get(), backlog) != 0) return ErrnoError("cannot listen on", path);
  return fd;
}

absl::Status SetSocketFileAccess(absl::string_view path, mode_t mode, gid_t gid) {
  const std::string p(path);
  const size_t slash = p.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : p.substr(0, slash);
  const std::string name = slash == std::string::npos ? p : p.substr(slash + 1);
  UniqueFd dir_fd(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!dir_fd) return ErrnoError("cannot open the directory of", path);
  // An O_PATH fd on the last component itself (a symlink there is opened, not followed): the
  // checks and changes below all apply to this one inode, whatever is renamed meanwhile.
  UniqueFd fd(::openat(dir_fd.get(), name.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) return ErrnoError("cannot open", path);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return ErrnoError("cannot stat", path);
  if (!S_ISSOCK(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat(
        path, " is not a socket (", S_ISLNK(st.st_mode) ? "a symlink" : "another kind of file",
        "): not changing its mode"));
  }
  if (gid != static_cast<gid_t>(-1) &&
      ::fchownat(fd.get(), "", static_cast<uid_t>(-1), gid, AT_EMPTY_PATH) != 0) {
    return ErrnoError("cannot change the group of", path);
  }
  // fchmod() refuses O_PATH fds and, on Linux before 6.6, fchmodat() takes neither
  // AT_SYMLINK_NOFOLLOW nor AT_EMPTY_PATH. chmod() through /proc/self/fd/N reaches the inode this
  // fd holds, which is known to be a socket (glibc's fchmodat(AT_SYMLINK_NOFOLLOW) does the same).
  const std::string proc = absl::StrCat("/proc/self/fd/", fd.get());
  if (::chmod(proc.c_str(), mode) != 0) return ErrnoError("cannot chmod", path);
  return absl::OkStatus();
}

absl::StatusOr<UniqueFd> ConnectSeqpacket(absl::string_view path) {
  absl::StatusOr<sockaddr_un> addr = UnixAddress(path);
  if (!addr.ok()) return addr.status();
  UniqueFd fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
  if (!fd) return ErrnoError("socket() for", path);
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&*addr), sizeof(*addr)) != 0) {
    return ErrnoError("cannot connect to", path);
  }
  return fd;
}

absl::Status SendMessage(int sock, const WireMessage& msg, int attached_fd) {
  iovec iov{const_cast<WireMessage*>(&msg), sizeof(msg)};
  msghdr mh{};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  if (attached_fd >= 0) {
    mh.msg_control = control;
    mh.msg_controllen = sizeof(control);
    cmsghdr* cmsg = CMSG_FIRSTHDR(&mh);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cmsg), &attached_fd, sizeof(int));
  }
  ssize_t n;
  do {
    n = ::sendmsg(sock, &mh, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n != static_cast<ssize_t>(sizeof(msg))) {
    return absl::UnavailableError(absl::StrCat("sending a control message failed: ",
                                               n < 0 ? strerror(errno) : "short write"));
  }
  return absl::OkStatus();
}

std::vector<UniqueFd> TakeRightsFds(msghdr& mh) {
  std::vector<UniqueFd> fds;
  for (cmsghdr* c = CMSG_FIRSTHDR(&mh); c != nullptr; c = CMSG_NXTHDR(&mh, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int fd;
      memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      fds.emplace_back(fd);
    }
  }
  return fds;
}

Received ReceiveMessage(int sock) {
  Received out;
  // Room for a few fds, so that extra ones are received (and closed) rather than left in flight.
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 8)];
  // One byte more than a message, so that an oversized packet shows as such.
  char buf[kMessageSize + 1];
  iovec iov{buf, sizeof(buf)};
  msghdr mh{};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = control;
  mh.msg_controllen = sizeof(control);
  ssize_t n;
  do {
    n = ::recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      out.kind = Received::Kind::kWouldBlock;
    } else {
      out.kind = Received::Kind::kHangup;
      out.error = strerror(errno);
    }
    return out;
  }
  if (n == 0) {
    out.kind = Received::Kind::kHangup;
    return out;
  }
  // Take every fd that arrived, keep the first; the rest go back to the caller to dispose of.
  out.unwanted_fds = TakeRightsFds(mh);
  if (!out.unwanted_fds.empty()) {
    out.fd = std::move(out.unwanted_fds.front());
    out.unwanted_fds.erase(out.unwanted_fds.begin());
  }
  if (mh.msg_flags & MSG_CTRUNC) {
    out.kind = Received::Kind::kMalformed;
    out.error = "too many file descriptors attached to a control message";
    out.unwanted_fds.push_back(std::move(out.fd));
    return out;
  }
  if (n != static_cast<ssize_t>(kMessageSize) || (mh.msg_flags & MSG_TRUNC)) {
    out.kind = Received::Kind::kMalformed;
    out.error = absl::StrCat("control message of ", n, " bytes; memif messages are ", kMessageSize);
    out.unwanted_fds.push_back(std::move(out.fd));
    return out;
  }
  memcpy(&out.msg, buf, kMessageSize);
  out.kind = Received::Kind::kMessage;
  return out;
}

}  // namespace snapd::memif
