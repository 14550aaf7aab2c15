// The memif wire format, version 2.0: control messages on a Unix SOCK_SEQPACKET socket and the ring
// and descriptor layout in shared memory. These layouts are what VPP, libmemif and DPDK's net_memif
// PMD put on the wire and in memory; every field here is bit-for-bit theirs.
//
// Roles: the *client* owns the memory (it creates the regions and rings and sends them); the
// *server* maps them. Rings are named by direction: C2S (client to server) and S2C (server to
// client). Older texts call these slave/master and S2M/M2S.
//
// Cursors: `head` and `tail` are free-running 16-bit counters; slot = cursor & (ring_size - 1).
//   C2S ring: the client produces at head (fills desc, then head++); the server consumes from its
//             own copy of the last head it read and publishes what it consumed in tail.
//   S2C ring: the client hands empty buffers to the server by advancing head (desc.length is the
//             buffer's capacity); the server fills them at tail and advances tail; the client
//             consumes up to tail and refills.
// Whoever produces into a ring writes the peer's interrupt eventfd after a burst unless the ring's
// flags carry kRingFlagMaskInt (the consumer polls).
#ifndef SNAPD_IPC_MEMIF_PROTOCOL_H_
#define SNAPD_IPC_MEMIF_PROTOCOL_H_

#include <cstddef>
#include <cstdint>

namespace snapd::memif {

inline constexpr uint32_t kCookie = 0x3E31F20;
inline constexpr uint16_t kVersionMajor = 2;
inline constexpr uint16_t kVersionMinor = 0;
inline constexpr uint16_t kVersion = (kVersionMajor << 8) | kVersionMinor;
inline constexpr size_t kNameSize = 32;
inline constexpr size_t kSecretSize = 24;
inline constexpr size_t kDisconnectStringSize = 96;
// Every control message is exactly this long on the wire.
inline constexpr size_t kMessageSize = 128;
// The largest ring the protocol allows: cursors are 16 bits, and head - tail must fit.
inline constexpr uint8_t kMaxLog2RingSize = 14;

enum class MessageType : uint16_t {
  kNone = 0,
  kAck = 1,
  kHello = 2,
  kInit = 3,
  kAddRegion = 4,
  kAddRing = 5,
  kConnect = 6,
  kConnected = 7,
  kDisconnect = 8,
};

enum class InterfaceMode : uint8_t {
  kEthernet = 0,
  kIp = 1,
  kPuntInject = 2,
};

#pragma pack(push, 1)

struct HelloMsg {
  uint8_t name[kNameSize];
  uint16_t min_version;
  uint16_t max_version;
  uint16_t max_region;  // highest region index the server accepts
  uint16_t max_s2c_ring;
  uint16_t max_c2s_ring;
  uint8_t max_log2_ring_size;
};

struct InitMsg {
  uint16_t version;
  uint32_t id;
  uint8_t mode;  // InterfaceMode
  uint8_t secret[kSecretSize];
  uint8_t name[kNameSize];
};

struct AddRegionMsg {  // carries the region's fd (SCM_RIGHTS)
  uint16_t index;
  uint64_t size;
};

inline constexpr uint16_t kAddRingFlagC2S = 1;

struct AddRingMsg {  // carries the ring's interrupt eventfd (SCM_RIGHTS)
  uint16_t flags;    // kAddRingFlagC2S or 0 (S2C)
  uint16_t index;
  uint16_t region;
  uint32_t offset;
  uint8_t log2_ring_size;
  uint16_t private_hdr_size;
};

struct ConnectMsg {
  uint8_t if_name[kNameSize];
};

struct ConnectedMsg {
  uint8_t if_name[kNameSize];
};

struct DisconnectMsg {
  uint32_t code;
  uint8_t string[kDisconnectStringSize];
};

struct alignas(128) WireMessage {
  uint16_t type;  // MessageType
  union {
    HelloMsg hello;
    InitMsg init;
    AddRegionMsg add_region;
    AddRingMsg add_ring;
    ConnectMsg connect;
    ConnectedMsg connected;
    DisconnectMsg disconnect;
  };
};

inline constexpr uint16_t kDescFlagNext = 1;

struct Descriptor {
  uint16_t flags;  // kDescFlagNext: the frame continues in the next slot
  uint16_t region;
  uint32_t length;
  uint32_t offset;
  uint32_t metadata;
};

#pragma pack(pop)

inline constexpr uint16_t kRingFlagMaskInt = 1;

// The ring header as it sits in shared memory: two cache lines, then the descriptors. Laid out
// with explicit padding rather than alignas(64): memif lets a ring start at any 16-byte offset of
// its region, and a type that demanded 64 would make every such ring misaligned (undefined
// behaviour, which UBSan reports); each field here needs only its natural alignment.
struct RingHeader {
  uint32_t cookie;
  uint16_t flags;
  uint16_t head;
  uint8_t pad0[56];
  uint16_t tail;  // in a cache line of its own: the consumer writes it, the producer head
  uint8_t pad1[62];
  Descriptor desc[0];
};

static_assert(sizeof(WireMessage) == kMessageSize, "memif messages are 128 bytes");
static_assert(sizeof(HelloMsg) == 43);
static_assert(sizeof(InitMsg) == 63);
static_assert(sizeof(AddRegionMsg) == 10);
static_assert(sizeof(AddRingMsg) == 13);
static_assert(sizeof(DisconnectMsg) == 100);
static_assert(sizeof(Descriptor) == 16);
static_assert(offsetof(RingHeader, head) == 6);
static_assert(offsetof(RingHeader, tail) == 64);
static_assert(offsetof(RingHeader, desc) == 128);
static_assert(sizeof(RingHeader) == 128);

// Bytes a ring of 2^log2_size descriptors occupies in its region.
constexpr uint64_t RingBytes(uint8_t log2_size) {
  return sizeof(RingHeader) + (uint64_t{1} << log2_size) * sizeof(Descriptor);
}

}  // namespace snapd::memif

#endif  // SNAPD_IPC_MEMIF_PROTOCOL_H_
