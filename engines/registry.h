// Engines are created by kind name through a registry of factories, as Envoy's typed factories and
// VPP's registered nodes are: one factory per kind, registered once at static-initialization time.
// An engine kind is one line, SNAPD_REGISTER_ENGINE_KIND(kind, EngineT, ConfigT), which registers a
// TypedEngineFactory<EngineT, ConfigT>. Registering a kind twice is a programming error and aborts
// at start.
#ifndef SNAPD_ENGINES_REGISTRY_H_
#define SNAPD_ENGINES_REGISTRY_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "engines/engine.h"
#include "google/protobuf/message.h"

namespace snapd {

// Parses protobuf text format into *out; the error names the line and column and what was wrong.
absl::Status ParseTextProto(const std::string& text, google::protobuf::Message* out);

// Builds the engines of one kind. A kind does not write one by hand: SNAPD_REGISTER_ENGINE_KIND
// (below) registers a TypedEngineFactory.
class EngineFactory {
 public:
  virtual ~EngineFactory() = default;
  virtual absl::string_view kind() const = 0;
  // An empty config message of this kind, with its defaults.
  virtual std::unique_ptr<google::protobuf::Message> DefaultConfig() const = 0;
  // Builds an engine from a config of the type DefaultConfig() returns; INVALID_ARGUMENT names the
  // field that is wrong.
  virtual absl::StatusOr<std::unique_ptr<Engine>> Create(
      const std::string& name, const google::protobuf::Message& config) const = 0;
};

class EngineRegistry {
 public:
  // The process-wide registry that SNAPD_REGISTER_ENGINE_KIND fills at static initialization
  // (tests may make registries of their own). Read-only after main() starts.
  static EngineRegistry& Global();

  // ALREADY_EXISTS if the kind is registered already.
  absl::Status Register(std::unique_ptr<EngineFactory> factory);
  const EngineFactory* Find(absl::string_view kind) const;
  std::vector<std::string> Kinds() const;

  // Creates an engine of `kind` from its config in protobuf text format ("" for the defaults).
  // NOT_FOUND for an unknown kind (the message lists the known ones), INVALID_ARGUMENT for a config
  // that does not parse.
  absl::StatusOr<std::unique_ptr<Engine>> Create(absl::string_view kind, const std::string& name,
                                                 const std::string& text_config) const;

 private:
  std::map<std::string, std::unique_ptr<EngineFactory>, std::less<>> factories_;
};

// The factory of an engine kind whose config is the message ConfigT: DefaultConfig() is an empty
// ConfigT, and Create() hands the parsed ConfigT to
//
//   static absl::StatusOr<std::unique_ptr<Engine>> EngineT::Create(const std::string& name,
//                                                                  const ConfigT& config);
//
// which checks the values (INVALID_ARGUMENT naming the field) and builds the engine. Create()
// refuses a config of another message type with INVALID_ARGUMENT. Any thread; no state.
template <typename EngineT, typename ConfigT>
class TypedEngineFactory : public EngineFactory {
 public:
  explicit TypedEngineFactory(absl::string_view kind) : kind_(kind) {}

  absl::string_view kind() const override { return kind_; }
  std::unique_ptr<google::protobuf::Message> DefaultConfig() const override {
    return std::make_unique<ConfigT>();
  }
  absl::StatusOr<std::unique_ptr<Engine>> Create(
      const std::string& name, const google::protobuf::Message& config) const override {
    if (config.GetDescriptor() != ConfigT::descriptor()) {
      return absl::InvalidArgumentError(absl::StrCat("engine kind '", kind_, "' takes a ",
                                                     ConfigT::descriptor()->full_name(), ", not a ",
                                                     config.GetDescriptor()->full_name()));
    }
    return EngineT::Create(name, static_cast<const ConfigT&>(config));
  }

 private:
  const std::string kind_;
};

// Registers the factory in the global registry; on a duplicate kind, prints one line
// ("snapd: engine kind 'echo' registered twice") and aborts. For static initialization.
void RegisterOrDie(std::unique_ptr<EngineFactory> factory);

// What SNAPD_REGISTER_ENGINE_KIND defines: registers a TypedEngineFactory<EngineT, ConfigT> for
// `kind` when it is constructed.
template <typename EngineT, typename ConfigT>
class EngineKindRegistrar {
 public:
  explicit EngineKindRegistrar(absl::string_view kind) {
    RegisterOrDie(std::make_unique<TypedEngineFactory<EngineT, ConfigT>>(kind));
  }
};

#define SNAPD_ENGINE_CONCAT_INNER(a, b) a##b
#define SNAPD_ENGINE_CONCAT(a, b) SNAPD_ENGINE_CONCAT_INNER(a, b)

// Registers engine kind `kind` (a string), built by EngineT::Create from a ConfigT, at static-
// initialization time; aborts with one clear line if the kind is registered already. At namespace
// scope in the engine's .cc, whose library needs `alwayslink = True` (nothing else refers to the
// registration, and the linker would drop it):
//
//   SNAPD_REGISTER_ENGINE_KIND(EchoEngine::kKind, EchoEngine, engines::EchoConfig);
#define SNAPD_REGISTER_ENGINE_KIND(kind, EngineT, ConfigT)                         \
  static const ::snapd::EngineKindRegistrar<EngineT, ConfigT> SNAPD_ENGINE_CONCAT( \
      snapd_engine_kind_registrar_, __LINE__)(kind)

}  // namespace snapd

#endif  // SNAPD_ENGINES_REGISTRY_H_
