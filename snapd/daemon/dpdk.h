// DPDK inside snapd: the EAL, the mbuf pool, and NICs (any device DPDK can probe: virtual devices
// like net_af_packet, net_tap, net_ring, net_null, or PCI NICs) with one Port per queue.
//
// Threads: InitEal, DpdkNic::Open and its destructor run on the main thread. A NicQueuePort is used
// by the one engine that owns the queue; DpdkNic::Stats may run on any thread.
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
#include "snapd/daemon/nic.h"
#include "snapd/daemon/nic_stats.h"

struct rte_mempool;
struct rte_mbuf;

namespace snapd {

// The EAL dlopens every driver in DPDK's plugin directory (RTE_EAL_PMD_PATH: ~190 on Debian 12,
// a tenth of a second of dynamic linking) at each start, whenever it is a shared library. snapd
// links the drivers of virtual NICs it knows (net_af_packet, net_tap, net_ring, net_null,
// net_memif); the plugins are for the rest (PCI NICs, other vdevs, eal.args). When the config
// needs none, this hides the directory from snapd: a mount namespace of its own (the host's mounts
// still propagate into it) with an empty tmpfs over the directory. A snapd restarted after a crash
// serves its apps that much sooner. Call first thing, while the process has one thread; on any
// failure it says why and leaves the plugins in place.
void HideUnusedPmdPlugins(const config::SnapdConfig& config);
// The mount namespace snapd started in, open; -1 unless HideUnusedPmdPlugins left it. A process
// snapd starts (a live upgrade's new snapd) goes back to it before exec: it needs the directory
// (the drivers snapd links are installed there too). A snapd started by an upgrade loads the
// plugins (its start is not a blackout); one restarted after a crash hides them again.
int StartingMountNamespace();

// Starts DPDK's EAL with arguments that work without hugepages or PCI devices (or eal.args when
// set), and creates the mbuf pool every NIC queue shares. Call once.
absl::Status InitEal(const config::SnapdConfig& config);
rte_mempool* MbufPool();
// Releases what the EAL holds; after every Nic is closed.
void CleanupEal();

// Registers the calling (non-EAL) thread with DPDK so that mempool caches work for it.
void RegisterDataplaneThread();
void UnregisterDataplaneThread();

// DPDK's NIC driver: Start is InitEal, Open is DpdkNic::Open, Stop is CleanupEal.
NicDriver& DpdkNicDriver();

class DpdkNic final : public Nic {
 public:
  // Probes `cfg.devargs`, configures cfg.queues queue pairs (RSS over IP/TCP/UDP where the PMD
  // has it), turns on promiscuous mode and starts the port. Errors say which step failed.
  static absl::StatusOr<std::unique_ptr<DpdkNic>> Open(const config::Nic& cfg, int index);
  // Configures and starts an ethdev created some other way (rte_eth_from_rings, say), as Open
  // does after probing. `device` is what the destructor hot-unplugs.
  static absl::StatusOr<std::unique_ptr<DpdkNic>> Adopt(uint16_t port_id, const std::string& name,
                                                        const std::string& device, uint16_t queues);
  ~DpdkNic() override;

  const std::string& name() const override { return name_; }
  const std::string& device() const override { return device_; }
  uint16_t port_id() const { return port_id_; }
  uint16_t queues() const override { return queues_; }
  bool rss() const override { return rss_; }
  bool rx_interrupts() const override { return rx_interrupts_; }
  std::string mac() const override;
  const std::string& kernel_interface() const override { return kernel_ifname_; }
  bool KernelInterfaceHere() const override;
  bool ReceivesCopies() const override { return device_.rfind("net_af_packet", 0) == 0; }
  bool IsTap() const override { return device_.rfind("net_tap", 0) == 0; }
  void Abandon() override { abandoned_ = true; }
  std::unique_ptr<Port> TakeQueuePort(uint16_t q) override;
  NicStats Stats() const override;
  void ContinueFrom(const NicStats& before) override;

 private:
  DpdkNic() = default;
  std::string name_;
  std::string device_;
  uint16_t port_id_ = 0;
  uint16_t queues_ = 0;
  bool rss_ = false;
  bool rx_interrupts_ = false;
  bool never_receives_ = false;  // net_null with no-rx=1
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
