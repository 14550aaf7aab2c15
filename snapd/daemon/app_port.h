// AppPort: an app's memif queue pair as a Port. Receive gives views into the app's buffers (the
// frames the app wrote, each descriptor checked by the ring); Transmit copies into the buffers the
// app gave us. Engine thread only; the Connection must outlive the port (the daemon removes the
// port from its engine before the memif server frees the connection).
#ifndef SNAPD_SNAPD_DAEMON_APP_PORT_H_
#define SNAPD_SNAPD_DAEMON_APP_PORT_H_

#include <string>

#include "engines/engine.h"
#include "engines/port.h"
#include "ipc/server.h"

namespace snapd {

class AppPort;

// Who publishes an app port's ring cursors while the port defers them: an upgrade's cursor
// journal (upgrade/cursor_journal.h). Told when the port goes away.
class CursorPublisher {
 public:
  virtual void Untrack(AppPort* port) = 0;

 protected:
  ~CursorPublisher() = default;
};

class AppPort : public Port {
 public:
  AppPort(std::string name, memif::Connection& conn, size_t queue)
      : Port(std::move(name), PortKind::kApp),
        app_(conn.id()),
        rx_(conn.rx(queue)),
        tx_(conn.tx(queue)) {}
  ~AppPort() override;

  uint16_t DoReceive(Packet* pkts, uint16_t max) override;
  void Release() override { rx_.Release(); }
  int64_t RxCursor() const override { return rx_.cursor(); }
  int64_t TxCursor() const override { return tx_.cursor(); }
  uint16_t TxWouldTake(const Packet* pkts, uint16_t n) const override {
    return tx_.WouldTake(reinterpret_cast<const memif::Frame*>(pkts), n);
  }
  uint16_t DoTransmit(const Packet* pkts, uint16_t n) override;
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

  // The memif connection id of the app.
  uint32_t app() const { return app_; }

  // Journaled cursors (upgrade/cursor_journal.h): while `journal` is set, the rings publish only
  // when it calls PublishS2c and PublishC2s, at batch boundaries; nullptr publishes at once again.
  void SetJournal(CursorPublisher* journal);
  bool unpublished() const { return rx_.unpublished() || tx_.unpublished(); }
  uint16_t c2s_cursor() const { return rx_.cursor(); }
  uint16_t s2c_cursor() const { return tx_.cursor(); }
  void PublishS2c() { tx_.Publish(); }  // the frames we passed become the app's
  void PublishC2s() { rx_.Publish(); }  // the slots we read go back to the app
  // Publishes cursors another snapd journaled (RollForward, upgrade/cursor_journal.h); returns how
  // many rings moved, or -1 if a cursor lies outside what the app produced.
  int RollForward(uint16_t c2s_tail, uint16_t s2c_tail);

  // Frames the app wrote that the ring refused (bad descriptors, oversize chains).
  uint64_t ring_drops() const {
    return rx_.stats().bad_descriptors.Get() + rx_.stats().oversize.Get();
  }

 private:
  const uint32_t app_;
  memif::RxRing& rx_;
  memif::TxRing& tx_;
  CursorPublisher* journal_ = nullptr;
};

// Calls fn on each of the engine's ports that is an app's. The engine's thread, or while no worker
// polls it.
void ForEachAppPort(Engine& engine, const std::function<void(AppPort&)>& fn);

}  // namespace snapd

#endif  // SNAPD_SNAPD_DAEMON_APP_PORT_H_
