#include "snapd/daemon/app_port.h"

#include <cstddef>

namespace snapd {

// A Packet and a memif::Frame are the same view; the rings fill one as the other.
static_assert(sizeof(Packet) == sizeof(memif::Frame));
static_assert(offsetof(Packet, data) == offsetof(memif::Frame, data));
static_assert(offsetof(Packet, len) == offsetof(memif::Frame, len));

uint16_t AppPort::DoReceive(Packet* pkts, uint16_t max) {
  return rx_.Receive(reinterpret_cast<memif::Frame*>(pkts), max);
}

uint16_t AppPort::DoTransmit(const Packet* pkts, uint16_t n) {
  return tx_.Transmit(reinterpret_cast<const memif::Frame*>(pkts), n);
}

AppPort::~AppPort() {
  if (journal_ != nullptr) journal_->Untrack(this);
}

void AppPort::SetJournal(CursorPublisher* journal) {
  journal_ = journal;
  rx_.SetDeferred(journal != nullptr);
  tx_.SetDeferred(journal != nullptr);
}

int AppPort::RollForward(uint16_t c2s_tail, uint16_t s2c_tail) {
  rx_.Resync();
  tx_.Resync();
  int moved = 0;
  if (c2s_tail != rx_.cursor()) {
    if (!rx_.RollForward(c2s_tail)) return -1;
    ++moved;
  }
  if (s2c_tail != tx_.cursor()) {
    if (!tx_.RollForward(s2c_tail)) return -1;
    ++moved;
  }
  return moved;
}

void ForEachAppPort(Engine& engine, const std::function<void(AppPort&)>& fn) {
  engine.ForEachPort([&](Port& p) {
    if (auto* app = dynamic_cast<AppPort*>(&p)) fn(*app);
  });
}

}  // namespace snapd
