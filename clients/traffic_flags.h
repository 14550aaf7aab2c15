// The flags of the sequenced-traffic tools (clients/examples/snap_traffic, tools/memif_traffic):
// how much to send and how to wait, the same in both.
#ifndef SNAPD_CLIENTS_TRAFFIC_FLAGS_H_
#define SNAPD_CLIENTS_TRAFFIC_FLAGS_H_

#include <cstdint>

#include "absl/flags/declare.h"
#include "clients/traffic.h"

ABSL_DECLARE_FLAG(uint64_t, frames);
ABSL_DECLARE_FLAG(uint32_t, size);
ABSL_DECLARE_FLAG(uint32_t, window);
ABSL_DECLARE_FLAG(bool, poll);
ABSL_DECLARE_FLAG(int, lost_after_ms);
ABSL_DECLARE_FLAG(int, gaps_over_ms);
ABSL_DECLARE_FLAG(int, timeout_s);
ABSL_DECLARE_FLAG(double, duration_s);

namespace snap {

// LoadOptions as the flags above say (frame_size as given: the tool raises it to its minimum).
LoadOptions LoadOptionsFromFlags();

}  // namespace snap

#endif  // SNAPD_CLIENTS_TRAFFIC_FLAGS_H_
