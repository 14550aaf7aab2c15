#include "control/stats_table.h"

#include <map>
#include <string>

#include "absl/strings/str_format.h"
#include "engines/port.h"
#include "snapd/daemon/nic_stats.h"

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
  out += PortTable(stats.ports(), /*with_kind=*/false);
  out += NicTable(stats.nics(), /*with_setup=*/false);
  absl::StrAppendFormat(&out, "apps: connected=%d refused=%d disconnected=%d\n",
                        stats.apps_attached(), stats.apps_refused(), stats.apps_detached());
  return out;
}

// A counter list's columns (those with a column name), for PortTable and NicTable: the header
// into `out`, and the values of `counters` (the message that has a field per counter).
#define SNAPD_COLUMN_HEADER(name, column, meaning) \
  if (*column) absl::StrAppendFormat(&out, " %12s", column);
#define SNAPD_COLUMN_VALUE(name, column, meaning) \
  if (*column) absl::StrAppendFormat(&out, " %12d", counters.name());

std::string PortTable(const google::protobuf::RepeatedPtrField<v1::Port>& ports, bool with_kind) {
  std::string out = absl::StrFormat("%-12s %-12s", "port", "engine");
  if (with_kind) absl::StrAppendFormat(&out, " %-4s", "kind");
  SNAPD_PORT_COUNTERS(SNAPD_COLUMN_HEADER)
  out += "\n";
  for (const v1::Port& p : ports) {
    absl::StrAppendFormat(&out, "%-12s %-12s", p.name(), p.engine());
    if (with_kind) absl::StrAppendFormat(&out, " %-4s", p.kind());
    const v1::PortStats& counters = p.stats();
    SNAPD_PORT_COUNTERS(SNAPD_COLUMN_VALUE)
    out += "\n";
  }
  return out;
}

std::string NicTable(const google::protobuf::RepeatedPtrField<v1::Nic>& nics, bool with_setup) {
  std::string out = absl::StrFormat("%-12s %-16s %5s", "nic", "device", "link");
  if (with_setup) absl::StrAppendFormat(&out, " %6s %4s %6s", "queues", "rss", "rxintr");
  SNAPD_NIC_COUNTERS(SNAPD_COLUMN_HEADER)
  out += "\n";
  for (const v1::Nic& n : nics) {
    absl::StrAppendFormat(&out, "%-12s %-16s %5s", n.name(), n.device(),
                          n.link_up() ? "up" : "down");
    if (with_setup) {
      absl::StrAppendFormat(&out, " %6d %4s %6s", n.queues(), n.rss() ? "yes" : "no",
                            n.rx_interrupts() ? "yes" : "no");
    }
    const v1::Nic& counters = n;
    SNAPD_NIC_COUNTERS(SNAPD_COLUMN_VALUE)
    out += "\n";
  }
  return out;
}

#undef SNAPD_COLUMN_HEADER
#undef SNAPD_COLUMN_VALUE

}  // namespace snapd
