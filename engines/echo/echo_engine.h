// echo: reflects every frame back to the port it came from, unchanged. For benchmarks and health
// checks: an app attached to an echo engine sees its own frames come back.
#ifndef SNAPD_ENGINES_ECHO_ECHO_ENGINE_H_
#define SNAPD_ENGINES_ECHO_ECHO_ENGINE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engines/attached_ports.h"
#include "engines/echo/echo.pb.h"
#include "engines/engine.h"

namespace snapd {

class EchoEngine : public Engine {
 public:
  static constexpr absl::string_view kKind = "echo";

  // Checks the config (INVALID_ARGUMENT names the field) and builds the engine: what the
  // registered factory calls.
  static absl::StatusOr<std::unique_ptr<Engine>> Create(const std::string& name,
                                                        const engines::EchoConfig& config);
  EchoEngine(std::string name, const engines::EchoConfig& config);

  absl::string_view kind() const override { return kKind; }
  absl::Status AddPort(std::unique_ptr<Port> port, const engines::PortAttachment&) override {
    return ports_.Add({std::move(port)});
  }
  std::unique_ptr<Port> RemovePort(absl::string_view name) override { return ports_.Remove(name); }
  std::vector<std::string> PortNames() const override { return ports_.Names(); }
  void ForEachPort(const std::function<void(Port&)>& fn) override { ports_.ForEach(fn); }

 protected:
  uint32_t PollPorts(uint32_t* full_bursts) override;

 private:
  const uint32_t burst_;
  AttachedPorts<> ports_;
  std::vector<Packet> rx_;
};

}  // namespace snapd

#endif  // SNAPD_ENGINES_ECHO_ECHO_ENGINE_H_
