#include "control/metrics_server.h"

#include <civetweb.h>

#include <cstring>

#include "absl/strings/str_cat.h"
#include "control/metrics.h"
#include "control/wire.h"
#include "snapd/daemon/daemon.h"

namespace snapd {

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(Daemon* daemon,
                                                                    const std::string& address) {
  const size_t colon = address.rfind(':');
  if (address.empty() || colon == std::string::npos || colon + 1 == address.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics_address: '", address, "' is not HOST:PORT"));
  }
  mg_init_library(0);
  std::unique_ptr<MetricsServer> s(new MetricsServer());
  s->daemon_ = daemon;
  const char* options[] = {"listening_ports",    address.c_str(), "num_threads", "1",
                           "request_timeout_ms", "10000",         nullptr};
  mg_callbacks callbacks;
  memset(&callbacks, 0, sizeof(callbacks));
  s->ctx_ = mg_start(&callbacks, s.get(), options);
  if (s->ctx_ == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics_address: cannot listen on '", address, "'"));
  }
  mg_set_request_handler(s->ctx_, "/metrics$", &MetricsServer::Handle, s.get());
  mg_server_port ports[1];
  if (mg_get_server_ports(s->ctx_, 1, ports) == 1) {
    s->address_ = absl::StrCat(address.substr(0, colon), ":", ports[0].port);
  } else {
    s->address_ = address;
  }
  return s;
}

MetricsServer::~MetricsServer() {
  if (ctx_ != nullptr) mg_stop(ctx_);
}

int MetricsServer::Handle(::mg_connection* conn, void* arg) {
  auto* self = static_cast<MetricsServer*>(arg);
  const mg_request_info* req = mg_get_request_info(conn);
  if (strcmp(req->request_method, "GET") != 0) {
    mg_send_http_error(conn, 405, "%s", "GET only\n");
    return 405;
  }
  std::string text;
  absl::Status status = self->daemon_->RunOnMain(
      [&] { text = PrometheusText(StatsOf(*self->daemon_), InfoOf(*self->daemon_)); });
  if (!status.ok()) {
    mg_send_http_error(conn, 503, "%s\n", std::string(status.message()).c_str());
    return 503;
  }
  mg_printf(conn,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
            "Content-Length: %zu\r\nConnection: close\r\n\r\n",
            text.size());
  mg_write(conn, text.data(), text.size());
  return 200;
}

}  // namespace snapd
