// vswitch: an L2 learning switch between NIC queues and app ports.
//  - Learns source MACs on NIC ports and ages them; an app's MAC is a static entry for its port.
//  - Broadcast and multicast go to every port but the one they came from; unknown unicast goes to
//    the NIC ports only (every app's MAC is known, so an app never sees another's unicast).
//  - Anti-spoofing on app ports: a frame whose source MAC is not the app's, an IPv4 packet whose
//    source is not the app's address, or an ARP whose sender is not the app, is dropped and counted
//    (PortStats::drop_spoofed). Malformed frames are dropped and counted (drop_malformed).
//  - Frames from apps are copied out of the app's memory before they are checked, so an app cannot
//    change a frame between the check and the send (the price: a second copy on the app path).
#ifndef SNAPD_ENGINES_VSWITCH_VSWITCH_ENGINE_H_
#define SNAPD_ENGINES_VSWITCH_VSWITCH_ENGINE_H_

#include <memory>
#include <string>
#include <vector>

#include "engines/engine.h"
#include "engines/frame.h"
#include "engines/vswitch/mac_table.h"
#include "engines/vswitch/vswitch.pb.h"

namespace snapd {

class VswitchEngine : public Engine {
 public:
  static constexpr absl::string_view kKind = "vswitch";

  VswitchEngine(std::string name, const engines::VswitchConfig& config);

  absl::string_view kind() const override { return kKind; }
  absl::Status AddPort(std::unique_ptr<Port> port,
                       const engines::PortAttachment& attachment) override;
  std::unique_ptr<Port> RemovePort(absl::string_view name) override;
  std::vector<std::string> PortNames() const override;
  void ForEachPort(const std::function<void(Port&)>& fn) override;

  // The port a frame to `mac` would go to ("" if it would be flooded). Engine thread only.
  std::string PortFor(uint64_t mac) const;

  // mac_table_full: frames whose source MAC was not learned because the table was full (they are
  // forwarded; frames back to that MAC flood until an entry ages out).
  void ForEachKindCounter(
      const std::function<void(absl::string_view name, uint64_t value)>& fn) const override;

 protected:
  uint32_t PollPorts(uint32_t* full_bursts) override;
  absl::Status SaveKindState(std::string* out) const override;
  absl::Status RestoreKindState(const std::string& in) override;

 private:
  struct Slot {
    std::unique_ptr<Port> port;  // null: a free slot
    bool is_app = false;
    uint64_t mac = 0;         // app: the only source MAC allowed
    uint32_t ipv4 = 0;        // app: the only IPv4 source allowed (network order), 0 for none
    std::vector<Packet> out;  // frames to transmit on this port in the current burst
    uint16_t link = 0;        // slots on one link (queues of one NIC) share this number
    bool floods = false;      // the one slot of its link that floods go out of
  };

  // Decides where one frame from port `in` goes, appending it to the output lists.
  void Forward(uint16_t in, const Packet& pkt, int64_t now);
  bool Spoofed(const Slot& slot, const FrameInfo& info) const;
  // Replaces the views of the n frames in rx_ with copies in app_copy_.
  void CopyOutOfApp(uint16_t n);
  void Flood(uint16_t in, const Packet& pkt, bool apps_too);
  void FlushOutputs();
  void ApplyPendingEntries();
  // Recomputes link numbers and which slot of each link carries floods.
  void RelinkSlots();

  const uint32_t burst_;
  const uint32_t max_frame_;
  MacTable macs_;
  Counter mac_table_full_;
  std::vector<Slot> slots_;
  std::vector<uint16_t> busy_outputs_;  // slots with frames in `out`
  std::vector<Packet> rx_;
  // Frames from apps are copied here before they are checked (burst x max frame bytes).
  std::vector<uint8_t> app_copy_;
  engines::VswitchState pending_;  // restored entries whose port is not attached yet
};

}  // namespace snapd

#endif  // SNAPD_ENGINES_VSWITCH_VSWITCH_ENGINE_H_
