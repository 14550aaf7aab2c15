// Receiver: the receiving half of one pony connection. It takes DATA segments as they come (in
// any order, duplicated, from a sender that may be hostile), reassembles messages, hands whole
// messages to the app in the order they were sent, and says what to acknowledge: the cumulative
// ack, up to four SACK blocks, and the credit (the room left for what the app has not read).
//
// Memory is bounded by `budget` bytes of message data: a sender that sends past the credit it was
// given has the excess dropped (counted), not buffered. A segment that contradicts what the
// connection already knows (another length for a message, a message id far ahead) is a protocol
// error: the connection is reset.
//
// Pure and single-threaded (the engine's thread).
#ifndef SNAPD_ENGINES_PONY_RECEIVER_H_
#define SNAPD_ENGINES_PONY_RECEIVER_H_

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "engines/pony/pony.pb.h"
#include "engines/pony/wire.h"

namespace snapd::pony {

class Receiver {
 public:
  // Sequence numbers the receiver tracks past the cumulative ack, and messages past the next one
  // to deliver: a sender ahead of either is breaking the protocol.
  static constexpr uint32_t kSeqWindow = pony::kSeqWindow;
  static constexpr uint32_t kMessageWindow = pony::kMessageWindow;

  // `first_seq`: the sender's initial sequence number plus one (from its SYN); `budget`: bytes of
  // message data this connection may hold; `first_message`: the first message's id (after a
  // RESYNC, the next one the app is to be handed).
  Receiver(uint32_t first_seq, uint32_t budget, uint32_t max_message, uint32_t first_message = 1);
  // The id of the next message to become whole in order.
  uint32_t next_message() const { return next_message_; }

  enum class Verdict {
    kAccepted,       // new data, taken
    kDuplicate,      // already had it (a retransmission): acknowledge again
    kOverCredit,     // past the credit given: dropped, not acknowledged
    kProtocolError,  // contradicts the connection: reset it
  };
  // One DATA segment (`h` parsed by ParsePonyHeader, `bytes` its segment).
  Verdict OnData(const PonyHeader& h, const uint8_t* bytes, uint32_t len);

  // Whole messages ready for the app, in order; the app takes them with PopMessage.
  bool HasMessage() const { return !ready_.empty(); }
  size_t ready_count() const { return ready_.size(); }
  // `end_seq`, if given: one past the sequence number of the message's last segment (the sender
  // cuts messages into consecutive sequence numbers, so the next message starts there).
  std::string PopMessage(uint32_t* end_seq = nullptr);

  // What the next ACK says.
  uint32_t cumulative_ack() const { return next_seq_; }
  // Ranges received past the cumulative ack, the highest first (the most recent news), at most
  // kMaxSackBlocks of them; returns how many. With `held` (a sequence number at or before the
  // cumulative ack, where an engine that acknowledges only what its app was handed holds the
  // acknowledgement), [held, cumulative ack) is the last block, always there (one block fewer
  // for the gaps).
  int SackBlocks(SackBlock* out) const { return SackBlocks(out, next_seq_); }
  int SackBlocks(SackBlock* out, uint32_t held) const;
  // Whether anything past the cumulative ack was received (an ACK then needs SACK blocks).
  bool HasGaps() const { return seen_span_ > 0; }
  // Bytes the sender may still send: the budget less what is buffered (reassembling or unread).
  uint32_t credit() const { return budget_ - buffered_; }
  // Bytes held: reassembling and whole but not yet taken.
  uint32_t buffered() const { return buffered_; }
  // Whether a segment of message `msg_id` would reserve room (a message not yet seen, not one
  // delivered or being reassembled).
  bool WouldReserve(uint32_t msg_id) const {
    return !SeqBefore(msg_id, next_message_) && partial_.find(msg_id) == partial_.end();
  }

  uint64_t duplicates() const { return duplicates_; }
  uint64_t over_credit() const { return over_credit_; }
  const char* error() const { return error_; }

  // What an upgrade carries: everything, partly reassembled and unread messages included. Restore
  // takes it into a Receiver made with the same budget and maximum; false if it is inconsistent.
  void Save(engines::PonyReceiverState* out) const;
  bool Restore(const engines::PonyReceiverState& in);

 private:
  struct Partial {
    std::string bytes;
    uint32_t received = 0;
    bool complete = false;
    uint32_t end_seq = 0;  // one past its last segment's sequence number, once that came
  };
  struct Ready {
    std::string bytes;
    uint32_t end_seq;
  };
  bool Seen(uint32_t seq) const;
  void MarkSeen(uint32_t seq);
  void Advance();
  Verdict Fail(const char* why);

  uint32_t next_seq_;                    // every sequence number before it was received
  std::vector<bool> seen_;               // seen_[(seq - next_seq_)] for seq past next_seq_, ring
  uint32_t seen_base_ = 0;               // index in seen_ of next_seq_
  uint32_t seen_span_ = 0;               // offsets past next_seq_ below which anything was seen
  uint32_t next_message_ = 1;            // the next message id to deliver
  std::map<uint32_t, Partial> partial_;  // by message id (at most kMessageWindow)
  std::deque<Ready> ready_;
  const uint32_t budget_;
  const uint32_t max_message_;
  uint32_t buffered_ = 0;
  uint64_t duplicates_ = 0;
  uint64_t over_credit_ = 0;
  const char* error_ = nullptr;
};

}  // namespace snapd::pony

#endif  // SNAPD_ENGINES_PONY_RECEIVER_H_
