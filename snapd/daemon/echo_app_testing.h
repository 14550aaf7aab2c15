// For tests of the engine runtime: an echo engine whose one port is an app connected over memif in
// this process (a server, a client, and the AppPort between them).
#ifndef SNAPD_SNAPD_DAEMON_ECHO_APP_TESTING_H_
#define SNAPD_SNAPD_DAEMON_ECHO_APP_TESTING_H_

#include <unistd.h>

#include <memory>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "engines/registry.h"
#include "gtest/gtest.h"
#include "ipc/client.h"
#include "ipc/server.h"
#include "snapd/daemon/app_port.h"

namespace snapd {

struct EchoApp {
  // Connects app `id` on a socket named after `tag` and attaches it to a new echo engine. Fails
  // the test on error (check with ASSERT_NO_FATAL_FAILURE).
  void Connect(const std::string& tag, uint32_t id) {
    memif::ServerOptions options;
    options.socket_path = absl::StrCat("/tmp/snapd-", tag, "-", getpid(), ".sock");
    options.accept_any_id = true;
    auto s = memif::MemifServer::Create(options);
    ASSERT_TRUE(s.ok()) << s.status();
    server = std::move(*s);
    server->set_on_connected([&](memif::Connection& c) { conn = &c; });
    std::thread client_thread([&] {
      auto c = memif::MemifClient::Connect({options.socket_path, id});
      ASSERT_TRUE(c.ok()) << c.status();
      client = std::move(*c);
    });
    while (conn == nullptr) server->Poll(10);
    client_thread.join();
    auto e = EngineRegistry::Global().Create("echo", "echo0", "");
    ASSERT_TRUE(e.ok()) << e.status();
    engine = std::move(*e);
    auto p = std::make_unique<AppPort>(absl::StrCat("app", id), *conn, 0);
    port = p.get();
    ASSERT_TRUE(engine->AddPort(std::move(p), {}).ok());
  }

  // The engine goes first (its port reads the connection), then the app, then the server.
  ~EchoApp() {
    engine.reset();
    client.reset();
    server.reset();
  }

  std::unique_ptr<memif::MemifServer> server;
  std::unique_ptr<memif::MemifClient> client;
  memif::Connection* conn = nullptr;
  std::unique_ptr<Engine> engine;
  AppPort* port = nullptr;
};

}  // namespace snapd

#endif  // SNAPD_SNAPD_DAEMON_ECHO_APP_TESTING_H_
