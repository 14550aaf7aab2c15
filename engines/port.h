// Port: where an engine takes frames from and puts frames to. A port is a NIC queue (snapd/) or an
// app's memif queue pair; engines see only this interface, and own each port they hold: only the
// engine's thread calls Receive, Release and Transmit.
//
// Burst semantics, as DPDK's: Receive returns views of up to `max` frames that stay valid until
// Release; Transmit copies frames out (the views may point into another port's memory) and returns
// how many it took; the rest were not sent and the caller counts them as dropped.
#ifndef SNAPD_ENGINES_PORT_H_
#define SNAPD_ENGINES_PORT_H_

#include <cstdint>
#include <string>

#include "base/counter.h"

namespace snapd {

// A view of one frame's bytes.
struct Packet {
  uint8_t* data;
  uint32_t len;
};

enum class PortKind { kNic, kApp };

// Every port counter, declared once: X(name, column, meaning). PortStats, an upgrade's saved
// counters (engines::PortCounters in engine.proto), the API's (v1::PortStats in
// control/proto/snapd.proto) and the counters tables (column; "" for none) are generated from
// this list: a new counter is one line here and a field of the same name in those two messages.
#define SNAPD_PORT_COUNTERS(X)                                                                \
  X(rx_frames, "rx_frames", "frames received")                                                \
  X(rx_bytes, "", "bytes received")                                                           \
  X(tx_frames, "tx_frames", "frames sent")                                                    \
  X(tx_bytes, "", "bytes sent")                                                               \
  X(tx_dropped, "tx_drop", "frames an engine gave that the port had no room for")             \
  X(drop_malformed, "malformed", "frames an engine dropped as malformed")                     \
  X(drop_spoofed, "spoofed", "frames an engine dropped for a source the port may not use")    \
  X(drop_oversize, "oversize", "frames an engine dropped for exceeding the port's MTU")       \
  X(rx_errors, "rx_err", "frames the port could not deliver (bad descriptor, multi-segment)") \
  X(drop_takeover, "takeover", "frames a NIC queued while an upgrade handed it over, discarded")

struct alignas(64) PortStats {
#define SNAPD_PORT_COUNTER_FIELD(name, column, meaning) Counter name;
  SNAPD_PORT_COUNTERS(SNAPD_PORT_COUNTER_FIELD)
#undef SNAPD_PORT_COUNTER_FIELD
};

// Sees the frames a port receives and sends while a capture runs on it (snapd/daemon/capture.h).
// Called on the engine's thread, after Receive with the frames it gave, and after Transmit with
// the frames it took; it must not keep the views.
class PortTap {
 public:
  virtual ~PortTap() = default;
  virtual void Frames(const Packet* pkts, uint16_t n, bool sent) = 0;
};

class Port {
 public:
  virtual ~Port() = default;

  // A name unique within snapd that stays the same across restarts and upgrades: "nic0/q1",
  // "app7".
  const std::string& name() const { return name_; }
  PortKind kind() const { return kind_; }
  // The wire this port is one queue of: queues of one NIC share a link ("nic0"), and a switch
  // never forwards between them nor floods to more than one of them. An app port is its own link.
  const std::string& link() const { return link_; }

  // Without a tap (no capture), one predictable branch a burst on top of the port's own work.
  uint16_t Receive(Packet* pkts, uint16_t max) {
    const uint16_t n = DoReceive(pkts, max);
    if (__builtin_expect(tap_ != nullptr, 0) && n > 0) tap_->Frames(pkts, n, false);
    return n;
  }
  virtual void Release() = 0;
  uint16_t Transmit(const Packet* pkts, uint16_t n) {
    const uint16_t sent = DoTransmit(pkts, n);
    if (__builtin_expect(tap_ != nullptr, 0) && sent > 0) tap_->Frames(pkts, sent, true);
    return sent;
  }
  // The capture that sees this port's frames (nullptr: none). Engine thread only.
  void set_tap(PortTap* tap) { tap_ = tap; }
  PortTap* tap() const { return tap_; }

  // How long frame `index` of the last Receive had waited in the port (from the kernel's receive
  // timestamp to Receive), or -1 where the port cannot tell. Engine thread only, before Release.
  // A transport's delay samples leave out the time its own host took to look (pony, as Swift
  // does with NIC timestamps).
  virtual int64_t RxAgeNs(uint16_t index) const { return -1; }
  // Where the frames of the next Receive start (until Release: of the last one), in a numbering
  // the port's other end keeps, so that it survives a crash of this process: an app ring's
  // consumer cursor. A process that dies before Release is served those frames again by its
  // successor; an engine that journaled what a frame did (pony) knows it by this and the frame's
  // index in the burst. -1: the port cannot tell.
  virtual int64_t RxCursor() const { return -1; }
  // Where the next Transmit's frames go, in a numbering the other end keeps (an app ring's
  // producer cursor): it moved once frames went, whatever became of this process. -1: cannot tell.
  virtual int64_t TxCursor() const { return -1; }
  // How many of `pkts` Transmit would take now (all of them where the port cannot tell). An
  // engine that journals a burst before it goes sends no more than this, so that the burst goes
  // whole or not at all.
  virtual uint16_t TxWouldTake(const Packet* pkts, uint16_t n) const { return n; }

  // The largest payload (the bytes after the Ethernet header and one VLAN tag) a frame sent on
  // this port may carry; 0 for no limit. Engines drop larger frames and count them
  // (drop_oversize).
  virtual uint32_t mtu() const { return 0; }

  // True while the port works; false once its peer broke the protocol (the control plane then
  // removes it).
  virtual bool healthy() const { return true; }

  // For an idle worker that wants to block instead of spin. wake_fd() turns readable when frames
  // arrive while the port is armed; -1 means the port cannot wake anyone and must be polled (a
  // NIC queue without rx interrupts). Arm, then check Pending() before blocking: a frame that came
  // before the arming raised no wake-up.
  virtual int wake_fd() const { return -1; }
  // False when a wake-up may be missed (the worker then still bounds its sleep).
  virtual bool wake_reliable() const { return wake_fd() >= 0; }
  virtual void ArmWake(bool armed) {}
  virtual bool Pending() const { return false; }
  virtual void DrainWake() {}

  PortStats& stats() { return stats_; }
  const PortStats& stats() const { return stats_; }

 protected:
  Port(std::string name, PortKind kind, std::string link = "")
      : name_(std::move(name)), kind_(kind), link_(link.empty() ? name_ : std::move(link)) {}

  // The port's own Receive and Transmit, as their wrappers above say.
  virtual uint16_t DoReceive(Packet* pkts, uint16_t max) = 0;
  virtual uint16_t DoTransmit(const Packet* pkts, uint16_t n) = 0;

 private:
  const std::string name_;
  const PortKind kind_;
  const std::string link_;
  PortStats stats_;
  PortTap* tap_ = nullptr;
};

}  // namespace snapd

#endif  // SNAPD_ENGINES_PORT_H_
