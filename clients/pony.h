// snap::Pony: reliable, in-order messages to apps on other hosts, through the snapd pony engine the
// app is attached to (docs/pony.md). Non-blocking calls, events to poll, and a wait that sleeps on
// the ring's interrupt:
//
//   auto app = snap::App::Attach({.id = 1});
//   snap::Pony pony(app->get());
//   pony.Connect(peer_ip, /*app=*/2, /*token=*/1);
//   snap::PonyEvent ev;
//   while (true) {
//     if (!pony.Next(&ev)) { pony.Wait(100); continue; }
//     if (ev.type == snap::PonyEvent::kConnected) pony.Send(ev.conn, "hello", /*token=*/7);
//     if (ev.type == snap::PonyEvent::kMessage) ...ev.message...
//   }
//
// A message is 1 byte up to the engine's maximum (1 MiB by default). Send queues it in the library;
// the next Next or Wait hands what is queued to snapd in one burst, as far as the ring takes it;
// kSent comes once the peer acknowledged it. Each
// connection may have `budget` bytes of messages sent and not yet acknowledged (the engine says how
// many when it opens); Send past that fails with RESOURCE_EXHAUSTED until kSent frees room.
//
// Threads: one thread at a time per Pony (and its App).
#ifndef SNAPD_CLIENTS_PONY_H_
#define SNAPD_CLIENTS_PONY_H_

#include <cstdint>
#include <deque>
#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "clients/libsnap.h"
#include "ipc/pony_ops.h"

namespace snap {

struct PonyEvent {
  enum Type {
    kConnected,  // Connect(token) is open as `conn`
    kRefused,    // Connect(token) failed: code (a pony reset reason, 100 unreachable, 101 no room)
    kIncoming,   // a peer (addr, app) opened `conn` to this app (it may Refuse it)
    kSent,       // the message sent with `token` on conn was acknowledged by the peer
    kMessage,    // a message arrived on conn
    kClosed,  // conn is closed: code 0 clean, else why (3 the peer app went away, 6 timeout, ...)
  };
  Type type = kMessage;
  uint32_t conn = 0;
  uint32_t token = 0;
  uint32_t addr = 0;  // kIncoming, kConnected: the peer host (network order)
  uint16_t app = 0;   // kIncoming, kConnected: the peer app
  uint16_t code = 0;
  std::string message;
};

// A readable name for a kRefused or kClosed code.
const char* PonyCodeName(uint16_t code);

// A 64-bit FNV-1a-style digest of a message (8 bytes a step): what pony_echo answers a large
// message with, so that pony_bench can check
// it arrived intact without the bytes coming back.
uint64_t MessageDigest(absl::string_view message);

class Pony {
 public:
  // `app` is attached to a pony engine and outlives this object.
  explicit Pony(App* app, uint32_t max_message = 1 << 20);

  // Asks for a connection to `app` on the host at `addr` (network order); the answer is an event
  // with `token`. INVALID_ARGUMENT for an address or app no host has.
  absl::Status Connect(uint32_t addr, uint16_t app, uint32_t token);
  // Queues a message; RESOURCE_EXHAUSTED when the connection's budget has no room for it now,
  // FAILED_PRECONDITION on a connection not open.
  absl::Status Send(uint32_t conn, absl::string_view message, uint32_t token);
  // Closes conn once what was sent on it is acknowledged; kClosed follows.
  absl::Status Close(uint32_t conn);
  // Refuses a connection offered by kIncoming.
  absl::Status Refuse(uint32_t conn);

  // The next event, if any (never blocks). Also hands queued frames to snapd.
  bool Next(PonyEvent* ev);
  // Sleeps until snapd sends something or `timeout_ms` passes.
  void Wait(int timeout_ms);
  // Bytes a connection may still send now.
  uint64_t Room(uint32_t conn) const;
  // Frames waiting in the library for ring space, over all connections.
  size_t queued_frames() const { return out_.size(); }
  // Frames from snapd this library could not parse (a bug on one side).
  uint64_t bad_frames() const { return bad_frames_; }
  App& app() { return *app_; }

 private:
  struct Conn {
    uint64_t budget = 0;
    uint64_t unacked = 0;
    std::deque<uint32_t> sizes;  // of messages sent, not yet acknowledged, in order
    std::string partial;         // a message arriving
  };
  // Hands queued frames to the ring, as many as it takes.
  void Flush();
  void Queue(const snapd::pony::AppOp& op, absl::string_view bytes = {});
  void Read();

  App* app_;
  const uint32_t max_message_;
  std::map<uint32_t, Conn> conns_;
  std::deque<std::string> out_;  // frames not yet on the ring
  std::deque<PonyEvent> events_;
  uint64_t bad_frames_ = 0;
};

}  // namespace snap

#endif  // SNAPD_CLIENTS_PONY_H_
