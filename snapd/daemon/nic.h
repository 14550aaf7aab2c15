// Nic and NicDriver: how the daemon sees a NIC, whatever drives it. In snapd the driver is DPDK's
// (dpdk.h: its EAL, PMDs and ethdev ports); daemon_test gives the daemon fake NICs instead, so that
// the daemon is tested without DPDK, devices or root.
//
// Threads: the main thread, except Stats (any thread) and each queue port (its engine's thread).
#ifndef SNAPD_SNAPD_DAEMON_NIC_H_
#define SNAPD_SNAPD_DAEMON_NIC_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "engines/port.h"
#include "snapd/daemon/config.pb.h"
#include "snapd/daemon/nic_stats.h"

namespace snapd {

// Devargs of snapd's own packet-socket NICs (packet_nic.h) start with this; DPDK opens the rest.
inline constexpr char kPacketNicPrefix[] = "af_packet:";

class Nic {
 public:
  virtual ~Nic() = default;

  virtual const std::string& name() const = 0;  // "nic0"
  virtual const std::string& device() const = 0;
  virtual uint16_t queues() const = 0;
  virtual bool rss() const = 0;
  virtual bool rx_interrupts() const = 0;
  // The port's MAC address, "02:00:00:00:00:01".
  virtual std::string mac() const = 0;
  // The kernel interface the NIC works through (a tap's, af_packet's), "" for none.
  virtual const std::string& kernel_interface() const = 0;
  // False when that interface has left this process's network namespace (or was renamed) since
  // the NIC opened.
  virtual bool KernelInterfaceHere() const = 0;
  // Whether a second process that opens the same device receives a copy of every frame (a packet
  // socket) rather than a share of them (a multi-queue tap) or frames of its own (ring, null).
  virtual bool ReceivesCopies() const = 0;
  // A tap: its kernel interface lives as long as the fds that hold it (see upgrade/old_snapd.cc).
  virtual bool IsTap() const = 0;

  // This process is about to exit and a new snapd runs the device: closing leaves it as it is
  // (stopping or closing a tap would take its kernel interface down under the new snapd).
  virtual void Abandon() = 0;
  // The port for queue q, for an engine to own; each queue can be taken once.
  virtual std::unique_ptr<Port> TakeQueuePort(uint16_t q) = 0;
  // The device's counters, continuing those of the process that ran it before (ContinueFrom).
  virtual NicStats Stats() const = 0;
  // From now on Stats() counts on from `before` (what another process's Stats() said when it
  // stopped using the device) instead of from what the device has counted so far in this process.
  virtual void ContinueFrom(const NicStats& before) = 0;
};

class NicDriver {
 public:
  virtual ~NicDriver() = default;
  // Brings the driver up before the first NIC opens (DPDK: the EAL). Once per process.
  virtual absl::Status Start(const config::SnapdConfig& config) = 0;
  // Opens the NIC `cfg` describes, the config's `index`-th; errors say which step failed.
  virtual absl::StatusOr<std::unique_ptr<Nic>> Open(const config::Nic& cfg, int index) = 0;
  // Releases what Start took, once every NIC is closed. Not called by a daemon that handed
  // everything over to a new snapd.
  virtual void Stop() = 0;
};

}  // namespace snapd

#endif  // SNAPD_SNAPD_DAEMON_NIC_H_
