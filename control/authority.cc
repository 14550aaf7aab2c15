#include "control/authority.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace snapd {

const char* TierName(Tier tier) {
  switch (tier) {
    case Tier::kAdmin:
      return "admin";
    case Tier::kOperator:
      return "operator";
    case Tier::kDenied:
      break;
  }
  return "denied";
}

absl::StatusOr<PeerCredentials> PeerCredentialsOf(int fd) {
  PeerCredentials peer;
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    return absl::UnavailableError(absl::StrCat("SO_PEERCRED: ", strerror(errno)));
  }
  peer.pid = cred.pid;
  peer.uid = cred.uid;
  peer.gid = cred.gid;
  // The kernel says how much room the list needs when it does not fit (ERANGE); NGROUPS_MAX is
  // 65536, so this ends.
  std::vector<gid_t> groups(32);
  while (true) {
    len = static_cast<socklen_t>(groups.size() * sizeof(gid_t));
    if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &len) == 0) break;
    if (errno != ERANGE || len <= groups.size() * sizeof(gid_t)) {
      return absl::UnavailableError(absl::StrCat("SO_PEERGROUPS: ", strerror(errno)));
    }
    groups.resize(len / sizeof(gid_t));
  }
  groups.resize(len / sizeof(gid_t));
  peer.groups = std::move(groups);
  return peer;
}

Tier Classify(const PeerCredentials& peer, uid_t self, gid_t control_group) {
  if (peer.uid == 0 || peer.uid == self) return Tier::kAdmin;
  if (control_group == static_cast<gid_t>(-1)) return Tier::kDenied;
  if (peer.gid == control_group ||
      std::find(peer.groups.begin(), peer.groups.end(), control_group) != peer.groups.end()) {
    return Tier::kOperator;
  }
  return Tier::kDenied;
}

}  // namespace snapd
