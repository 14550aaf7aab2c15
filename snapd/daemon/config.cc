#include "snapd/daemon/config.h"

#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "engines/frame.h"
#include "engines/registry.h"
#include "snapd/daemon/placement.h"

namespace snapd {
namespace {

// (uid_t)-1: "no uid" to chown and setuid, never a user.
constexpr uint32_t kNoUid = 0xffffffff;

absl::Status Invalid(absl::string_view field, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", what));
}

}  // namespace

absl::StatusOr<config::SnapdConfig> ParseConfig(const std::string& text,
                                                const std::string& origin) {
  config::SnapdConfig cfg;
  absl::Status parsed = ParseTextProto(text, &cfg);
  if (!parsed.ok()) return absl::InvalidArgumentError(absl::StrCat(origin, ": ", parsed.message()));
  return cfg;
}

absl::StatusOr<config::SnapdConfig> LoadConfigFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read config file ", path));
  std::stringstream text;
  text << in.rdbuf();
  return ParseConfig(text.str(), path);
}

absl::StatusOr<config::Nic> ParseNicFlag(const std::string& flag) {
  config::Nic nic;
  std::string devargs = flag;
  size_t at = flag.rfind('@');
  if (at != std::string::npos) {
    uint32_t queues;
    if (!absl::SimpleAtoi(flag.substr(at + 1), &queues) || queues == 0) {
      return Invalid(absl::StrCat("--nic=", flag),
                     "the queue count after '@' must be a positive number");
    }
    nic.set_queues(queues);
    devargs = flag.substr(0, at);
  }
  if (devargs.empty()) return Invalid("--nic", "empty device argument");
  nic.set_devargs(devargs);
  return nic;
}

absl::StatusOr<config::App> ParseAppFlag(const std::string& flag) {
  config::App app;
  bool have_id = false;
  for (absl::string_view part : absl::StrSplit(flag, ',')) {
    std::pair<std::string, std::string> kv = absl::StrSplit(part, absl::MaxSplits('=', 1));
    const std::string& key = kv.first;
    const std::string& value = kv.second;
    if (key == "id") {
      uint32_t id;
      if (!absl::SimpleAtoi(value, &id))
        return Invalid("--app id", absl::StrCat("'", value, "' is not a number"));
      app.set_id(id);
      have_id = true;
    } else if (key == "mac") {
      app.set_mac(value);
    } else if (key == "ip") {
      app.set_ipv4(value);
    } else if (key == "ip6") {
      app.add_ipv6(value);
    } else if (key == "vlan") {
      uint32_t vlan;
      if (!absl::SimpleAtoi(value, &vlan) || vlan == 0 || vlan > 4094) {
        return Invalid("--app vlan", absl::StrCat("'", value, "' is not a VLAN id in 1..4094"));
      }
      app.set_vlan(vlan);
    } else if (key == "uid") {
      uint32_t uid;
      if (!absl::SimpleAtoi(value, &uid) || uid == kNoUid) {
        return Invalid("--app uid", absl::StrCat("'", value, "' is not a uid (a number)"));
      }
      app.set_uid(uid);
    } else if (key == "secret") {
      app.set_secret(value);
    } else if (key == "engine") {
      app.set_engine(value);
    } else {
      return Invalid(absl::StrCat("--app=", flag),
                     absl::StrCat("unknown key '", key,
                                  "' (want id, mac, ip, ip6, vlan, uid, secret, engine)"));
    }
  }
  if (!have_id) return Invalid(absl::StrCat("--app=", flag), "id=N is required");
  return app;
}

std::string DeviceName(const std::string& devargs) { return devargs.substr(0, devargs.find(',')); }

absl::Status CheckApp(const config::App& app, const std::string& field,
                      const std::vector<const config::App*>& others,
                      const std::vector<std::string>& engines) {
  const std::string prefix = field.empty() ? "" : field + ".";
  uint64_t mac;
  if (!ParseMac(app.mac(), &mac)) {
    return Invalid(prefix + "mac",
                   absl::StrCat("'", app.mac(), "' is not a MAC like 02:00:00:00:00:01"));
  }
  if (IsMulticast(mac) || mac == 0) return Invalid(prefix + "mac", "must be a unicast address");
  uint32_t ip;
  if (!ParseIpv4(app.ipv4(), &ip)) {
    return Invalid(prefix + "ipv4", absl::StrCat("'", app.ipv4(), "' is not an IPv4 address"));
  }
  std::vector<Ipv6Address> ip6s;
  for (const std::string& text : app.ipv6()) {
    Ipv6Address ip6;
    if (!ParseIpv6(text, &ip6)) {
      return Invalid(prefix + "ipv6", absl::StrCat("'", text, "' is not an IPv6 address"));
    }
    if (ip6.IsUnspecified() || reinterpret_cast<const uint8_t*>(ip6.w)[0] == 0xff) {
      return Invalid(prefix + "ipv6", absl::StrCat("'", text, "' is not a unicast address"));
    }
    if (std::find(ip6s.begin(), ip6s.end(), ip6) != ip6s.end()) {
      return Invalid(prefix + "ipv6", absl::StrCat("'", text, "' given twice"));
    }
    ip6s.push_back(ip6);
  }
  if (ip6s.size() > static_cast<size_t>(AppIdentity::kMaxIpv6)) {
    return Invalid(prefix + "ipv6", absl::StrCat("at most ", AppIdentity::kMaxIpv6, " addresses"));
  }
  if (app.vlan() > 4094) {
    return Invalid(prefix + "vlan", absl::StrCat(app.vlan(), " is not a VLAN id in 1..4094"));
  }
  if (app.has_uid() && app.uid() == kNoUid) {
    return Invalid(prefix + "uid", absl::StrCat(app.uid(), " is not a uid"));
  }
  if (app.secret().size() > 23) return Invalid(prefix + "secret", "at most 23 bytes");
  if (std::find(engines.begin(), engines.end(), app.engine()) == engines.end()) {
    return Invalid(prefix + "engine", absl::StrCat("no engine named '", app.engine(), "'"));
  }
  for (const config::App* other : others) {
    uint64_t other_mac = 0;
    uint32_t other_ip = 0;
    ParseMac(other->mac(), &other_mac);
    ParseIpv4(other->ipv4(), &other_ip);
    if (other->id() == app.id()) {
      return absl::AlreadyExistsError(absl::StrCat(prefix, "id: id ", app.id(), " used twice"));
    }
    if (other_mac == mac) {
      return absl::AlreadyExistsError(absl::StrCat(
          prefix, "mac: ", app.mac(), " given to two apps (also app ", other->id(), ")"));
    }
    if (other_ip == ip) {
      return absl::AlreadyExistsError(absl::StrCat(
          prefix, "ipv4: ", app.ipv4(), " given to two apps (also app ", other->id(), ")"));
    }
    for (const std::string& text : other->ipv6()) {
      Ipv6Address other_ip6;
      if (!ParseIpv6(text, &other_ip6)) continue;
      auto same = std::find(ip6s.begin(), ip6s.end(), other_ip6);
      if (same != ip6s.end()) {
        return absl::AlreadyExistsError(
            absl::StrCat(prefix, "ipv6: ", app.ipv6(same - ip6s.begin()),
                         " given to two apps (also app ", other->id(), ")"));
      }
    }
  }
  return absl::OkStatus();
}

absl::Status CheckGroup(config::Group* group, const std::string& field) {
  const std::string prefix = field.empty() ? "" : field + ".";
  if (group->name().empty()) return Invalid(prefix + "name", "must not be empty");
  if (group->mode().empty()) group->set_mode("spreading");
  SchedulingMode mode;
  if (!ParseSchedulingMode(group->mode(), &mode)) {
    return Invalid(prefix + "mode",
                   absl::StrCat("'", group->mode(), "' is not dedicated, spreading or compacting"));
  }
  int ncpu = static_cast<int>(std::thread::hardware_concurrency());
  std::set<int> seen;
  for (int core : group->cores()) {
    if (core < 0 || core >= ncpu) {
      return Invalid(prefix + "cores",
                     absl::StrCat(core, " is not a core of this machine (0..", ncpu - 1, ")"));
    }
    if (!seen.insert(core).second)
      return Invalid(prefix + "cores", absl::StrCat(core, " given twice"));
  }
  if (group->slo_us() == 0) group->set_slo_us(200);
  return absl::OkStatus();
}

absl::Status CompleteConfig(config::SnapdConfig* cfg) {
  if (cfg->run_dir().empty()) {
    const char* xdg = getenv("XDG_RUNTIME_DIR");
    cfg->set_run_dir(geteuid() == 0 || xdg == nullptr ? "/run/snapd" : absl::StrCat(xdg, "/snapd"));
  }
  if (cfg->memif_socket().empty()) cfg->set_memif_socket(cfg->run_dir() + "/memif.sock");
  if (cfg->control_socket().empty()) cfg->set_control_socket(cfg->run_dir() + "/control.sock");
  if (cfg->engines().empty()) {
    config::Engine* e = cfg->add_engines();
    e->set_name("vswitch0");
    e->set_kind("vswitch");
  }
  std::vector<std::string> group_names;
  for (int i = 0; i < cfg->groups_size(); ++i) {
    absl::Status status = CheckGroup(cfg->mutable_groups(i), absl::StrCat("groups[", i, "]"));
    if (!status.ok()) return status;
    if (std::count(group_names.begin(), group_names.end(), cfg->groups(i).name()) > 0) {
      return Invalid(absl::StrCat("groups[", i, "].name"),
                     absl::StrCat("'", cfg->groups(i).name(), "' used twice"));
    }
    group_names.push_back(cfg->groups(i).name());
  }
  if (std::count(group_names.begin(), group_names.end(), kDefaultGroup) == 0) {
    config::Group* g = cfg->add_groups();
    g->set_name(kDefaultGroup);
    (void)CheckGroup(g, "");
    group_names.push_back(kDefaultGroup);
  }
  if (cfg->nics().empty()) {
    // A NIC that needs nothing: DPDK's null device, receiving nothing, dropping what it is sent.
    cfg->add_nics()->set_devargs("net_null0,no-rx=1");
  }
  std::set<std::string> engine_names;
  for (int i = 0; i < cfg->engines_size(); ++i) {
    const config::Engine& e = cfg->engines(i);
    std::string field = absl::StrCat("engines[", i, "]");
    if (e.name().empty()) return Invalid(field + ".name", "must not be empty");
    if (!engine_names.insert(e.name()).second) {
      return Invalid(field + ".name", absl::StrCat("'", e.name(), "' used twice"));
    }
    if (EngineRegistry::Global().Find(e.kind()) == nullptr) {
      return Invalid(field + ".kind", absl::StrCat("unknown engine kind '", e.kind(), "'"));
    }
    if (e.group().empty()) cfg->mutable_engines(i)->set_group(kDefaultGroup);
    if (std::count(group_names.begin(), group_names.end(), cfg->engines(i).group()) == 0) {
      return Invalid(field + ".group", absl::StrCat("no group named '", e.group(), "'"));
    }
  }
  const std::string& first_engine = cfg->engines(0).name();
  std::set<std::string> devices;
  for (int i = 0; i < cfg->nics_size(); ++i) {
    config::Nic* nic = cfg->mutable_nics(i);
    std::string field = absl::StrCat("nics[", i, "]");
    if (nic->devargs().empty()) return Invalid(field + ".devargs", "must not be empty");
    if (!devices.insert(DeviceName(nic->devargs())).second) {
      return Invalid(field + ".devargs",
                     absl::StrCat("device '", DeviceName(nic->devargs()), "' given twice"));
    }
    if (nic->queues() == 0) nic->set_queues(1);
    if (nic->queues() > 64) return Invalid(field + ".queues", "at most 64");
    if (nic->engines().empty()) nic->add_engines(first_engine);
    for (const std::string& e : nic->engines()) {
      if (!engine_names.count(e)) {
        return Invalid(field + ".engines", absl::StrCat("no engine named '", e, "'"));
      }
    }
  }
  std::vector<std::string> engines(engine_names.begin(), engine_names.end());
  std::vector<const config::App*> accepted;
  for (int i = 0; i < cfg->apps_size(); ++i) {
    config::App* app = cfg->mutable_apps(i);
    if (app->engine().empty()) app->set_engine(first_engine);
    absl::Status status = CheckApp(*app, absl::StrCat("apps[", i, "]"), accepted, engines);
    if (!status.ok()) return status;
    accepted.push_back(app);
  }
  return absl::OkStatus();
}

}  // namespace snapd
