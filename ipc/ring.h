// The memif data path: receiving and transmitting batches of frames on the rings of one connection,
// for either role. No allocation, no lock and no system call on the steady path; the only system
// call is the write of the peer's interrupt eventfd after a transmit, and only when the peer asked
// for interrupts. Calls on the eventfd never block, whatever the peer does to it (ipc/peer_fd.h): a
// peer that saturates it or makes a call block stops the ring with an error, as any protocol error.
//
// Nothing the peer wrote is trusted. Every descriptor is copied out of shared memory once and
// checked (region index, offset + length inside the region, length within the buffer) before any
// byte is touched. A bad one is counted; on the server (the app wrote it) it is a protocol error,
// on the client its frame is dropped. A cursor that moves further than the ring allows, or
// backwards, is a protocol error too: the ring stops, and error() says why, for the control plane
// to disconnect the peer.
//
// Threads: a ring is used by one thread at a time (its owner: an engine's worker, or an app's
// poller). Counters and error() may be read from any thread.
#ifndef SNAPD_IPC_RING_H_
#define SNAPD_IPC_RING_H_

#include <atomic>
#include <cstdint>
#include <vector>

#include "absl/types/span.h"
#include "base/counter.h"
#include "ipc/memif_protocol.h"

namespace snapd::memif {

// One frame as the burst APIs pass it: a view of `len` bytes at `data`.
struct Frame {
  uint8_t* data;
  uint32_t len;
};

// A connection's region as the data path sees it.
struct RegionView {
  uint8_t* base = nullptr;
  uint64_t size = 0;
};

enum class Side { kServer, kClient };

// Where the client keeps the buffer of each slot of one ring: slot s uses
// [first_offset + s * buffer_size, + buffer_size) in `region`.
struct ClientSlots {
  uint16_t region = 0;
  uint32_t first_offset = 0;
  uint32_t buffer_size = 0;
};

// Returns a pointer to bytes [offset, offset + length) of region `index`, or nullptr when that
// range is not wholly inside a region of `regions`.
inline uint8_t* ResolveBuffer(absl::Span<const RegionView> regions, uint16_t index, uint32_t offset,
                              uint32_t length) {
  if (index >= regions.size()) return nullptr;
  const RegionView& r = regions[index];
  if (uint64_t{offset} + length > r.size) return nullptr;
  return r.base + offset;
}

// Largest frame a ring reassembles from chained buffers; a longer chain is dropped as oversize.
inline constexpr uint32_t kMaxFrameBytes = 65536;
// Largest number of buffers in one chained frame.
inline constexpr uint32_t kMaxChainSegments = 64;

struct RxStats {
  Counter frames;
  Counter bytes;
  Counter bad_descriptors;  // a descriptor outside the regions or buffer (server: then stopped)
  Counter oversize;         // frames dropped: chained beyond kMaxFrameBytes/kMaxChainSegments
  Counter chained;          // frames that came in more than one buffer
};

struct TxStats {
  Counter frames;
  Counter bytes;
  Counter bad_descriptors;  // buffers the peer offered that lie outside its regions
  Counter interrupts;       // eventfd writes to wake the peer
};

// What both ends of a ring hold: where the ring is, the connection's regions, the eventfd, and, on
// the client, where each slot's buffer lives. A ring that hit a protocol error stays stopped.
class RingEnd {
 public:
  RingEnd(const RingEnd&) = delete;
  RingEnd& operator=(const RingEnd&) = delete;

  int eventfd() const { return eventfd_; }
  // Names the ring's owner (the connection's memif id) to a watchdog that finds a thread stuck in
  // a call on the ring's eventfd (see ipc/peer_fd.h).
  void set_tag(uint32_t tag) { tag_ = tag; }
  uint32_t size() const { return size_; }
  // Why the ring stopped, or nullptr while it works.
  const char* error() const { return error_.load(std::memory_order_relaxed); }

 protected:
  RingEnd(Side side, RingHeader* ring, uint8_t log2_size, absl::Span<const RegionView> regions,
          int eventfd, ClientSlots slots)
      : side_(side),
        ring_(ring),
        size_(1u << log2_size),
        mask_(static_cast<uint16_t>(size_ - 1)),
        regions_(regions),
        eventfd_(eventfd),
        slots_(slots) {}

  void Fail(const char* why) { error_.store(why, std::memory_order_relaxed); }
  // Server: whether `tail` may be published: between the published tail and the client's head.
  bool TailInReach(uint16_t tail) const;
  // Client: the offset in its buffer region of the buffer of the slot under `cursor`.
  uint32_t SlotOffset(uint16_t cursor) const {
    return slots_.first_offset + (cursor & mask_) * slots_.buffer_size;
  }
  // Client: describes the slot under `cursor` with its own buffer, `length` bytes used.
  void DescribeSlot(Descriptor* d, uint16_t cursor, uint32_t length) const {
    d->region = slots_.region;
    d->offset = SlotOffset(cursor);
    d->length = length;
  }
  // The bytes a descriptor read from the ring stands for, or nullptr if they are not wholly inside
  // the regions. The server takes region and offset from the (untrusted) descriptor; the client
  // trusts only its own layout, and the length only up to its buffer size.
  uint8_t* BufferOf(const Descriptor& d, uint16_t cursor) const {
    if (side_ == Side::kServer) return ResolveBuffer(regions_, d.region, d.offset, d.length);
    if (d.length > slots_.buffer_size) return nullptr;
    return ResolveBuffer(regions_, slots_.region, SlotOffset(cursor), d.length);
  }

  const Side side_;
  RingHeader* const ring_;
  const uint32_t size_;
  const uint16_t mask_;
  const absl::Span<const RegionView> regions_;
  const int eventfd_;
  const ClientSlots slots_;
  uint32_t tag_ = 0;
  bool deferred_ = false;  // server: cursors wait for Publish()

 private:
  std::atomic<const char*> error_{nullptr};
};

// The consuming end of a ring: the server's end of a C2S ring, or the client's end of an S2C ring.
class RxRing : public RingEnd {
 public:
  // `ring` points into `regions`' memory and holds 2^log2_size descriptors. `cursor` is where
  // consumption starts (0 on a fresh connection). A client passes `slots`, the buffers it refills
  // the ring with; a server passes {}.
  RxRing(Side side, RingHeader* ring, uint8_t log2_size, absl::Span<const RegionView> regions,
         int eventfd, uint16_t cursor, ClientSlots slots);

  // Client only: hands every free slot to the server (fresh connection).
  void Start();

  // Fills `frames` with up to `max` frames and returns how many. The views stay valid until
  // Release(), which must come before the next Receive. Frames that came chained are copied into a
  // buffer of the ring's own; the others point into shared memory.
  uint16_t Receive(Frame* frames, uint16_t max);

  // Gives the slots of the frames last received back to the producer.
  void Release();

  // True when frames are waiting (for a poller about to sleep).
  bool HasPending() const;

  // Asks the producer to write the eventfd after it fills this ring (true), or to stay silent
  // because this side polls (false).
  void SetInterruptMode(bool enabled);
  // Reads and discards the eventfd's count; call after a wake-up.
  void DrainInterrupt();
  // Server: takes the cursor from the ring's header again (tail: all released so far), after
  // another process served the ring for a while (an upgrade that was rolled back).
  void Resync();

  // Server: while deferred, Release keeps the cursor to itself and Publish() writes it to the
  // ring (an upgrade's new snapd journals each batch's cursors before publishing them, see
  // snapd/cursor_journal.h). Turning deferral off publishes.
  void SetDeferred(bool deferred);
  bool unpublished() const { return deferred_ && next_ != published_; }
  void Publish();
  // Server: publishes `tail`, a cursor another process released but may have died before
  // publishing, and resumes there. Refused (false, nothing changes) unless it lies between the
  // published tail and the head.
  bool RollForward(uint16_t tail);

  // The consumer's cursor: the next slot to read (saved across an upgrade).
  uint16_t cursor() const { return next_; }
  const RxStats& stats() const { return stats_; }

 private:
  // Copies out, checks and assembles the chained frame starting at `cur` with `avail` slots
  // readable. Returns the slots it spans, or 0 when the chain is not complete yet (*incomplete)
  // or does not fit this burst. Looks at most at kMaxChainSegments + 1 descriptors: a longer
  // chain is dropped there and its rest skipped as it arrives.
  uint16_t TakeChain(uint16_t cur, uint16_t avail, Frame* out, bool* dropped, bool* incomplete);

  uint16_t next_;                 // first slot not yet released
  uint16_t published_;            // server: the tail last written to the ring
  uint16_t pending_;              // first slot not yet received (== next_ after Release)
  uint16_t head_;                 // client: the head it last published when refilling
  uint16_t seen_;                 // the producer's cursor when we last looked
  bool stalled_ = false;          // an incomplete chain waits at pending_...
  uint16_t stalled_at_ = 0;       // ...and the producer's cursor was here when we saw it
  bool skipping_ = false;         // inside an oversize chain: its rest is dropped
  std::vector<uint8_t> scratch_;  // chained frames of the current burst
  uint32_t scratch_used_ = 0;
  RxStats stats_;
};

// The producing end of a ring: the server's end of an S2C ring, or the client's end of a C2S ring.
class TxRing : public RingEnd {
 public:
  // As RxRing. `cursor` is where production starts (0 on a fresh connection).
  TxRing(Side side, RingHeader* ring, uint8_t log2_size, absl::Span<const RegionView> regions,
         int eventfd, uint16_t cursor, ClientSlots slots);

  // Copies up to `n` frames into the ring and returns how many it took; the rest did not fit (the
  // ring is full, or the frame needs more buffers than are free). Frames are never split across
  // bursts. Writes the peer's eventfd when the peer asked for interrupts.
  uint16_t Transmit(const Frame* frames, uint16_t n);

  // Slots free for frames now (an upper bound on frames Transmit would take).
  uint16_t FreeSlots() const;
  // How many of `frames` Transmit would take now (it may take more, as the peer frees slots; it
  // takes fewer only if the peer changes the buffers it offered meanwhile). Copies nothing.
  uint16_t WouldTake(const Frame* frames, uint16_t n) const;
  // Server: takes the cursor from the ring's header again (tail: all published so far).
  void Resync();

  // As RxRing's: while deferred, Transmit fills slots and Publish() hands them to the peer (and
  // writes its eventfd when it asked for interrupts).
  void SetDeferred(bool deferred);
  bool unpublished() const { return deferred_ && next_ != published_; }
  void Publish();
  bool RollForward(uint16_t tail);

  // The producer's cursor: the next slot to fill (saved across an upgrade).
  uint16_t cursor() const { return next_; }
  const TxStats& stats() const { return stats_; }

 private:
  // The buffer to write slot `cur` into and its capacity; nullptr when the peer's descriptor is
  // bad.
  uint8_t* TargetBuffer(uint16_t cur, uint32_t* capacity);

  uint16_t next_;       // next slot to fill
  uint16_t published_;  // server: the tail last written to the ring
  TxStats stats_;
};

}  // namespace snapd::memif

#endif  // SNAPD_IPC_RING_H_
