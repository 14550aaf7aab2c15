// Engines are created by kind name through a registry of factories, as Envoy's typed factories and
// VPP's registered nodes are: one factory per kind, registered once at static-initialization time
// with SNAPD_REGISTER_ENGINE. Registering a kind twice is a programming error and aborts at start.
#ifndef SNAPD_ENGINES_REGISTRY_H_
#define SNAPD_ENGINES_REGISTRY_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engines/engine.h"
#include "google/protobuf/message.h"

namespace snapd {

// Parses protobuf text format into *out; the error names the line and column and what was wrong.
absl::Status ParseTextProto(const std::string& text, google::protobuf::Message* out);

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
  // The process-wide registry that SNAPD_REGISTER_ENGINE fills.
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

// Registers Factory in the global registry at static-initialization time; aborts with one clear
// line on a duplicate kind. Libraries using it need `alwayslink = True`.
template <typename Factory>
class EngineRegistrar {
 public:
  EngineRegistrar();
};

void RegisterOrDie(std::unique_ptr<EngineFactory> factory);

template <typename Factory>
EngineRegistrar<Factory>::EngineRegistrar() {
  RegisterOrDie(std::make_unique<Factory>());
}

#define SNAPD_REGISTER_ENGINE(Factory) \
  static ::snapd::EngineRegistrar<Factory> snapd_engine_registrar_##Factory

}  // namespace snapd

#endif  // SNAPD_ENGINES_REGISTRY_H_
