#include "upgrade/crash_store.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <algorithm>
#include <cstring>
#include <thread>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "glog/logging.h"
#include "ipc/peer_fd.h"
#include "upgrade/handoff.pb.h"
#include "upgrade/memif_handoff.h"
#include "upgrade/protocol.h"

namespace snapd::upgrade {
namespace {

constexpr char kMemifName[] = "memif";
constexpr char kControlName[] = "control";
constexpr char kConfigPrefix[] = "config.";
constexpr char kRestartingName[] = "restarting";
constexpr size_t kMaxCheckpointBytes = 64 << 20;
constexpr size_t kMaxConnectionBytes = 64 << 10;
// More fds than any connection the memif server accepts is made of (limits.h: regions, queues).
constexpr uint64_t kMaxConnectionFds = 1024;

std::string AppName(uint32_t id, absl::string_view what) {
  return absl::StrCat("app", id, ".", what);
}

// "app<id>.<what>" -> id and what.
bool ParseAppName(const std::string& name, uint32_t* id, std::string* what) {
  if (!absl::StartsWith(name, "app")) return false;
  const size_t dot = name.find('.');
  if (dot == std::string::npos) return false;
  *what = name.substr(dot + 1);
  return absl::SimpleAtoi(name.substr(3, dot - 3), id);
}

// Takes app `id`'s `count` fds and its description out of the store: the description first, so
// that a snapd that dies between the two leaves fds no one takes back.
void RemoveApp(uint32_t id, size_t count) {
  RemoveStoredFds(AppName(id, "conn"));
  for (size_t n = 0; n < count; ++n) RemoveStoredFds(AppName(id, absl::StrCat(n)));
}

// How many fds a connection is made of, as ConnectionToWire numbers them.
size_t FdCount(const memif::ConnectionHandoff& h) {
  return 1 + h.region_fds.size() + h.c2s_eventfds.size() + h.s2c_eventfds.size();
}

}  // namespace

std::string CheckListener(int fd, int type, const std::string& path) {
  if (const char* why = memif::UnixSocketMismatch(fd, type); *why != 0) return why;
  int value = 0;
  socklen_t len = sizeof(value);
  if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &value, &len) != 0 || value != 1) {
    return "not listening";
  }
  sockaddr_un addr{};
  socklen_t addr_len = sizeof(addr);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &addr_len) != 0) return "no address";
  const size_t n = addr_len > offsetof(sockaddr_un, sun_path)
                       ? strnlen(addr.sun_path, addr_len - offsetof(sockaddr_un, sun_path))
                       : 0;
  if (std::string(addr.sun_path, n) != path) {
    return absl::StrCat("bound to '", std::string(addr.sun_path, n), "', not '", path, "'");
  }
  return "";
}

Recovered Recover(std::vector<StoredFd> stored) {
  Recovered r;
  r.fds = stored.size();
  std::map<std::string, std::vector<UniqueFd>> by_name;
  for (StoredFd& s : stored) by_name[s.name].push_back(std::move(s.fd));
  // Takes the one fd stored under `name`; more than one is a store nothing here wrote.
  auto one = [&](const std::string& name) -> UniqueFd {
    auto it = by_name.find(name);
    if (it == by_name.end()) return UniqueFd();
    UniqueFd fd;
    if (it->second.size() == 1) {
      fd = std::move(it->second[0]);
    } else {
      r.dropped.push_back(absl::StrCat(name, ": ", it->second.size(), " fds under one name"));
      r.stale.push_back(name);
    }
    by_name.erase(it);
    return fd;
  };
  r.memif_listener = one(kMemifName);
  r.control_listener = one(kControlName);
  if (by_name.count(kRestartingName)) {
    r.crash_loop = true;
    by_name.erase(kRestartingName);  // MarkRestarting replaces it
  }

  // The newest checkpoint that reads whole; every other is stale.
  std::vector<std::string> names;
  for (const auto& [name, fds] : by_name) names.push_back(name);
  for (const std::string& name : names) {
    if (!absl::StartsWith(name, kConfigPrefix)) continue;
    UniqueFd fd = one(name);
    r.stale.push_back(name);
    if (!fd) continue;
    absl::StatusOr<std::string> bytes = ReadSealedMemfd(fd.get(), kMaxCheckpointBytes);
    wire::Checkpoint cp;
    if (!bytes.ok() || !cp.ParseFromString(*bytes)) {
      r.dropped.push_back(
          absl::StrCat(name, ": ", bytes.ok() ? "does not parse" : bytes.status().message()));
      continue;
    }
    if (!r.checkpoint || cp.generation() > r.checkpoint->generation()) r.checkpoint = cp;
  }
  if (r.checkpoint) {
    const std::string current = absl::StrCat(kConfigPrefix, r.checkpoint->generation());
    r.stale.erase(std::remove(r.stale.begin(), r.stale.end(), current), r.stale.end());
  }

  // The engines' journals: each engine checks its own as it takes it.
  for (const std::string& name : names) {
    if (!absl::StartsWith(name, kJournalPrefix) || !by_name.count(name)) continue;
    UniqueFd fd = one(name);
    if (fd) r.journals[name.substr(strlen(kJournalPrefix))] = std::move(fd);
  }

  // Each connection whose description is stored, with every fd it names.
  for (const std::string& name : names) {
    uint32_t id;
    std::string what;
    if (!ParseAppName(name, &id, &what) || what != "conn" || !by_name.count(name)) continue;
    std::vector<std::string> own = {name};
    auto fail = [&](absl::string_view why) {
      r.dropped.push_back(absl::StrCat("app ", id, ": ", why));
      for (const std::string& n : own) r.stale.push_back(n);
    };
    UniqueFd conn_fd = one(name);
    absl::StatusOr<std::string> bytes = conn_fd
                                            ? ReadSealedMemfd(conn_fd.get(), kMaxConnectionBytes)
                                            : absl::InvalidArgumentError("stored twice");
    wire::MemifConnection c;
    if (!bytes.ok() || !c.ParseFromString(*bytes)) {
      fail(bytes.ok() ? "its description does not parse" : bytes.status().message());
      continue;
    }
    if (c.id() != id) {
      fail(absl::StrCat("its description is of app ", c.id()));
      continue;
    }
    uint64_t count = 1 + static_cast<uint64_t>(c.region_fds_size()) + c.c2s_eventfds_size() +
                     c.s2c_eventfds_size();
    if (count > kMaxConnectionFds) {
      fail("its description names too many fds");
      continue;
    }
    std::vector<UniqueFd> fds;
    std::string missing;
    for (uint64_t n = 0; n < count; ++n) {
      const std::string fd_name = AppName(id, absl::StrCat(n));
      if (by_name.count(fd_name)) own.push_back(fd_name);
      fds.push_back(one(fd_name));
      if (!fds.back() && missing.empty()) missing = fd_name;
    }
    if (!missing.empty()) {
      // The app hung up while no snapd ran: the manager dropped its socket from the store.
      fail(absl::StrCat(missing, " is not in the store (the app went away?)"));
      continue;
    }
    std::vector<bool> used;
    absl::StatusOr<memif::ConnectionHandoff> h = ConnectionFromWire(c, &fds, &used);
    if (!h.ok()) {
      fail(h.status().message());
      continue;
    }
    r.connections.push_back(std::move(*h));
    r.names[id] = std::move(own);
  }
  // Whatever is left is nothing a connection named whole: an app's fds without their description
  // (the snapd died while storing or removing them), or names nothing here writes.
  for (auto& [name, fds] : by_name) {
    uint32_t id;
    std::string what;
    if (!ParseAppName(name, &id, &what)) r.dropped.push_back(absl::StrCat(name, ": unknown"));
    r.stale.push_back(name);
  }
  return r;
}

void MarkRestarting() {
  RemoveStoredFds(kRestartingName);
  absl::StatusOr<UniqueFd> marker = SealedMemfd(kRestartingName);
  if (marker.ok()) StoreFds(kRestartingName, {marker->get()});
}

void UnmarkRestarting() { RemoveStoredFds(kRestartingName); }

void UnmarkRestartingAfter(absl::Duration after) {
  std::thread([after] {
    absl::SleepFor(after);
    RemoveStoredFds(kRestartingName);
  }).detach();
}

void CrashStore::Begin() { Continue({}, {}); }

void CrashStore::Continue(const std::vector<uint32_t>& stored_apps,
                          const std::vector<std::string>& stale) {
  for (const std::string& name : stale) RemoveStoredFds(name);
  // The listeners: the manager keeps one copy of each open file, so storing them again where
  // they are stored already adds nothing.
  absl::StatusOr<UniqueFd> memif = daemon_.memif().ExportListener();
  if (memif.ok()) StoreFds(kMemifName, {memif->get()});
  if (daemon_.control_listener() >= 0) StoreFds(kControlName, {daemon_.control_listener()});
  Checkpoint();
  journals_.Sync(daemon_);
  for (memif::Connection* conn : daemon_.memif().connections()) {
    const uint32_t id = conn->id();
    if (std::find(stored_apps.begin(), stored_apps.end(), id) == stored_apps.end()) {
      StoreApp(id);
      continue;
    }
    // Stored already: how many fds, for its removal.
    absl::StatusOr<memif::ConnectionHandoff> h = daemon_.memif().ExportConnection(id);
    if (h.ok()) apps_[id] = FdCount(*h);
  }
  LOG(INFO) << "fd store: keeping " << apps_.size() << " app(s), the listeners and checkpoint "
            << daemon_.history().store_generation << " with the service manager";
}

void CrashStore::Clear() {
  for (const auto& [id, count] : apps_) RemoveApp(id, count);
  apps_.clear();
  RemoveStoredFds(kMemifName);
  RemoveStoredFds(kControlName);
  RemoveStoredFds(kRestartingName);
  journals_.Clear();
  for (uint64_t g = generation_ > 1 ? generation_ - 1 : 1; g > 0 && g <= generation_; ++g) {
    RemoveStoredFds(absl::StrCat(kConfigPrefix, g));
  }
}

void CrashStore::AppAttached(uint32_t id) {
  if (!apps_.count(id)) StoreApp(id);
}

void CrashStore::AppDetached(uint32_t id) {
  auto it = apps_.find(id);
  if (it == apps_.end()) return;
  RemoveApp(id, it->second);
  apps_.erase(it);
}

void CrashStore::ConfigChanged() {
  Checkpoint();
  journals_.Sync(daemon_);  // engines made or destroyed
}

absl::StatusOr<std::vector<StoredFd>> AppStoreEntries(memif::ConnectionHandoff h) {
  const uint32_t id = h.id;
  wire::MemifConnection c;
  std::vector<UniqueFd> fds;
  ConnectionToWire(std::move(h), &c, &fds);
  absl::StatusOr<UniqueFd> description = SealedMemfd(c.SerializeAsString());
  if (!description.ok()) return description.status();
  // The fds first, then what makes them a connection.
  std::vector<StoredFd> entries;
  for (size_t n = 0; n < fds.size(); ++n) {
    entries.push_back({AppName(id, absl::StrCat(n)), std::move(fds[n])});
  }
  entries.push_back({AppName(id, "conn"), std::move(*description)});
  return entries;
}

void CrashStore::StoreApp(uint32_t id) {
  absl::StatusOr<memif::ConnectionHandoff> h = daemon_.memif().ExportConnection(id);
  absl::StatusOr<std::vector<StoredFd>> entries =
      h.ok() ? AppStoreEntries(std::move(*h)) : h.status();
  if (!entries.ok()) {
    LOG(WARNING) << "fd store: app " << id << " not kept: " << entries.status().message();
    return;
  }
  for (const StoredFd& e : *entries) StoreFds(e.name, {e.fd.get()});
  apps_[id] = entries->size() - 1;
}

void CrashStore::Checkpoint() {
  ServiceHistory history = daemon_.history();
  wire::Checkpoint cp;
  cp.set_generation(history.store_generation + 1);
  *cp.mutable_config() = daemon_.CurrentConfig();
  cp.set_serving_since_unix_ms(history.serving_since_unix_ms);
  BlackoutsToWire(history.blackouts, cp.mutable_blackouts());
  cp.set_upgrades(history.upgrades);
  cp.set_restarts(history.restarts);
  absl::StatusOr<UniqueFd> fd = SealedMemfd(cp.SerializeAsString());
  if (!fd.ok() || !StoreFds(absl::StrCat(kConfigPrefix, cp.generation()), {fd->get()})) {
    LOG(WARNING) << "fd store: cannot store the checkpoint"
                 << (fd.ok() ? std::string() : absl::StrCat(": ", fd.status().message()));
    return;
  }
  // The next one first, and the one before stays until the one after is stored: the manager says
  // nothing of an fd it would not keep (its store full), and the newest that reads whole wins.
  if (history.store_generation > 1) {
    RemoveStoredFds(absl::StrCat(kConfigPrefix, history.store_generation - 1));
  }
  history.store_generation = cp.generation();
  daemon_.set_history(history);
  generation_ = cp.generation();
}

}  // namespace snapd::upgrade
