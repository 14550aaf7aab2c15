#include "engines/registry.h"

#include "engines/echo/echo.pb.h"
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
  EXPECT_NE(unknown.status().message().find("known kinds: echo, pony, vswitch"), std::string::npos)
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

// An engine kind of the test's own, registered in registries of the test's own (the global one
// must keep exactly the built-in kinds). Its config is EchoConfig, for a message to hand on.
class RecordingEngine : public Engine {
 public:
  static absl::StatusOr<std::unique_ptr<Engine>> Create(const std::string& name,
                                                        const engines::EchoConfig& config) {
    if (config.burst() > 8) return absl::InvalidArgumentError("burst: at most 8");
    return std::unique_ptr<Engine>(new RecordingEngine(name, config.burst()));
  }
  absl::string_view kind() const override { return "recording"; }
  absl::Status AddPort(std::unique_ptr<Port>, const engines::PortAttachment&) override {
    return absl::OkStatus();
  }
  std::unique_ptr<Port> RemovePort(absl::string_view) override { return nullptr; }
  std::vector<std::string> PortNames() const override { return {}; }
  void ForEachPort(const std::function<void(Port&)>&) override {}

  const uint32_t burst;

 protected:
  uint32_t PollPorts(uint32_t*) override { return 0; }

 private:
  RecordingEngine(std::string name, uint32_t burst) : Engine(std::move(name)), burst(burst) {}
};

using RecordingFactory = TypedEngineFactory<RecordingEngine, engines::EchoConfig>;

TEST(TypedEngineFactoryTest, BuildsFromTheParsedConfig) {
  EngineRegistry registry;
  ASSERT_TRUE(registry.Register(std::make_unique<RecordingFactory>("recording")).ok());
  const EngineFactory* factory = registry.Find("recording");
  ASSERT_NE(factory, nullptr);
  EXPECT_EQ(factory->kind(), "recording");
  EXPECT_EQ(factory->DefaultConfig()->GetDescriptor(), engines::EchoConfig::descriptor());
  auto engine = registry.Create("recording", "r0", "burst: 7");
  ASSERT_TRUE(engine.ok()) << engine.status();
  EXPECT_EQ((*engine)->name(), "r0");
  EXPECT_EQ(static_cast<RecordingEngine&>(**engine).burst, 7u);
  // The kind's own checks reach the caller unchanged.
  auto refused = registry.Create("recording", "r0", "burst: 9");
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(refused.status().message(), "burst: at most 8");
}

TEST(TypedEngineFactoryTest, ConfigOfAnotherTypeIsRefused) {
  RecordingFactory factory("recording");
  engines::EngineState wrong;
  auto engine = factory.Create("r0", wrong);
  EXPECT_EQ(engine.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(engine.status().message().find("takes a snapd.engines.EchoConfig"), std::string::npos)
      << engine.status();
}

TEST(TypedEngineFactoryTest, AKindRegisteredTwiceIsRefused) {
  EngineRegistry registry;
  ASSERT_TRUE(registry.Register(std::make_unique<RecordingFactory>("recording")).ok());
  absl::Status status = registry.Register(std::make_unique<RecordingFactory>("recording"));
  EXPECT_EQ(status.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(status.message(), "engine kind 'recording' registered twice");
  EXPECT_EQ(registry.Kinds(), std::vector<std::string>{"recording"});
}

// What SNAPD_REGISTER_ENGINE_KIND does at start, for a kind already registered (built-in "echo").
TEST(TypedEngineFactoryDeathTest, RegisteringABuiltinKindAgainAborts) {
  EXPECT_DEATH((EngineKindRegistrar<RecordingEngine, engines::EchoConfig>("echo")),
               "snapd: engine kind 'echo' registered twice");
}

}  // namespace
}  // namespace snapd
