// Engine journals: memory that outlives snapd, for engines whose state cannot be rebuilt from the
// configuration (Engine::CheckpointBytes: pony's connections, engines/pony/journal.h). Each is a
// memfd, mapped shared, its size sealed, kept in the service manager's fd store as
// "journal.<engine>" (upgrade/crash_store.h lists the store's names). A snapd restarted after a
// crash gives each engine the journal the dead one left, before any engine is polled; the engine
// checks all of it and picks up what holds together.
//
// Only under a service manager that keeps fds (the journal is there to outlive the process).
// Main thread, or while the engine is not polled (Attach runs on the engine's thread).
#ifndef SNAPD_UPGRADE_ENGINE_JOURNALS_H_
#define SNAPD_UPGRADE_ENGINE_JOURNALS_H_

#include <map>
#include <string>
#include <vector>

#include "base/unique_fd.h"
#include "engines/engine.h"

namespace snapd {
class Daemon;
}

namespace snapd::upgrade {

inline constexpr char kJournalPrefix[] = "journal.";

class EngineJournals {
 public:
  // `recovered`: what the store held under "journal.<engine>", by engine name.
  explicit EngineJournals(std::map<std::string, UniqueFd> recovered = {})
      : recovered_(std::move(recovered)) {}
  ~EngineJournals();
  EngineJournals(const EngineJournals&) = delete;
  EngineJournals& operator=(const EngineJournals&) = delete;

  // Gives `engine` its journal if its kind keeps one: the recovered one (if it is the size the
  // engine asks for) for it to pick up from, else a fresh one, stored. Logs what the engine says.
  // Not polled, or on the engine's thread.
  void Attach(const std::string& name, Engine& engine);
  // Every engine of `daemon` has its journal (those made since, or moved in by an upgrade, get
  // one on their threads); engines gone lose theirs (out of the store). Main thread.
  void Sync(Daemon& daemon);
  // A clean stop: out of the store (the engines are gone).
  void Clear();

 private:
  struct Mapping {
    void* memory = nullptr;
    size_t bytes = 0;
  };
  void Forget(const std::string& name);

  std::map<std::string, UniqueFd> recovered_;
  std::map<std::string, Mapping> attached_;
};

}  // namespace snapd::upgrade

#endif  // SNAPD_UPGRADE_ENGINE_JOURNALS_H_
