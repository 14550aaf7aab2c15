#include "snapd/daemon/service_manager.h"

#include <string>

#include "gtest/gtest.h"

namespace snapd {
namespace {

TEST(ServiceManagerTest, OnlyNamesTheManagerTakesAreStored) {
  EXPECT_TRUE(ValidFdName("journal.pony0"));
  EXPECT_TRUE(ValidFdName("app7.conn"));
  EXPECT_TRUE(ValidFdName(std::string(255, 'x')));
  EXPECT_FALSE(ValidFdName(""));
  EXPECT_FALSE(ValidFdName(std::string(256, 'x')));
  EXPECT_FALSE(ValidFdName("journal.a:b")) << "':' separates $LISTEN_FDNAMES";
  EXPECT_FALSE(ValidFdName("journal.x\nMAINPID=1")) << "a newline starts another field";
  EXPECT_FALSE(ValidFdName("journal.\x7f"));
  EXPECT_FALSE(ValidFdName("journal.\xc3\xa9"));
}

}  // namespace
}  // namespace snapd
