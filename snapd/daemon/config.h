// Building, checking and completing snapd's configuration: from a text-format file, from flags, or
// the embedded default that needs nothing (a virtual NIC that receives nothing, one vswitch).
#ifndef SNAPD_SNAPD_DAEMON_CONFIG_H_
#define SNAPD_SNAPD_DAEMON_CONFIG_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "snapd/daemon/config.pb.h"

namespace snapd {

// Reads a text-format SnapdConfig. Errors name the file, line and field.
absl::StatusOr<config::SnapdConfig> LoadConfigFile(const std::string& path);

// Parses a text-format SnapdConfig from a string ("" is an empty config).
absl::StatusOr<config::SnapdConfig> ParseConfig(const std::string& text,
                                                const std::string& origin = "config");

// "DEVARGS[@QUEUES]" from --nic.
absl::StatusOr<config::Nic> ParseNicFlag(const std::string& flag);
// "id=N,mac=M,ip=A[,ip6=A6]...[,vlan=V][,uid=U][,secret=S][,engine=E]" from --app.
absl::StatusOr<config::App> ParseAppFlag(const std::string& flag);

// Fills in defaults (run dir, sockets, default NIC and engine when none is given, queue counts)
// and checks everything: unique names, known engine references, valid and unique app ids, MACs
// and addresses. INVALID_ARGUMENT names the field.
absl::Status CompleteConfig(config::SnapdConfig* config);

inline constexpr char kDefaultGroup[] = "default";

// Checks an engine group and fills its defaults (mode spreading, SLO 200 us): a known mode, cores
// of this machine, none twice. Errors name the field, prefixed with `field`.
absl::Status CheckGroup(config::Group* group, const std::string& field);

// Checks one app interface: MAC, addresses (IPv4, IPv6: unicast, at most 8), VLAN (0 or 1..4094),
// uid and secret well formed, its engine among `engines`, and its id, MAC and addresses not those
// of any app in `others` (ALREADY_EXISTS). Errors name the field, prefixed with `field`
// ("apps[2]"; "" for none).
absl::Status CheckApp(const config::App& app, const std::string& field,
                      const std::vector<const config::App*>& others,
                      const std::vector<std::string>& engines);

// The name DPDK gives the device of `devargs`: everything before the first comma.
std::string DeviceName(const std::string& devargs);

}  // namespace snapd

#endif  // SNAPD_SNAPD_DAEMON_CONFIG_H_
