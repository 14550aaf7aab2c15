#include "engines/echo/echo_engine.h"

#include "engines/registry.h"

namespace snapd {

absl::StatusOr<std::unique_ptr<Engine>> EchoEngine::Create(const std::string& name,
                                                           const engines::EchoConfig& config) {
  if (config.burst() > 256) return absl::InvalidArgumentError("burst: at most 256");
  return std::make_unique<EchoEngine>(name, config);
}

EchoEngine::EchoEngine(std::string name, const engines::EchoConfig& config)
    : Engine(std::move(name)), burst_(config.burst() == 0 ? 32 : config.burst()) {
  rx_.resize(burst_);
}

uint32_t EchoEngine::PollPorts(uint32_t* full_bursts) {
  uint32_t total = 0;
  for (PortEntry& entry : ports_) {
    Port* port = entry.port.get();
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

SNAPD_REGISTER_ENGINE_KIND(EchoEngine::kKind, EchoEngine, engines::EchoConfig);

}  // namespace snapd
