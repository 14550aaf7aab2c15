#include "control/wire.h"

#include <unistd.h>

#include <algorithm>
#include <map>

#include "base/addr.h"
#include "base/clock.h"
#include "engines/registry.h"
#include "snapd/daemon/app_port.h"

namespace snapd {

v1::Stats StatsOf(Daemon& daemon) {
  v1::Stats out;
  const int64_t now = MonotonicNs();
  const double uptime_ns = std::max<int64_t>(1, now - daemon.started_ns());
  Scheduler& scheduler = daemon.scheduler();
  for (const auto& slot_ptr : scheduler.engines()) {
    EngineSlot& slot = *slot_ptr;
    v1::Engine* e = out.add_engines();
    e->set_name(slot.engine->name());
    e->set_kind(std::string(slot.engine->kind()));
    e->set_config(slot.config.config());
    e->set_group(slot.config.group());
    e->set_worker(slot.worker != nullptr ? slot.worker->name() : "");
    e->set_core(slot.worker != nullptr ? slot.worker->core() : -1);
    const EngineStats& s = slot.engine->stats();
    v1::EngineStats* es = e->mutable_stats();
#define SNAPD_TO_WIRE(name, meaning) es->set_##name(s.name.Get());
    SNAPD_ENGINE_COUNTERS(SNAPD_TO_WIRE)
#undef SNAPD_TO_WIRE
    es->set_busy_percent(100.0 * s.busy_ns.Get() / uptime_ns);
    es->set_queueing_delay_ns(slot.engine->QueueingDelayNs(now));
    es->set_queueing_delay_p50_ns(slot.DelayPercentile(50));
    es->set_queueing_delay_p99_ns(slot.DelayPercentile(99));
    es->set_frames_per_s(slot.frames_per_s);
    slot.engine->ForEachKindCounter([&](absl::string_view name, uint64_t value) {
      (*es->mutable_kind_counters())[std::string(name)] = value;
    });
    // The port list belongs to the engine's thread.
    scheduler.OnEngine(slot, [&] {
      for (const ConnectionInfo& c : slot.engine->Connections()) {
        v1::Connection* wc = out.add_connections();
        wc->set_engine(slot.engine->name());
        wc->set_id(c.id);
        wc->set_app(c.app);
        wc->set_peer(Ipv4ToString(c.peer_ip));
        wc->set_peer_app(c.peer_app);
        wc->set_state(c.state);
        wc->set_cwnd(c.cwnd);
        wc->set_srtt_ns(c.srtt_ns);
        wc->set_retransmits(c.retransmits);
        wc->set_tx_bytes(c.tx_bytes);
        wc->set_rx_bytes(c.rx_bytes);
        wc->set_tx_messages(c.tx_messages);
        wc->set_rx_messages(c.rx_messages);
      }
      slot.engine->ForEachPort([&](Port& p) {
        e->add_ports(p.name());
        v1::Port* port = out.add_ports();
        port->set_name(p.name());
        port->set_engine(slot.engine->name());
        port->set_kind(p.kind() == PortKind::kNic ? "nic" : "app");
        port->set_link(p.link());
        const PortStats& ps = p.stats();
        v1::PortStats* st = port->mutable_stats();
#define SNAPD_TO_WIRE(name, column, meaning) st->set_##name(ps.name.Get());
        SNAPD_PORT_COUNTERS(SNAPD_TO_WIRE)
#undef SNAPD_TO_WIRE
        // What an app's rings refused (descriptors out of bounds) counts as its receive errors.
        if (auto* app = dynamic_cast<AppPort*>(&p)) {
          st->set_rx_errors(st->rx_errors() + app->ring_drops());
        }
      });
    });
  }
  scheduler.ForEachWorker([&](Worker& worker) {
    v1::Worker* w = out.add_workers();
    w->set_name(worker.name());
    w->set_core(worker.core());
    for (Engine* we : worker.engines()) w->add_engines(we->name());
#define SNAPD_TO_WIRE(name, meaning) w->set_##name(worker.stats().name.Get());
    SNAPD_WORKER_COUNTERS(SNAPD_TO_WIRE)
#undef SNAPD_TO_WIRE
    w->set_busy_percent(100.0 * worker.stats().busy_ns.Get() / uptime_ns);
  });
  for (const auto& nic : daemon.nics()) {
    if (!nic) continue;
    NicStats s = nic->Stats();
    v1::Nic* n = out.add_nics();
    n->set_name(nic->name());
    n->set_device(nic->device());
    n->set_link_up(s.link_up);
    n->set_speed_mbps(s.speed_mbps);
    n->set_queues(nic->queues());
    n->set_rss(nic->rss());
    n->set_rx_interrupts(nic->rx_interrupts());
#define SNAPD_TO_WIRE(name, column, meaning) n->set_##name(s.name);
    SNAPD_NIC_COUNTERS(SNAPD_TO_WIRE)
#undef SNAPD_TO_WIRE
  }
  const memif::MemifServer& memif = daemon.memif();
  out.set_apps_attached(memif.connections().size());
  out.set_apps_refused(memif.stats().refused.Get());
  out.set_apps_detached(memif.stats().disconnected.Get());
  out.set_apps_frames_discarded(memif.stats().discarded.Get());
  return out;
}

std::vector<v1::Group> GroupsOf(Daemon& daemon) {
  std::vector<v1::Group> out;
  const int64_t now = MonotonicNs();
  for (const GroupView& group : daemon.scheduler().Groups()) {
    const config::Group& cfg = *group.config;
    v1::Group g;
    g.set_name(cfg.name());
    g.set_mode(cfg.mode());
    for (int c : cfg.cores()) g.add_cores(c);
    g.set_slo_ns(PolicyOf(cfg).slo_ns);
    for (const auto& slot : daemon.scheduler().engines()) {
      if (slot->config.group() == cfg.name()) g.add_engines(slot->engine->name());
    }
    g.set_workers(group.workers);
    g.set_scale_outs(group.scale_outs);
    g.set_scale_ins(group.scale_ins);
    g.set_last_change_ms_ago(group.last_change_ns == 0 ? -1
                                                       : (now - group.last_change_ns) / 1000000);
    g.set_last_rebalance_us(group.last_rebalance_us);
    out.push_back(std::move(g));
  }
  return out;
}

std::vector<v1::App> AppsOf(const Daemon& daemon) {
  std::vector<v1::App> out;
  std::map<uint32_t, const memif::Connection*> attached;
  for (const memif::Connection* c : daemon.memif().connections()) attached[c->id()] = c;
  for (const auto& [id, info] : daemon.apps()) {
    v1::App a;
    a.set_id(id);
    a.set_mac(info.config.mac());
    a.set_ipv4(info.config.ipv4());
    a.set_engine(info.config.engine());
    a.set_has_secret(!info.config.secret().empty());
    *a.mutable_ipv6() = info.config.ipv6();
    a.set_vlan(info.config.vlan());
    if (info.config.has_uid()) a.set_uid(info.config.uid());
    auto it = attached.find(id);
    if (it != attached.end()) {
      a.set_attached(true);
      a.set_pid(it->second->peer_cred().pid);
      a.set_app_name(it->second->peer_name());
    }
    out.push_back(std::move(a));
  }
  return out;
}

v1::DaemonInfo InfoOf(const Daemon& daemon) {
  v1::DaemonInfo info;
  info.set_version(kSnapdVersion);
  info.set_build(BinaryIdentity());
  info.set_serving_since_unix_ms(daemon.history().serving_since_unix_ms);
  info.set_upgrades(daemon.history().upgrades);
  info.set_previous_pid(daemon.history().previous_pid);
  info.set_restarts(daemon.history().restarts);
  const BlackoutHistogram& b = daemon.history().blackouts;
  uint64_t at_most = 0;
  for (size_t i = 0; i + 1 < BlackoutHistogram::kBuckets; ++i) {
    at_most += b.buckets[i];
    info.add_blackout_bounds_us(BlackoutHistogram::kBoundsUs[i]);
    info.add_blackouts_at_most(at_most);
  }
  info.set_blackout_count(b.count);
  info.set_blackout_sum_us(b.sum_us);
  if (daemon.history().last_upgrade.finished_unix_ms != 0) {
    *info.mutable_last_upgrade() = ReportOf(daemon.history().last_upgrade);
  }
  info.set_uptime_ms((MonotonicNs() - daemon.started_ns()) / 1000000);
  info.set_pid(getpid());
  info.set_memif_socket(daemon.config().memif_socket());
  info.set_control_socket(daemon.config().control_socket());
  for (const std::string& kind : EngineRegistry::Global().Kinds()) info.add_engine_kinds(kind);
  return info;
}

v1::UpgradeReport ReportOf(const UpgradeReport& report) {
  v1::UpgradeReport out;
  out.set_old_pid(report.old_pid);
  out.set_new_pid(report.new_pid);
  out.set_old_build(report.old_build);
  out.set_new_build(report.new_build);
  out.set_brownout_us(report.brownout_us);
  for (const EngineMove& m : report.engines) {
    v1::EngineMove* e = out.add_engines();
    e->set_name(m.name);
    e->set_blackout_us(m.blackout_us);
    e->set_handover_us(m.handover_us);
  }
  for (const std::string& note : report.notes) out.add_notes(note);
  if (report.finished_unix_ms != 0) out.set_finished_unix_ms(report.finished_unix_ms);
  return out;
}

}  // namespace snapd
