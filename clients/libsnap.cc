#include "clients/libsnap.h"

#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
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
  std::unique_ptr<App> app(new App());
  app->options_ = options;
  if (app->options_.socket.empty()) app->options_.socket = DefaultSocket();
  absl::Status s = app->Connect(absl::Seconds(5));
  if (!s.ok()) return s;
  return app;
}

absl::Status App::Connect(absl::Duration timeout) {
  snapd::memif::ClientOptions copts;
  copts.timeout = timeout;
  copts.socket_path = options_.socket;
  copts.id = options_.id;
  copts.secret = options_.secret;
  copts.name = options_.name;
  copts.log2_ring_size = options_.log2_ring_size;
  auto client = snapd::memif::MemifClient::Connect(copts);
  if (!client.ok()) return client.status();
  uint64_t mac;
  uint32_t ipv4;
  if (!ParseConnectedName((*client)->server_if_name(), &mac, &ipv4)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the memif server at ", copts.socket_path, " gave no addresses (is it snapd?); it said '",
        (*client)->server_if_name(), "'"));
  }
  client_ = std::move(*client);
  mac_ = mac;
  ipv4_ = ipv4;
  return absl::OkStatus();
}

absl::Status App::CheckConnection() {
  if (!gave_up_.ok()) return gave_up_;
  if (!reattaching_) {
    absl::Status s = client_->CheckControl();
    if (s.ok() || !client_->hung_up() || options_.reconnect_for <= absl::ZeroDuration()) return s;
    reattaching_ = true;
    lost_ = s;
    lost_at_ = absl::Now();
    next_try_ = lost_at_;
    backoff_ = absl::Milliseconds(10);
    tries_ = 0;
    fprintf(stderr, "libsnap: snapd went away without a word (%s); attaching again\n",
            std::string(s.message()).c_str());
  }
  return TryAgain();
}

absl::Status App::TryAgain() {
  absl::Time now = absl::Now();
  if (now < next_try_) return absl::OkStatus();
  ++tries_;
  // A snapd starting again may hold its listener before it serves: a try waits for it a while,
  // not the first attach's 5 s.
  absl::Status s = Connect(absl::Seconds(1));
  if (s.ok()) {
    reattaching_ = false;
    ++reconnects_;
    fprintf(stderr, "libsnap: attached again to snapd %d ms after it went away (%d tries)\n",
            static_cast<int>(absl::ToInt64Milliseconds(absl::Now() - lost_at_)), tries_);
    return s;
  }
  if (now - lost_at_ >= options_.reconnect_for) {
    reattaching_ = false;
    gave_up_ = absl::UnavailableError(absl::StrCat(
        lost_.message(), "; not back after ", absl::FormatDuration(options_.reconnect_for), " (",
        tries_, " tries, the last: ", s.message(), ")"));
    fprintf(stderr, "libsnap: %s\n", std::string(gave_up_.message()).c_str());
    return gave_up_;
  }
  // Refused (snapd is not there yet) or an error mid-handshake: back off, at most 250 ms.
  next_try_ = now + backoff_;
  backoff_ = std::min(backoff_ * 2, absl::Milliseconds(250));
  return absl::OkStatus();
}

bool App::Wait(int timeout_ms) {
  if (!gave_up_.ok()) return false;
  if (reattaching_) {
    // Until the next try is due (a negative timeout waits that long too, not for ever).
    int64_t wait = absl::ToInt64Milliseconds(next_try_ - absl::Now());
    if (timeout_ms >= 0) wait = std::min<int64_t>(wait, timeout_ms);
    if (wait > 0) ::poll(nullptr, 0, static_cast<int>(wait));
    return false;
  }
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
