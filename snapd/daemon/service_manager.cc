#include "snapd/daemon/service_manager.h"

#include <stdlib.h>
#include <systemd/sd-daemon.h>

#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "glog/logging.h"

namespace snapd {

bool UnderServiceManager() {
  const char* path = getenv("NOTIFY_SOCKET");
  return path != nullptr && path[0] != '\0';
}

bool NotifyServiceManager(absl::string_view state) {
  if (!UnderServiceManager()) return false;
  int r = sd_notify(0, std::string(state).c_str());
  if (r < 0) LOG(WARNING) << "cannot notify the service manager: " << strerror(-r);
  return r > 0;
}

bool ValidFdName(absl::string_view name) {
  // systemd's rule (fdname_is_valid): 1..255 printable ASCII characters, no ':' (LISTEN_FDNAMES
  // separates names with it). A newline would also start another field of the message.
  if (name.empty() || name.size() > 255) return false;
  for (char c : name) {
    if (c < 0x20 || c > 0x7e || c == ':') return false;
  }
  return true;
}

bool StoreFds(absl::string_view name, const std::vector<int>& fds) {
  if (!UnderServiceManager() || fds.empty()) return false;
  if (!ValidFdName(name)) {
    LOG(WARNING) << "cannot store fds under '" << absl::CEscape(name)
                 << "': not a name the service manager takes (1-255 printable characters, no ':')";
    return false;
  }
  const std::string state = absl::StrCat("FDSTORE=1\nFDNAME=", name);
  int r =
      sd_pid_notify_with_fds(0, 0, state.c_str(), fds.data(), static_cast<unsigned>(fds.size()));
  if (r < 0) LOG(WARNING) << "cannot store fds " << name << ": " << strerror(-r);
  return r > 0;
}

bool RemoveStoredFds(absl::string_view name) {
  if (!ValidFdName(name)) return false;
  return NotifyServiceManager(absl::StrCat("FDSTOREREMOVE=1\nFDNAME=", name));
}

std::vector<StoredFd> TakeStoredFds() {
  char** names = nullptr;
  // Unsets $LISTEN_* and marks the fds close-on-exec.
  int n = sd_listen_fds_with_names(1, &names);
  std::vector<StoredFd> out;
  if (n < 0) LOG(WARNING) << "cannot read the fds the service manager passed: " << strerror(-n);
  for (int i = 0; i < n; ++i) {
    out.push_back({names != nullptr && names[i] != nullptr ? names[i] : "unknown",
                   UniqueFd(SD_LISTEN_FDS_START + i)});
  }
  if (names != nullptr) {
    for (char** p = names; *p != nullptr; ++p) free(*p);
    free(names);
  }
  return out;
}

int64_t WatchdogIntervalNs() {
  const char* usec = getenv("WATCHDOG_USEC");
  uint64_t value = 0;
  if (usec == nullptr || !absl::SimpleAtoi(usec, &value)) return 0;
  return static_cast<int64_t>(value) * 1000;
}

}  // namespace snapd
