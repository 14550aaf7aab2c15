// Pony's wire format: the header every pony packet carries after its UDP header, and the codec
// that reads and writes it. docs/pony.md is the specification; this is its one implementation.
//
// Everything here is pure: ParsePonyHeader reads bytes from the wire (untrusted: any host on the
// link can send them) with bounds checks and says why it refuses; WritePonyHeader writes what
// ParsePonyHeader accepts. Any thread.
#ifndef SNAPD_ENGINES_PONY_WIRE_H_
#define SNAPD_ENGINES_PONY_WIRE_H_

#include <cstdint>

namespace snapd::pony {

inline constexpr uint8_t kVersion = 1;
// The UDP port pony listens on unless its engine's config names another.
inline constexpr uint16_t kDefaultUdpPort = 7471;
// The common header: 40 bytes; a DATA packet adds a 12-byte message descriptor, an ACK up to
// kMaxSackBlocks 8-byte SACK blocks, a RST a 4-byte reason.
inline constexpr uint32_t kCommonBytes = 40;
inline constexpr uint32_t kMessageBytes = 12;
inline constexpr uint32_t kSackBlockBytes = 8;
inline constexpr int kMaxSackBlocks = 4;
// How far a sender may run ahead of what the receiver delivered: sequence numbers past the
// oldest unacknowledged one, and message ids past the oldest message not wholly acknowledged. A
// receiver tracks no more, and takes a packet past either as a protocol error.
inline constexpr uint32_t kSeqWindow = 4096;
inline constexpr uint32_t kMessageWindow = 1024;
// The largest message any pony engine accepts (an engine may set a smaller one).
inline constexpr uint32_t kMaxMessageBytes = 64u << 20;

enum class PacketType : uint8_t {
  kSyn = 1,     // opens a connection: the sender's connection id, initial sequence and credit
  kSynAck = 2,  // accepts it: the same, from the other side
  kData = 3,    // one segment of a message
  kAck = 4,     // cumulative and selective acknowledgement, credit, delay sample
  kFin = 5,     // the sender closes: no message after the ones before this sequence number
  kRst = 6,     // the connection is gone (its app died, it was never open, ...): a reason
  // A connection picks up again after its engine restarted (a crash) from a checkpoint: the
  // sender's new initial sequence number (seq), the next message its app is to be handed
  // (msg_id), its credit. kFlagAckNow: answer with a RESYNC. Only between engines that both said
  // kCapResync when the connection opened.
  kResync = 7,
};

// What an engine can do, in its SYN's and SYN_ACK's hold_ns (which carry no delay sample; an
// engine that predates this sends 0 there).
//  kCapResync: it acknowledges only what its app was handed (what it received and holds for the
//  app is SACKed: the peer keeps it until then), and takes and answers kResync.
inline constexpr uint32_t kCapResync = 0x1;

// flags
inline constexpr uint8_t kFlagAckNow = 0x01;  // acknowledge this packet at once (no delayed ack)
inline constexpr uint8_t kFlagRetransmit = 0x02;  // a copy of a packet sent before
inline constexpr uint8_t kKnownFlags = kFlagAckNow | kFlagRetransmit;

// Why a connection was reset (kRst's reason).
enum class ResetReason : uint32_t {
  kUnknownConnection = 1,  // no such connection here (the host restarted, or it timed out)
  kNoSuchApp = 2,          // nothing listens at dst_app
  kAppGone = 3,            // the app at this end went away
  kRefused = 4,            // the app at this end refused the connection
  kProtocolError = 5,      // the peer broke the protocol (a bad header, a message past its size)
  kTimeout = 6,            // the peer stopped answering
};

struct SackBlock {
  uint32_t start;  // first sequence number received past the gap
  uint32_t end;    // one past the last: [start, end)
};

struct PonyHeader {
  PacketType type = PacketType::kData;
  uint8_t flags = 0;
  uint16_t src_app = 0;   // the sending app's id on its host
  uint16_t dst_app = 0;   // the receiving app's id on its host
  uint32_t src_conn = 0;  // the sender's id for the connection (0 only in a RST from a host
                          // that has none)
  uint32_t dst_conn = 0;  // the receiver's id for it (0 only in a SYN)
  uint32_t seq = 0;       // this packet's sequence number (SYN, DATA, FIN; ACK and RST: 0)
  uint32_t ack = 0;       // every sequence number below this one was received (cumulative)
  uint32_t credit = 0;    // bytes the sender of this packet will take beyond what it delivered
  uint32_t ts = 0;        // the sender's clock when it sent this packet, ns modulo 2^32
  uint32_t ts_echo = 0;   // ts of the packet this one acknowledges (0: none)
  uint32_t hold_ns = 0;   // how long that packet waited here before this acknowledgement
  // DATA: the message this segment belongs to.
  uint32_t msg_id = 0;      // per connection and direction, from 1, in send order
  uint32_t msg_len = 0;     // the whole message's length, 1..kMaxMessageBytes
  uint32_t msg_offset = 0;  // where this segment's bytes go in it
  // ACK: up to kMaxSackBlocks ranges received past `ack`.
  uint8_t sack_count = 0;
  SackBlock sack[kMaxSackBlocks] = {};
  // RST.
  ResetReason reason = ResetReason::kUnknownConnection;
};

enum class WireError {
  kNone = 0,
  kTooShort,           // shorter than the header it announces
  kBadVersion,         // not version 1
  kBadType,            // an unknown packet type
  kBadFlags,           // a flag this version does not know
  kBadHeaderLength,    // the header length field disagrees with the type's layout
  kBadConnection,      // src_conn 0 outside a RST, dst_conn 0 outside a SYN, or set in one
  kBadMessage,         // DATA: msg_len 0 or too large, msg_id 0, or the segment past the message
  kEmptySegment,       // DATA without payload
  kPayloadNotAllowed,  // payload after a header whose type carries none
  kBadSack,            // an empty or reversed block, or a block at or below `ack`
  kBadReason,          // RST: an unknown reason
};

// The counter name of an error: "drop_too_short", "drop_bad_version", ... ("" for kNone).
const char* WireErrorName(WireError e);

// Reads the pony header at the start of `p` (the UDP payload, `len` bytes). On success fills *h
// and *payload_offset (where the segment's bytes start; DATA only, else len) and returns kNone;
// otherwise says why, and *h is unspecified. Never reads past p + len.
WireError ParsePonyHeader(const uint8_t* p, uint32_t len, PonyHeader* h, uint32_t* payload_offset);

// How many bytes WritePonyHeader writes for `h`.
uint32_t PonyHeaderBytes(const PonyHeader& h);
// Writes `h` to `out` (room for PonyHeaderBytes(h)); returns the bytes written, 0 if `room` is
// too small.
uint32_t WritePonyHeader(const PonyHeader& h, uint8_t* out, uint32_t room);

// Sequence-number order modulo 2^32 (RFC 1982): a before b.
inline bool SeqBefore(uint32_t a, uint32_t b) { return static_cast<int32_t>(a - b) < 0; }

}  // namespace snapd::pony

#endif  // SNAPD_ENGINES_PONY_WIRE_H_
