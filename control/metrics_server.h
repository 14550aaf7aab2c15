// MetricsServer: GET /metrics over HTTP, in Prometheus's text format (control/metrics.h), served
// by civetweb (libcivetweb-dev) on --metrics_address (config: metrics_address). Each scrape reads
// the daemon's counters on the main thread (Daemon::RunOnMain, as the control API does): the data
// path is not touched. One civetweb worker thread; anything but GET /metrics is 404.
//
// Not yet: the listening socket does not move with a live upgrade (civetweb 1.15 binds its own and
// cannot adopt one): the old snapd stops serving as the new one starts, a scrape or two fails.
#ifndef SNAPD_CONTROL_METRICS_SERVER_H_
#define SNAPD_CONTROL_METRICS_SERVER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"

struct mg_context;
struct mg_connection;

namespace snapd {

class Daemon;

class MetricsServer {
 public:
  // Listens on `address` ("HOST:PORT"; port 0 picks one). INVALID_ARGUMENT names the address.
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Start(Daemon* daemon,
                                                              const std::string& address);
  ~MetricsServer();
  // Where it listens ("127.0.0.1:41234").
  const std::string& address() const { return address_; }

 private:
  MetricsServer() = default;
  static int Handle(::mg_connection* conn, void* self);

  Daemon* daemon_ = nullptr;
  mg_context* ctx_ = nullptr;
  std::string address_;
};

}  // namespace snapd

#endif  // SNAPD_CONTROL_METRICS_SERVER_H_
