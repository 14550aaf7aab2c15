#include "ipc/pony_ops.h"

#include "base/big_endian.h"

namespace snapd::pony {
namespace {

bool FromApp(AppOpCode op) { return op >= AppOpCode::kConnect && op <= AppOpCode::kRefuse; }
bool FromEngine(AppOpCode op) { return op >= AppOpCode::kConnected && op <= AppOpCode::kCredit; }

// A unicast address a connection may go to: not 0.0.0.0/8, loopback, multicast or reserved.
bool PeerAddress(uint32_t a) {
  uint8_t first = static_cast<uint8_t>(a >> 24);
  return first != 0 && first != 127 && first < 224;
}

}  // namespace

const char* AppOpErrorName(AppOpError e) {
  switch (e) {
    case AppOpError::kNone:
      return "";
    case AppOpError::kTooShort:
      return "op_drop_too_short";
    case AppOpError::kBadVersion:
      return "op_drop_bad_version";
    case AppOpError::kBadOp:
      return "op_drop_bad_op";
    case AppOpError::kReservedNotZero:
      return "op_drop_reserved";
    case AppOpError::kBadConnection:
      return "op_drop_bad_connection";
    case AppOpError::kBadMessage:
      return "op_drop_bad_message";
    case AppOpError::kEmptySegment:
      return "op_drop_empty_segment";
    case AppOpError::kPayloadNotAllowed:
      return "op_drop_payload_not_allowed";
    case AppOpError::kBadAddress:
      return "op_drop_bad_address";
  }
  return "op_drop_unknown";
}

AppOpError ParseAppOp(const uint8_t* p, uint32_t len, Direction dir, uint32_t max_message,
                      AppOp* op, uint32_t* payload_offset) {
  if (len < kAppOpBytes) return AppOpError::kTooShort;
  if (p[0] != kAppOpVersion) return AppOpError::kBadVersion;
  const AppOpCode code = static_cast<AppOpCode>(p[1]);
  if (!(dir == Direction::kFromApp ? FromApp(code) : FromEngine(code))) return AppOpError::kBadOp;
  if (Get16(p + 2) != 0) return AppOpError::kReservedNotZero;
  op->op = code;
  op->conn = Get32(p + 4);
  op->token = Get32(p + 8);
  op->length = Get32(p + 12);
  op->offset = Get32(p + 16);
  op->addr = Get32(p + 20);
  op->app = Get16(p + 24);
  op->code = Get16(p + 26);
  // Only a connect names no connection; a refusal of a connect may not have one either.
  const bool no_conn = code == AppOpCode::kConnect;
  const bool any_conn = code == AppOpCode::kRefused;
  if (!any_conn && (op->conn == 0) != no_conn) return AppOpError::kBadConnection;
  if (code == AppOpCode::kSend || code == AppOpCode::kReceived) {
    const uint32_t segment = len - kAppOpBytes;
    if (segment == 0) return AppOpError::kEmptySegment;
    if (op->length == 0 || op->length > max_message || op->offset >= op->length ||
        segment > op->length - op->offset) {
      return AppOpError::kBadMessage;
    }
    *payload_offset = kAppOpBytes;
    return AppOpError::kNone;
  }
  if (code == AppOpCode::kConnect && (!PeerAddress(op->addr) || op->app == 0)) {
    return AppOpError::kBadAddress;
  }
  if (len != kAppOpBytes) return AppOpError::kPayloadNotAllowed;
  *payload_offset = len;
  return AppOpError::kNone;
}

uint32_t WriteAppOp(const AppOp& op, uint8_t* out, uint32_t room) {
  if (room < kAppOpBytes) return 0;
  out[0] = kAppOpVersion;
  out[1] = static_cast<uint8_t>(op.op);
  Put16(out + 2, 0);
  Put32(out + 4, op.conn);
  Put32(out + 8, op.token);
  Put32(out + 12, op.length);
  Put32(out + 16, op.offset);
  Put32(out + 20, op.addr);
  Put16(out + 24, op.app);
  Put16(out + 26, op.code);
  return kAppOpBytes;
}

}  // namespace snapd::pony
