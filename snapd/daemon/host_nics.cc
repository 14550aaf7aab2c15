#include "snapd/daemon/host_nics.h"

#include "absl/strings/match.h"
#include "snapd/daemon/dpdk.h"
#include "snapd/daemon/packet_nic.h"

namespace snapd {
namespace {

class HostDriver final : public NicDriver {
 public:
  absl::Status Start(const config::SnapdConfig& config) override {
    return DpdkNicDriver().Start(config);
  }
  absl::StatusOr<std::unique_ptr<Nic>> Open(const config::Nic& cfg, int index) override {
    if (!absl::StartsWith(cfg.devargs(), kPacketNicPrefix)) {
      return DpdkNicDriver().Open(cfg, index);
    }
    auto nic = PacketNic::Open(cfg, index);
    if (!nic.ok()) return nic.status();
    return std::unique_ptr<Nic>(std::move(*nic));
  }
  void Stop() override { DpdkNicDriver().Stop(); }
};

}  // namespace

NicDriver& HostNicDriver() {
  static auto* driver = new HostDriver();
  return *driver;
}

}  // namespace snapd
