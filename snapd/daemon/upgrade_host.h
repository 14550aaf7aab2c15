// UpgradeHost: what a live upgrade (upgrade/) needs of the daemon, and all it may do to it. The
// Daemon implements it; upgrade/old_snapd.h and upgrade/new_snapd.h work only through it, as
// Envoy's hot-restart halves work through the server's interface.
//
// Threads: main thread only.
#ifndef SNAPD_SNAPD_DAEMON_UPGRADE_HOST_H_
#define SNAPD_SNAPD_DAEMON_UPGRADE_HOST_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engines/engine.h"
#include "ipc/server.h"
#include "snapd/daemon/blackout_histogram.h"
#include "snapd/daemon/capture.h"
#include "snapd/daemon/config.pb.h"
#include "snapd/daemon/event_log.h"
#include "snapd/daemon/main_loop.h"
#include "snapd/daemon/nic.h"

namespace snapd {

// What a live upgrade did: the old snapd's report to whoever asked for it (snapctl upgrade), and
// the new snapd's record of how it came to serve (DaemonInfo.last_upgrade), which is what a rollout
// gates on after `systemctl reload` (deploy/ansible/).
struct EngineMove {
  std::string name;
  // From the old worker's last poll to the new worker's first; and from asking the old worker to
  // stop to the new snapd's answer.
  int64_t blackout_us = 0;
  int64_t handover_us = 0;
};
struct UpgradeReport {
  int32_t old_pid = 0;
  int32_t new_pid = 0;
  // Which binaries: "snapd 0.3.0 (/usr/sbin/snapd, written 2026-11-26 14:00:00 UTC)".
  std::string old_build;
  std::string new_build;
  // From starting the new binary to it having adopted every app and built every engine.
  int64_t brownout_us = 0;
  std::vector<EngineMove> engines;
  // What the operator should know (an app the new snapd refused, a tap made anew).
  std::vector<std::string> notes;
  // When the new snapd began to serve (Unix ms); 0: no upgrade.
  int64_t finished_unix_ms = 0;
};

// The service across live upgrades and crash restarts: since when it serves (Unix ms, when the
// first snapd of the chain started), how many upgrades and restarts since, and the pid this snapd
// took over from (0 for none).
struct ServiceHistory {
  int64_t serving_since_unix_ms = 0;
  uint32_t upgrades = 0;
  uint32_t restarts = 0;
  int32_t previous_pid = 0;
  // The generation of the last checkpoint in the service manager's fd store
  // (upgrade/crash_store.h); 0: none kept.
  uint64_t store_generation = 0;
  BlackoutHistogram blackouts;
  // The live upgrade that started this process (finished_unix_ms 0: it was not started by one).
  UpgradeReport last_upgrade;
};

// A listening socket an upgrade hands over besides the control plane's (the metrics endpoint's,
// control/metrics_server.h), and stopping taking connections from it. Main thread.
class HandedListener {
 public:
  virtual ~HandedListener() = default;
  virtual int fd() const = 0;
  // Paused, connections wait in the socket's backlog for the snapd that serves next; unpaused
  // (an upgrade that failed), this one takes them again.
  virtual void Pause(bool paused) = 0;
};

class UpgradeHost {
 public:
  virtual ~UpgradeHost() = default;

  virtual MainLoop& loop() = 0;
  // The configuration as it stands now (apps, engines and groups as RPCs left them).
  virtual config::SnapdConfig CurrentConfig() const = 0;
  virtual const ServiceHistory& history() const = 0;
  // The memif server: its listener and apps' connections are handed over, and adopted.
  virtual memif::MemifServer& memif() = 0;
  // The control plane's listening socket (-1: none), handed over with the apps.
  virtual int control_listener() const = 0;
  // The metrics endpoint's (nullptr: none): handed over too, and paused as the old snapd's counters
  // stop counting (before the new snapd serves its own, which go on from them).
  virtual HandedListener* metrics_listener() const = 0;

  // Engines by name, in a fixed order (an upgrade's cursor journal has an area for each, in this
  // order). An engine may be touched here only while no worker polls it (or through OnEngine).
  virtual std::vector<std::string> EngineNames() const = 0;
  virtual Engine* FindEngine(const std::string& name) = 0;
  // Runs fn on the engine's thread if a worker polls it, else here.
  virtual void OnEngine(const std::string& name, const std::function<void()>& fn) = 0;
  // Stops polling the engine at a batch boundary; returns when its worker let go (MonotonicNs).
  virtual int64_t StopEngine(const std::string& name) = 0;
  // Polls a stopped engine again on the worker it left (an upgrade that failed).
  virtual void ResumeEngine(const std::string& name) = 0;
  // A daemon built for an upgrade (Daemon::Adopt): the engine moved in, place it; returns when
  // its worker took it (MonotonicNs).
  virtual absl::StatusOr<int64_t> StartEngine(const std::string& name) = 0;

  // NICs by config index: nullptr while closed.
  virtual int NicCount() const = 0;
  virtual Nic* nic(int index) = 0;
  // Whether an engine this NIC's queues go to is still polled.
  virtual bool NicPolled(int index) = 0;
  // Opens NIC `index` and attaches its queues to their engines.
  virtual absl::Status OpenNic(int index) = 0;
  // Closes NIC `index`, its queue ports leaving their engines with their counters in *ports.
  virtual void CloseNic(int index, std::vector<engines::PortCounters>* ports) = 0;
  // Adds saved counters to the ports of those names, in whichever engine they are.
  virtual void AddPortCounters(const std::vector<engines::PortCounters>& saved) = 0;

  // Lets go of everything without a word: no app is told, no socket file removed, no NIC
  // stopped, no EAL cleanup; another snapd serves them (the new one after an upgrade, the old one
  // after a failed one). The daemon's main loop then only ends.
  virtual void Withdraw() = 0;
  virtual bool handed_over() const = 0;
  // The service's event log: an upgrade notes its phases there, and the new snapd carries the old
  // one's on.
  virtual EventLog& events() = 0;
  // Running captures: the new snapd goes on with them (Withdraw marks them handed over).
  virtual const std::vector<std::shared_ptr<Capture>>& captures() const = 0;
  // While set, the control plane refuses RPCs that would change the daemon.
  virtual void set_upgrading(bool upgrading) = 0;
};

}  // namespace snapd

#endif  // SNAPD_SNAPD_DAEMON_UPGRADE_HOST_H_
