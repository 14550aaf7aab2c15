// Shared memory regions of a memif connection: a memfd and its mapping. The fd is what moves
// between processes (to the server at attach, to a new snapd at upgrade); the mapping is this
// process's view.
#ifndef SNAPD_IPC_REGION_H_
#define SNAPD_IPC_REGION_H_

#include <sys/types.h>

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "base/unique_fd.h"

namespace snapd::memif {

class MappedRegion {
 public:
  MappedRegion() = default;
  MappedRegion(MappedRegion&& other) noexcept;
  MappedRegion& operator=(MappedRegion&& other) noexcept;
  ~MappedRegion();

  // Creates a memfd of `size` bytes, sealed so it can never shrink (a peer that maps it can then
  // never fault on a truncated file), and maps it read-write. Thread-safe.
  static absl::StatusOr<MappedRegion> Create(absl::string_view name, uint64_t size);

  // Maps a region fd a peer sent, after checking that it is a memfd (not on hugetlbfs) sealed
  // against shrinking and at least `size` bytes long. Errors name the problem (to be sent back in
  // the disconnect reason); a refused fd is closed on the closer's thread (ReleasePeerFd) in the
  // name of `owner`, the peer's uid.
  static absl::StatusOr<MappedRegion> MapPeer(UniqueFd fd, uint64_t size,
                                              uid_t owner = static_cast<uid_t>(-1));

  uint8_t* base() const { return base_; }
  uint64_t size() const { return size_; }
  int fd() const { return fd_.get(); }

 private:
  UniqueFd fd_;
  uint8_t* base_ = nullptr;
  uint64_t size_ = 0;
};

}  // namespace snapd::memif

#endif  // SNAPD_IPC_REGION_H_
