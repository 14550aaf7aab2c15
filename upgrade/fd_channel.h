// FdChannel: a message and any number of fds over a Unix SOCK_SEQPACKET socket between two snapd
// processes. The bytes travel in one packet (at most kMaxMessageBytes); the fds in packets of
// their own, up to 250 each, after it. What arrives is checked: sizes, counts, every fd present.
#ifndef SNAPD_UPGRADE_FD_CHANNEL_H_
#define SNAPD_UPGRADE_FD_CHANNEL_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/unique_fd.h"

namespace snapd::upgrade {

inline constexpr size_t kMaxMessageBytes = 1 << 20;
inline constexpr size_t kMaxFds = 65536;

struct FdMessage {
  std::string bytes;
  std::vector<UniqueFd> fds;
};

// Sends `bytes` and the fds (which stay open in the sender). Blocking.
absl::Status SendFdMessage(int sock, const std::string& bytes, const std::vector<int>& fds);

// Receives one message and its fds, waiting up to `timeout`.
absl::StatusOr<FdMessage> ReceiveFdMessage(int sock, absl::Duration timeout);

}  // namespace snapd::upgrade

#endif  // SNAPD_UPGRADE_FD_CHANNEL_H_
