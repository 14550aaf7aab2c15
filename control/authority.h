// Authority on the control socket (SECURITY.md): who a connecting process is, from the kernel's
// record of its credentials when it connected (SO_PEERCRED, SO_PEERGROUPS), and what it may do.
// Classified once, at accept: a process that exits later cannot lend its pid to another.
#ifndef SNAPD_CONTROL_AUTHORITY_H_
#define SNAPD_CONTROL_AUTHORITY_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace snapd {

// What a control-socket caller may do.
enum class Tier {
  kDenied,    // every RPC answers PERMISSION_DENIED
  kOperator,  // members of --control_group: reads, scheduling (groups, modes, engines), apps
  kAdmin,     // root and snapd's own uid: everything, including Upgrade (which execs a binary)
};

// "denied", "operator", "admin".
const char* TierName(Tier tier);

// A connected peer's credentials as they were when it called connect().
struct PeerCredentials {
  pid_t pid = 0;
  uid_t uid = static_cast<uid_t>(-1);
  gid_t gid = static_cast<gid_t>(-1);
  std::vector<gid_t> groups;  // supplementary
};

// The credentials of the peer of the connected Unix socket `fd`: SO_PEERCRED, and SO_PEERGROUPS
// (grown and retried on ERANGE). No /proc. Errors: UNAVAILABLE with the getsockopt that failed.
// Any thread.
absl::StatusOr<PeerCredentials> PeerCredentialsOf(int fd);

// The tier of `peer` for a snapd running as `self` (its euid) whose control group is
// `control_group` (-1: none): root and `self` are admins, a member of the control group (primary
// or supplementary) an operator, anyone else denied. Pure.
Tier Classify(const PeerCredentials& peer, uid_t self, gid_t control_group);

}  // namespace snapd

#endif  // SNAPD_CONTROL_AUTHORITY_H_
