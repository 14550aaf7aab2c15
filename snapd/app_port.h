// AppPort: an app's memif queue pair as a Port. Receive gives views into the app's buffers (the
// frames the app wrote, each descriptor checked by the ring); Transmit copies into the buffers the
// app gave us. Engine thread only; the Connection must outlive the port (the daemon removes the
// port from its engine before the memif server frees the connection).
#ifndef SNAPD_SNAPD_APP_PORT_H_
#define SNAPD_SNAPD_APP_PORT_H_

#include <string>

#include "engines/port.h"
#include "ipc/server.h"

namespace snapd {

class AppPort : public Port {
 public:
  AppPort(std::string name, memif::Connection& conn, size_t queue)
      : Port(std::move(name), PortKind::kApp), rx_(conn.rx(queue)), tx_(conn.tx(queue)) {}

  uint16_t Receive(Packet* pkts, uint16_t max) override;
  void Release() override { rx_.Release(); }
  uint16_t Transmit(const Packet* pkts, uint16_t n) override;
  bool healthy() const override { return rx_.error() == nullptr && tx_.error() == nullptr; }
  // The ring's interrupt eventfd: the app writes it after filling the ring while we are armed.
  int wake_fd() const override { return rx_.eventfd(); }
  void ArmWake(bool armed) override { rx_.SetInterruptMode(armed); }
  bool Pending() const override { return rx_.HasPending(); }
  void DrainWake() override { rx_.DrainInterrupt(); }
  // Picks the rings' cursors up from shared memory again (after another snapd served them).
  void Resync() {
    rx_.Resync();
    tx_.Resync();
  }

  // Frames the app wrote that the ring refused (bad descriptors, oversize chains).
  uint64_t ring_drops() const {
    return rx_.stats().bad_descriptors.Get() + rx_.stats().oversize.Get();
  }

 private:
  memif::RxRing& rx_;
  memif::TxRing& tx_;
};

}  // namespace snapd

#endif  // SNAPD_SNAPD_APP_PORT_H_
