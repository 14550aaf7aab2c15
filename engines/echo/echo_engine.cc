#include "engines/echo/echo_engine.h"

#include "absl/strings/str_cat.h"
#include "engines/registry.h"

namespace snapd {

EchoEngine::EchoEngine(std::string name, const engines::EchoConfig& config)
    : Engine(std::move(name)), burst_(config.burst() == 0 ? 32 : config.burst()) {
  rx_.resize(burst_);
}

absl::Status EchoEngine::AddPort(std::unique_ptr<Port> port, const engines::PortAttachment&) {
  for (const auto& p : ports_) {
    if (p->name() == port->name()) {
      return absl::AlreadyExistsError(absl::StrCat("port ", port->name(), " already attached"));
    }
  }
  ports_.push_back(std::move(port));
  return absl::OkStatus();
}

std::unique_ptr<Port> EchoEngine::RemovePort(absl::string_view name) {
  for (auto it = ports_.begin(); it != ports_.end(); ++it) {
    if ((*it)->name() == name) {
      std::unique_ptr<Port> port = std::move(*it);
      ports_.erase(it);
      return port;
    }
  }
  return nullptr;
}

std::vector<std::string> EchoEngine::PortNames() const {
  std::vector<std::string> names;
  for (const auto& p : ports_) names.push_back(p->name());
  return names;
}

void EchoEngine::ForEachPort(const std::function<void(Port&)>& fn) {
  for (auto& p : ports_) fn(*p);
}

uint32_t EchoEngine::PollPorts(uint32_t* full_bursts) {
  uint32_t total = 0;
  for (auto& port : ports_) {
    if (!port->healthy()) continue;
    uint16_t n = port->Receive(rx_.data(), static_cast<uint16_t>(burst_));
    if (n == 0) continue;
    if (n == burst_) ++*full_bursts;
    uint64_t bytes = 0;
    for (uint16_t i = 0; i < n; ++i) bytes += rx_[i].len;
    uint16_t sent = port->Transmit(rx_.data(), n);
    port->Release();
    PortStats& ps = port->stats();
    ps.rx_frames.Add(n);
    ps.rx_bytes.Add(bytes);
    ps.tx_frames.Add(sent);
    if (sent < n) {
      ps.tx_dropped.Add(n - sent);
      stats().drops.Add(n - sent);
    }
    stats().frames.Add(n);
    stats().bytes.Add(bytes);
    stats().batches.Add();
    total += n;
  }
  return total;
}

namespace {

class EchoFactory : public EngineFactory {
 public:
  absl::string_view kind() const override { return EchoEngine::kKind; }
  std::unique_ptr<google::protobuf::Message> DefaultConfig() const override {
    return std::make_unique<engines::EchoConfig>();
  }
  absl::StatusOr<std::unique_ptr<Engine>> Create(
      const std::string& name, const google::protobuf::Message& config) const override {
    const auto& c = static_cast<const engines::EchoConfig&>(config);
    if (c.burst() > 256) return absl::InvalidArgumentError("burst: at most 256");
    return std::unique_ptr<Engine>(new EchoEngine(name, c));
  }
};

SNAPD_REGISTER_ENGINE(EchoFactory);

}  // namespace
}  // namespace snapd
