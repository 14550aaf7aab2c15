#include "ipc/eventfd.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "ipc/peer_fd.h"

namespace snapd::memif {

absl::StatusOr<UniqueFd> CreateEventFd() {
  UniqueFd fd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!fd) return absl::InternalError(absl::StrCat("eventfd: ", strerror(errno)));
  return fd;
}

absl::Status AdoptPeerEventFd(int fd) {
  if (FdLink(fd) != "anon_inode:[eventfd]") {
    return absl::InvalidArgumentError("interrupt fd is not an eventfd");
  }
  // A semaphore eventfd gives up its count one at a time: a peer that writes 2^62 once would wake
  // an idle worker on every sleep for good.
  std::ifstream info(absl::StrCat("/proc/self/fdinfo/", fd));
  std::string line;
  while (std::getline(info, line)) {
    if (line.rfind("eventfd-semaphore:", 0) == 0 && line.find('1') != std::string::npos) {
      return absl::InvalidArgumentError("interrupt fd is a semaphore eventfd (EFD_SEMAPHORE)");
    }
  }
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) {
    return absl::InternalError(absl::StrCat("cannot make eventfd non-blocking: ", strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace snapd::memif
