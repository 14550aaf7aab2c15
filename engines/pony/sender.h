// Sender: the sending half of one pony connection. It cuts the app's messages into DATA packets
// of at most `mss` bytes, one sequence number each, and decides what may go now: lost packets
// first, then new ones, within the congestion window (Swift, swift.h) and the receiver's credit.
// Acknowledgements (cumulative and SACK) retire packets and give round-trip and delay samples; a
// packet three later ones were SACKed past is lost (fast retransmit); the oldest packet's
// retransmission timeout (RFC 6298's estimator, doubled at each expiry) marks every unacknowledged
// packet lost. A message is done, and its token handed back for the app's SENT, when the
// cumulative ack passes its last packet.
//
// Credit: the receiver reserves a message's whole length when its first segment arrives, and
// advertises what is left. A message may start only when its length fits the credit less the
// messages started that the receiver may not have seen yet.
//
// Pure and single-threaded (the engine's thread); times are the engine's clock in nanoseconds.
#ifndef SNAPD_ENGINES_PONY_SENDER_H_
#define SNAPD_ENGINES_PONY_SENDER_H_

#include <cstdint>
#include <deque>
#include <string>
#include <utility>
#include <vector>

#include "engines/pony/pony.pb.h"
#include "engines/pony/swift.h"
#include "engines/pony/wire.h"

namespace snapd::pony {

struct SenderOptions {
  uint32_t mss = 1400;                // segment bytes per packet
  int64_t initial_rto_ns = 10000000;  // before any round trip was measured
  // 4 ms: a round trip between two hosts' engines that sleep when idle is tens of microseconds, but
  // its tail on a shared core (the scheduler's latency with a few runnable threads) is
  // milliseconds, and a spurious timeout costs the whole window.
  int64_t min_rto_ns = 4000000;
  int64_t max_rto_ns = 100000000;  // 100 ms
  // Consecutive expiries before the peer is given up: 20, about 1.6 s at the largest timeout,
  // room for a peer's snapd to restart after a crash and RESYNC.
  int max_timeouts = 20;
  SwiftParams swift;
};

// One packet to put on the wire: the header fields the sender owns, and the segment's bytes.
struct Outgoing {
  uint32_t seq = 0;
  uint32_t msg_id = 0;
  uint32_t msg_len = 0;
  uint32_t msg_offset = 0;
  uint8_t flags = 0;  // kFlagRetransmit, kFlagAckNow
  const uint8_t* data = nullptr;
  uint32_t len = 0;
};

class Sender {
 public:
  // `first_seq`: this side's initial sequence number plus one; `credit`: what the peer's SYN or
  // SYN_ACK advertised; `first_id`: the first message's id (a connection picked up again after a
  // RESYNC goes on with the ids it had).
  Sender(uint32_t first_seq, uint32_t credit, const SenderOptions& options = SenderOptions(),
         uint32_t first_id = 1);

  // Queues a message (1 byte or more) for sending; `token` comes back from PopCompleted once the
  // peer has it. Returns its message id.
  uint32_t Queue(std::string message, uint32_t token);

  // The next packet that may go at `now_ns`, if any (false: nothing to send, or the window, the
  // credit or pacing holds it back). `out`'s data stays valid until the packet's message is done.
  bool NextPacket(int64_t now_ns, Outgoing* out);

  // An ACK from the peer (parsed by ParsePonyHeader), at `now_ns`. False if it acknowledges what
  // was never sent: the connection is broken (reset it).
  bool OnAck(const PonyHeader& ack, int64_t now_ns);
  // Whether `ack` acknowledges only what was sent (OnAck's first check, on its own: after a
  // RESYNC, acknowledgements of the sequence numbers before it are stale, not broken).
  bool AcksOnlySent(const PonyHeader& ack) const;

  // When OnTimer should run next (INT64_MAX: nothing in flight), and running it: expired
  // retransmission timeouts mark packets lost. dead() once the peer stayed silent through
  // max_timeouts expiries in a row.
  int64_t NextTimerNs() const;
  void OnTimer(int64_t now_ns);
  bool dead() const { return dead_; }

  // Blocked on the receiver's credit with nothing in flight, the sender learns of new room only
  // from an ACK the receiver sends when its app reads; if that ACK is lost, nothing would move. So,
  // while so blocked, a probe is due every retransmission timeout: the engine sends an ACK with
  // kFlagAckNow, which the receiver answers with its credit. The same while everything sent is
  // SACKed and held (HeldBlocked). True once per due probe. Each probe left unanswered doubles the
  // wait for the next (up to max_rto_ns); after max_timeouts of them in a row the peer is given up
  // (dead()), as a peer silent through retransmission timeouts is. Any ACK answers.
  bool ProbeDue(int64_t now_ns);

  // Tokens of messages the peer acknowledged whole, in the order they were queued.
  bool PopCompleted(uint32_t* token);

  // The peer restarted and asks for everything from message `deliver_from` on (RESYNC): the
  // tokens of the messages before it (its app has them: they are done) and, in order, the
  // messages from it on (to queue again in a Sender made from `deliver_from`). False if
  // `deliver_from` is not a message this sender holds or the next one it would send (the peer
  // contradicts what it acknowledged).
  bool TakeMessages(uint32_t deliver_from, std::vector<uint32_t>* done,
                    std::vector<std::pair<std::string, uint32_t>>* rest);
  // The id the next queued message gets.
  uint32_t next_id() const { return next_id_; }

  // The next sequence number a new packet gets (a FIN takes it).
  uint32_t next_seq() const { return next_seq_; }
  bool idle() const { return inflight_.empty() && messages_.empty(); }
  uint32_t packets_in_flight() const { return in_flight_; }
  int64_t srtt_ns() const { return srtt_ns_; }
  int64_t rto_ns() const { return rto_ns_; }
  const Swift& swift() const { return swift_; }
  uint64_t retransmits() const { return retransmits_; }
  uint64_t fast_retransmits() const { return fast_retransmits_; }
  uint64_t timeouts() const { return timeouts_; }
  // One line of the sender's state, for logs and tests.
  std::string DebugString() const;

  // What an upgrade carries: everything, unacknowledged messages included. Restore takes it into a
  // Sender made with the same options; false (and the sender unusable) if it is inconsistent.
  void Save(engines::PonySenderState* out) const;
  bool Restore(const engines::PonySenderState& in);

 private:
  struct Sent {
    uint32_t msg_index;  // into messages_, from its front: see Message
    uint32_t offset, len;
    int64_t sent_ns = 0;
    bool acked = false;  // SACKed (cumulatively acked packets leave inflight_)
    bool lost = false;   // to send again
    bool sent_twice = false;
  };
  struct Message {
    uint32_t id;
    uint32_t token;
    std::string bytes;
    uint32_t next_offset = 0;  // bytes cut into packets so far
    uint32_t first_seq = 0;    // its first packet's sequence number, once started
    uint32_t last_seq = 0;     // its last packet's, once cut whole
    bool seen = false;         // the peer has acknowledged a packet of it (its credit counts it)
  };

  Message& MessageOf(const Sent& s) { return messages_[s.msg_index - messages_base_]; }
  bool MayStart(const Message& m) const;
  bool CreditBlocked() const;
  // Everything sent is SACKed and not cumulatively acknowledged: the receiver holds it for its
  // app (kCapResync), and only an ACK it sends when its app reads moves it on. If that ACK is
  // lost, nothing would: so a probe is due then too.
  bool HeldBlocked() const;
  void Fill(const Sent& s, uint32_t seq, uint8_t flags, Outgoing* out);
  void MarkSeen(uint32_t seq);
  void RttSample(int64_t rtt_ns);
  void Retire();

  SenderOptions o_;
  Swift swift_;
  uint32_t una_;               // the oldest sequence number not cumulatively acknowledged
  uint32_t next_seq_;          // the next new one
  std::deque<Sent> inflight_;  // [una_, next_seq_)
  // How many of inflight_'s first entries are SACKed: scans for what is unacknowledged start
  // past them (a receiver that holds its acknowledgement for its app SACKs a long run there).
  size_t acked_prefix_ = 0;
  uint32_t in_flight_ = 0;        // sent, neither acked nor lost
  std::deque<Message> messages_;  // queued and not done, in id order
  uint32_t messages_base_ = 0;    // the index of messages_.front() (Sent::msg_index counts on)
  uint32_t next_id_ = 1;
  uint32_t cut_ = 0;         // the message being cut into packets (index from messages_.front())
  uint32_t lost_count_ = 0;  // packets marked lost and not yet sent again
  uint32_t peer_credit_;
  uint32_t unseen_reserved_ = 0;  // lengths of started messages the peer has not acknowledged
  std::deque<uint32_t> completed_;
  int64_t srtt_ns_ = 0, rttvar_ns_ = 0, rto_ns_;
  int64_t next_paced_ns_ = 0;
  int64_t probe_at_ns_ = 0;    // when the next probe is due while blocked (0: not armed)
  int probes_unanswered_ = 0;  // probes sent since the peer's last ACK
  int timeouts_in_row_ = 0;
  bool dead_ = false;
  uint64_t retransmits_ = 0, fast_retransmits_ = 0, timeouts_ = 0;
};

}  // namespace snapd::pony

#endif  // SNAPD_ENGINES_PONY_SENDER_H_
