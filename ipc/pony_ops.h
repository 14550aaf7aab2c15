// What an app and its pony engine say to each other over the app's memif ring: one operation per
// frame, a fixed 28-byte header, then bytes for the operations that carry a message's segment.
// docs/pony.md ("The app's operations") is the specification.
//
// The engine reads the app's operations (untrusted: an app may write anything into its ring) with
// ParseAppOp(.., Direction::kFromApp, ..); libsnap reads the engine's with kFromEngine. Pure; any
// thread.
#ifndef SNAPD_IPC_PONY_OPS_H_
#define SNAPD_IPC_PONY_OPS_H_

#include <cstdint>

namespace snapd::pony {

inline constexpr uint8_t kAppOpVersion = 1;
inline constexpr uint32_t kAppOpBytes = 28;

enum class AppOpCode : uint8_t {
  // app -> engine
  kConnect = 1,  // open a connection to (addr, app); token: the app's cookie for the reply
  kSend = 2,     // a segment of a message on conn; token: the app's cookie for kSent
  kClose = 3,    // close conn: messages sent before it still go out
  kAccept = 4,   // take the connection the engine offered (kIncoming) as conn
  kRefuse = 5,   // refuse it
  // engine -> app
  kConnected = 16,  // the connection asked for with `token` is open as `conn`
  kIncoming = 17,   // a host asks for a connection (addr, app); accept or refuse `conn`
  kSent = 18,       // the message sent with `token` on conn was acknowledged by the peer
  kReceived = 19,   // a segment of a message that arrived on conn
  kClosed = 20,     // conn is closed; code: why (a pony ResetReason, 0 for a clean close)
  kRefused = 21,    // the connection asked for with `token` failed; code: why
  kCredit = 22,     // the app may have `length` more bytes of messages in flight on conn
};

enum class Direction { kFromApp, kFromEngine };

struct AppOp {
  AppOpCode op = AppOpCode::kSend;
  uint32_t conn = 0;    // the engine's handle for the connection (0 only where none exists yet)
  uint32_t token = 0;   // the app's cookie, echoed in the reply
  uint32_t length = 0;  // kSend, kReceived: the whole message's length; kCredit: bytes
  uint32_t offset = 0;  // kSend, kReceived: where this frame's bytes go in the message
  uint32_t addr = 0;    // kConnect, kIncoming: the peer host's IPv4 address (host order)
  uint16_t app = 0;     // kConnect, kIncoming: the peer app's id
  uint16_t code = 0;    // kClosed, kRefused: why
};

enum class AppOpError {
  kNone = 0,
  kTooShort,           // shorter than the op header
  kBadVersion,         // not version 1
  kBadOp,              // unknown, or not one this direction may send
  kReservedNotZero,    // the reserved field is set
  kBadConnection,      // conn 0 where one is needed, or set where none exists yet
  kBadMessage,         // kSend/kReceived: length 0 or past the maximum, or the bytes past it
  kEmptySegment,       // kSend/kReceived without bytes
  kPayloadNotAllowed,  // bytes after an op that carries none
  kBadAddress,         // kConnect: address 0, multicast, broadcast or loopback; app 0
};

// The counter name of an error: "op_drop_too_short", ... ("" for kNone).
const char* AppOpErrorName(AppOpError e);

// Reads the op at the start of `p` (`len` bytes, one frame), sent in direction `dir`, for
// messages of at most `max_message` bytes. On success fills *op and *payload_offset (where the
// segment starts for kSend/kReceived, else len). Never reads past p + len.
AppOpError ParseAppOp(const uint8_t* p, uint32_t len, Direction dir, uint32_t max_message,
                      AppOp* op, uint32_t* payload_offset);

// Writes `op`'s header (kAppOpBytes) to `out`; returns kAppOpBytes, or 0 if `room` is too small.
uint32_t WriteAppOp(const AppOp& op, uint8_t* out, uint32_t room);

}  // namespace snapd::pony

#endif  // SNAPD_IPC_PONY_OPS_H_
