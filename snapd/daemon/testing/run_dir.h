// FreshRunDir: a run dir snapd accepts, for tests that start a daemon. Test-only.
#ifndef SNAPD_SNAPD_DAEMON_TESTING_RUN_DIR_H_
#define SNAPD_SNAPD_DAEMON_TESTING_RUN_DIR_H_

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "absl/strings/str_cat.h"

namespace snapd {

// A run dir only root (or we) can change, as snapd demands, with a socket path short enough for
// sun_path: under /var/lib/snapd-test as root (as the shell tests do), else the test's temp dir.
// Removed when the test program ends.
inline std::string FreshRunDir() {
  static std::string parent = [] {
    std::string base = getenv("TEST_TMPDIR") != nullptr ? getenv("TEST_TMPDIR") : "/tmp";
    if (geteuid() == 0) {
      mkdir("/var/lib/snapd-test", 0755);
      base = "/var/lib/snapd-test";
    }
    std::string dir = base + "/snapd_test.XXXXXX";
    if (mkdtemp(dir.data()) == nullptr) return base;
    chmod(dir.c_str(), 0755);
    static std::string to_remove = dir;
    atexit([] { std::filesystem::remove_all(to_remove); });
    return dir;
  }();
  static int n = 0;
  return absl::StrCat(parent, "/", ++n);
}

}  // namespace snapd

#endif  // SNAPD_SNAPD_DAEMON_TESTING_RUN_DIR_H_
