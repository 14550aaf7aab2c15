// What snapd's counters look like to Prometheus: the text exposition format (version 0.0.4) of a
// Stats and a DaemonInfo, as the control API reports them (the same lock-free counters snapctl
// reads; nothing here touches the data path). Names follow Prometheus's conventions: snapd_
// prefix, base units (seconds, bytes), _total for counters, a family per meaning with labels for
// where (engine, kind, group, port, nic, worker) and why (reason).
//
//   snapd_build_info{version,binary} 1
//   snapd_engine_frames_total{engine,kind,group}          and bytes, batches, polls, empty_polls,
//                                                         drops (every SNAPD_ENGINE_COUNTERS)
//   snapd_engine_busy_ratio, snapd_engine_queueing_delay_seconds (now) and
//   snapd_engine_queueing_delay_recent_seconds{...,percentile} (50, 99)
//   snapd_engine_kind_events_total{engine,kind,group,counter}   the kinds' own (pony's drop_*...)
//   snapd_port_{rx,tx}_{frames,bytes}_total{port,engine,kind,link}
//   snapd_port_dropped_frames_total{port,engine,kind,link,reason}
//   snapd_nic_..._total{nic,device}, snapd_nic_dropped_frames_total{nic,device,reason}, link_up
//   snapd_worker_busy_ratio{worker,core} and loops, sleeps, wakeups, stalls
//   snapd_apps_{attached,refused,detached}_total, snapd_apps_frames_discarded_total
//   snapd_upgrades_total, snapd_restarts_total, snapd_uptime_seconds
//
// Pure; any thread.
#ifndef SNAPD_CONTROL_METRICS_H_
#define SNAPD_CONTROL_METRICS_H_

#include <string>

#include "absl/strings/string_view.h"
#include "control/proto/snapd.pb.h"

namespace snapd {

std::string PrometheusText(const v1::Stats& stats, const v1::DaemonInfo& info);

// A label value as the text format writes it: backslash, double quote and newline escaped.
std::string PrometheusLabelValue(absl::string_view value);

}  // namespace snapd

#endif  // SNAPD_CONTROL_METRICS_H_
