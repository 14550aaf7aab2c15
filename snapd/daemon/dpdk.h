// DPDK inside snapd: the EAL, the mbuf pool, and NICs (any device DPDK can probe: virtual devices
// like net_af_packet, net_tap, net_ring, net_null, or PCI NICs) with one Port per queue.
//
// Threads: InitEal, Nic::Open and Nic's destructor run on the main thread. A NicQueuePort is used
// by the one engine that owns the queue; Nic::Stats may run on any thread.
//
// What a PCI NIC needs (not available on the development machines): hugepages (drop --no-huge and
// set eal.args), the device bound to vfio-pci (dpdk-devbind.py), and its address as devargs; snapd
// then omits --no-pci and allow-lists the addresses given.
#ifndef SNAPD_SNAPD_DAEMON_DPDK_H_
#define SNAPD_SNAPD_DAEMON_DPDK_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engines/port.h"
#include "snapd/daemon/config.pb.h"
#include "snapd/daemon/nic_stats.h"

struct rte_mempool;
struct rte_mbuf;

namespace snapd {

// Starts DPDK's EAL with arguments that work without hugepages or PCI devices (or eal.args when
// set), and creates the mbuf pool every NIC queue shares. Call once.
absl::Status InitEal(const config::SnapdConfig& config);
rte_mempool* MbufPool();
// Releases what the EAL holds; after every Nic is closed.
void CleanupEal();

// Registers the calling (non-EAL) thread with DPDK so that mempool caches work for it.
void RegisterDataplaneThread();
void UnregisterDataplaneThread();

class Nic {
 public:
  // Probes `cfg.devargs`, configures cfg.queues queue pairs (RSS over IP/TCP/UDP where the PMD
  // has it), turns on promiscuous mode and starts the port. Errors say which step failed.
  static absl::StatusOr<std::unique_ptr<Nic>> Open(const config::Nic& cfg, int index);
  // Configures and starts an ethdev created some other way (rte_eth_from_rings, say), as Open
  // does after probing. `device` is what the destructor hot-unplugs.
  static absl::StatusOr<std::unique_ptr<Nic>> Adopt(uint16_t port_id, const std::string& name,
                                                    const std::string& device, uint16_t queues);
  ~Nic();

  const std::string& name() const { return name_; }  // "nic0"
  const std::string& device() const { return device_; }
  uint16_t port_id() const { return port_id_; }
  uint16_t queues() const { return queues_; }
  bool rss() const { return rss_; }
  bool rx_interrupts() const { return rx_interrupts_; }
  // The port's MAC address, "02:00:00:00:00:01".
  std::string mac() const;
  // The kernel interface the PMD works through (a tap's, af_packet's), "" for none.
  const std::string& kernel_interface() const { return kernel_ifname_; }
  // False when that interface has left this process's network namespace (or was renamed) since
  // the port opened.
  bool KernelInterfaceHere() const;
  // Whether a second process that opens the same device receives a copy of every frame (a packet
  // socket) rather than a share of them (a multi-queue tap) or frames of its own (ring, null).
  bool ReceivesCopies() const { return device_.rfind("net_af_packet", 0) == 0; }
  // A DPDK tap: its kernel interface lives as long as the fds that hold it (see
  // upgrade/old_snapd.cc).
  bool IsTap() const { return device_.rfind("net_tap", 0) == 0; }

  // This process is about to exit and a new snapd runs the device: the destructor leaves it as
  // it is (stopping or closing a tap would take its kernel interface down under the new snapd).
  void Abandon() { abandoned_ = true; }

  // The port for queue q, for an engine to own; each queue can be taken once.
  std::unique_ptr<Port> TakeQueuePort(uint16_t q);
  // The device's counters, continuing those of the process that ran it before (ContinueFrom).
  NicStats Stats() const;
  // From now on Stats() counts on from `before` (what another process's Stats() said when it
  // stopped using the device) instead of from what the device has counted so far in this process.
  void ContinueFrom(const NicStats& before);

 private:
  Nic() = default;
  std::string name_;
  std::string device_;
  uint16_t port_id_ = 0;
  uint16_t queues_ = 0;
  bool rss_ = false;
  bool rx_interrupts_ = false;
  NicStats DeviceStats() const;

  bool abandoned_ = false;
  NicStats carried_;  // ContinueFrom's `before`
  NicStats zero_;     // the device's counters at ContinueFrom
  unsigned kernel_ifindex_ = 0;
  std::string kernel_ifname_;
  std::vector<bool> taken_;
};

}  // namespace snapd

#endif  // SNAPD_SNAPD_DAEMON_DPDK_H_
