#include "control/metrics.h"

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "engines/engine.h"
#include "engines/port.h"

namespace snapd {

std::string PrometheusLabelValue(absl::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

namespace {

using Labels = std::vector<std::pair<std::string, std::string>>;

// One family: its HELP and TYPE once, then its samples.
class Family {
 public:
  Family(std::string name, const char* type, std::string help)
      : name_(std::move(name)), type_(type), help_(std::move(help)) {}
  static std::string Float(double v) { return absl::StrFormat("%.17g", v); }
  void Add(const Labels& labels, uint64_t value) { Add(labels, absl::StrCat(value)); }
  void Add(const Labels& labels, double value) { Add(labels, Float(value)); }
  // `suffix`: a histogram's _bucket, _sum and _count.
  void Add(const Labels& labels, const std::string& value, const char* suffix = "") {
    std::string line = name_ + suffix;
    if (!labels.empty()) {
      line += '{';
      for (size_t i = 0; i < labels.size(); ++i) {
        if (i > 0) line += ',';
        absl::StrAppend(&line, labels[i].first, "=\"", PrometheusLabelValue(labels[i].second),
                        "\"");
      }
      line += '}';
    }
    absl::StrAppend(&line, " ", value, "\n");
    samples_ += line;
  }
  void AppendTo(std::string* out) const {
    if (samples_.empty()) return;
    absl::StrAppend(out, "# HELP ", name_, " ", help_, "\n# TYPE ", name_, " ", type_, "\n",
                    samples_);
  }

 private:
  std::string name_;
  const char* type_;
  std::string help_;
  std::string samples_;
};

// Families in order of first use, by name.
class Families {
 public:
  Family& Get(const std::string& name, const char* type, const std::string& help) {
    auto it = index_.find(name);
    if (it != index_.end()) return families_[it->second];
    index_[name] = families_.size();
    families_.emplace_back(name, type, help);
    return families_.back();
  }
  std::string Text() const {
    std::string out;
    for (const Family& f : families_) f.AppendTo(&out);
    return out;
  }

 private:
  std::vector<Family> families_;
  std::map<std::string, size_t> index_;
};

// The port counters that count frames dropped, and the reason each says.
const char* PortDropReason(absl::string_view counter) {
  if (counter == "tx_dropped") return "tx_full";
  if (counter == "rx_errors") return "rx_error";
  if (counter == "drop_malformed") return "malformed";
  if (counter == "drop_spoofed") return "spoofed";
  if (counter == "drop_oversize") return "oversize";
  if (counter == "drop_takeover") return "takeover";
  return nullptr;
}

}  // namespace

std::string PrometheusText(const v1::Stats& stats, const v1::DaemonInfo& info) {
  Families f;
  f.Get("snapd_build_info", "gauge", "The snapd serving: its version and binary.")
      .Add({{"version", info.version()}, {"binary", info.build()}}, uint64_t{1});
  f.Get("snapd_uptime_seconds", "gauge", "Time since this snapd process began serving.")
      .Add({}, info.uptime_ms() / 1000.0);
  f.Get("snapd_upgrades_total", "counter", "Live upgrades of the service since it started.")
      .Add({}, uint64_t{info.upgrades()});
  f.Get("snapd_restarts_total", "counter",
        "Restarts after a crash that kept the apps, since the service started.")
      .Add({}, uint64_t{info.restarts()});
  Family& blackouts =
      f.Get("snapd_upgrade_blackout_seconds", "histogram",
            "Each engine's blackout in the live upgrades since the service started.");
  for (int i = 0; i < info.blackout_bounds_us_size() && i < info.blackouts_at_most_size(); ++i) {
    // Six digits: "5e-05", "0.00025", "1" (the same string at every scrape).
    blackouts.Add({{"le", absl::StrCat(info.blackout_bounds_us(i) / 1e6)}},
                  absl::StrCat(info.blackouts_at_most(i)), "_bucket");
  }
  blackouts.Add({{"le", "+Inf"}}, absl::StrCat(info.blackout_count()), "_bucket");
  blackouts.Add({}, Family::Float(info.blackout_sum_us() / 1e6), "_sum");
  blackouts.Add({}, absl::StrCat(info.blackout_count()), "_count");

  std::map<std::string, const v1::Engine*> engines;
  for (const v1::Engine& e : stats.engines()) {
    engines[e.name()] = &e;
    const Labels where = {{"engine", e.name()}, {"kind", e.kind()}, {"group", e.group()}};
    const v1::EngineStats& s = e.stats();
#define SNAPD_ENGINE_FAMILY(name, meaning)                                         \
  f.Get("snapd_engine_" #name "_total", "counter", "Engine counter: " meaning ".") \
      .Add(where, s.name());
    SNAPD_ENGINE_COUNTERS(SNAPD_ENGINE_FAMILY)
#undef SNAPD_ENGINE_FAMILY
    f.Get("snapd_engine_busy_ratio", "gauge",
          "Share of the engine's lifetime spent in polls that found work.")
        .Add(where, s.busy_percent() / 100.0);
    f.Get("snapd_engine_queueing_delay_seconds", "gauge",
          "How long work has waited for the engine, now.")
        .Add(where, s.queueing_delay_ns() / 1e9);
    // Percentiles snapd computed over its last samples (not a summary: there is no sum or count).
    Family& recent = f.Get("snapd_engine_queueing_delay_recent_seconds", "gauge",
                           "Percentiles of how long work waited for the engine, over the last "
                           "samples (every 20 ms for the last 5 s while a compacting group has "
                           "traffic, else every 200 ms).");
    Labels q = where;
    q.emplace_back("percentile", "50");
    recent.Add(q, s.queueing_delay_p50_ns() / 1e9);
    q.back().second = "99";
    recent.Add(q, s.queueing_delay_p99_ns() / 1e9);
    std::map<std::string, uint64_t> kinds(s.kind_counters().begin(), s.kind_counters().end());
    for (const auto& [counter, value] : kinds) {
      Labels l = where;
      l.emplace_back("counter", counter);
      f.Get("snapd_engine_kind_events_total", "counter",
            "The engine kind's own counters (pony's drops by reason, the vswitch's "
            "mac_table_full, ...), by name.")
          .Add(l, value);
    }
  }

  for (const v1::Port& p : stats.ports()) {
    const Labels where = {
        {"port", p.name()}, {"engine", p.engine()}, {"kind", p.kind()}, {"link", p.link()}};
    const v1::PortStats& s = p.stats();
#define SNAPD_PORT_FAMILY(name, column, meaning)                                            \
  if (const char* reason = PortDropReason(#name)) {                                         \
    Labels l = where;                                                                       \
    l.emplace_back("reason", reason);                                                       \
    f.Get("snapd_port_dropped_frames_total", "counter", "Frames a port or engine dropped.") \
        .Add(l, s.name());                                                                  \
  } else {                                                                                  \
    f.Get("snapd_port_" #name "_total", "counter", "Port counter: " meaning ".")            \
        .Add(where, s.name());                                                              \
  }
    SNAPD_PORT_COUNTERS(SNAPD_PORT_FAMILY)
#undef SNAPD_PORT_FAMILY
  }

  for (const v1::Nic& n : stats.nics()) {
    const Labels where = {{"nic", n.name()}, {"device", n.device()}};
    f.Get("snapd_nic_link_up", "gauge", "1 while the NIC's link is up.")
        .Add(where, uint64_t{n.link_up() ? 1u : 0u});
    f.Get("snapd_nic_rx_frames_total", "counter", "Frames the NIC received.")
        .Add(where, n.rx_frames());
    f.Get("snapd_nic_tx_frames_total", "counter", "Frames the NIC sent.").Add(where, n.tx_frames());
    f.Get("snapd_nic_rx_bytes_total", "counter", "Bytes the NIC received.")
        .Add(where, n.rx_bytes());
    f.Get("snapd_nic_tx_bytes_total", "counter", "Bytes the NIC sent.").Add(where, n.tx_bytes());
    f.Get("snapd_nic_rx_wait_seconds_total", "counter",
          "Summed over received frames: how long each waited in the receive ring.")
        .Add(where, n.rx_wait_ns() / 1e9);
    const std::pair<const char*, uint64_t> drops[] = {{"rx_missed", n.rx_missed()},
                                                      {"rx_error", n.rx_errors()},
                                                      {"tx_error", n.tx_errors()},
                                                      {"rx_no_buffer", n.rx_nombuf()}};
    for (const auto& [reason, value] : drops) {
      Labels l = where;
      l.emplace_back("reason", reason);
      f.Get("snapd_nic_dropped_frames_total", "counter", "Frames the NIC dropped, by reason.")
          .Add(l, value);
    }
  }

  for (const v1::Worker& w : stats.workers()) {
    const Labels where = {{"worker", w.name()}, {"core", absl::StrCat(w.core())}};
    f.Get("snapd_worker_busy_ratio", "gauge", "Share of the worker's time spent on work.")
        .Add(where, w.busy_percent() / 100.0);
    f.Get("snapd_worker_loops_total", "counter", "Turns of the worker's loop.")
        .Add(where, w.loops());
    f.Get("snapd_worker_sleeps_total", "counter", "Times the worker slept.").Add(where, w.sleeps());
    f.Get("snapd_worker_port_wakeups_total", "counter", "Sleeps a port ended.")
        .Add(where, w.port_wakeups());
    f.Get("snapd_worker_timed_wakeups_total", "counter", "Sleeps their time bound ended.")
        .Add(where, w.timed_wakeups());
    f.Get("snapd_worker_stalls_total", "counter", "Batches the watchdog found running too long.")
        .Add(where, w.stalls());
  }

  f.Get("snapd_apps_attached_total", "counter", "Apps that attached.")
      .Add({}, stats.apps_attached());
  f.Get("snapd_apps_refused_total", "counter", "Apps refused as they attached.")
      .Add({}, stats.apps_refused());
  f.Get("snapd_apps_detached_total", "counter", "Apps that detached or were detached.")
      .Add({}, stats.apps_detached());
  f.Get("snapd_apps_frames_discarded_total", "counter",
        "Ring slots a restart after a crash loop dropped unread.")
      .Add({}, stats.apps_frames_discarded());
  return f.Text();
}

}  // namespace snapd
