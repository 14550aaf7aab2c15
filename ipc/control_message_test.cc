#include "ipc/control_message.h"

#include <string.h>

#include "gtest/gtest.h"

namespace snapd::memif {
namespace {

// Byte offsets as the memif wire format fixes them (type is the first two bytes).
TEST(ControlMessageTest, InitLaysOutFieldsAtWireOffsets) {
  WireMessage msg = MakeInit(0x01020304, InterfaceMode::kEthernet, "s3cret", "app");
  const auto* b = reinterpret_cast<const uint8_t*>(&msg);
  EXPECT_EQ(b[0], 3);  // kInit, little endian
  EXPECT_EQ(b[1], 0);
  EXPECT_EQ(b[2], 0x00);  // version 2.0 = 0x0200
  EXPECT_EQ(b[3], 0x02);
  EXPECT_EQ(b[4], 0x04);  // id
  EXPECT_EQ(b[7], 0x01);
  EXPECT_EQ(b[8], 0);  // mode
  EXPECT_EQ(memcmp(b + 9, "s3cret", 6), 0);
  EXPECT_EQ(b[15], 0);
  EXPECT_EQ(memcmp(b + 33, "app", 3), 0);
}

TEST(ControlMessageTest, AddRingLaysOutFieldsAtWireOffsets) {
  WireMessage msg = MakeAddRing(true, 3, 1, 0x11223344, 10);
  const auto* b = reinterpret_cast<const uint8_t*>(&msg);
  EXPECT_EQ(b[0], 5);
  EXPECT_EQ(b[2], 1);  // flags: c2s
  EXPECT_EQ(b[4], 3);  // index
  EXPECT_EQ(b[6], 1);  // region
  EXPECT_EQ(b[8], 0x44);
  EXPECT_EQ(b[11], 0x11);
  EXPECT_EQ(b[12], 10);  // log2 ring size
  EXPECT_EQ(+MakeAddRing(false, 0, 0, 0, 1).add_ring.flags, 0);
}

TEST(ControlMessageTest, HelloAndRegionOffsets) {
  HelloLimits limits{1, 7, 8, 14};
  WireMessage msg = MakeHello("snapd", limits);
  const auto* b = reinterpret_cast<const uint8_t*>(&msg);
  EXPECT_EQ(b[0], 2);
  EXPECT_EQ(memcmp(b + 2, "snapd", 5), 0);
  EXPECT_EQ(b[34], 0x00);  // min version
  EXPECT_EQ(b[35], 0x02);
  EXPECT_EQ(b[38], 1);   // max region
  EXPECT_EQ(b[40], 8);   // max s2c ring comes first on the wire
  EXPECT_EQ(b[42], 7);   // then max c2s ring
  EXPECT_EQ(b[44], 14);  // max log2 ring size
  WireMessage region = MakeAddRegion(2, 0x1000);
  b = reinterpret_cast<const uint8_t*>(&region);
  EXPECT_EQ(b[2], 2);
  EXPECT_EQ(b[5], 0x10);
}

TEST(ControlMessageTest, DisconnectReasonIsTruncatedAndTerminated) {
  std::string long_reason(200, 'x');
  WireMessage msg = MakeDisconnect(7, long_reason);
  EXPECT_EQ(+msg.disconnect.code, 7u);
  EXPECT_EQ(msg.disconnect.string[kDisconnectStringSize - 1], 0);
  EXPECT_EQ(FieldToString(msg.disconnect.string), std::string(kDisconnectStringSize - 1, 'x'));
}

TEST(ControlMessageTest, FieldToStringStopsAtNulAndMasksBytes) {
  uint8_t field[8] = {'a', 0x01, 0xff, 'b', 0, 'c', 'd', 'e'};
  EXPECT_EQ(FieldToString(field), "a??b");
  uint8_t full[4] = {'w', 'x', 'y', 'z'};  // no terminator
  EXPECT_EQ(FieldToString(full), "wxyz");
}

TEST(ControlMessageTest, SecretMatches) {
  WireMessage init = MakeInit(0, InterfaceMode::kEthernet, "abc", "");
  EXPECT_TRUE(SecretMatches("abc", init.init.secret));
  EXPECT_FALSE(SecretMatches("abd", init.init.secret));
  EXPECT_FALSE(SecretMatches("ab", init.init.secret));
  EXPECT_FALSE(SecretMatches("", init.init.secret));
  EXPECT_FALSE(SecretMatches(std::string(30, 'a'), init.init.secret));
  WireMessage none = MakeInit(0, InterfaceMode::kEthernet, "", "");
  EXPECT_TRUE(SecretMatches("", none.init.secret));
}

TEST(ControlMessageTest, MessageTypeNames) {
  EXPECT_EQ(MessageTypeName(static_cast<uint16_t>(MessageType::kAddRing)), "add-ring");
  EXPECT_EQ(MessageTypeName(99), "type 99");
}

}  // namespace
}  // namespace snapd::memif
