#include "ipc/handshake.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace snapd::memif {

WireMessage ServerHandshake::Hello(absl::string_view server_name) const {
  HelloLimits hello;
  hello.max_region = limits_.max_regions - 1;
  hello.max_c2s_ring = limits_.max_queue_pairs - 1;
  hello.max_s2c_ring = limits_.max_queue_pairs - 1;
  hello.max_log2_ring_size = limits_.max_log2_ring_size;
  return MakeHello(server_name, hello);
}

absl::StatusOr<MessageType> ServerHandshake::Fail(absl::Status status) {
  phase_ = Phase::kFailed;
  return status;
}

absl::StatusOr<MessageType> ServerHandshake::OnMessage(const WireMessage& msg, bool has_fd) {
  if (phase_ == Phase::kFailed) {
    return absl::FailedPreconditionError("connection already failed");
  }
  auto type = static_cast<MessageType>(msg.type);
  if (type == MessageType::kDisconnect) {
    phase_ = Phase::kFailed;
    return absl::CancelledError(
        absl::StrCat("peer disconnected: ", FieldToString(msg.disconnect.string)));
  }
  // Only add-region and add-ring carry an fd.
  if (has_fd && type != MessageType::kAddRegion && type != MessageType::kAddRing) {
    return Fail(absl::InvalidArgumentError(
        absl::StrCat("unexpected fd with ", MessageTypeName(msg.type), " message")));
  }
  switch (phase_) {
    case Phase::kAwaitInit:
      if (type != MessageType::kInit) break;
      return OnInit(msg.init);
    case Phase::kAwaitResources:
      if (type == MessageType::kAddRegion) return OnAddRegion(msg.add_region, has_fd);
      if (type == MessageType::kAddRing) return OnAddRing(msg.add_ring, has_fd);
      if (type == MessageType::kConnect) return OnConnect();
      break;
    case Phase::kConnected:
      // Acks are harmless; anything else after connect is out of order.
      if (type == MessageType::kAck) return MessageType::kNone;
      break;
    case Phase::kFailed:
      break;
  }
  return Fail(absl::InvalidArgumentError(
      absl::StrCat("unexpected ", MessageTypeName(msg.type), " message")));
}

absl::StatusOr<MessageType> ServerHandshake::OnInit(const InitMsg& init) {
  if (init.version != kVersion) {
    return Fail(absl::InvalidArgumentError(absl::StrCat(
        "incompatible memif version ", init.version >> 8, ".", init.version & 0xff, ", need 2.0")));
  }
  if (init.mode != static_cast<uint8_t>(InterfaceMode::kEthernet)) {
    return Fail(absl::InvalidArgumentError("only ethernet mode is supported"));
  }
  init_ = init;
  phase_ = Phase::kAwaitResources;
  return MessageType::kAck;
}

absl::StatusOr<MessageType> ServerHandshake::OnAddRegion(const AddRegionMsg& msg, bool has_fd) {
  if (!has_fd) return Fail(absl::InvalidArgumentError("missing region fd"));
  if (msg.index != region_sizes_.size() || msg.index >= limits_.max_regions) {
    return Fail(absl::InvalidArgumentError(absl::StrCat("invalid region index ", msg.index)));
  }
  if (msg.size == 0 || msg.size > limits_.max_region_size) {
    return Fail(absl::InvalidArgumentError(absl::StrCat("region ", msg.index, " size ", msg.size,
                                                        " outside 1..", limits_.max_region_size)));
  }
  const uint64_t size = msg.size;  // a copy: the wire field is packed, unaligned
  region_sizes_.push_back(size);
  return MessageType::kAck;
}

absl::StatusOr<MessageType> ServerHandshake::OnAddRing(const AddRingMsg& msg, bool has_fd) {
  if (!has_fd) return Fail(absl::InvalidArgumentError("missing interrupt fd"));
  if (msg.flags & ~kAddRingFlagC2S) {
    return Fail(absl::InvalidArgumentError(absl::StrCat("unknown ring flags ", msg.flags)));
  }
  bool c2s = msg.flags & kAddRingFlagC2S;
  if (msg.index >= limits_.max_queue_pairs) {
    return Fail(absl::InvalidArgumentError(absl::StrCat("invalid ring index ", msg.index)));
  }
  if (msg.log2_ring_size == 0 || msg.log2_ring_size > limits_.max_log2_ring_size) {
    return Fail(absl::InvalidArgumentError(absl::StrCat(
        "ring log2 size ", msg.log2_ring_size, " outside 1..", limits_.max_log2_ring_size)));
  }
  if (msg.private_hdr_size != 0) {
    return Fail(absl::InvalidArgumentError("ring private header is not supported"));
  }
  std::vector<RingSpec>& rings = c2s ? c2s_ : s2c_;
  std::vector<bool>& added = c2s ? c2s_added_ : s2c_added_;
  if (rings.size() <= msg.index) {
    rings.resize(msg.index + 1);
    added.resize(msg.index + 1, false);
  }
  if (added[msg.index]) {
    return Fail(absl::InvalidArgumentError(absl::StrCat("ring ", msg.index, " added twice")));
  }
  rings[msg.index] = RingSpec{msg.region, msg.offset, msg.log2_ring_size, msg.private_hdr_size};
  added[msg.index] = true;
  return MessageType::kAck;
}

absl::StatusOr<MessageType> ServerHandshake::OnConnect() {
  if (region_sizes_.empty()) return Fail(absl::InvalidArgumentError("connect without a region"));
  if (c2s_.empty() || s2c_.empty()) {
    return Fail(absl::InvalidArgumentError("connect needs at least one ring in each direction"));
  }
  for (int dir = 0; dir < 2; ++dir) {
    const std::vector<RingSpec>& rings = dir == 0 ? c2s_ : s2c_;
    const std::vector<bool>& added = dir == 0 ? c2s_added_ : s2c_added_;
    const char* name = dir == 0 ? "c2s" : "s2c";
    for (size_t i = 0; i < rings.size(); ++i) {
      if (!added[i]) {
        return Fail(absl::InvalidArgumentError(absl::StrCat(name, " ring ", i, " missing")));
      }
      const RingSpec& r = rings[i];
      if (r.region >= region_sizes_.size()) {
        return Fail(absl::InvalidArgumentError(
            absl::StrCat(name, " ring ", i, " names region ", r.region, " that was not added")));
      }
      if (r.offset % 16 != 0 ||
          uint64_t{r.offset} + RingBytes(r.log2_size) > region_sizes_[r.region]) {
        return Fail(absl::InvalidArgumentError(absl::StrCat(
            name, " ring ", i, " at offset ", r.offset, " does not fit in region ", r.region)));
      }
    }
  }
  phase_ = Phase::kConnected;
  return MessageType::kConnected;
}

}  // namespace snapd::memif
