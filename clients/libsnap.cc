#include "clients/libsnap.h"

#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/addr.h"

namespace snap {

std::string DefaultSocket() {
  const char* xdg = getenv("XDG_RUNTIME_DIR");
  if (geteuid() == 0 || xdg == nullptr) return "/run/snapd/memif.sock";
  return absl::StrCat(xdg, "/snapd/memif.sock");
}

bool ParseConnectedName(const std::string& name, uint64_t* mac, uint32_t* ipv4) {
  std::vector<std::string> parts = absl::StrSplit(name, '/');
  if (parts.size() != 3 || parts[0] != "snap" || parts[1].size() != 12 || parts[2].size() != 8) {
    return false;
  }
  uint64_t m;
  uint32_t ip;
  if (!absl::SimpleHexAtoi(parts[1], &m) || !absl::SimpleHexAtoi(parts[2], &ip)) return false;
  uint8_t b[6];
  for (int i = 0; i < 6; ++i) b[i] = static_cast<uint8_t>(m >> (8 * (5 - i)));
  *mac = snapd::MacFromBytes(b);
  uint8_t ipb[4];
  for (int i = 0; i < 4; ++i) ipb[i] = static_cast<uint8_t>(ip >> (8 * (3 - i)));
  memcpy(ipv4, ipb, 4);
  return true;
}

absl::StatusOr<std::unique_ptr<App>> App::Attach(const AttachOptions& options) {
  snapd::memif::ClientOptions copts;
  copts.socket_path = options.socket.empty() ? DefaultSocket() : options.socket;
  copts.id = options.id;
  copts.secret = options.secret;
  copts.name = options.name;
  copts.log2_ring_size = options.log2_ring_size;
  auto client = snapd::memif::MemifClient::Connect(copts);
  if (!client.ok()) return client.status();
  std::unique_ptr<App> app(new App());
  if (!ParseConnectedName((*client)->server_if_name(), &app->mac_, &app->ipv4_)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the memif server at ", copts.socket_path, " gave no addresses (is it snapd?); it said '",
        (*client)->server_if_name(), "'"));
  }
  app->client_ = std::move(*client);
  return app;
}

bool App::Wait(int timeout_ms) {
  snapd::memif::RxRing& rx = client_->rx(0);
  if (rx.HasPending()) return true;
  rx.SetInterruptMode(true);
  if (!rx.HasPending()) {
    pollfd p[2] = {{rx.eventfd(), POLLIN, 0}, {client_->control_fd(), POLLIN, 0}};
    ::poll(p, client_->control_fd() >= 0 ? 2 : 1, timeout_ms);
  }
  rx.DrainInterrupt();
  rx.SetInterruptMode(false);
  return rx.HasPending();
}

}  // namespace snap
