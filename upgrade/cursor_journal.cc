#include "upgrade/cursor_journal.h"

#include <signal.h>

#include <algorithm>

#include "absl/base/optimization.h"
#include "absl/strings/str_cat.h"
#include "glog/logging.h"
#include "snapd/daemon/app_port.h"

namespace snapd {

uint64_t JournalMemory::AreaBytes(uint32_t capacity) {
  uint64_t bytes = sizeof(JournalArea) + uint64_t{capacity} * sizeof(JournalEntry);
  return (bytes + 63) / 64 * 64;
}

absl::StatusOr<JournalMemory> JournalMemory::Create(uint32_t areas, uint32_t capacity) {
  JournalMemory m;
  auto region = memif::MappedRegion::Create("snapd-cursor-journal",
                                            std::max<uint64_t>(1, areas) * AreaBytes(capacity));
  if (!region.ok()) return region.status();
  m.region_ = std::move(*region);
  m.areas_ = areas;
  m.capacity_ = capacity;
  return m;
}

absl::StatusOr<JournalMemory> JournalMemory::Map(UniqueFd fd, uint32_t areas, uint32_t capacity) {
  if (capacity > (1u << 20) || areas > (1u << 16)) {
    return absl::InvalidArgumentError(
        absl::StrCat("cursor journal: ", areas, " areas of ", capacity, " entries is too large"));
  }
  JournalMemory m;
  auto region = memif::MappedRegion::MapPeer(std::move(fd),
                                             std::max<uint64_t>(1, areas) * AreaBytes(capacity));
  if (!region.ok()) {
    return absl::Status(region.status().code(),
                        absl::StrCat("cursor journal: ", region.status().message()));
  }
  m.region_ = std::move(*region);
  m.areas_ = areas;
  m.capacity_ = capacity;
  return m;
}

JournalArea* JournalMemory::area(uint32_t index) const {
  if (index >= areas_) return nullptr;
  return reinterpret_cast<JournalArea*>(region_.base() + index * AreaBytes(capacity_));
}

CursorJournal::~CursorJournal() { Close(); }

absl::Status CursorJournal::Track(AppPort* port) {
  if (std::find(ports_.begin(), ports_.end(), port) != ports_.end()) return absl::OkStatus();
  if (ports_.size() >= capacity_) {
    return absl::ResourceExhaustedError(
        absl::StrCat("cursor journal: room for ", capacity_, " apps per engine"));
  }
  if (dirty_.capacity() < capacity_) dirty_.reserve(capacity_);
  ports_.push_back(port);
  port->SetJournal(this);
  return absl::OkStatus();
}

void CursorJournal::Untrack(AppPort* port) {
  auto it = std::find(ports_.begin(), ports_.end(), port);
  if (it == ports_.end()) return;
  ports_.erase(it);
  port->SetJournal(nullptr);  // publishes what it held: a batch boundary, so nothing
}

bool CursorJournal::Commit() {
  dirty_.clear();
  JournalEntry* entries = area_->entries();
  for (AppPort* p : ports_) {
    if (!p->unpublished()) continue;
    entries[dirty_.size()] = JournalEntry{p->app(), p->c2s_cursor(), p->s2c_cursor()};
    dirty_.push_back(p);
  }
  if (dirty_.empty()) return false;
  area_->count = static_cast<uint32_t>(dirty_.size());
  // The commit point: from here the old snapd publishes these cursors if we die.
  __atomic_store_n(&area_->committed, 1, __ATOMIC_RELEASE);
  return true;
}

void CursorJournal::Publish() {
  for (AppPort* p : dirty_) p->PublishS2c();
  if (ABSL_PREDICT_FALSE(die_at_batch_ != 0) && --die_at_batch_ == 0) {
    LOG(WARNING) << "upgrade: dying mid-publish (--upgrade_fault=publish)";
    raise(SIGKILL);
  }
  for (AppPort* p : dirty_) p->PublishC2s();
  // Seq-cst: the next batch's entries are written only after the mark is gone.
  __atomic_store_n(&area_->committed, 0, __ATOMIC_SEQ_CST);
}

void CursorJournal::Close() {
  while (!ports_.empty()) Untrack(ports_.back());
}

int RollForward(const JournalArea& area, uint32_t capacity,
                const std::function<AppPort*(uint32_t app)>& find) {
  if (__atomic_load_n(&area.committed, __ATOMIC_ACQUIRE) == 0) return 0;
  const uint32_t count = std::min(area.count, capacity);
  int moved = 0;
  for (uint32_t i = 0; i < count; ++i) {
    const JournalEntry e = area.entries()[i];
    AppPort* port = find(e.app);
    if (port == nullptr) continue;  // the app left meanwhile
    int n = port->RollForward(e.c2s_tail, e.s2c_tail);
    if (n < 0) {
      LOG(ERROR) << "upgrade rollback: journaled cursors of app " << e.app
                 << " lie outside its rings; left as they are";
      continue;
    }
    moved += n;
  }
  return moved;
}

}  // namespace snapd
