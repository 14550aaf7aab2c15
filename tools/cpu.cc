#include "tools/cpu.h"

#include <errno.h>
#include <sched.h>
#include <string.h>

#include "absl/strings/str_cat.h"

namespace snapd::tools {

absl::Status PinToCore(int core) {
  if (core < 0) return absl::OkStatus();
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(core, &set);
  if (sched_setaffinity(0, sizeof(set), &set) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot pin to core ", core, ": ", strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace snapd::tools
