#include "engines/pony/wire.h"

#include <cstring>

#include "base/big_endian.h"

namespace snapd::pony {
namespace {

// The bytes after the common header that a packet of type `t` carries in its header.
uint32_t TypeBytes(PacketType t, uint8_t sack_count) {
  switch (t) {
    case PacketType::kData:
    case PacketType::kResync:
      return kMessageBytes;
    case PacketType::kAck:
      return uint32_t{sack_count} * kSackBlockBytes;
    case PacketType::kRst:
      return 4;
    default:
      return 0;
  }
}

}  // namespace

const char* WireErrorName(WireError e) {
  switch (e) {
    case WireError::kNone:
      return "";
    case WireError::kTooShort:
      return "drop_too_short";
    case WireError::kBadVersion:
      return "drop_bad_version";
    case WireError::kBadType:
      return "drop_bad_type";
    case WireError::kBadFlags:
      return "drop_bad_flags";
    case WireError::kBadHeaderLength:
      return "drop_bad_header_length";
    case WireError::kBadConnection:
      return "drop_bad_connection";
    case WireError::kBadMessage:
      return "drop_bad_message";
    case WireError::kEmptySegment:
      return "drop_empty_segment";
    case WireError::kPayloadNotAllowed:
      return "drop_payload_not_allowed";
    case WireError::kBadSack:
      return "drop_bad_sack";
    case WireError::kBadReason:
      return "drop_bad_reason";
  }
  return "drop_unknown";
}

WireError ParsePonyHeader(const uint8_t* p, uint32_t len, PonyHeader* h, uint32_t* payload_offset) {
  if (len < kCommonBytes) return WireError::kTooShort;
  if (p[0] != kVersion) return WireError::kBadVersion;
  uint8_t type = p[1];
  if (type < static_cast<uint8_t>(PacketType::kSyn) ||
      type > static_cast<uint8_t>(PacketType::kResync)) {
    return WireError::kBadType;
  }
  h->type = static_cast<PacketType>(type);
  h->flags = p[2];
  if ((h->flags & ~kKnownFlags) != 0) return WireError::kBadFlags;
  const uint32_t header = uint32_t{p[3]} * 4;
  if (header < kCommonBytes) return WireError::kBadHeaderLength;
  if (len < header) return WireError::kTooShort;
  h->src_app = Get16(p + 4);
  h->dst_app = Get16(p + 6);
  h->src_conn = Get32(p + 8);
  h->dst_conn = Get32(p + 12);
  h->seq = Get32(p + 16);
  h->ack = Get32(p + 20);
  h->credit = Get32(p + 24);
  h->ts = Get32(p + 28);
  h->ts_echo = Get32(p + 32);
  h->hold_ns = Get32(p + 36);
  // A RST may come from a host with no connection of its own (src_conn 0); only a SYN has no
  // dst_conn yet.
  if ((h->src_conn == 0 && h->type != PacketType::kRst) ||
      (h->dst_conn == 0) != (h->type == PacketType::kSyn)) {
    return WireError::kBadConnection;
  }
  const uint8_t* rest = p + kCommonBytes;
  const uint32_t rest_len = header - kCommonBytes;
  h->sack_count = 0;
  switch (h->type) {
    case PacketType::kData: {
      if (rest_len != kMessageBytes) return WireError::kBadHeaderLength;
      h->msg_id = Get32(rest);
      h->msg_len = Get32(rest + 4);
      h->msg_offset = Get32(rest + 8);
      const uint32_t segment = len - header;
      if (segment == 0) return WireError::kEmptySegment;
      // Overflow-free: msg_len is bounded first, then offset and segment against what is left.
      if (h->msg_id == 0 || h->msg_len == 0 || h->msg_len > kMaxMessageBytes ||
          h->msg_offset >= h->msg_len || segment > h->msg_len - h->msg_offset) {
        return WireError::kBadMessage;
      }
      *payload_offset = header;
      return WireError::kNone;
    }
    case PacketType::kAck: {
      if (rest_len % kSackBlockBytes != 0 || rest_len / kSackBlockBytes > kMaxSackBlocks) {
        return WireError::kBadHeaderLength;
      }
      h->sack_count = static_cast<uint8_t>(rest_len / kSackBlockBytes);
      for (uint8_t i = 0; i < h->sack_count; ++i) {
        SackBlock& b = h->sack[i];
        b.start = Get32(rest + i * kSackBlockBytes);
        b.end = Get32(rest + i * kSackBlockBytes + 4);
        // Each block lies at or past the cumulative ack (at it: received, held for the app,
        // kCapResync), and is not empty.
        if (!SeqBefore(b.start, b.end) || SeqBefore(b.start, h->ack)) return WireError::kBadSack;
      }
      break;
    }
    case PacketType::kResync:
      if (rest_len != kMessageBytes) return WireError::kBadHeaderLength;
      h->msg_id = Get32(rest);
      h->msg_len = Get32(rest + 4);
      h->msg_offset = Get32(rest + 8);
      if (h->msg_id == 0 || h->msg_len != 0 || h->msg_offset != 0) return WireError::kBadMessage;
      break;
    case PacketType::kRst: {
      if (rest_len != 4) return WireError::kBadHeaderLength;
      uint32_t reason = Get32(rest);
      if (reason < static_cast<uint32_t>(ResetReason::kUnknownConnection) ||
          reason > static_cast<uint32_t>(ResetReason::kTimeout)) {
        return WireError::kBadReason;
      }
      h->reason = static_cast<ResetReason>(reason);
      break;
    }
    default:
      if (rest_len != 0) return WireError::kBadHeaderLength;
      break;
  }
  if (len != header) return WireError::kPayloadNotAllowed;
  *payload_offset = len;
  return WireError::kNone;
}

uint32_t PonyHeaderBytes(const PonyHeader& h) {
  uint8_t sacks = h.sack_count > kMaxSackBlocks ? kMaxSackBlocks : h.sack_count;
  return kCommonBytes + TypeBytes(h.type, sacks);
}

uint32_t WritePonyHeader(const PonyHeader& h, uint8_t* out, uint32_t room) {
  const uint8_t sacks = h.sack_count > kMaxSackBlocks ? kMaxSackBlocks : h.sack_count;
  const uint32_t bytes = kCommonBytes + TypeBytes(h.type, sacks);
  if (room < bytes) return 0;
  out[0] = kVersion;
  out[1] = static_cast<uint8_t>(h.type);
  out[2] = h.flags;
  out[3] = static_cast<uint8_t>(bytes / 4);
  Put16(out + 4, h.src_app);
  Put16(out + 6, h.dst_app);
  Put32(out + 8, h.src_conn);
  Put32(out + 12, h.dst_conn);
  Put32(out + 16, h.seq);
  Put32(out + 20, h.ack);
  Put32(out + 24, h.credit);
  Put32(out + 28, h.ts);
  Put32(out + 32, h.ts_echo);
  Put32(out + 36, h.hold_ns);
  uint8_t* rest = out + kCommonBytes;
  switch (h.type) {
    case PacketType::kData:
    case PacketType::kResync:
      Put32(rest, h.msg_id);
      Put32(rest + 4, h.msg_len);
      Put32(rest + 8, h.msg_offset);
      break;
    case PacketType::kAck:
      for (uint8_t i = 0; i < sacks; ++i) {
        Put32(rest + i * kSackBlockBytes, h.sack[i].start);
        Put32(rest + i * kSackBlockBytes + 4, h.sack[i].end);
      }
      break;
    case PacketType::kRst:
      Put32(rest, static_cast<uint32_t>(h.reason));
      break;
    default:
      break;
  }
  return bytes;
}

}  // namespace snapd::pony
