// Pinning a process to a core, for pollers that must own one (benchmarks, --poll tools).
#ifndef SNAPD_TOOLS_CPU_H_
#define SNAPD_TOOLS_CPU_H_

#include "absl/status/status.h"

namespace snapd::tools {

// Pins the calling thread (and threads it starts later) to `core`. A negative core is a no-op.
absl::Status PinToCore(int core);

}  // namespace snapd::tools

#endif  // SNAPD_TOOLS_CPU_H_
