// FakePort: an in-memory Port for engine unit tests. Tests queue frames for the engine to receive
// and read what the engine transmitted. The real ports (NIC queues, memif) are exercised by the
// snapd and integration tests.
#ifndef SNAPD_ENGINES_TESTING_FAKE_PORT_H_
#define SNAPD_ENGINES_TESTING_FAKE_PORT_H_

#include <deque>
#include <functional>
#include <string>
#include <vector>

#include "engines/port.h"

namespace snapd {

class FakePort : public Port {
 public:
  FakePort(std::string name, PortKind kind, size_t tx_room = 1 << 20, std::string link = "")
      : Port(std::move(name), kind, std::move(link)), tx_room_(tx_room) {}

  // Frames the engine will receive, in order.
  void Inject(std::string frame) { inbox_.push_back(std::move(frame)); }
  // Frames the engine transmitted on this port, oldest first; cleared by TakeSent.
  std::vector<std::string> TakeSent() { return std::exchange(sent_, {}); }
  void set_tx_room(size_t room) { tx_room_ = room; }
  // What mtu() says (0: no limit); engines read it when the port is attached.
  void set_mtu(uint32_t mtu) { mtu_ = mtu; }
  uint32_t mtu() const override { return mtu_; }

  uint16_t DoReceive(Packet* pkts, uint16_t max) override {
    uint16_t n = 0;
    while (n < max && !inbox_.empty()) {
      held_.push_back(std::move(inbox_.front()));
      inbox_.pop_front();
      ++n;
    }
    for (uint16_t i = 0; i < n; ++i) {
      std::string& s = held_[held_.size() - n + i];
      pkts[i] = Packet{reinterpret_cast<uint8_t*>(s.data()), static_cast<uint32_t>(s.size())};
    }
    return n;
  }
  void Release() override {
    if (on_release_) on_release_();
    released_ += held_.size();
    last_released_ = std::move(held_);
    held_.clear();
  }
  int64_t RxCursor() const override { return static_cast<int64_t>(released_ & 0xffff); }
  // As a process that died after handling the last burst but before releasing it: its frames are
  // served again.
  void UndoRelease() {
    released_ -= last_released_.size();
    while (!last_released_.empty()) {
      inbox_.push_front(std::move(last_released_.back()));
      last_released_.pop_back();
    }
  }
  // Runs at the start of every Transmit (a test's chance to act between check and send).
  void set_on_transmit(std::function<void()> fn) { on_transmit_ = std::move(fn); }
  // Runs at the start of every Release.
  void set_on_release(std::function<void()> fn) { on_release_ = std::move(fn); }
  // The frames handed out by the last Receive and not yet released (to scribble on).
  std::deque<std::string>& held() { return held_; }

  uint16_t DoTransmit(const Packet* pkts, uint16_t n) override {
    if (on_transmit_) on_transmit_();
    uint16_t sent = 0;
    for (; sent < n && tx_room_ > 0; ++sent, --tx_room_) {
      sent_.emplace_back(reinterpret_cast<const char*>(pkts[sent].data), pkts[sent].len);
    }
    transmitted_ += sent;
    if (after_transmit_) after_transmit_();
    return sent;
  }
  int64_t TxCursor() const override { return static_cast<int64_t>(transmitted_ & 0xffff); }
  uint16_t TxWouldTake(const Packet* pkts, uint16_t n) const override {
    return static_cast<uint16_t>(std::min<size_t>(n, tx_room_));
  }
  // Runs at the end of every Transmit, the frames taken.
  void set_after_transmit(std::function<void()> fn) { after_transmit_ = std::move(fn); }

 private:
  std::deque<std::string> inbox_;
  std::deque<std::string> held_;  // received, not yet released (views point here)
  std::deque<std::string> last_released_;
  uint64_t released_ = 0;
  std::vector<std::string> sent_;
  size_t tx_room_;
  uint32_t mtu_ = 0;
  std::function<void()> on_transmit_;
  std::function<void()> on_release_;
  std::function<void()> after_transmit_;
  uint64_t transmitted_ = 0;
};

}  // namespace snapd

#endif  // SNAPD_ENGINES_TESTING_FAKE_PORT_H_
