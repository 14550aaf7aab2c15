#include "engines/vswitch/mac_table.h"

#include <errno.h>
#include <sys/random.h>

#include <random>

namespace snapd {
namespace {

// 64 random bits: getrandom (blocking only before the kernel's pool is first ready), else
// std::random_device (which reads the same pool another way).
uint64_t RandomKey() {
  uint64_t key;
  ssize_t n;
  do {
    n = getrandom(&key, sizeof(key), 0);
  } while (n < 0 && errno == EINTR);
  if (n == static_cast<ssize_t>(sizeof(key))) return key;
  std::random_device rd;
  return uint64_t{rd()} << 32 ^ rd();
}

}  // namespace

MacTable::MacTable(uint32_t capacity, int64_t aging_ns, uint32_t owner_limit)
    : MacTable(capacity, aging_ns, owner_limit, RandomKey()) {}

MacTable::MacTable(uint32_t capacity, int64_t aging_ns, uint32_t owner_limit, uint64_t hash_key)
    : key_(hash_key), aging_ns_(aging_ns), owned_(kMaxOwners, 0) {
  uint32_t n = kMaxProbe;
  while (n < capacity) n <<= 1;
  slots_.resize(n);
  mask_ = n - 1;
  owner_limit_ = owner_limit == 0 ? n / 2 : owner_limit;
}

uint32_t MacTable::Hash(uint64_t mac) const {
  uint64_t x = mac ^ key_;
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return static_cast<uint32_t>(x) & mask_;
}

int64_t MacTable::Find(uint64_t mac, uint32_t* probes) const {
  uint32_t i = Hash(mac);
  for (uint32_t p = 0; p < kMaxProbe; ++p, i = (i + 1) & mask_) {
    const Slot& s = slots_[i];
    *probes = p + 1;
    if (Empty(s)) return -1;
    if (s.mac == mac) return i;
  }
  return -1;
}

void MacTable::Erase(uint32_t i) {
  Disown(slots_[i]);
  --used_;
  // Backward shift: an entry later in the cluster moves into the hole if the hole lies on its
  // probe path (between its home and where it sits). None can past kMaxProbe - 1 from the hole.
  uint32_t hole = i;
  for (uint32_t j = (i + 1) & mask_;; j = (j + 1) & mask_) {
    uint32_t from_hole = (j - hole) & mask_;
    if (from_hole == 0 || from_hole >= kMaxProbe || Empty(slots_[j])) break;
    uint32_t from_home = (j - Hash(slots_[j].mac)) & mask_;
    if (from_home >= from_hole) {
      slots_[hole] = slots_[j];
      hole = j;
    }
  }
  slots_[hole] = Slot();
}

MacTable::LearnResult MacTable::Learn(uint64_t mac, uint16_t port, uint16_t owner, int64_t now_ns) {
  uint32_t i = Hash(mac);
  int64_t reuse = -1;  // the first empty or expired slot on the path
  for (uint32_t p = 0; p < kMaxProbe; ++p, i = (i + 1) & mask_) {
    Slot& s = slots_[i];
    if (Empty(s)) {
      if (reuse < 0) reuse = i;
      break;
    }
    if (s.mac == mac) {
      if (s.is_static) {
        return s.port == port ? LearnResult::kRefreshed : LearnResult::kStaticConflict;
      }
      if (s.owner != owner) {
        if (owned_[owner] >= owner_limit_) {
          Erase(i);  // it left its old link; better flooded than sent there
          return LearnResult::kOwnerLimit;
        }
        --owned_[s.owner];
        ++owned_[owner];
        s.owner = owner;
      }
      bool moved = s.port != port && !Expired(s, now_ns);
      s.port = port;
      s.last_seen = now_ns;
      return moved ? LearnResult::kMoved : LearnResult::kRefreshed;
    }
    if (reuse < 0 && Expired(s, now_ns)) reuse = i;
  }
  if (reuse < 0) return LearnResult::kFull;
  Slot& r = slots_[reuse];
  // An expired entry of this owner in the slot taken makes room for the new one.
  uint32_t held = owned_[owner] - (!Empty(r) && r.owner == owner ? 1 : 0);
  if (held >= owner_limit_) return LearnResult::kOwnerLimit;
  if (Empty(r)) {
    ++used_;
  } else {
    Disown(r);
  }
  r = Slot{mac, now_ns, port, owner, false};
  ++owned_[owner];
  return LearnResult::kLearned;
}

MacTable::StaticResult MacTable::AddStatic(uint64_t mac, uint16_t port, int64_t now_ns) {
  uint32_t i = Hash(mac);
  int64_t reuse = -1;   // the first empty or expired slot on the path
  int64_t victim = -1;  // the live learned entry seen least recently
  for (uint32_t p = 0; p < kMaxProbe; ++p, i = (i + 1) & mask_) {
    Slot& s = slots_[i];
    if (Empty(s)) {
      if (reuse < 0) reuse = i;
      break;
    }
    if (s.mac == mac) {
      Disown(s);
      s.port = port;
      s.is_static = true;
      return StaticResult::kAdded;
    }
    if (s.is_static) continue;
    if (Expired(s, now_ns)) {
      if (reuse < 0) reuse = i;
    } else if (victim < 0 || s.last_seen < slots_[victim].last_seen) {
      victim = i;
    }
  }
  StaticResult result = StaticResult::kAdded;
  if (reuse < 0) {
    if (victim < 0) return StaticResult::kFull;
    reuse = victim;
    result = StaticResult::kEvicted;
  }
  Slot& r = slots_[reuse];
  if (Empty(r)) {
    ++used_;
  } else {
    Disown(r);
  }
  r = Slot{mac, 0, port, 0, true};
  return result;
}

uint16_t MacTable::Lookup(uint64_t mac, int64_t now_ns) const {
  uint32_t probes;
  int64_t at = Find(mac, &probes);
  if (at < 0 || Expired(slots_[at], now_ns)) return kNoPort;
  return slots_[at].port;
}

uint32_t MacTable::LookupProbes(uint64_t mac) const {
  uint32_t probes = 0;
  Find(mac, &probes);
  return probes;
}

void MacTable::ForgetPort(uint16_t port) {
  // Erase may shift a later entry into slot i: look at i again before going on.
  for (uint32_t i = 0; i < slots_.size();) {
    if (!Empty(slots_[i]) && slots_[i].port == port) {
      Erase(i);
    } else {
      ++i;
    }
  }
}

uint32_t MacTable::Sweep(int64_t now_ns, uint32_t slots) {
  uint32_t deleted = 0;
  for (uint32_t k = 0; k < slots; ++k) {
    const Slot& s = slots_[sweep_at_];
    if (!Empty(s) && Expired(s, now_ns)) {
      Erase(sweep_at_);  // look at this slot again: a later entry may have moved into it
      ++deleted;
    } else {
      sweep_at_ = (sweep_at_ + 1) & mask_;
    }
  }
  return deleted;
}

void MacTable::ForEach(int64_t now_ns,
                       const std::function<void(uint64_t, uint16_t, int64_t, bool)>& fn) const {
  for (const Slot& s : slots_) {
    if (!Empty(s) && !Expired(s, now_ns)) fn(s.mac, s.port, s.last_seen, s.is_static);
  }
}

}  // namespace snapd
