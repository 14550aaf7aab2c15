#include "engines/vswitch/mac_table.h"

namespace snapd {

MacTable::MacTable(uint32_t capacity, int64_t aging_ns) : aging_ns_(aging_ns) {
  uint32_t n = 16;
  while (n < capacity) n <<= 1;
  slots_.resize(n);
  mask_ = n - 1;
}

uint32_t MacTable::Hash(uint64_t mac) const {
  mac ^= mac >> 29;
  mac *= 0xbf58476d1ce4e5b9ull;
  mac ^= mac >> 32;
  return static_cast<uint32_t>(mac) & mask_;
}

int64_t MacTable::Find(uint64_t mac, int64_t* insert) const {
  *insert = -1;
  uint32_t i = Hash(mac);
  for (uint32_t probes = 0; probes <= mask_; ++probes, i = (i + 1) & mask_) {
    const Slot& s = slots_[i];
    if (s.state == State::kEmpty) {
      if (*insert < 0) *insert = i;
      return -1;
    }
    if (s.state == State::kTombstone) {
      if (*insert < 0) *insert = i;
      continue;
    }
    if (s.mac == mac) return i;
  }
  return -1;
}

MacTable::LearnResult MacTable::Learn(uint64_t mac, uint16_t port, int64_t now_ns) {
  int64_t insert;
  int64_t at = Find(mac, &insert);
  if (at >= 0) {
    Slot& s = slots_[at];
    if (s.is_static) return s.port == port ? LearnResult::kRefreshed : LearnResult::kStaticConflict;
    bool moved = s.port != port && !Expired(s, now_ns);
    s.port = port;
    s.last_seen = now_ns;
    return moved ? LearnResult::kMoved : LearnResult::kRefreshed;
  }
  if (insert < 0) {
    // No free slot: reclaim an aged one on the probe path, if any.
    uint32_t i = Hash(mac);
    for (uint32_t probes = 0; probes <= mask_; ++probes, i = (i + 1) & mask_) {
      if (slots_[i].state == State::kLive && Expired(slots_[i], now_ns)) {
        insert = i;
        --live_;
        break;
      }
    }
    if (insert < 0) return LearnResult::kFull;
  }
  slots_[insert] = Slot{mac, now_ns, port, false, State::kLive};
  ++live_;
  return LearnResult::kLearned;
}

bool MacTable::AddStatic(uint64_t mac, uint16_t port) {
  int64_t insert;
  int64_t at = Find(mac, &insert);
  if (at >= 0) {
    slots_[at].port = port;
    slots_[at].is_static = true;
    return true;
  }
  if (insert < 0) return false;
  slots_[insert] = Slot{mac, 0, port, true, State::kLive};
  ++live_;
  return true;
}

uint16_t MacTable::Lookup(uint64_t mac, int64_t now_ns) const {
  int64_t insert;
  int64_t at = Find(mac, &insert);
  if (at < 0 || Expired(slots_[at], now_ns)) return kNoPort;
  return slots_[at].port;
}

void MacTable::ForgetPort(uint16_t port) {
  for (Slot& s : slots_) {
    if (s.state == State::kLive && s.port == port) {
      s.state = State::kTombstone;
      --live_;
    }
  }
}

void MacTable::ForEach(int64_t now_ns,
                       const std::function<void(uint64_t, uint16_t, int64_t, bool)>& fn) const {
  for (const Slot& s : slots_) {
    if (s.state == State::kLive && !Expired(s, now_ns)) fn(s.mac, s.port, s.last_seen, s.is_static);
  }
}

}  // namespace snapd
