#include "ipc/ring.h"

#include <string.h>
#include <unistd.h>

#include "absl/base/optimization.h"
#include "ipc/peer_fd.h"

namespace snapd::memif {
namespace {

constexpr char kBadDescriptor[] = "c2s descriptor outside the app's regions";

inline uint16_t LoadAcquire(const uint16_t* p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
inline void StoreRelease(uint16_t* p, uint16_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
inline uint16_t LoadRelaxed(const uint16_t* p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }

// A copy of a descriptor taken once from shared memory: the peer may change the original at any
// moment, so checks and use both read the copy.
inline Descriptor Snapshot(const Descriptor* d) {
  Descriptor copy;
  memcpy(&copy, d, sizeof(copy));
  __atomic_signal_fence(__ATOMIC_SEQ_CST);
  return copy;
}

}  // namespace

RxRing::RxRing(Side side, RingHeader* ring, uint8_t log2_size, absl::Span<const RegionView> regions,
               int eventfd, uint16_t cursor, ClientSlots slots)
    : RingEnd(side, ring, log2_size, regions, eventfd, slots),
      next_(cursor),
      published_(cursor),
      pending_(cursor),
      head_(cursor),
      seen_(cursor),
      scratch_(kMaxFrameBytes) {}

void RxRing::Start() {
  if (side_ == Side::kClient) Release();
}

bool RxRing::HasPending() const {
  uint16_t produced =
      side_ == Side::kServer ? LoadAcquire(&ring_->head) : LoadAcquire(&ring_->tail);
  // An incomplete chain is not pending until the producer adds to it.
  return produced != pending_ && !(stalled_ && produced == stalled_at_);
}

uint16_t RxRing::Receive(Frame* frames, uint16_t max) {
  if (ABSL_PREDICT_FALSE(error() != nullptr)) return 0;
  uint16_t produced;
  uint16_t limit;  // most slots the producer may legitimately have filled past pending_
  if (side_ == Side::kServer) {
    produced = LoadAcquire(&ring_->head);
    limit = static_cast<uint16_t>(next_ + size_ - pending_);
  } else {
    produced = LoadAcquire(&ring_->tail);
    limit = static_cast<uint16_t>(head_ - pending_);
  }
  uint16_t avail = produced - pending_;
  if (ABSL_PREDICT_FALSE(avail > limit)) {
    Fail(side_ == Side::kServer ? "c2s ring head moved past the ring size"
                                : "s2c ring tail moved past the buffers given");
    return 0;
  }
  // A producer only moves its cursor forward, and never more than the ring beyond what we saw.
  if (ABSL_PREDICT_FALSE(static_cast<uint16_t>(produced - seen_) > size_)) {
    Fail(side_ == Side::kServer ? "c2s ring head moved backwards"
                                : "s2c ring tail moved backwards");
    return 0;
  }
  seen_ = produced;
  // An incomplete chain is looked at again only once the producer has added to the ring.
  if (ABSL_PREDICT_FALSE(stalled_) && produced == stalled_at_) return 0;
  stalled_ = false;
  uint16_t count = 0;
  uint16_t cur = pending_;
  scratch_used_ = 0;
  while (avail > 0 && count < max) {
    Descriptor d = Snapshot(&ring_->desc[cur & mask_]);
    if (ABSL_PREDICT_FALSE(skipping_)) {  // the rest of an oversize chain, already counted
      ++cur;
      --avail;
      if (!(d.flags & kDescFlagNext)) skipping_ = false;
      continue;
    }
    if (ABSL_PREDICT_TRUE(!(d.flags & kDescFlagNext))) {
      uint8_t* data = BufferOf(d, cur);
      ++cur;
      --avail;
      if (ABSL_PREDICT_FALSE(data == nullptr)) {
        stats_.bad_descriptors.Add();
        if (side_ == Side::kServer) {  // an app's descriptor outside its own memory: it is broken
          Fail(kBadDescriptor);
          break;
        }
        continue;
      }
      frames[count++] = Frame{data, d.length};
      stats_.bytes.Add(d.length);
      continue;
    }
    bool dropped = false;
    bool incomplete = false;
    uint16_t spanned = TakeChain(cur, avail, &frames[count], &dropped, &incomplete);
    if (spanned == 0) {  // incomplete chain or scratch full: next burst
      if (incomplete) {
        stalled_ = true;
        stalled_at_ = produced;
      }
      break;
    }
    cur += spanned;
    avail -= spanned;
    if (dropped) {
      if (ABSL_PREDICT_FALSE(error() != nullptr)) break;
      continue;
    }
    stats_.bytes.Add(frames[count].len);
    stats_.chained.Add();
    ++count;
  }
  pending_ = cur;
  stats_.frames.Add(count);
  return count;
}

uint16_t RxRing::TakeChain(uint16_t cur, uint16_t avail, Frame* out, bool* dropped,
                           bool* incomplete) {
  Descriptor segs[kMaxChainSegments];
  uint32_t nsegs = 0;
  uint16_t spanned = 0;
  uint64_t total = 0;
  bool bad = false;
  bool terminated = false;
  while (spanned < avail) {
    Descriptor d = Snapshot(&ring_->desc[static_cast<uint16_t>(cur + spanned) & mask_]);
    ++spanned;
    if (nsegs < kMaxChainSegments) segs[nsegs] = d;
    ++nsegs;
    total += d.length;
    if (!(d.flags & kDescFlagNext)) {
      terminated = true;
      break;
    }
    if (spanned > kMaxChainSegments) {
      // Too long whatever follows: drop it now and skip the rest as it comes, so that no scan
      // ever looks at more than kMaxChainSegments + 1 descriptors.
      stats_.oversize.Add();
      skipping_ = true;
      *dropped = true;
      return spanned;
    }
  }
  if (!terminated) {
    // The producer publishes whole frames; a chain that fills the ring can never end.
    if (avail == size_) {
      Fail("chained frame longer than the ring");
    }
    *incomplete = true;
    return 0;
  }
  if (nsegs > kMaxChainSegments || total > kMaxFrameBytes) {
    stats_.oversize.Add();
    *dropped = true;
    return spanned;
  }
  if (scratch_used_ + total > scratch_.size()) return 0;  // no room left in this burst
  uint8_t* dst = scratch_.data() + scratch_used_;
  uint32_t off = 0;
  for (uint32_t i = 0; i < nsegs && !bad; ++i) {
    const Descriptor& d = segs[i];
    uint8_t* src = BufferOf(d, static_cast<uint16_t>(cur + i));
    if (src == nullptr) {
      bad = true;
      break;
    }
    memcpy(dst + off, src, d.length);
    off += d.length;
  }
  if (bad) {
    stats_.bad_descriptors.Add();
    if (side_ == Side::kServer) Fail(kBadDescriptor);
    *dropped = true;
    return spanned;
  }
  scratch_used_ += off;
  *out = Frame{dst, off};
  return spanned;
}

void RxRing::Release() {
  next_ = pending_;
  if (side_ == Side::kServer) {
    if (!deferred_) Publish();
    return;
  }
  // Client: every slot up to next_ + size is free again; describe each with its own buffer.
  uint16_t target = static_cast<uint16_t>(next_ + size_);
  uint16_t h = head_;
  while (h != target) {
    Descriptor* d = &ring_->desc[h & mask_];
    d->flags = 0;
    DescribeSlot(d, h, slots_.buffer_size);
    ++h;
  }
  if (h != head_) {
    head_ = h;
    StoreRelease(&ring_->head, h);
  }
}

void RxRing::SetInterruptMode(bool enabled) {
  uint16_t flags = LoadRelaxed(&ring_->flags);
  flags = enabled ? (flags & ~kRingFlagMaskInt) : (flags | kRingFlagMaskInt);
  __atomic_store_n(&ring_->flags, flags, __ATOMIC_SEQ_CST);
}

void RxRing::Resync() {
  if (side_ != Side::kServer) return;
  next_ = pending_ = published_ = seen_ = LoadAcquire(&ring_->tail);
  stalled_ = skipping_ = false;
}

void TxRing::Resync() {
  if (side_ != Side::kServer) return;
  next_ = published_ = LoadAcquire(&ring_->tail);
}

bool RingEnd::TailInReach(uint16_t tail) const {
  uint16_t published = LoadAcquire(&ring_->tail);
  uint16_t head = LoadAcquire(&ring_->head);
  uint16_t reach = head - published;
  return reach <= size_ && static_cast<uint16_t>(tail - published) <= reach;
}

void RxRing::SetDeferred(bool deferred) {
  if (side_ != Side::kServer) return;
  deferred_ = deferred;
  if (!deferred) Publish();
}

void RxRing::Publish() {
  if (published_ == next_) return;
  published_ = next_;
  StoreRelease(&ring_->tail, next_);
}

bool RxRing::RollForward(uint16_t tail) {
  if (side_ != Side::kServer || !TailInReach(tail)) return false;
  StoreRelease(&ring_->tail, tail);
  Resync();
  return true;
}

void TxRing::SetDeferred(bool deferred) {
  if (side_ != Side::kServer) return;
  deferred_ = deferred;
  if (!deferred) Publish();
}

void TxRing::Publish() {
  if (published_ == next_) return;
  published_ = next_;
  StoreRelease(side_ == Side::kServer ? &ring_->tail : &ring_->head, next_);
  // Full fence: the peer clears the mask and then re-checks the cursor; one of us sees the other.
  __atomic_thread_fence(__ATOMIC_SEQ_CST);
  if (eventfd_ >= 0 && !(LoadRelaxed(&ring_->flags) & kRingFlagMaskInt)) {
    PeerFdResult r = KickEventFd(eventfd_, tag_);
    if (ABSL_PREDICT_TRUE(r == PeerFdResult::kOk)) {
      stats_.interrupts.Add();
    } else if (r == PeerFdResult::kSaturated) {
      Fail("peer saturated its interrupt eventfd");
    } else if (r == PeerFdResult::kBlocked) {
      Fail(kKickBlocked);
    } else {
      Fail("cannot write the peer's interrupt eventfd");
    }
  }
}

bool TxRing::RollForward(uint16_t tail) {
  if (side_ != Side::kServer || !TailInReach(tail)) return false;
  Resync();
  next_ = tail;
  Publish();  // also wakes the app, which the other process may have died before doing
  return true;
}

void RxRing::DrainInterrupt() {
  if (eventfd_ < 0) return;
  PeerFdResult r = DrainEventFd(eventfd_, tag_);
  if (ABSL_PREDICT_FALSE(r == PeerFdResult::kBlocked)) {
    Fail(kDrainBlocked);
  } else if (ABSL_PREDICT_FALSE(r == PeerFdResult::kError)) {
    Fail("cannot read the peer's interrupt eventfd");
  }
}

TxRing::TxRing(Side side, RingHeader* ring, uint8_t log2_size, absl::Span<const RegionView> regions,
               int eventfd, uint16_t cursor, ClientSlots slots)
    : RingEnd(side, ring, log2_size, regions, eventfd, slots), next_(cursor), published_(cursor) {}

uint16_t TxRing::FreeSlots() const {
  if (side_ == Side::kServer) {
    uint16_t free = LoadAcquire(&ring_->head) - next_;
    return free > size_ ? 0 : free;
  }
  uint16_t used = next_ - LoadAcquire(&ring_->tail);
  return used > size_ ? 0 : static_cast<uint16_t>(size_ - used);
}

uint16_t TxRing::WouldTake(const Frame* frames, uint16_t n) const {
  if (error() != nullptr) return 0;
  uint16_t free = FreeSlots();
  uint16_t cur = next_;
  uint16_t taken = 0;
  for (; taken < n; ++taken) {
    uint32_t left = frames[taken].len;
    do {
      if (free == 0) return taken;
      uint32_t capacity = slots_.buffer_size;
      if (side_ == Side::kServer) capacity = Snapshot(&ring_->desc[cur & mask_]).length;
      if (capacity == 0) return taken;
      left -= left < capacity ? left : capacity;
      ++cur;
      --free;
    } while (left > 0);
  }
  return taken;
}

uint8_t* TxRing::TargetBuffer(uint16_t cur, uint32_t* capacity) {
  uint16_t slot = cur & mask_;
  if (side_ == Side::kClient) {
    *capacity = slots_.buffer_size;
    return ResolveBuffer(regions_, slots_.region, SlotOffset(cur), slots_.buffer_size);
  }
  // Server: the client offered this buffer; its length is the capacity.
  Descriptor d = Snapshot(&ring_->desc[slot]);
  *capacity = d.length;
  if (d.length == 0) return nullptr;
  return ResolveBuffer(regions_, d.region, d.offset, d.length);
}

uint16_t TxRing::Transmit(const Frame* frames, uint16_t n) {
  if (ABSL_PREDICT_FALSE(error() != nullptr) || n == 0) return 0;
  uint16_t free;
  if (side_ == Side::kServer) {
    free = LoadAcquire(&ring_->head) - next_;
    if (ABSL_PREDICT_FALSE(free > size_)) {
      Fail("s2c ring head moved past the ring size");
      return 0;
    }
  } else {
    uint16_t used = next_ - LoadAcquire(&ring_->tail);
    if (ABSL_PREDICT_FALSE(used > size_)) {
      Fail("c2s ring tail moved past the head");
      return 0;
    }
    free = static_cast<uint16_t>(size_ - used);
  }
  uint16_t cur = next_;
  uint16_t sent = 0;
  uint64_t bytes = 0;
  for (; sent < n && free > 0; ++sent) {
    const Frame& f = frames[sent];
    uint16_t first = cur;
    uint16_t first_free = free;
    uint32_t done = 0;
    bool fits = true;
    while (true) {
      uint32_t capacity;
      uint8_t* dst = TargetBuffer(cur, &capacity);
      if (ABSL_PREDICT_FALSE(dst == nullptr)) {
        stats_.bad_descriptors.Add();
        Fail("peer offered a buffer outside its regions");
        fits = false;
        break;
      }
      uint32_t chunk = f.len - done < capacity ? f.len - done : capacity;
      memcpy(dst, f.data + done, chunk);
      done += chunk;
      Descriptor* d = &ring_->desc[cur & mask_];
      bool more = done < f.len;
      if (side_ == Side::kClient) {
        DescribeSlot(d, cur, chunk);
      } else {
        d->length = chunk;  // the client chose region and offset; we fill its buffer
      }
      d->flags = more ? kDescFlagNext : 0;
      ++cur;
      --free;
      if (!more) break;
      if (free == 0) {
        fits = false;
        break;
      }
    }
    if (!fits) {
      cur = first;
      free = first_free;
      break;
    }
    bytes += f.len;
  }
  if (cur != next_) {
    next_ = cur;
    stats_.frames.Add(sent);
    stats_.bytes.Add(bytes);
    if (!deferred_) Publish();
  }
  return sent;
}

}  // namespace snapd::memif
