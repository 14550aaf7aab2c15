#include "snapd/app_port.h"

#include <cstddef>

namespace snapd {

// A Packet and a memif::Frame are the same view; the rings fill one as the other.
static_assert(sizeof(Packet) == sizeof(memif::Frame));
static_assert(offsetof(Packet, data) == offsetof(memif::Frame, data));
static_assert(offsetof(Packet, len) == offsetof(memif::Frame, len));

uint16_t AppPort::Receive(Packet* pkts, uint16_t max) {
  return rx_.Receive(reinterpret_cast<memif::Frame*>(pkts), max);
}

uint16_t AppPort::Transmit(const Packet* pkts, uint16_t n) {
  return tx_.Transmit(reinterpret_cast<const memif::Frame*>(pkts), n);
}

}  // namespace snapd
