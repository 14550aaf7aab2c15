#include "control/stats_table.h"

#include <map>
#include <string>

#include "absl/strings/str_format.h"

namespace snapd {

std::string StatsTable(const v1::Stats& stats) {
  std::string out;
  absl::StrAppendFormat(&out, "%-12s %-8s %12s %14s %10s %9s %7s %6s %10s %10s\n", "engine", "kind",
                        "frames", "bytes", "batches", "avg_batch", "empty%", "busy%", "drops",
                        "delay_us");
  for (const v1::Engine& e : stats.engines()) {
    const v1::EngineStats& s = e.stats();
    absl::StrAppendFormat(&out, "%-12s %-8s %12d %14d %10d %9.1f %7.1f %6.1f %10d %10d\n", e.name(),
                          e.kind(), s.frames(), s.bytes(), s.batches(),
                          s.batches() ? double(s.frames()) / s.batches() : 0.0,
                          s.polls() ? 100.0 * s.empty_polls() / s.polls() : 0.0, s.busy_percent(),
                          s.drops(), s.queueing_delay_ns() / 1000);
  }
  // The kinds' own counters, those that counted anything: "vswitch0: mac_table_full=12".
  for (const v1::Engine& e : stats.engines()) {
    std::map<std::string, uint64_t> counters(e.stats().kind_counters().begin(),
                                             e.stats().kind_counters().end());
    std::string line;
    for (const auto& [name, value] : counters) {
      if (value != 0) absl::StrAppendFormat(&line, " %s=%d", name, value);
    }
    if (!line.empty()) absl::StrAppendFormat(&out, "%s:%s\n", e.name(), line);
  }
  absl::StrAppendFormat(&out, "%-12s %-12s %12s %12s %10s %10s %9s %9s\n", "port", "engine",
                        "rx_frames", "tx_frames", "tx_drop", "malformed", "spoofed", "rx_err");
  for (const v1::Port& p : stats.ports()) {
    const v1::PortStats& ps = p.stats();
    absl::StrAppendFormat(&out, "%-12s %-12s %12d %12d %10d %10d %9d %9d\n", p.name(), p.engine(),
                          ps.rx_frames(), ps.tx_frames(), ps.tx_dropped(), ps.drop_malformed(),
                          ps.drop_spoofed(), ps.rx_errors());
  }
  absl::StrAppendFormat(&out, "%-12s %-16s %5s %12s %12s %9s %9s %9s %9s\n", "nic", "device",
                        "link", "rx_frames", "tx_frames", "missed", "rx_err", "tx_err", "nombuf");
  for (const v1::Nic& n : stats.nics()) {
    absl::StrAppendFormat(&out, "%-12s %-16s %5s %12d %12d %9d %9d %9d %9d\n", n.name(), n.device(),
                          n.link_up() ? "up" : "down", n.rx_frames(), n.tx_frames(), n.rx_missed(),
                          n.rx_errors(), n.tx_errors(), n.rx_nombuf());
  }
  absl::StrAppendFormat(&out, "apps: connected=%d refused=%d disconnected=%d\n",
                        stats.apps_attached(), stats.apps_refused(), stats.apps_detached());
  return out;
}

}  // namespace snapd
