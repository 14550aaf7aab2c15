#include "ipc/control_message.h"

#include <string.h>

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace snapd::memif {
namespace {

WireMessage Blank(MessageType type) {
  WireMessage msg;
  memset(&msg, 0, sizeof(msg));
  msg.type = static_cast<uint16_t>(type);
  return msg;
}

// Copies `text` into a fixed field, truncating; the field stays NUL-padded.
template <size_t N>
void CopyField(uint8_t (&field)[N], absl::string_view text) {
  memset(field, 0, N);
  memcpy(field, text.data(), std::min(text.size(), N));
}

}  // namespace

WireMessage MakeAck() { return Blank(MessageType::kAck); }

WireMessage MakeHello(absl::string_view name, const HelloLimits& limits) {
  WireMessage msg = Blank(MessageType::kHello);
  CopyField(msg.hello.name, name);
  msg.hello.min_version = kVersion;
  msg.hello.max_version = kVersion;
  msg.hello.max_region = limits.max_region;
  msg.hello.max_c2s_ring = limits.max_c2s_ring;
  msg.hello.max_s2c_ring = limits.max_s2c_ring;
  msg.hello.max_log2_ring_size = limits.max_log2_ring_size;
  return msg;
}

WireMessage MakeInit(uint32_t id, InterfaceMode mode, absl::string_view secret,
                     absl::string_view name) {
  WireMessage msg = Blank(MessageType::kInit);
  msg.init.version = kVersion;
  msg.init.id = id;
  msg.init.mode = static_cast<uint8_t>(mode);
  CopyField(msg.init.secret, secret);
  CopyField(msg.init.name, name);
  return msg;
}

WireMessage MakeAddRegion(uint16_t index, uint64_t size) {
  WireMessage msg = Blank(MessageType::kAddRegion);
  msg.add_region.index = index;
  msg.add_region.size = size;
  return msg;
}

WireMessage MakeAddRing(bool c2s, uint16_t index, uint16_t region, uint32_t offset,
                        uint8_t log2_ring_size) {
  WireMessage msg = Blank(MessageType::kAddRing);
  msg.add_ring.flags = c2s ? kAddRingFlagC2S : 0;
  msg.add_ring.index = index;
  msg.add_ring.region = region;
  msg.add_ring.offset = offset;
  msg.add_ring.log2_ring_size = log2_ring_size;
  msg.add_ring.private_hdr_size = 0;
  return msg;
}

WireMessage MakeConnect(absl::string_view if_name) {
  WireMessage msg = Blank(MessageType::kConnect);
  CopyField(msg.connect.if_name, if_name);
  return msg;
}

WireMessage MakeConnected(absl::string_view if_name) {
  WireMessage msg = Blank(MessageType::kConnected);
  CopyField(msg.connected.if_name, if_name);
  return msg;
}

WireMessage MakeDisconnect(uint32_t code, absl::string_view reason) {
  WireMessage msg = Blank(MessageType::kDisconnect);
  msg.disconnect.code = code;
  // Leave room for a terminating NUL, as peers print the field as a C string.
  CopyField(msg.disconnect.string, reason.substr(0, kDisconnectStringSize - 1));
  return msg;
}

std::string FieldToString(const uint8_t* field, size_t size) {
  std::string out;
  for (size_t i = 0; i < size && field[i] != 0; ++i) {
    uint8_t c = field[i];
    out.push_back(c >= 0x20 && c < 0x7f ? static_cast<char>(c) : '?');
  }
  return out;
}

std::string MessageTypeName(uint16_t type) {
  switch (static_cast<MessageType>(type)) {
    case MessageType::kNone:
      return "none";
    case MessageType::kAck:
      return "ack";
    case MessageType::kHello:
      return "hello";
    case MessageType::kInit:
      return "init";
    case MessageType::kAddRegion:
      return "add-region";
    case MessageType::kAddRing:
      return "add-ring";
    case MessageType::kConnect:
      return "connect";
    case MessageType::kConnected:
      return "connected";
    case MessageType::kDisconnect:
      return "disconnect";
  }
  return absl::StrCat("type ", type);
}

bool SecretMatches(absl::string_view configured, const uint8_t (&field)[kSecretSize]) {
  uint8_t want[kSecretSize] = {};
  if (configured.size() > kSecretSize) return false;
  memcpy(want, configured.data(), configured.size());
  uint8_t diff = 0;
  for (size_t i = 0; i < kSecretSize; ++i) diff |= want[i] ^ field[i];
  return diff == 0;
}

}  // namespace snapd::memif
