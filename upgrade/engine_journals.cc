#include "upgrade/engine_journals.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"
#include "snapd/daemon/daemon.h"
#include "snapd/daemon/service_manager.h"

namespace snapd::upgrade {

EngineJournals::~EngineJournals() {
  for (auto& [name, m] : attached_) munmap(m.memory, m.bytes);
}

void EngineJournals::Attach(const std::string& name, Engine& engine) {
  const size_t bytes = engine.CheckpointBytes();
  if (bytes == 0 || attached_.count(name)) return;
  const std::string store_name = absl::StrCat(kJournalPrefix, name);
  std::string why_fresh;
  UniqueFd fd;
  auto found = recovered_.find(name);
  if (found != recovered_.end()) {
    fd = std::move(found->second);
    recovered_.erase(found);
    struct stat st;
    if (fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) ||
        static_cast<size_t>(st.st_size) != bytes) {
      why_fresh = absl::StrCat("the stored one is not ", bytes, " bytes (its config changed?)");
      fd.reset();
    }
  }
  const bool recover = static_cast<bool>(fd);
  if (!recover) {
    fd.reset(memfd_create(absl::StrCat("snapd-journal-", name).c_str(),
                          MFD_CLOEXEC | MFD_ALLOW_SEALING));
    if (!fd || ftruncate(fd.get(), static_cast<off_t>(bytes)) != 0 ||
        fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
      PLOG(WARNING) << "engine " << name << ": no journal (its state does not survive a crash)";
      return;
    }
  }
  // Pages are touched only as the engine uses them.
  void* memory =
      mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd.get(), 0);
  if (memory == MAP_FAILED) {
    PLOG(WARNING) << "engine " << name << ": cannot map its journal";
    return;
  }
  absl::StatusOr<std::string> report = engine.UseCheckpoint(memory, bytes, recover);
  if (!report.ok()) {
    LOG(WARNING) << "engine " << name << ": journal not used: " << report.status().message();
    munmap(memory, bytes);
    return;
  }
  attached_[name] = Mapping{memory, bytes};
  if (!recover) {
    // Replaces what the store held under the name (an upgrade's old snapd's, or one not used).
    RemoveStoredFds(store_name);
    StoreFds(store_name, {fd.get()});
  }
  LOG(INFO) << "engine " << name << ": " << *report
            << (why_fresh.empty() ? std::string()
                                  : absl::StrCat(" (a fresh journal: ", why_fresh, ")"));
}

void EngineJournals::Sync(Daemon& daemon) {
  std::vector<std::string> names = daemon.EngineNames();
  for (const std::string& name : names) {
    Engine* engine = daemon.FindEngine(name);
    if (engine == nullptr || attached_.count(name)) continue;
    daemon.OnEngine(name, [&] { Attach(name, *engine); });
  }
  std::vector<std::string> gone;
  for (const auto& [name, m] : attached_) {
    if (std::find(names.begin(), names.end(), name) == names.end()) gone.push_back(name);
  }
  for (const std::string& name : gone) Forget(name);
  // Stored journals of engines the configuration no longer has.
  for (auto& [name, fd] : recovered_) RemoveStoredFds(absl::StrCat(kJournalPrefix, name));
  recovered_.clear();
}

void EngineJournals::Forget(const std::string& name) {
  auto it = attached_.find(name);
  if (it == attached_.end()) return;
  RemoveStoredFds(absl::StrCat(kJournalPrefix, name));
  munmap(it->second.memory, it->second.bytes);
  attached_.erase(it);
}

void EngineJournals::Clear() {
  for (const auto& [name, m] : attached_) RemoveStoredFds(absl::StrCat(kJournalPrefix, name));
}

}  // namespace snapd::upgrade
