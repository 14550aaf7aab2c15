// FakeNic and FakeNicDriver: NICs without DPDK or devices, for tests of the daemon and of the
// upgrade (each queue is a FakePort, engines/testing/fake_port.h). Test-only.
#ifndef SNAPD_SNAPD_DAEMON_TESTING_FAKE_NIC_H_
#define SNAPD_SNAPD_DAEMON_TESTING_FAKE_NIC_H_

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "engines/testing/fake_port.h"
#include "snapd/daemon/nic.h"

namespace snapd {

class FakeNic : public Nic {
 public:
  FakeNic(std::string name, uint16_t queues) : name_(std::move(name)), queues_(queues) {}
  const std::string& name() const override { return name_; }
  const std::string& device() const override { return device_; }
  uint16_t queues() const override { return queues_; }
  bool rss() const override { return queues_ > 1; }
  bool rx_interrupts() const override { return false; }
  std::string mac() const override { return "02:00:00:00:ff:01"; }
  const std::string& kernel_interface() const override { return kernel_; }
  bool KernelInterfaceHere() const override { return true; }
  bool ReceivesCopies() const override { return false; }
  bool IsTap() const override { return false; }
  void Abandon() override {}
  std::unique_ptr<Port> TakeQueuePort(uint16_t q) override {
    return std::make_unique<FakePort>(absl::StrCat(name_, "/q", q), PortKind::kNic, 1 << 20, name_);
  }
  NicStats Stats() const override {
    NicStats s = carried_;
    s.rx_frames += 10;  // what this "device" counted itself
    return s;
  }
  void ContinueFrom(const NicStats& before) override { carried_ = before; }

 private:
  const std::string name_;
  const std::string device_ = "fake";
  const std::string kernel_;
  const uint16_t queues_;
  NicStats carried_;
};

class FakeNicDriver : public NicDriver {
 public:
  absl::Status Start(const config::SnapdConfig&) override {
    ++starts;
    return absl::OkStatus();
  }
  absl::StatusOr<std::unique_ptr<Nic>> Open(const config::Nic& cfg, int index) override {
    if (cfg.devargs() == "broken") return absl::InvalidArgumentError("cannot open NIC 'broken'");
    ++opens;
    return std::unique_ptr<Nic>(
        std::make_unique<FakeNic>(absl::StrCat("nic", index), static_cast<uint16_t>(cfg.queues())));
  }
  void Stop() override { ++stops; }
  int starts = 0, opens = 0, stops = 0;
};

}  // namespace snapd

#endif  // SNAPD_SNAPD_DAEMON_TESTING_FAKE_NIC_H_
