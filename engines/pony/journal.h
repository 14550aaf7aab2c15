// Journal: what a pony engine keeps of its connections in memory that outlives the process (a
// memfd that systemd's fd store, or any supervisor, holds across a crash), so that an engine
// restarted after kill -9 picks its connections up again with their peers (RESYNC, docs/pony.md)
// instead of resetting them.
//
// What is kept is only what cannot be had again from anyone else:
//  - each connection's identity (its id, its peer host, app and connection, its app);
//  - how far its app was handed the peer's messages (the next message, and bytes of it): the rest
//    the peer still holds, since an engine that journals acknowledges only what its app was handed
//    (kCapResync);
//  - the messages its app sent that its app was not yet told SENT for, whole, and the one being
//    assembled from the app's SEND frames: the app gave them up once the engine took its frames.
// Everything else (sequence numbers, what is in flight, congestion state) starts afresh at the
// RESYNC.
//
// Layout: a header, one record per connection slot, one byte ring per slot. A record is committed
// whole (two copies and an index: a process that dies while writing one leaves the other), after
// the bytes it points at were written; so whatever instant the process dies at, the journal says
// what was true at one of its commits. The pages of a slot's ring are touched only as it is used.
//
// Engine thread only. Everything read back on recovery is checked (a journal is memory another
// process wrote): a bad record is dropped and said, the others come back.
#ifndef SNAPD_ENGINES_PONY_JOURNAL_H_
#define SNAPD_ENGINES_PONY_JOURNAL_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace snapd::pony {

// One connection's record. Plain data: it lives in the journal's memory.
struct JournalConn {
  uint32_t id = 0;  // 0: the slot is free
  uint32_t peer_ip = 0;
  uint64_t peer_mac = 0;
  uint32_t peer_conn = 0;
  uint16_t app = 0;
  uint16_t peer_app = 0;
  uint16_t src_port = 0;
  uint8_t passive = 0;
  uint8_t told_open = 0;        // the app was told CONNECTED or INCOMING
  uint8_t close_requested = 0;  // the app asked to close it
  uint8_t pad[3] = {};
  uint32_t token = 0;
  // Receiving: the next message its app is to be handed, and the bytes of it handed already.
  uint32_t rx_next_msg = 1;
  uint32_t rx_msg_offset = 0;
  // Sending: the messages in the ring, [tx_tail, tx_head) (byte positions that only grow), the
  // first with id tx_first_id, then the message being assembled (asm_done of asm_len bytes).
  uint32_t tx_first_id = 1;
  uint32_t tx_count = 0;
  uint64_t tx_tail = 0;
  uint64_t tx_head = 0;
  uint32_t asm_len = 0;
  uint32_t asm_token = 0;
  uint32_t asm_done = 0;
  // The app's frames this record has taken in the burst being handled: the burst's first frame's
  // place in the app's ring (Port::RxCursor) and how many of its frames, through the last one that
  // was this connection's (0: none). Cleared once the burst is released: a crash before that
  // serves the burst again, and its first app_frames frames are this record's already.
  uint32_t app_cursor = 0;
  uint32_t app_frames = 0;
  // A burst to the app under way (pend_valid): if the app's ring moved past pend_cursor
  // (Port::TxCursor), the burst went whole and these are how far the app was handed (and SENTs
  // it got); else it did not go.
  uint8_t pend_valid = 0;
  uint8_t pend_told_open = 0;
  uint8_t pad3[2] = {};
  uint32_t pend_cursor = 0;
  uint32_t pend_rx_next_msg = 0;
  uint32_t pend_rx_msg_offset = 0;
  uint32_t pend_sents = 0;
};

// A message of the ring, as recovery reads it.
struct JournalMessage {
  uint32_t id;
  uint32_t token;
  std::string bytes;
};

class Journal {
 public:
  // `owner`: what the journal must belong to (the engine's address and MAC): a journal of another
  // engine is not taken.
  struct Shape {
    uint32_t slots = 0;
    uint32_t ring_bytes = 0;  // a multiple of 8
    uint64_t owner = 0;
  };
  static size_t BytesFor(const Shape& shape);

  // Formats the memory at `base` (BytesFor(shape) of it) as an empty journal.
  static Journal Format(void* base, const Shape& shape);
  // Takes the journal at `base` as a restarted engine finds it: FAILED_PRECONDITION (saying why)
  // if it is not one of this shape and owner.
  static absl::StatusOr<Journal> Recover(void* base, size_t bytes, const Shape& shape);

  Journal() = default;
  bool valid() const { return header_ != nullptr; }
  uint32_t slots() const { return shape_.slots; }

  // The committed record of `slot` (id 0: free).
  JournalConn Get(uint32_t slot) const;
  // Commits `rec` as `slot`'s record.
  void Put(uint32_t slot, const JournalConn& rec);
  // Frees `slot` and gives its ring's pages back.
  void Free(uint32_t slot);

  // The app's SEND frame with `len` bytes at `offset` of a message of `msg_len` bytes: copied to
  // where the message goes in the ring, and committed (a new message starts at offset 0). False
  // if the ring has no room for the message (its bytes are then not kept: the caller stops
  // journaling the connection).
  bool AddSendFrame(uint32_t slot, JournalConn* rec, uint32_t offset, const uint8_t* bytes,
                    uint32_t len, uint32_t msg_len, uint32_t token);
  // The message being assembled is whole: it joins the ring's messages (committed).
  void FinishMessage(uint32_t slot, JournalConn* rec);
  // The first `n` messages of the ring are done with (their SENT reached the app): committed.
  void DropFront(uint32_t slot, JournalConn* rec, uint32_t n);
  // The oldest message's length (the ring must have one).
  uint32_t FrontLength(uint32_t slot, const JournalConn& rec) const;

  // Recovery: the ring's messages and the bytes assembled so far, checked against the record;
  // false (and `why`) if they do not hold together.
  bool Read(uint32_t slot, const JournalConn& rec, uint32_t max_message,
            std::vector<JournalMessage>* messages, std::string* assembled, std::string* why) const;

 private:
  struct Header;
  struct Record;
  Journal(void* base, const Shape& shape);
  Record& record(uint32_t slot) const;
  uint8_t* ring(uint32_t slot) const;
  // Where a message of `len` bytes whose entry would start at `pos` goes (the next turn of the
  // ring if it does not fit before the end).
  uint64_t EntryStart(uint64_t pos, uint32_t len) const;
  // Where the ring's next turn starts, from `pos` in this one.
  uint64_t NextTurn(uint64_t pos) const;
  // The entry at `pos`, past the marker of a turn if one is there (not for untrusted positions:
  // Read checks its own).
  uint64_t EntryAt(uint32_t slot, uint64_t pos) const;
  // The slot's ring pages go back to the kernel (they read as zeros again).
  void GiveBack(uint32_t slot);

  Header* header_ = nullptr;
  Shape shape_;
};

}  // namespace snapd::pony

#endif  // SNAPD_ENGINES_PONY_JOURNAL_H_
