// hostile_app's shared parts: its flags, names, markers and output. See hostile_app.cc.
#ifndef SNAPD_TOOLS_HOSTILE_COMMON_H_
#define SNAPD_TOOLS_HOSTILE_COMMON_H_

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "base/clock.h"
#include "base/unique_fd.h"
#include "clients/libsnap.h"
#include "clients/packet.h"
#include "engines/frame.h"
#include "ipc/control_message.h"
#include "ipc/eventfd.h"
#include "ipc/memif_protocol.h"
#include "ipc/region.h"
#include "ipc/ring.h"
#include "ipc/socket.h"

ABSL_DECLARE_FLAG(std::string, socket);
ABSL_DECLARE_FLAG(uint32_t, id);
ABSL_DECLARE_FLAG(std::string, secret);
ABSL_DECLARE_FLAG(std::string, dst_mac);
ABSL_DECLARE_FLAG(std::string, dst_ip);
ABSL_DECLARE_FLAG(std::string, victim_mac);
ABSL_DECLARE_FLAG(double, duration_s);
ABSL_DECLARE_FLAG(double, hold_s);
ABSL_DECLARE_FLAG(uint32_t, second_id);
ABSL_DECLARE_FLAG(uint32_t, connections);
ABSL_DECLARE_FLAG(uint32_t, connects_per_s);
ABSL_DECLARE_FLAG(uint32_t, slots);
ABSL_DECLARE_FLAG(double, wait_s);
ABSL_DECLARE_FLAG(std::string, iface);
ABSL_DECLARE_FLAG(uint32_t, count);
ABSL_DECLARE_FLAG(uint32_t, passes);
ABSL_DECLARE_FLAG(uint32_t, rate);
ABSL_DECLARE_FLAG(uint32_t, window);
ABSL_DECLARE_FLAG(double, loss_after_s);

namespace hostile {

using snapd::MacFromBytes;
using snapd::MacToBytes;
using snapd::MacToString;
using snapd::UniqueFd;
using snapd::memif::ClientSlots;
using snapd::memif::Descriptor;
using snapd::memif::Frame;
using snapd::memif::kCookie;
using snapd::memif::kDescFlagNext;
using snapd::memif::kRingFlagMaskInt;
using snapd::memif::MappedRegion;
using snapd::memif::MessageType;
using snapd::memif::RegionView;
using snapd::memif::RingHeader;
using snapd::memif::RxRing;
using snapd::memif::Side;
using snapd::memif::TxRing;
using snapd::memif::WireMessage;

// Every frame an attack sends carries this marker and the kind of frame, "HOSTILE:kind;", so that
// whoever receives it (victim, wire_watch) can tell which one got through.
inline constexpr char kMarker[] = "HOSTILE:";
// The victim's datagrams start their payload with this.
inline constexpr char kVictimMagic[8] = {'V', 'I', 'C', 'T', 'I', 'M', 0, 0};

inline std::atomic<bool> g_stop{false};
inline void OnSignal(int) { g_stop = true; }

inline void Say(const std::string& line) {
  printf("hostile_app: %s\n", line.c_str());
  fflush(stdout);
}

inline uint64_t RoundUp(uint64_t n, uint64_t to) { return (n + to - 1) / to * to; }

}  // namespace hostile

#endif  // SNAPD_TOOLS_HOSTILE_COMMON_H_
