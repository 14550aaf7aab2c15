// memif_echo: a memif server that reflects every frame it receives back on the queue it came from.
// A diagnostic for operators (does an app's memif work at all?), the far end of tools/demo and of
// the interop tests, and the server side of `tools/bench ipc`.
//
//   memif_echo --socket=/run/echo.sock [--id=N --secret=S] [--poll --core=1]
//   [--stats_interval_ms=1000]
//
// By default it serves any interface id and sleeps on the rings' interrupt eventfds when idle; with
// --poll it spins, for latency measurements with a core of its own.
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "base/unique_fd.h"
#include "ipc/server.h"
#include "tools/cpu.h"

ABSL_FLAG(std::string, socket, "", "Path of the memif control socket to listen on (required).");
ABSL_FLAG(int64_t, id, -1, "Serve only this interface id (default: any id not in use).");
ABSL_FLAG(std::string, secret, "", "Secret the client must present (with --id).");
ABSL_FLAG(bool, poll, false, "Busy-poll the rings instead of sleeping on interrupts when idle.");
ABSL_FLAG(int, core, -1, "Pin to this CPU core.");
ABSL_FLAG(int, stats_interval_ms, 0, "Print a stats line this often (0: only at exit).");

namespace snapd {
namespace {

std::atomic<bool> g_stop{false};

void OnSignal(int) { g_stop = true; }

struct Totals {
  uint64_t rx = 0, tx = 0, dropped = 0, bad = 0;
};

class Echo {
 public:
  explicit Echo(std::unique_ptr<memif::MemifServer> server) : server_(std::move(server)) {
    wait_.reset(::epoll_create1(EPOLL_CLOEXEC));
    Watch(server_->epoll_fd());
    server_->set_on_connected([this](memif::Connection& c) {
      for (size_t q = 0; q < c.queue_pairs(); ++q) Watch(c.rx(q).eventfd());
      printf("memif_echo: connected id=%u app='%s' queues=%zu\n", c.id(), c.peer_name().c_str(),
             c.queue_pairs());
      fflush(stdout);
    });
    server_->set_on_refused([](const ucred& peer, absl::string_view reason) {
      printf("memif_echo: refused pid=%d uid=%d: %.*s\n", peer.pid, peer.uid,
             static_cast<int>(reason.size()), reason.data());
      fflush(stdout);
    });
    server_->set_on_disconnected([this](memif::Connection& c, absl::string_view reason) {
      for (size_t q = 0; q < c.queue_pairs(); ++q) {
        ::epoll_ctl(wait_.get(), EPOLL_CTL_DEL, c.rx(q).eventfd(), nullptr);
        Account(c, q);
      }
      printf("memif_echo: disconnected id=%u: %.*s\n", c.id(), static_cast<int>(reason.size()),
             reason.data());
      fflush(stdout);
    });
  }

  void Run(bool poll_mode, int stats_interval_ms) {
    memif::Frame frames[32];
    int idle = 0;
    uint64_t iteration = 0;
    absl::Time next_stats = absl::Now() + absl::Milliseconds(stats_interval_ms);
    while (!g_stop) {
      uint32_t work = 0;
      for (memif::Connection* c : server_->connections()) {
        for (size_t q = 0; q < c->queue_pairs(); ++q) {
          uint16_t n = c->rx(q).Receive(frames, 32);
          if (n == 0) continue;
          uint16_t sent = c->tx(q).Transmit(frames, n);
          dropped_ += n - sent;  // the client's receive ring is full: the frame is lost, counted
          c->rx(q).Release();
          work += n;
        }
      }
      if (work == 0 || (++iteration & 1023) == 0) {
        server_->Poll(0);
        server_->DropFailedConnections();
        if (stats_interval_ms > 0 && absl::Now() >= next_stats) {
          PrintStats();
          next_stats = absl::Now() + absl::Milliseconds(stats_interval_ms);
        }
      }
      if (work > 0) {
        idle = 0;
      } else if (!poll_mode && ++idle > 2000) {
        Sleep(stats_interval_ms > 0 ? stats_interval_ms : 1000);
        idle = 0;
      }
    }
    PrintStats();
  }

 private:
  void Watch(int fd) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    ::epoll_ctl(wait_.get(), EPOLL_CTL_ADD, fd, &ev);
  }

  // Arms every receive ring's interrupt, re-checks, and blocks until a frame or control event.
  void Sleep(int timeout_ms) {
    auto conns = server_->connections();
    for (memif::Connection* c : conns) {
      for (size_t q = 0; q < c->queue_pairs(); ++q) c->rx(q).SetInterruptMode(true);
    }
    bool pending = false;
    for (memif::Connection* c : conns) {
      for (size_t q = 0; q < c->queue_pairs(); ++q) pending |= c->rx(q).HasPending();
    }
    if (!pending) {
      epoll_event events[16];
      ::epoll_wait(wait_.get(), events, 16, timeout_ms);
    }
    for (memif::Connection* c : server_->connections()) {
      for (size_t q = 0; q < c->queue_pairs(); ++q) {
        c->rx(q).DrainInterrupt();
        c->rx(q).SetInterruptMode(false);
      }
    }
  }

  // Folds a departing queue's counters into the totals of closed connections.
  void Account(memif::Connection& c, size_t q) {
    closed_.rx += c.rx(q).stats().frames.Get();
    closed_.tx += c.tx(q).stats().frames.Get();
    closed_.bad += c.rx(q).stats().bad_descriptors.Get() + c.tx(q).stats().bad_descriptors.Get();
  }

  void PrintStats() {
    Totals t = closed_;
    auto conns = server_->connections();
    for (memif::Connection* c : conns) {
      for (size_t q = 0; q < c->queue_pairs(); ++q) {
        t.rx += c->rx(q).stats().frames.Get();
        t.tx += c->tx(q).stats().frames.Get();
        t.bad += c->rx(q).stats().bad_descriptors.Get() + c->tx(q).stats().bad_descriptors.Get();
      }
    }
    const memif::ServerStats& s = server_->stats();
    printf(
        "memif_echo: connections=%zu rx_frames=%lu tx_frames=%lu dropped=%lu bad_descriptors=%lu "
        "accepted=%lu refused=%lu disconnected=%lu\n",
        conns.size(), t.rx, t.tx, dropped_, t.bad, s.accepted.Get(), s.refused.Get(),
        s.disconnected.Get());
    fflush(stdout);
  }

  std::unique_ptr<memif::MemifServer> server_;
  UniqueFd wait_;
  Totals closed_;
  uint64_t dropped_ = 0;
};

int Main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "A memif server that echoes every frame back.\n"
      "Usage: memif_echo --socket=PATH [--id=N [--secret=S]] [--poll] [--core=N]");
  absl::ParseCommandLine(argc, argv);
  std::string path = absl::GetFlag(FLAGS_socket);
  if (path.empty()) {
    fprintf(stderr, "memif_echo: --socket=PATH is required\n");
    return 2;
  }
  if (absl::Status pinned = snapd::tools::PinToCore(absl::GetFlag(FLAGS_core)); !pinned.ok()) {
    fprintf(stderr, "memif_echo: %s\n", std::string(pinned.message()).c_str());
    return 2;
  }
  memif::ServerOptions options;
  options.socket_path = path;
  options.name = "memif_echo";
  int64_t id = absl::GetFlag(FLAGS_id);
  options.accept_any_id = id < 0;
  auto server = memif::MemifServer::Create(options);
  if (!server.ok()) {
    fprintf(stderr, "memif_echo: %s\n", std::string(server.status().message()).c_str());
    return 1;
  }
  if (id >= 0) {
    absl::Status added =
        (*server)->AddInterface({static_cast<uint32_t>(id), absl::GetFlag(FLAGS_secret)});
    if (!added.ok()) {
      fprintf(stderr, "memif_echo: %s\n", std::string(added.message()).c_str());
      return 2;
    }
  }
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
  printf("memif_echo: listening on %s (%s)\n", path.c_str(),
         absl::GetFlag(FLAGS_poll) ? "polling" : "interrupt mode");
  fflush(stdout);
  Echo echo(std::move(*server));
  echo.Run(absl::GetFlag(FLAGS_poll), absl::GetFlag(FLAGS_stats_interval_ms));
  return 0;
}

}  // namespace
}  // namespace snapd

int main(int argc, char** argv) { return snapd::Main(argc, argv); }
