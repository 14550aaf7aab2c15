#include "ipc/region.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "ipc/peer_fd.h"

namespace snapd::memif {

MappedRegion::MappedRegion(MappedRegion&& other) noexcept
    : fd_(std::move(other.fd_)),
      base_(std::exchange(other.base_, nullptr)),
      size_(std::exchange(other.size_, 0)) {}

MappedRegion& MappedRegion::operator=(MappedRegion&& other) noexcept {
  if (this != &other) {
    if (base_ != nullptr) ::munmap(base_, size_);
    fd_ = std::move(other.fd_);
    base_ = std::exchange(other.base_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

MappedRegion::~MappedRegion() {
  if (base_ != nullptr) ::munmap(base_, size_);
}

absl::StatusOr<MappedRegion> MappedRegion::Create(absl::string_view name, uint64_t size) {
  if (size == 0) return absl::InvalidArgumentError("region size must be positive");
  UniqueFd fd(::memfd_create(std::string(name).c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!fd) return absl::InternalError(absl::StrCat("memfd_create: ", strerror(errno)));
  if (::ftruncate(fd.get(), static_cast<off_t>(size)) != 0) {
    return absl::ResourceExhaustedError(
        absl::StrCat("ftruncate memfd to ", size, ": ", strerror(errno)));
  }
  if (::fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
    return absl::InternalError(absl::StrCat("sealing memfd: ", strerror(errno)));
  }
  void* base = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  if (base == MAP_FAILED) {
    return absl::ResourceExhaustedError(absl::StrCat("mmap ", size, " bytes: ", strerror(errno)));
  }
  MappedRegion region;
  region.fd_ = std::move(fd);
  region.base_ = static_cast<uint8_t*>(base);
  region.size_ = size;
  return region;
}

namespace {

// Whether `fd` (a peer's) is a memfd we may map. Nothing here calls into a filesystem before the
// fd is known to be a memfd: a file on a FUSE mount the peer serves would block fstat.
absl::Status CheckPeerRegion(int fd, uint64_t size) {
  if (FdLink(fd).rfind("/memfd:", 0) != 0) {
    return absl::InvalidArgumentError("region fd must be a memfd (shared memory)");
  }
  // Only shared memory of the page cache kind: a hugetlbfs memfd can be sealed too, but its pages
  // are reserved only when touched, and a later shortage would SIGBUS us on access.
  struct statfs fs = {};
  if (::fstatfs(fd, &fs) != 0 || fs.f_type != TMPFS_MAGIC) {
    return absl::InvalidArgumentError(
        fs.f_type == HUGETLBFS_MAGIC ? "region fd is on hugetlbfs: only plain memfds are accepted"
                                     : "region fd must be a memfd (shared memory)");
  }
  int seals = ::fcntl(fd, F_GET_SEALS);
  if (seals < 0 || !(seals & F_SEAL_SHRINK)) {
    return absl::InvalidArgumentError("region fd must be a memfd sealed with F_SEAL_SHRINK");
  }
  struct stat st;
  if (::fstat(fd, &st) != 0 || static_cast<uint64_t>(st.st_size) < size) {
    return absl::InvalidArgumentError(
        absl::StrCat("region fd is smaller than the ", size, " bytes announced"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<MappedRegion> MappedRegion::MapPeer(UniqueFd fd, uint64_t size, uid_t owner) {
  absl::Status checked = CheckPeerRegion(fd.get(), size);
  if (!checked.ok()) {
    ReleasePeerFd(fd.release(), owner);
    return checked;
  }
  void* base = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  if (base == MAP_FAILED) {
    return absl::InvalidArgumentError(absl::StrCat("cannot map region: ", strerror(errno)));
  }
  MappedRegion region;
  region.fd_ = std::move(fd);
  region.base_ = static_cast<uint8_t*>(base);
  region.size_ = size;
  return region;
}

}  // namespace snapd::memif
