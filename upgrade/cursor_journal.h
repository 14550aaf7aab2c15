// CursorJournal: exactly-once delivery across an upgrade that fails after engines moved.
//
// An engine's batch takes frames from one app's c2s ring and puts them into other apps' s2c rings;
// the batch is done for the apps once the server publishes the s2c tails (frames visible) and the
// c2s tails (slots given back). If the new snapd dies between those stores, the old snapd, taking
// the engine back from the rings' shared cursors, would pass some frames twice (c2s not yet given
// back) or never (the other order). So while an upgrade runs, the new snapd's app rings defer their
// cursors (memif::RxRing/TxRing::SetDeferred), and at each batch boundary the journal writes every
// cursor the batch moved into shared memory, marks the batch committed, publishes the cursors,
// and clears the mark. The old snapd, taking an engine back, rolls a committed batch forward
// (RollForward): the dead snapd's batch either happened whole or not at all.
//
// The memory is a sealed memfd the old snapd creates and passes at brownout, one area per engine;
// the old snapd keeps its own mapping, which it reads only once the new snapd is dead. Only the two
// snapds map it (no app does), but the old one still bounds what it applies: a cursor may only move
// forward, and no further than the app has produced (RxRing::RollForward).
#ifndef SNAPD_UPGRADE_CURSOR_JOURNAL_H_
#define SNAPD_UPGRADE_CURSOR_JOURNAL_H_

#include <cstdint>
#include <functional>
#include <vector>

#include "absl/status/statusor.h"
#include "engines/engine.h"
#include "ipc/region.h"
#include "snapd/daemon/app_port.h"

namespace snapd {

// One app's cursors after a batch. Shared layout: both snapds of an upgrade read it.
struct JournalEntry {
  uint32_t app;       // the memif connection id
  uint16_t c2s_tail;  // slots released up to here
  uint16_t s2c_tail;  // frames published up to here
};

// One engine's area: a header and `capacity` entries.
struct alignas(64) JournalArea {
  uint32_t committed;  // 1 while entries[0, count) describe a batch not yet wholly published
  uint32_t count;
  uint8_t reserved[56];
  // `capacity` JournalEntry follow.
  JournalEntry* entries() { return reinterpret_cast<JournalEntry*>(this + 1); }
  const JournalEntry* entries() const { return reinterpret_cast<const JournalEntry*>(this + 1); }
};
static_assert(sizeof(JournalArea) == 64);
static_assert(sizeof(JournalEntry) == 8);

// The memfd and its mapping: `areas` engine areas of `capacity` entries each.
class JournalMemory {
 public:
  static absl::StatusOr<JournalMemory> Create(uint32_t areas, uint32_t capacity);
  // Maps the memfd the old snapd sent, after checking it is sealed and large enough.
  static absl::StatusOr<JournalMemory> Map(UniqueFd fd, uint32_t areas, uint32_t capacity);

  // nullptr when `index` is not an area.
  JournalArea* area(uint32_t index) const;
  uint32_t areas() const { return areas_; }
  uint32_t capacity() const { return capacity_; }
  int fd() const { return region_.fd(); }

 private:
  static uint64_t AreaBytes(uint32_t capacity);

  memif::MappedRegion region_;
  uint32_t areas_ = 0;
  uint32_t capacity_ = 0;
};

// The new snapd's writer for one engine. Engine thread only (or while no worker polls it).
class CursorJournal : public BatchObserver, public CursorPublisher {
 public:
  CursorJournal(JournalArea* area, uint32_t capacity) : area_(area), capacity_(capacity) {}
  ~CursorJournal() override;

  // The port's rings defer their cursors to this journal from now on. Fails when the area has no
  // room for another app.
  absl::Status Track(AppPort* port);
  // The port publishes on its own again (it is going away, or the upgrade is over).
  void Untrack(AppPort* port) override;
  // Commits and publishes the batch that just ended: Commit(), then Publish().
  void BatchDone() override {
    if (Commit()) Publish();
  }
  // Writes the cursors the batch moved and marks them committed; false when it moved none.
  bool Commit();
  // Publishes the committed cursors to the rings and clears the mark.
  void Publish();
  // Untracks every port (the upgrade is over; the old snapd no longer reads the area).
  void Close();

  // Testing (--upgrade_fault=publish): the process kills itself in the middle of the
  // `batches`-th Publish from now, with the frames passed but their slots not given back: the
  // death the journal is for, made certain.
  void DieMidPublishAfter(uint64_t batches) { die_at_batch_ = batches; }

 private:
  JournalArea* const area_;
  const uint32_t capacity_;
  std::vector<AppPort*> ports_;
  std::vector<AppPort*> dirty_;  // reserved to capacity_: no allocation in BatchDone
  uint64_t die_at_batch_ = 0;
};

// The old snapd, taking back an engine the new snapd may have died serving: publishes the batch the
// area says was committed but maybe not wholly published. `find` gives the engine's port of an app
// id, or nullptr. Returns how many rings moved forward; a refused cursor is logged and left alone.
int RollForward(const JournalArea& area, uint32_t capacity,
                const std::function<AppPort*(uint32_t app)>& find);

}  // namespace snapd

#endif  // SNAPD_UPGRADE_CURSOR_JOURNAL_H_
