#include "clients/pony.h"

#include <arpa/inet.h>
#include <string.h>

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace snap {

using snapd::pony::AppOp;
using snapd::pony::AppOpCode;

namespace {
// A message's bytes per SEND frame (a frame holds at most 64 KiB).
constexpr uint32_t kSegment = 60000;
constexpr uint16_t kBurst = 64;
}  // namespace

const char* PonyCodeName(uint16_t code) {
  switch (code) {
    case 0:
      return "closed";
    case 1:
      return "unknown connection (the peer forgot it: restarted or timed out)";
    case 2:
      return "no such app at the peer";
    case 3:
      return "the peer app went away";
    case 4:
      return "refused by the peer app";
    case 5:
      return "protocol error";
    case 6:
      return "timed out: the peer stopped answering";
    case 100:
      return "unreachable: not on the engine's link, or no ARP answer";
    case 101:
      return "the engine has no room for another connection";
  }
  return "unknown code";
}

uint64_t MessageDigest(absl::string_view message) {
  // FNV-1a's steps over 8-byte words (then the last bytes one by one): a byte a nanosecond would
  // cost a bulk benchmark more than the transport it measures.
  uint64_t h = 0xcbf29ce484222325ULL;
  const char* p = message.data();
  size_t n = message.size();
  for (; n >= 8; p += 8, n -= 8) {
    uint64_t w;
    memcpy(&w, p, 8);
    h = (h ^ w) * 0x100000001b3ULL;
  }
  for (; n > 0; ++p, --n) h = (h ^ static_cast<uint8_t>(*p)) * 0x100000001b3ULL;
  return h;
}

Pony::Pony(App* app, uint32_t max_message) : app_(app), max_message_(max_message) {}

void Pony::Queue(const AppOp& op, absl::string_view bytes) {
  std::string f(snapd::pony::kAppOpBytes + bytes.size(), '\0');
  snapd::pony::WriteAppOp(op, reinterpret_cast<uint8_t*>(f.data()), snapd::pony::kAppOpBytes);
  if (!bytes.empty()) memcpy(&f[snapd::pony::kAppOpBytes], bytes.data(), bytes.size());
  out_.push_back(std::move(f));
}

void Pony::Flush() {
  Frame frames[kBurst];
  while (!out_.empty()) {
    const uint16_t n = static_cast<uint16_t>(std::min<size_t>(out_.size(), kBurst));
    for (uint16_t i = 0; i < n; ++i) {
      frames[i] =
          Frame{reinterpret_cast<uint8_t*>(out_[i].data()), static_cast<uint32_t>(out_[i].size())};
    }
    const uint16_t sent = app_->Send(frames, n);
    out_.erase(out_.begin(), out_.begin() + sent);
    if (sent < n) return;
  }
}

absl::Status Pony::Connect(uint32_t addr, uint16_t app, uint32_t token) {
  AppOp op;
  op.op = AppOpCode::kConnect;
  op.addr = ntohl(addr);
  op.app = app;
  op.token = token;
  // The engine would drop what its parser refuses; say so here instead.
  uint8_t f[snapd::pony::kAppOpBytes];
  snapd::pony::WriteAppOp(op, f, sizeof(f));
  AppOp parsed;
  uint32_t off;
  if (snapd::pony::ParseAppOp(f, sizeof(f), snapd::pony::Direction::kFromApp, max_message_, &parsed,
                              &off) != snapd::pony::AppOpError::kNone) {
    return absl::InvalidArgumentError("no host has that address, or app 0");
  }
  Queue(op);
  Flush();
  return absl::OkStatus();
}

absl::Status Pony::Send(uint32_t conn, absl::string_view message, uint32_t token) {
  auto it = conns_.find(conn);
  if (it == conns_.end()) {
    return absl::FailedPreconditionError(absl::StrCat("connection ", conn, " is not open"));
  }
  if (message.empty() || message.size() > max_message_) {
    return absl::InvalidArgumentError(
        absl::StrCat("a message is 1 to ", max_message_, " bytes, not ", message.size()));
  }
  Conn& c = it->second;
  if (c.unacked + message.size() > c.budget) {
    return absl::ResourceExhaustedError("the connection's send budget is full: wait for kSent");
  }
  for (uint32_t off = 0; off < message.size(); off += kSegment) {
    AppOp op;
    op.op = AppOpCode::kSend;
    op.conn = conn;
    op.token = token;
    op.length = static_cast<uint32_t>(message.size());
    op.offset = off;
    Queue(op, message.substr(off, kSegment));
  }
  c.unacked += message.size();
  c.sizes.push_back(static_cast<uint32_t>(message.size()));
  // Handed over at the next Next or Wait: messages sent together go in one burst, one wake-up.
  return absl::OkStatus();
}

absl::Status Pony::Close(uint32_t conn) {
  if (conns_.find(conn) == conns_.end()) {
    return absl::FailedPreconditionError(absl::StrCat("connection ", conn, " is not open"));
  }
  AppOp op;
  op.op = AppOpCode::kClose;
  op.conn = conn;
  Queue(op);
  Flush();
  return absl::OkStatus();
}

absl::Status Pony::Refuse(uint32_t conn) {
  if (conns_.find(conn) == conns_.end()) {
    return absl::FailedPreconditionError(absl::StrCat("connection ", conn, " is not open"));
  }
  AppOp op;
  op.op = AppOpCode::kRefuse;
  op.conn = conn;
  Queue(op);
  Flush();
  return absl::OkStatus();
}

uint64_t Pony::Room(uint32_t conn) const {
  auto it = conns_.find(conn);
  return it == conns_.end() ? 0 : it->second.budget - it->second.unacked;
}

void Pony::Read() {
  Frame frames[kBurst];
  const uint16_t n = app_->Receive(frames, kBurst);
  for (uint16_t i = 0; i < n; ++i) {
    AppOp op;
    uint32_t off = 0;
    if (snapd::pony::ParseAppOp(frames[i].data, frames[i].len, snapd::pony::Direction::kFromEngine,
                                max_message_, &op, &off) != snapd::pony::AppOpError::kNone) {
      ++bad_frames_;
      continue;
    }
    PonyEvent ev;
    ev.conn = op.conn;
    ev.token = op.token;
    ev.addr = htonl(op.addr);
    ev.app = op.app;
    ev.code = op.code;
    switch (op.op) {
      case AppOpCode::kConnected:
      case AppOpCode::kIncoming:
        ev.type = op.op == AppOpCode::kConnected ? PonyEvent::kConnected : PonyEvent::kIncoming;
        conns_[op.conn].budget = op.length;
        break;
      case AppOpCode::kRefused:
        ev.type = PonyEvent::kRefused;
        break;
      case AppOpCode::kClosed:
        ev.type = PonyEvent::kClosed;
        conns_.erase(op.conn);
        break;
      case AppOpCode::kSent: {
        ev.type = PonyEvent::kSent;
        auto it = conns_.find(op.conn);
        if (it != conns_.end() && !it->second.sizes.empty()) {
          it->second.unacked -= it->second.sizes.front();
          it->second.sizes.pop_front();
        }
        break;
      }
      case AppOpCode::kReceived: {
        Conn& c = conns_[op.conn];
        if (op.offset != c.partial.size()) {
          ++bad_frames_;
          c.partial.clear();
          continue;
        }
        c.partial.append(reinterpret_cast<const char*>(frames[i].data) + off, frames[i].len - off);
        if (c.partial.size() < op.length) continue;
        ev.type = PonyEvent::kMessage;
        ev.message = std::move(c.partial);
        c.partial.clear();
        break;
      }
      default:
        continue;
    }
    events_.push_back(std::move(ev));
  }
  app_->Release();
}

bool Pony::Next(PonyEvent* ev) {
  if (!out_.empty()) Flush();
  if (events_.empty()) Read();
  if (events_.empty()) return false;
  *ev = std::move(events_.front());
  events_.pop_front();
  return true;
}

void Pony::Wait(int timeout_ms) {
  Flush();
  if (!events_.empty()) return;
  // Frames still queued wait for ring space, which frees as snapd reads: look again soon.
  app_->Wait(out_.empty() ? timeout_ms : std::min(timeout_ms, 1));
}

}  // namespace snap
