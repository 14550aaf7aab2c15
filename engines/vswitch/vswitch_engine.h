// vswitch: an L2 learning switch between NIC queues and app ports.
//  - Learns source MACs on NIC ports and ages them; an app's MAC is a static entry for its port,
//    which evicts a learned entry if it must (see MacTable: bounded probing, a per-NIC limit).
//  - Broadcast and multicast go to every port but the one they came from; unknown unicast goes to
//    the NIC ports only (every app's MAC is known, so an app never sees another's unicast).
//  - Default-deny egress on app ports (CheckAppEgress in engines/frame.h): a frame an app may not
//    send (another source MAC or address, another ethertype, a tag or TPID it may not use, link-
//    local control frames, IPv6 it was not given, router advertisements, ...) is dropped and
//    counted, on the port (PortStats::drop_spoofed) and by reason (egress_drop_* kind counters).
//    Malformed frames are dropped and counted (drop_malformed).
//  - What each app floods (broadcast, multicast, unknown unicast) is rate limited by a token
//    bucket (VswitchConfig app_flood_rate, app_flood_burst; egress_drop_flood_rate).
//  - Frames from apps are copied out of the app's memory before they are checked, so an app cannot
//    change a frame between the check and the send (the price: a second copy on the app path).
#ifndef SNAPD_ENGINES_VSWITCH_VSWITCH_ENGINE_H_
#define SNAPD_ENGINES_VSWITCH_VSWITCH_ENGINE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engines/attached_ports.h"
#include "engines/engine.h"
#include "engines/frame.h"
#include "engines/vswitch/mac_table.h"
#include "engines/vswitch/vswitch.pb.h"

namespace snapd {

class VswitchEngine : public Engine {
 public:
  static constexpr absl::string_view kKind = "vswitch";

  // Checks the config (INVALID_ARGUMENT names the field) and builds the engine: what the
  // registered factory calls.
  static absl::StatusOr<std::unique_ptr<Engine>> Create(const std::string& name,
                                                        const engines::VswitchConfig& config);
  VswitchEngine(std::string name, const engines::VswitchConfig& config);

  absl::string_view kind() const override { return kKind; }
  absl::Status AddPort(std::unique_ptr<Port> port,
                       const engines::PortAttachment& attachment) override;
  // Also forgets every MAC the port had, learned or static.
  std::unique_ptr<Port> RemovePort(absl::string_view name) override;
  std::vector<std::string> PortNames() const override { return slots_.Names(); }
  void ForEachPort(const std::function<void(Port&)>& fn) override { slots_.ForEach(fn); }

  // The port a frame to `mac` would go to ("" if it would be flooded). Engine thread only.
  std::string PortFor(uint64_t mac) const;

  // mac_table_full: frames whose source MAC was not learned because every slot it may take was in
  // use (they are forwarded; frames back to that MAC flood). mac_learn_limit: likewise, because
  // its NIC holds mac_learn_limit learned MACs already (a known MAC that moves to such a NIC is
  // forgotten, and counted here too). mac_evicted: learned MACs evicted to make
  // room for an app's. mac_static_full: apps refused because their MAC's slots all hold other
  // apps' MACs. egress_drop_<reason>: frames from apps refused, by EgressVerdict;
  // egress_drop_flood_rate: floods from apps past their rate.
  void ForEachKindCounter(
      const std::function<void(absl::string_view name, uint64_t value)>& fn) const override;

 protected:
  uint32_t PollPorts(uint32_t* full_bursts) override;
  absl::Status SaveKindState(std::string* out) const override;
  absl::Status RestoreKindState(const std::string& in) override;

 private:
  // What the switch keeps for each port, in its slot of slots_; the slot's index is the port's
  // number in the MAC table.
  struct Slot {
    std::unique_ptr<Port> port;  // null: a free slot
    bool is_app = false;
    uint32_t mtu = 0;         // the port's mtu(): larger frames are dropped on the way out
    AppIdentity app;          // app: what it may send from
    std::vector<Packet> out;  // frames to transmit on this port in the current burst
    uint16_t link = 0;        // slots on one link (queues of one NIC) share this number
    bool floods = false;      // the one slot of its link that floods go out of
    uint16_t owner = 0;       // NIC: whose learned MACs count against one limit (stable)
    // App: its flood token bucket, in frame-nanoseconds (a frame costs kNsPerSecond), as of
    // flood_at (engine time).
    int64_t flood_tokens = 0;
    int64_t flood_at = 0;
  };

  // Decides where one frame from port `in` goes, appending it to the output lists.
  void Forward(uint16_t in, const Packet& pkt, int64_t now);
  // Replaces the views of the n frames in rx_ with copies in app_copy_.
  void CopyOutOfApp(uint16_t n);
  void Flood(uint16_t in, const Packet& pkt, bool tagged, bool apps_too);
  // Queues `pkt` (VLAN-tagged or not) to go out on slot `out`, or drops it, counted, if it
  // exceeds the port's MTU.
  void Output(uint16_t out, const Packet& pkt, bool tagged);
  // Takes a token from app slot `s`'s flood bucket at `now`; false (and counted) if it has none.
  bool TakeFloodToken(Slot& s, int64_t now);
  void FlushOutputs();
  void ApplyPendingEntries();
  // Recomputes link numbers and which slot of each link carries floods.
  void RelinkSlots();
  // The MAC-table owner for a NIC port on `link`: that of the link's other queues, else the
  // smallest one no attached NIC uses; -1 if none is left.
  int OwnerFor(const std::string& link) const;
  // Fills *app from an app port's attachment; INVALID_ARGUMENT names what is wrong.
  static absl::Status AppFromAttachment(const std::string& port,
                                        const engines::PortAttachment& attachment,
                                        AppIdentity* app);
  // Calls fn(name, counter) for each kind counter of `self` (a VswitchEngine, const or not).
  template <typename Self, typename Fn>
  static void ForEachCounter(Self& self, Fn fn);

  const uint32_t burst_;
  const uint32_t max_frame_;
  // Flood buckets: tokens (frame-nanoseconds) per nanosecond, the most a bucket holds, and the
  // time an empty bucket takes to fill.
  const int64_t flood_rate_;
  const int64_t flood_capacity_;
  const int64_t flood_fill_ns_;
  MacTable macs_;
  int64_t next_sweep_ns_ = 0;  // when PollPorts next reclaims aged MACs (a few slots a time)
  Counter mac_table_full_;
  Counter mac_learn_limit_;
  Counter mac_evicted_;
  Counter mac_static_full_;
  Counter egress_drops_[kEgressVerdicts];  // by EgressVerdict (kAllow's unused)
  Counter egress_drop_flood_rate_;
  AttachedPorts<Slot> slots_{MacTable::kNoPort};  // port numbers stay below kNoPort
  std::vector<uint16_t> busy_outputs_;            // slots with frames in `out`
  std::vector<Packet> rx_;
  // Frames from apps are copied here before they are checked (burst x max frame bytes).
  std::vector<uint8_t> app_copy_;
  engines::VswitchState pending_;  // restored entries whose port is not attached yet
};

}  // namespace snapd

#endif  // SNAPD_ENGINES_VSWITCH_VSWITCH_ENGINE_H_
