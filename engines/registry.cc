#include "engines/registry.h"

#include <cstdio>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/text_format.h"

namespace snapd {

EngineRegistry& EngineRegistry::Global() {
  static EngineRegistry* registry = new EngineRegistry();
  return *registry;
}

absl::Status EngineRegistry::Register(std::unique_ptr<EngineFactory> factory) {
  std::string kind(factory->kind());
  if (factories_.count(kind) > 0) {
    return absl::AlreadyExistsError(absl::StrCat("engine kind '", kind, "' registered twice"));
  }
  factories_.emplace(kind, std::move(factory));
  return absl::OkStatus();
}

const EngineFactory* EngineRegistry::Find(absl::string_view kind) const {
  auto it = factories_.find(kind);
  return it == factories_.end() ? nullptr : it->second.get();
}

std::vector<std::string> EngineRegistry::Kinds() const {
  std::vector<std::string> kinds;
  for (const auto& [kind, factory] : factories_) kinds.push_back(kind);
  return kinds;
}

namespace {

// Collects the text-format parser's complaints so the error names the line and field.
class ErrorCollector : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, int column, const std::string& message) override {
    if (error.empty())
      error = absl::StrCat("line ", line + 1, " column ", column + 1, ": ", message);
  }
  std::string error;
};

}  // namespace

absl::Status ParseTextProto(const std::string& text, google::protobuf::Message* out) {
  google::protobuf::TextFormat::Parser parser;
  ErrorCollector errors;
  parser.RecordErrorsTo(&errors);
  if (!parser.ParseFromString(text, out)) return absl::InvalidArgumentError(errors.error);
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Engine>> EngineRegistry::Create(
    absl::string_view kind, const std::string& name, const std::string& text_config) const {
  const EngineFactory* factory = Find(kind);
  if (factory == nullptr) {
    return absl::NotFoundError(absl::StrCat("unknown engine kind '", kind,
                                            "'; known kinds: ", absl::StrJoin(Kinds(), ", ")));
  }
  std::unique_ptr<google::protobuf::Message> config = factory->DefaultConfig();
  absl::Status parsed = ParseTextProto(text_config, config.get());
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("config of engine '", name, "' (", kind, "): ", parsed.message()));
  }
  return factory->Create(name, *config);
}

void RegisterOrDie(std::unique_ptr<EngineFactory> factory) {
  absl::Status status = EngineRegistry::Global().Register(std::move(factory));
  if (!status.ok()) {
    fprintf(stderr, "snapd: %s\n", std::string(status.message()).c_str());
    std::abort();
  }
}

}  // namespace snapd
