// Building and checking memif control messages. Pure functions: no I/O, callable from any thread.
#ifndef SNAPD_IPC_CONTROL_MESSAGE_H_
#define SNAPD_IPC_CONTROL_MESSAGE_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "ipc/memif_protocol.h"

namespace snapd::memif {

// What the server offers in its hello.
struct HelloLimits {
  uint16_t max_region = 0;  // highest region index accepted
  uint16_t max_c2s_ring = 0;
  uint16_t max_s2c_ring = 0;
  uint8_t max_log2_ring_size = kMaxLog2RingSize;
};

WireMessage MakeAck();
WireMessage MakeHello(absl::string_view name, const HelloLimits& limits);
WireMessage MakeInit(uint32_t id, InterfaceMode mode, absl::string_view secret,
                     absl::string_view name);
WireMessage MakeAddRegion(uint16_t index, uint64_t size);
WireMessage MakeAddRing(bool c2s, uint16_t index, uint16_t region, uint32_t offset,
                        uint8_t log2_ring_size);
WireMessage MakeConnect(absl::string_view if_name);
WireMessage MakeConnected(absl::string_view if_name);
WireMessage MakeDisconnect(uint32_t code, absl::string_view reason);

// The text of a fixed-size, possibly unterminated name field from the wire, cut at the first NUL,
// with bytes outside printable ASCII replaced by '?': safe to log and to show an operator.
std::string FieldToString(const uint8_t* field, size_t size);
template <size_t N>
std::string FieldToString(const uint8_t (&field)[N]) {
  return FieldToString(field, N);
}

// Human name of a message type, "type N" for an unknown one.
std::string MessageTypeName(uint16_t type);

// Compares a configured secret with the 24-byte field of an init message in time independent of
// where they differ. An empty configured secret accepts only an empty field.
bool SecretMatches(absl::string_view configured, const uint8_t (&field)[kSecretSize]);

}  // namespace snapd::memif

#endif  // SNAPD_IPC_CONTROL_MESSAGE_H_
