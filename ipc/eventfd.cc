#include "ipc/eventfd.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <string>

#include "absl/strings/str_cat.h"

namespace snapd::memif {

absl::StatusOr<UniqueFd> CreateEventFd() {
  UniqueFd fd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!fd) return absl::InternalError(absl::StrCat("eventfd: ", strerror(errno)));
  return fd;
}

absl::Status AdoptPeerEventFd(int fd) {
  std::string link = absl::StrCat("/proc/self/fd/", fd);
  char target[64] = {};
  ssize_t n = ::readlink(link.c_str(), target, sizeof(target) - 1);
  if (n <= 0 || std::string(target, n) != "anon_inode:[eventfd]") {
    return absl::InvalidArgumentError("interrupt fd is not an eventfd");
  }
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) {
    return absl::InternalError(absl::StrCat("cannot make eventfd non-blocking: ", strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace snapd::memif
