// PacketNic: a Linux network interface as a NIC through snapd's own packet sockets, for what
// DPDK's net_af_packet cannot do here: wake an idle worker when frames arrive (its sockets are
// hidden inside the PMD, which has no rx interrupt), hand frames to engines without copying them,
// and carry frames larger than one mbuf (MTU 9000).
//
//   --nic=af_packet:IFACE[,rx_frames=N]        (config: nics { devargs: "af_packet:IFACE" })
//
// Each queue is one AF_PACKET socket bound to the interface, with a TPACKET_V2 receive ring
// mapped into snapd:
//  - Receive returns views of the frames in the receive ring; Release hands their slots back to the
//    kernel. No copy.
//  - Transmit hands the burst to the kernel in one sendmmsg, which copies each frame once and sends
//    it straight to the driver (PACKET_QDISC_BYPASS). A TPACKET transmit ring was measured slower
//    (TCP 10-30% less on veths): its frames are copied into the ring, and copied again out of the
//    ring's pages when they cross to another namespace.
//  - The socket is the queue's wake fd: it polls readable while a received frame waits, so a
//    blocking worker sleeps until a frame comes, without a bound.
//  - Several queues share the interface's frames by flow (PACKET_FANOUT_HASH, a group of their
//    own), as RSS would.
//  - Frames this host sends out of the interface are not received (PACKET_IGNORE_OUTGOING).
//  - A frame whose TCP or UDP checksum its sender left to the NIC gets it finished (a receiver
//    would drop it otherwise); VLAN tags the kernel gives apart are put back in front.
// TPACKET_V2 rather than V3: a V3 ring hands frames over a block at a time and wakes a reader only
// when a block is full or its timer (1 ms at least) retires it, so an idle ping would wait for the
// timer; V2 hands over and wakes per frame.
//
// Threads: Open, the destructor and TakeQueuePort on the main thread; each queue port on its
// engine's thread; Stats on any thread.
#ifndef SNAPD_SNAPD_DAEMON_PACKET_NIC_H_
#define SNAPD_SNAPD_DAEMON_PACKET_NIC_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "base/mutex.h"
#include "base/unique_fd.h"
#include "snapd/daemon/config.pb.h"
#include "snapd/daemon/nic.h"

namespace snapd {

// What "af_packet:IFACE[,key=value...]" asks for.
struct PacketNicArgs {
  std::string iface;
  uint32_t rx_frames = 1024;  // receive ring slots, per queue
};
// Parses devargs that start with kPacketNicPrefix; errors name the bad part.
absl::StatusOr<PacketNicArgs> ParsePacketNicArgs(const std::string& devargs);

// One ring's geometry for an interface MTU: slots big enough for a frame of MTU bytes of payload
// plus an Ethernet header and one VLAN tag, in blocks of whole pages.
struct RingGeometry {
  uint32_t frame_size = 0;  // bytes per slot
  uint32_t block_size = 0;  // a power of two pages, holding block_size / frame_size slots
  uint32_t frames = 0;      // slots, a whole number of blocks (at least the frames asked)
};
RingGeometry RingFor(uint32_t mtu, uint32_t frames, uint32_t page_size);

class PacketNic final : public Nic {
 public:
  // Opens cfg.queues sockets on the interface and maps their rings. Errors say which step failed
  // and, for a missing interface or permission, what to do.
  static absl::StatusOr<std::unique_ptr<PacketNic>> Open(const config::Nic& cfg, int index);
  ~PacketNic() override;

  const std::string& name() const override { return name_; }
  const std::string& device() const override { return device_; }
  uint16_t queues() const override { return static_cast<uint16_t>(queues_.size()); }
  bool rss() const override { return queues_.size() > 1; }
  bool rx_interrupts() const override { return true; }
  std::string mac() const override { return mac_; }
  const std::string& kernel_interface() const override { return args_.iface; }
  bool KernelInterfaceHere() const override;
  // A second socket on the interface (a new snapd's, during an upgrade) gets a copy of every frame.
  bool ReceivesCopies() const override { return true; }
  bool IsTap() const override { return false; }
  void Abandon() override {}  // closing packet sockets leaves the interface as it was
  std::unique_ptr<Port> TakeQueuePort(uint16_t q) override;
  NicStats Stats() const override;
  void ContinueFrom(const NicStats& before) override;

  struct Queue;  // one queue's socket and rings (packet_nic.cc)

 private:
  PacketNic() = default;
  NicStats CountedStats() const;

  std::string name_;
  std::string device_;
  PacketNicArgs args_;
  unsigned ifindex_ = 0;
  uint32_t mtu_ = 0;
  std::string mac_;
  std::vector<std::shared_ptr<Queue>> queues_;
  mutable Mutex stats_mu_;
  mutable uint64_t kernel_drops_ ABSL_GUARDED_BY(stats_mu_) = 0;  // PACKET_STATISTICS, summed
  NicStats carried_ ABSL_GUARDED_BY(stats_mu_);                   // ContinueFrom's `before`
  NicStats zero_ ABSL_GUARDED_BY(stats_mu_);                      // our counters at ContinueFrom
};

}  // namespace snapd

#endif  // SNAPD_SNAPD_DAEMON_PACKET_NIC_H_
