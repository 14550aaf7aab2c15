// MetricsServer: GET /metrics over HTTP, in Prometheus's text format (control/metrics.h), served
// by civetweb (libcivetweb-dev) on --metrics_address (config: metrics_address). Each scrape reads
// the daemon's counters on the main thread (Daemon::RunOnMain, as the control API does): the data
// path is not touched. Two civetweb worker threads; anything but GET /metrics is 404.
//
// The listening socket is snapd's, not civetweb's, so that it moves with a live upgrade as the
// control socket does: no scrape is refused across one. civetweb 1.15 binds its own sockets and
// cannot be given one, so it is started on a loopback placeholder and its listening fd is then made
// a copy of ours (dup3 onto the same fd number: civetweb polls and accepts by fd number). The same
// trick pauses it: the placeholder goes back under that number, and connections wait in our
// socket's backlog for whichever snapd serves next.
#ifndef SNAPD_CONTROL_METRICS_SERVER_H_
#define SNAPD_CONTROL_METRICS_SERVER_H_

#include <atomic>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "base/unique_fd.h"
#include "snapd/daemon/upgrade_host.h"

struct mg_context;
struct mg_connection;

namespace snapd {

class Daemon;

class MetricsServer : public HandedListener {
 public:
  // Serves `address` ("HOST:PORT": HOST an IPv4 address, "[IPv6]", "localhost", or empty for
  // every address; port 0 picks one). `listener`, if any, is the socket the previous snapd served
  // (an upgrade hands it over): used if it is a TCP socket listening on that address, else closed
  // (and *refused says why) and the address bound anew. INVALID_ARGUMENT names the address.
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Start(Daemon* daemon,
                                                              const std::string& address,
                                                              UniqueFd listener = UniqueFd(),
                                                              std::string* refused = nullptr);
  ~MetricsServer() override;
  // Where it listens ("127.0.0.1:41234", "[::1]:9482").
  const std::string& address() const { return address_; }

  // HandedListener (snapd/daemon/upgrade_host.h). Main thread. Paused, the scrapes civetweb has
  // taken already get the figures as they were at the pause (the counters have stopped there).
  int fd() const override { return listener_.get(); }
  void Pause(bool paused) override;

 private:
  MetricsServer() = default;
  static int Handle(::mg_connection* conn, void* self);

  Daemon* daemon_ = nullptr;
  mg_context* ctx_ = nullptr;
  std::string address_;
  UniqueFd listener_;     // the socket served: it outlives this snapd in an upgrade
  int civet_fd_ = -1;     // civetweb's listening fd: a copy of listener_, or of the placeholder
  UniqueFd placeholder_;  // a listener on a loopback port, put under civet_fd_ while paused
  std::atomic<bool> paused_{false};
  std::atomic<int> in_flight_{0};            // scrapes being answered
  std::atomic<int64_t> last_request_ns_{0};  // when one began or ended (MonotonicNs)
  absl::Mutex final_mu_;
  std::string final_ ABSL_GUARDED_BY(final_mu_);  // the figures as Pause(true) found them
};

}  // namespace snapd

#endif  // SNAPD_CONTROL_METRICS_SERVER_H_
