#include "engines/registry.h"

#include "gtest/gtest.h"

namespace snapd {
namespace {

TEST(RegistryTest, BuiltinKindsAreRegistered) {
  std::vector<std::string> kinds = EngineRegistry::Global().Kinds();
  EXPECT_NE(std::find(kinds.begin(), kinds.end(), "echo"), kinds.end());
  EXPECT_NE(std::find(kinds.begin(), kinds.end(), "vswitch"), kinds.end());
}

TEST(RegistryTest, CreatesFromTextConfig) {
  auto engine = EngineRegistry::Global().Create("vswitch", "sw0", "burst: 16 mac_aging_s: 10");
  ASSERT_TRUE(engine.ok()) << engine.status();
  EXPECT_EQ((*engine)->name(), "sw0");
  EXPECT_EQ((*engine)->kind(), "vswitch");
}

TEST(RegistryTest, ErrorsNameTheProblem) {
  auto unknown = EngineRegistry::Global().Create("router", "r0", "");
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(unknown.status().message().find("known kinds: echo, vswitch"), std::string::npos)
      << unknown.status();
  auto bad_field = EngineRegistry::Global().Create("vswitch", "sw0", "bogus: 1");
  EXPECT_EQ(bad_field.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad_field.status().message().find("bogus"), std::string::npos) << bad_field.status();
  auto bad_value = EngineRegistry::Global().Create("vswitch", "sw0", "burst: 1000");
  EXPECT_NE(bad_value.status().message().find("burst"), std::string::npos);
}

class DummyFactory : public EngineFactory {
 public:
  absl::string_view kind() const override { return "echo"; }
  std::unique_ptr<google::protobuf::Message> DefaultConfig() const override { return nullptr; }
  absl::StatusOr<std::unique_ptr<Engine>> Create(const std::string&,
                                                 const google::protobuf::Message&) const override {
    return absl::UnimplementedError("dummy");
  }
};

TEST(RegistryTest, RegisteringAKindTwiceIsAnError) {
  absl::Status status = EngineRegistry::Global().Register(std::make_unique<DummyFactory>());
  EXPECT_EQ(status.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_NE(status.message().find("'echo' registered twice"), std::string::npos);
}

TEST(RegistryDeathTest, DuplicateStaticRegistrationAborts) {
  EXPECT_DEATH(RegisterOrDie(std::make_unique<DummyFactory>()), "registered twice");
}

}  // namespace
}  // namespace snapd
