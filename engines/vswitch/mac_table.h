// MacTable: the vswitch's MAC -> port map. Fixed capacity (a power of two), open addressing with
// linear probing, no allocation after construction. Engine thread only.
//
// Built to survive a flood of source MACs from the wire:
//  - Probing is bounded: an entry lives within kMaxProbe slots of its home slot, so Learn, Lookup
//    and AddStatic look at kMaxProbe slots at most, however full the table is.
//  - There are no tombstones: an entry leaves by backward-shift deletion, which keeps every probe
//    path free of holes, so a lookup stops at the first empty slot.
//  - Learned entries age out. An expired entry is reclaimed when a Learn or AddStatic meets it on
//    its probe path, and by Sweep, which the engine runs a few slots at a time.
//  - Static entries (the MACs apps were given) never age and always win: AddStatic evicts a learned
//    entry from its probe path when it has to. It fails only when all kMaxProbe slots of its path
//    hold static entries.
//  - Each learned entry belongs to an owner (the engine uses one per NIC), and an owner may hold
//    at most `owner_limit` learned entries, so one link cannot fill the table.
//  - The hash is keyed with 64 random bits drawn for each table (getrandom), so that a host on the
//    wire cannot work out offline which MACs share a home slot (say the 16 that fill the probe
//    window of a victim's MAC, which then is never learned and floods). It is a keyed mix
//    (splitmix64's finalizer over mac ^ key), not a cryptographic function.
#ifndef SNAPD_ENGINES_VSWITCH_MAC_TABLE_H_
#define SNAPD_ENGINES_VSWITCH_MAC_TABLE_H_

#include <cstdint>
#include <functional>
#include <vector>

namespace snapd {

class MacTable {
 public:
  static constexpr uint16_t kNoPort = 0xffff;
  // The most slots any operation looks at: an entry sits at most kMaxProbe - 1 past its home.
  static constexpr uint32_t kMaxProbe = 16;
  // Owners are small numbers below this (the engine gives one to each NIC it has seen).
  static constexpr uint16_t kMaxOwners = 1024;

  enum class LearnResult {
    kLearned,         // a new entry
    kRefreshed,       // known on this port: its age starts over
    kMoved,           // known on another port, now on this one
    kStaticConflict,  // an app's MAC: not learned (the caller drops the frame)
    kFull,            // no free or expired slot on its probe path: not learned
    kOwnerLimit,      // the owner holds owner_limit entries already: not learned
  };
  enum class StaticResult {
    kAdded,    // in a free slot, or the MAC's own entry made static
    kEvicted,  // in the slot of a learned entry that was still live, which is gone
    kFull,     // every slot on its probe path holds a static entry: not added
  };

  // capacity is rounded up to a power of two (at least 16); aging_ns is how long a learned entry
  // lives unseen; owner_limit is the most learned entries one owner may hold (0: capacity / 2).
  // The hash key is random.
  MacTable(uint32_t capacity, int64_t aging_ns, uint32_t owner_limit = 0);
  // The same with the hash key given (tests that need the same slots every run).
  MacTable(uint32_t capacity, int64_t aging_ns, uint32_t owner_limit, uint64_t hash_key);

  // Records that `mac` was seen on `port` (of `owner`, below kMaxOwners) at `now_ns`. A static
  // entry wins; see LearnResult. A MAC moving to an owner at its limit is forgotten (frames to it
  // flood) and kOwnerLimit returned.
  LearnResult Learn(uint64_t mac, uint16_t port, uint16_t owner, int64_t now_ns);
  // Pins `mac` to `port` for good (an app's own MAC); see StaticResult. `now_ns` tells expired
  // learned entries (reclaimed first) from live ones (evicted, the least recently seen first).
  StaticResult AddStatic(uint64_t mac, uint16_t port, int64_t now_ns);
  // The port `mac` was last seen on, or kNoPort if unknown or aged out.
  uint16_t Lookup(uint64_t mac, int64_t now_ns) const;
  // How many slots Lookup(mac) looks at (1..kMaxProbe), and the slot its probing starts at (its
  // home): for tests.
  uint32_t LookupProbes(uint64_t mac) const;
  uint32_t HomeSlot(uint64_t mac) const { return Hash(mac); }
  // Forgets every entry pointing at `port`, static or learned.
  void ForgetPort(uint16_t port);
  // Deletes the expired learned entries among the next `slots` slots, going round the table
  // across calls; returns how many it deleted.
  uint32_t Sweep(int64_t now_ns, uint32_t slots);

  // Calls fn(mac, port, last_seen_ns, is_static) for each live entry.
  void ForEach(int64_t now_ns,
               const std::function<void(uint64_t, uint16_t, int64_t, bool)>& fn) const;
  // Slots in use, expired entries not yet reclaimed included.
  uint32_t size() const { return used_; }
  uint32_t capacity() const { return static_cast<uint32_t>(slots_.size()); }
  int64_t aging_ns() const { return aging_ns_; }
  uint32_t owner_limit() const { return owner_limit_; }
  // Learned entries `owner` holds (expired ones not yet reclaimed included).
  uint32_t learned_by(uint16_t owner) const { return owner < kMaxOwners ? owned_[owner] : 0; }

 private:
  struct Slot {
    uint64_t mac = 0;
    int64_t last_seen = 0;
    uint16_t port = kNoPort;  // kNoPort: an empty slot
    uint16_t owner = 0;
    bool is_static = false;
  };
  static bool Empty(const Slot& s) { return s.port == kNoPort; }
  // (now_ns - s.last_seen > aging_ns_, without overflow whatever last_seen a caller gave Learn:
  // now_ns and aging_ns_ are both at least 0.)
  bool Expired(const Slot& s, int64_t now_ns) const {
    return !s.is_static && s.last_seen < now_ns - aging_ns_;
  }
  uint32_t Hash(uint64_t mac) const;
  // Where `mac` sits, or -1, and how many slots that took to find out.
  int64_t Find(uint64_t mac, uint32_t* probes) const;
  // Empties slot i, shifting later entries of its cluster back so that no probe path has a hole.
  void Erase(uint32_t i);
  // Drops the entry in a used slot from its owner's count.
  void Disown(const Slot& s) {
    if (!s.is_static) --owned_[s.owner];
  }

  std::vector<Slot> slots_;
  uint64_t key_;
  uint32_t mask_;
  int64_t aging_ns_;
  uint32_t owner_limit_;
  uint32_t used_ = 0;
  uint32_t sweep_at_ = 0;
  std::vector<uint32_t> owned_;  // learned entries by owner (kMaxOwners of them)
};

}  // namespace snapd

#endif  // SNAPD_ENGINES_VSWITCH_MAC_TABLE_H_
