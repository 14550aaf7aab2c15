#include "engines/pony/journal.h"

#include <sys/mman.h>

#include <cstring>
#include <type_traits>

#include "absl/strings/str_cat.h"

namespace snapd::pony {

namespace {
constexpr uint64_t kMagic = 0x314c4e4a594e4f50ULL;  // "PONYJNL1"
constexpr uint32_t kVersion = 1;
constexpr uint32_t kWrapped = 0xffffffffu;  // an entry's length: the ring turns here
constexpr size_t kPage = 4096;
// A ring that empties after this many bytes went through it gives its pages back.
constexpr uint64_t kResetAfter = 1 << 20;

uint64_t Align8(uint64_t v) { return (v + 7) & ~uint64_t{7}; }
size_t AlignPage(size_t v) { return (v + kPage - 1) & ~(kPage - 1); }
uint32_t Load32(const uint8_t* p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}
void Store32(uint8_t* p, uint32_t v) { memcpy(p, &v, 4); }
}  // namespace

static_assert(std::is_trivially_copyable<JournalConn>::value, "a record is plain memory");

struct Journal::Header {
  uint64_t magic;
  uint32_t version;
  uint32_t slots;
  uint32_t ring_bytes;
  uint32_t record_bytes;
  uint64_t owner;
};

struct Journal::Record {
  std::atomic<uint32_t> which;  // the copy in force
  uint32_t pad;
  JournalConn copy[2];
};

size_t Journal::BytesFor(const Shape& s) {
  return AlignPage(sizeof(Header) + size_t{s.slots} * sizeof(Record)) +
         size_t{s.slots} * s.ring_bytes;
}

Journal::Journal(void* base, const Shape& shape)
    : header_(static_cast<Header*>(base)), shape_(shape) {}

Journal Journal::Format(void* base, const Shape& shape) {
  Journal j(base, shape);
  memset(base, 0, AlignPage(sizeof(Header) + size_t{shape.slots} * sizeof(Record)));
  j.header_->version = kVersion;
  j.header_->slots = shape.slots;
  j.header_->ring_bytes = shape.ring_bytes;
  j.header_->record_bytes = sizeof(Record);
  j.header_->owner = shape.owner;
  std::atomic_signal_fence(std::memory_order_release);
  j.header_->magic = kMagic;
  return j;
}

absl::StatusOr<Journal> Journal::Recover(void* base, size_t bytes, const Shape& shape) {
  const Header* h = static_cast<const Header*>(base);
  if (bytes < BytesFor(shape)) {
    return absl::FailedPreconditionError(
        absl::StrCat("the checkpoint has ", bytes, " bytes, not ", BytesFor(shape)));
  }
  if (h->magic != kMagic || h->version != kVersion) {
    return absl::FailedPreconditionError("the checkpoint is not a pony journal of this version");
  }
  if (h->slots != shape.slots || h->ring_bytes != shape.ring_bytes ||
      h->record_bytes != sizeof(Record)) {
    return absl::FailedPreconditionError(
        absl::StrCat("the checkpoint is for ", h->slots, " connections of ", h->ring_bytes,
                     " bytes; this engine's config makes ", shape.slots, " of ", shape.ring_bytes));
  }
  if (h->owner != shape.owner) {
    return absl::FailedPreconditionError(
        "the checkpoint is another engine's (another address or MAC)");
  }
  return Journal(base, shape);
}

Journal::Record& Journal::record(uint32_t slot) const {
  return reinterpret_cast<Record*>(reinterpret_cast<uint8_t*>(header_) + sizeof(Header))[slot];
}

uint8_t* Journal::ring(uint32_t slot) const {
  return reinterpret_cast<uint8_t*>(header_) +
         AlignPage(sizeof(Header) + size_t{shape_.slots} * sizeof(Record)) +
         size_t{slot} * shape_.ring_bytes;
}

JournalConn Journal::Get(uint32_t slot) const {
  const Record& r = record(slot);
  return r.copy[r.which.load(std::memory_order_acquire) & 1];
}

void Journal::Put(uint32_t slot, const JournalConn& rec) {
  Record& r = record(slot);
  const uint32_t next = (r.which.load(std::memory_order_relaxed) & 1) ^ 1;
  r.copy[next] = rec;
  // A process that dies has every store it made before this one in memory (the memory outlives
  // it): the copy is whole before the index names it.
  r.which.store(next, std::memory_order_release);
}

void Journal::Free(uint32_t slot) {
  const JournalConn old = Get(slot);
  Put(slot, JournalConn());
  if (old.tx_head != 0) GiveBack(slot);
}

void Journal::GiveBack(uint32_t slot) {
  // A memfd's pages: MADV_REMOVE; anonymous memory's: MADV_DONTNEED.
  if (madvise(ring(slot), shape_.ring_bytes, MADV_REMOVE) != 0) {
    madvise(ring(slot), shape_.ring_bytes, MADV_DONTNEED);
  }
}

uint64_t Journal::NextTurn(uint64_t pos) const {
  return pos - pos % shape_.ring_bytes + shape_.ring_bytes;
}

uint64_t Journal::EntryStart(uint64_t pos, uint32_t len) const {
  return pos % shape_.ring_bytes + 8 + len <= shape_.ring_bytes ? pos : NextTurn(pos);
}

uint64_t Journal::EntryAt(uint32_t slot, uint64_t pos) const {
  return Load32(ring(slot) + pos % shape_.ring_bytes) == kWrapped ? NextTurn(pos) : pos;
}

bool Journal::AddSendFrame(uint32_t slot, JournalConn* rec, uint32_t offset, const uint8_t* bytes,
                           uint32_t len, uint32_t msg_len, uint32_t token) {
  if (uint64_t{msg_len} + 8 > shape_.ring_bytes) return false;
  const uint64_t start = EntryStart(rec->tx_head, msg_len);
  if (offset == 0) {
    if (Align8(start + 8 + msg_len) - rec->tx_tail > shape_.ring_bytes) return false;
    rec->asm_len = msg_len;
    rec->asm_token = token;
    rec->asm_done = 0;
  }
  memcpy(ring(slot) + start % shape_.ring_bytes + 8 + offset, bytes, len);
  rec->asm_done = offset + len;
  Put(slot, *rec);
  return true;
}

void Journal::FinishMessage(uint32_t slot, JournalConn* rec) {
  uint8_t* base = ring(slot);
  const uint64_t start = EntryStart(rec->tx_head, rec->asm_len);
  if (start != rec->tx_head) Store32(base + rec->tx_head % shape_.ring_bytes, kWrapped);
  Store32(base + start % shape_.ring_bytes, rec->asm_len);
  Store32(base + start % shape_.ring_bytes + 4, rec->asm_token);
  rec->tx_head = Align8(start + 8 + rec->asm_len);
  ++rec->tx_count;
  rec->asm_len = rec->asm_token = rec->asm_done = 0;
  Put(slot, *rec);
}

uint32_t Journal::FrontLength(uint32_t slot, const JournalConn& rec) const {
  return Load32(ring(slot) + EntryAt(slot, rec.tx_tail) % shape_.ring_bytes);
}

void Journal::DropFront(uint32_t slot, JournalConn* rec, uint32_t n) {
  for (uint32_t i = 0; i < n && rec->tx_count > 0; ++i) {
    const uint64_t pos = EntryAt(slot, rec->tx_tail);
    rec->tx_tail = Align8(pos + 8 + Load32(ring(slot) + pos % shape_.ring_bytes));
    ++rec->tx_first_id;
    --rec->tx_count;
  }
  const bool reset = rec->tx_count == 0 && rec->asm_len == 0 && rec->tx_head >= kResetAfter;
  if (reset) rec->tx_tail = rec->tx_head = 0;
  Put(slot, *rec);
  // Empty after a while of use: its pages go back (the positions start again at 0).
  if (reset) GiveBack(slot);
}

bool Journal::Read(uint32_t slot, const JournalConn& rec, uint32_t max_message,
                   std::vector<JournalMessage>* messages, std::string* assembled,
                   std::string* why) const {
  const uint64_t r = shape_.ring_bytes;
  auto fail = [&](std::string what) {
    *why = std::move(what);
    return false;
  };
  // Positions grow by what an app sends: never near 2^64 (no arithmetic below can wrap).
  if (rec.tx_tail % 8 != 0 || rec.tx_head % 8 != 0 || rec.tx_head < rec.tx_tail ||
      rec.tx_head - rec.tx_tail > r || rec.tx_head >= (uint64_t{1} << 62)) {
    return fail("its ring's bounds are inconsistent");
  }
  if (rec.tx_count > (rec.tx_head - rec.tx_tail) / 8) return fail("more messages than fit");
  const uint8_t* base = ring(slot);
  uint64_t pos = rec.tx_tail;
  messages->clear();
  for (uint32_t i = 0; i < rec.tx_count; ++i) {
    if (pos + 8 > rec.tx_head) return fail("a message past its ring's head");
    uint32_t len = Load32(base + pos % r);
    if (len == kWrapped) {
      if (pos % r == 0) return fail("a turn of its ring at the ring's start");
      pos = NextTurn(pos);
      if (pos + 8 > rec.tx_head) return fail("a message past its ring's head");
      len = Load32(base + pos % r);
    }
    if (len > max_message || pos % r + 8 + len > r || Align8(pos + 8 + len) > rec.tx_head) {
      return fail("a message of a bad length in its ring");
    }
    JournalMessage m;
    m.id = rec.tx_first_id + i;
    m.token = Load32(base + pos % r + 4);
    m.bytes.assign(reinterpret_cast<const char*>(base + pos % r + 8), len);
    messages->push_back(std::move(m));
    pos = Align8(pos + 8 + len);
  }
  if (pos != rec.tx_head) return fail("its ring holds more than its messages");
  assembled->clear();
  if (rec.asm_len == 0) return rec.asm_done == 0 ? true : fail("assembled bytes of no message");
  if (rec.asm_len > max_message || rec.asm_done > rec.asm_len || uint64_t{rec.asm_len} + 8 > r) {
    return fail("a message being assembled of a bad length");
  }
  const uint64_t start = EntryStart(rec.tx_head, rec.asm_len);
  if (Align8(start + 8 + rec.asm_len) - rec.tx_tail > r) {
    return fail("a message being assembled past its ring");
  }
  assembled->assign(reinterpret_cast<const char*>(base + start % r + 8), rec.asm_done);
  return true;
}

}  // namespace snapd::pony
