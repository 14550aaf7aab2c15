// UniqueFd: owns one file descriptor and closes it when destroyed. Movable, not copyable.
#ifndef SNAPD_BASE_UNIQUE_FD_H_
#define SNAPD_BASE_UNIQUE_FD_H_

#include <unistd.h>

#include <utility>

namespace snapd {

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    reset(other.release());
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  explicit operator bool() const { return valid(); }

  // Gives up ownership and returns the fd (or -1).
  int release() { return std::exchange(fd_, -1); }

  // Closes the fd held, if any, and takes `fd`.
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

}  // namespace snapd

#endif  // SNAPD_BASE_UNIQUE_FD_H_
