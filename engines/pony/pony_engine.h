// pony: snapd's transport engine. It owns NIC queues and app ports, and gives the apps reliable,
// in-order messages to apps on other hosts, over UDP/IPv4 (docs/pony.md: the wire format and the
// app's operations).
//
//  - The NIC side: ARP for the engine's address and its peers', IPv4 and UDP framing with
//    checksums, and pony packets, parsed as untrusted input (ParsePonyHeader) and dropped by
//    reason. Frames that are not pony's (other addresses, other protocols) are counted and left.
//  - Connections between (host, app) pairs: SYN, SYN_ACK, FIN, RST; each has a Sender (sender.h:
//    segmentation, acknowledgements, retransmission, Swift congestion control, pacing) and a
//    Receiver (receiver.h: reassembly, in-order delivery, SACK, credit).
//  - The app side: one operation per memif frame (app_ops.h), parsed as untrusted input. An app
//    owns the connections it opened or was offered; its operations on any other are dropped and
//    counted. What goes back to an app (CONNECTED, SENT, RECEIVED, CLOSED, ...) waits in the
//    engine while the app's ring is full, and a connection's unread messages count against the
//    credit its peer sees: a slow app slows its senders, and nothing is dropped.
//  - An app that goes away (its port removed) resets its connections at their peers; a peer that
//    stops answering times out and its app is told.
//
// Timed work (retransmissions, probes, handshakes, ARP) runs in Poll; NextDeadlineNs tells a
// sleeping worker when it is due.
#ifndef SNAPD_ENGINES_PONY_PONY_ENGINE_H_
#define SNAPD_ENGINES_PONY_PONY_ENGINE_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"
#include "engines/attached_ports.h"
#include "engines/engine.h"
#include "engines/pony/journal.h"
#include "engines/pony/pony.pb.h"
#include "engines/pony/receiver.h"
#include "engines/pony/sender.h"
#include "engines/pony/wire.h"
#include "ipc/pony_ops.h"

namespace snapd {

// Why a connection an app asked for failed, or was closed, beyond the wire's RST reasons
// (AppOp::code in REFUSED and CLOSED).
enum class PonyAppCode : uint16_t {
  kClean = 0,
  // 1..6: pony::ResetReason, as the peer (or this engine) reset it.
  kUnreachable = 100,  // the address is not on the engine's link, or did not answer ARP
  kNoResources = 101,  // the engine holds max_connections already
};

class PonyEngine : public Engine {
 public:
  static constexpr absl::string_view kKind = "pony";

  // Checks the config (INVALID_ARGUMENT names the field) and builds the engine: what the
  // registered factory calls.
  static absl::StatusOr<std::unique_ptr<Engine>> Create(const std::string& name,
                                                        const engines::PonyConfig& config);
  ~PonyEngine() override;

  absl::string_view kind() const override { return kKind; }
  // An app port needs the app's id (attachment.app_id, 1..65535), unique on the engine.
  absl::Status AddPort(std::unique_ptr<Port> port,
                       const engines::PortAttachment& attachment) override;
  // An app port's connections are reset at their peers (RST "app gone").
  std::unique_ptr<Port> RemovePort(absl::string_view name) override;
  std::vector<std::string> PortNames() const override { return slots_.Names(); }
  void ForEachPort(const std::function<void(Port&)>& fn) override { slots_.ForEach(fn); }
  int64_t NextDeadlineNs() const override { return next_deadline_ns_; }

  // drop_<wire error>, op_drop_<app op error> and the engine's own counters (pony_engine.cc).
  void ForEachKindCounter(
      const std::function<void(absl::string_view name, uint64_t value)>& fn) const override;

  std::vector<ConnectionInfo> Connections() const override;
  // The journal (journal.h): every connection both ends opened with kCapResync, picked up again
  // after a crash by RESYNC.
  size_t CheckpointBytes() const override;
  absl::StatusOr<std::string> UseCheckpoint(void* memory, size_t bytes, bool recover) override;
  // The engine's address (network order) and MAC.
  uint32_t ip() const { return ip_; }
  uint64_t mac() const { return mac_; }

  struct Conn;  // pony_engine.cc

 protected:
  uint32_t PollPorts(uint32_t* full_bursts) override;
  absl::Status SaveKindState(std::string* out) const override;
  absl::Status RestoreKindState(const std::string& in) override;

 private:
  struct Slot {
    std::unique_ptr<Port> port;
    bool is_app = false;
    uint16_t app_id = 0;
    // App: operations for the app that belong to no connection (a refused CONNECT).
    std::deque<pony::AppOp> outbox;
  };
  // Frames being built for one NIC queue, sent in one burst.
  struct NicOut {
    std::vector<uint8_t> scratch;
    std::vector<Packet> pkts;
    uint32_t used = 0;
  };

  PonyEngine(std::string name, const engines::PonyConfig& config, uint32_t ip, uint32_t mask,
             uint64_t mac);

  // The NIC side.
  void HandleWireFrame(size_t slot, const Packet& pkt, int64_t now);
  void HandleArp(const uint8_t* arp, uint32_t len, uint64_t src_mac);
  void HandlePony(const pony::PonyHeader& h, const uint8_t* payload, uint32_t len, uint32_t src_ip,
                  uint64_t src_mac, uint16_t src_port, int64_t now);
  void HandleSyn(const pony::PonyHeader& h, uint32_t src_ip, uint64_t src_mac, uint16_t src_port,
                 int64_t now);
  void SendArp(uint16_t op, uint64_t dst_mac, uint32_t target_ip);
  // Queues one pony packet to `c`'s peer (header fields the connection owns filled in here).
  void SendPony(Conn& c, pony::PonyHeader& h, const uint8_t* payload, uint32_t len, int64_t now);
  // A RST to a packet's sender that has no connection here.
  void SendStrayReset(const pony::PonyHeader& h, uint32_t src_ip, uint64_t src_mac,
                      uint16_t src_port, pony::ResetReason reason, int64_t now);
  // Room for one frame on a NIC queue (flushing it when full); nullptr without NIC ports.
  uint8_t* FrameRoom(uint32_t len, NicOut** out);
  void FlushNic();
  void SendAck(Conn& c, uint8_t flags, int64_t now);
  // The cumulative acknowledgement `c`'s peer is told: what the app was handed (kCapResync) or
  // what was received.
  uint32_t AckPoint(const Conn& c) const;
  // Whether `c` must send an ACK at the end of this poll (what it owes rode on no DATA packet).
  bool AckNeeded(const Conn& c) const;
  // An acknowledgement from the peer (an ACK, or what a DATA packet carries): retires what it
  // acknowledges. False if it broke the connection (then reset).
  bool TakeAck(Conn& c, const pony::PonyHeader& h, int64_t now);
  // The peer's app has the message sent with `token`: SENT for c's app, out of its budget.
  void MessageDone(Conn& c, uint32_t token);

  // Connections.
  Conn* Find(uint32_t id);
  Conn* NewConn(uint16_t app, uint32_t peer_ip, uint16_t peer_app, int64_t now);
  void FreeConn(Conn& c);
  // `resync`: the peer said kCapResync.
  void Open(Conn& c, uint32_t peer_seq, uint32_t peer_credit, bool resync);
  // The segment size for a connection opened now (the NICs' MTU less the headers).
  uint32_t Mss() const;
  // Ends the connection with `code`; sends a RST with `reason` first when `reset` is set.
  void Finish(Conn& c, uint16_t code, bool reset, pony::ResetReason reason, int64_t now);
  void StartConnect(Conn& c, int64_t now);
  void SendSyn(Conn& c, int64_t now);
  void RunTimers(Conn& c, int64_t now);
  // RESYNC (docs/pony.md): a connection picked up from the journal asks its peer (`ask`), and a
  // peer answers. Complete: the restarted side, on the answer (or on its peer's own RESYNC, when
  // both restarted). Answer: the side that did not restart starts its halves afresh.
  void SendResync(Conn& c, bool ask, int64_t now);
  void CompleteResync(Conn& c, const pony::PonyHeader& h, int64_t now);
  void AnswerResync(Conn& c, const pony::PonyHeader& h, int64_t now);
  // The journal's side of a connection (no-ops while the engine keeps none, or `c` is not kept).
  pony::Journal::Shape JournalShape() const;
  void StartJournal(Conn& c);
  void StopJournal(Conn& c);
  void CommitJournal(Conn& c);
  // The app frame being handled is c's (its journal record says so, with the burst's place);
  // and, once an app's burst is released, no record says so any more.
  void MarkAppFrame(Conn& c);
  // An app port attached: its picked-up connections' bursts under way when the engine died went
  // or did not, as its ring's cursor says.
  void ResolvePendingBursts(Slot& s);
  void AppBurstReleased(uint16_t app);
  void PushData(Conn& c, int64_t now);

  // The app side.
  void HandleAppFrame(size_t slot, const Packet& pkt, int64_t now);
  void AppSend(Conn& c, const pony::AppOp& op, const uint8_t* bytes, uint32_t len, int64_t now);
  // Hands the app what waits for it on `c` (or in the slot's outbox), as far as its ring takes.
  void Deliver(Conn& c);
  void DeliverOutbox(Slot& s);
  size_t AppSlot(uint16_t app_id) const;

  template <typename Self, typename Fn>
  static void ForEachCounter(Self& self, Fn fn);

  const uint32_t ip_;    // network order
  const uint32_t mask_;  // network order
  const uint64_t mac_;
  const uint16_t udp_port_;
  const uint32_t max_message_;
  const uint32_t buffer_bytes_;
  const uint32_t max_conns_;
  const uint32_t burst_;
  const uint32_t mss_config_;
  const uint64_t max_buffered_;
  const uint32_t max_per_peer_;
  uint64_t buffered_ = 0;  // over every connection: its Receiver's bytes and what waits for its app
  pony::SenderOptions sender_options_;

  AttachedPorts<Slot> slots_;
  std::vector<size_t> nic_slots_;  // indices of NIC slots, for transmit
  std::vector<NicOut> nic_out_;    // parallel to nic_slots_
  std::vector<Packet> rx_;
  std::vector<std::unique_ptr<Conn>> conns_;  // by slot; null: free
  std::vector<uint32_t> live_;                // slots in use
  uint32_t generation_ = 0;
  std::unordered_map<uint32_t, uint64_t> neighbors_;  // IPv4 (network order) -> MAC
  std::vector<uint8_t> app_scratch_;
  std::vector<Packet> app_pkts_;
  int64_t next_deadline_ns_ = INT64_MAX;
  // Saved for an upgrade: the connections live on in the new snapd (see SaveKindState).
  mutable bool handed_over_ = false;
  pony::Journal journal_;
  int64_t burst_cursor_ = -1;     // the app burst being handled: RxCursor (-1: none)
  uint16_t burst_index_ = 0;      // and the frame's index in it
  std::vector<uint32_t> marked_;  // connections whose record names the burst
  uint32_t replay_checks_ = 0;    // connections with replay_check set

  // Counters (the wire's and the app ops' by reason; the rest by name in ForEachCounter).
  Counter wire_drops_[16];
  Counter op_drops_[16];
  Counter rx_not_pony_, drop_bad_checksum_, drop_fragment_, drop_unknown_connection_,
      drop_wrong_peer_, drop_over_credit_, drop_not_open_, drop_protocol_error_,
      op_drop_unknown_connection_, op_drop_over_budget_, op_drop_out_of_order_, drop_memory_full_,
      tx_nic_full_, arp_requests_, arp_replies_, arp_table_full_, connections_opened_,
      connections_accepted_, connections_refused_, connections_closed_, resets_sent_,
      resets_received_, timeouts_, retransmits_, messages_sent_, messages_received_, resyncs_,
      resyncs_answered_, journal_overflows_, journal_dropped_, drop_stale_, app_frames_replayed_,
      app_bursts_went_;
};

}  // namespace snapd

#endif  // SNAPD_ENGINES_PONY_PONY_ENGINE_H_
