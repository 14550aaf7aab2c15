// MacTable: the vswitch's MAC -> port map. Fixed capacity (a power of two), open addressing with
// linear probing, no allocation after construction. Learned entries age out; static entries (the
// MACs apps were given) never age and cannot be moved by learning. Engine thread only.
#ifndef SNAPD_ENGINES_VSWITCH_MAC_TABLE_H_
#define SNAPD_ENGINES_VSWITCH_MAC_TABLE_H_

#include <cstdint>
#include <functional>
#include <vector>

namespace snapd {

class MacTable {
 public:
  static constexpr uint16_t kNoPort = 0xffff;

  enum class LearnResult { kLearned, kRefreshed, kMoved, kStaticConflict, kFull };

  // capacity is rounded up to a power of two; aging_ns is how long a learned entry lives unseen.
  MacTable(uint32_t capacity, int64_t aging_ns);

  // Records that `mac` was seen on `port` at `now_ns`. A static entry for another port wins.
  LearnResult Learn(uint64_t mac, uint16_t port, int64_t now_ns);
  // Pins `mac` to `port` for good (an app's own MAC).
  bool AddStatic(uint64_t mac, uint16_t port);
  // The port `mac` was last seen on, or kNoPort if unknown or aged out.
  uint16_t Lookup(uint64_t mac, int64_t now_ns) const;
  // Forgets every entry pointing at `port`, static or learned.
  void ForgetPort(uint16_t port);

  // Calls fn(mac, port, last_seen_ns, is_static) for each live entry.
  void ForEach(int64_t now_ns,
               const std::function<void(uint64_t, uint16_t, int64_t, bool)>& fn) const;
  uint32_t size() const { return live_; }
  uint32_t capacity() const { return static_cast<uint32_t>(slots_.size()); }

 private:
  enum class State : uint8_t { kEmpty, kLive, kTombstone };
  struct Slot {
    uint64_t mac = 0;
    int64_t last_seen = 0;
    uint16_t port = kNoPort;
    bool is_static = false;
    State state = State::kEmpty;
  };
  bool Expired(const Slot& s, int64_t now_ns) const {
    return !s.is_static && now_ns - s.last_seen > aging_ns_;
  }
  uint32_t Hash(uint64_t mac) const;
  // The slot holding `mac`, or -1; and in *insert the first reusable slot on its probe path.
  int64_t Find(uint64_t mac, int64_t* insert) const;

  std::vector<Slot> slots_;
  uint32_t mask_;
  int64_t aging_ns_;
  uint32_t live_ = 0;
};

}  // namespace snapd

#endif  // SNAPD_ENGINES_VSWITCH_MAC_TABLE_H_
