#include "engines/engine.h"

#include <time.h>

#include "absl/strings/str_cat.h"

namespace snapd {

uint32_t Engine::Poll() {
  const int64_t start = MonotonicNs();
  poll_start_ns_ = start;
  uint32_t full = 0;
  uint32_t n = PollPorts(&full);
  if (observer_ != nullptr) observer_->BatchDone();
  stats_.polls.Add();
  if (n == 0) {
    stats_.empty_polls.Add();
  } else {
    stats_.busy_ns.Add(MonotonicNs() - start);
  }
  // A full burst means frames were left waiting: the backlog goes on (or starts now).
  if (full > 0) {
    if (stats_.backlog_since_ns.load(std::memory_order_relaxed) == 0) {
      stats_.backlog_since_ns.store(start, std::memory_order_relaxed);
    }
  } else if (stats_.backlog_since_ns.load(std::memory_order_relaxed) != 0) {
    stats_.backlog_since_ns.store(0, std::memory_order_relaxed);
  }
  return n;
}

int64_t Engine::QueueingDelayNs(int64_t now_ns) const {
  int64_t since = stats_.backlog_since_ns.load(std::memory_order_relaxed);
  return since == 0 || now_ns < since ? 0 : now_ns - since;
}

void SavePortCounters(const Port& port, engines::PortCounters* out) {
  out->set_name(port.name());
#define SNAPD_SAVE(name, column, meaning) out->set_##name(port.stats().name.Get());
  SNAPD_PORT_COUNTERS(SNAPD_SAVE)
#undef SNAPD_SAVE
}

void AddPortCounters(const engines::PortCounters& saved, Port& port) {
#define SNAPD_ADD(name, column, meaning) port.stats().name.Add(saved.name());
  SNAPD_PORT_COUNTERS(SNAPD_ADD)
#undef SNAPD_ADD
}

absl::Status Engine::SaveState(engines::EngineState* state) {
  state->Clear();
  state->set_kind(std::string(kind()));
  engines::EngineCounters* c = state->mutable_counters();
#define SNAPD_SAVE(name, meaning) c->set_##name(stats_.name.Get());
  SNAPD_ENGINE_COUNTERS(SNAPD_SAVE)
#undef SNAPD_SAVE
  ForEachPort([&](Port& port) { SavePortCounters(port, state->add_ports()); });
  return SaveKindState(state->mutable_kind_state());
}

absl::Status Engine::RestoreState(const engines::EngineState& state) {
  if (state.kind() != kind()) {
    return absl::InvalidArgumentError(
        absl::StrCat("state of a '", state.kind(), "' engine cannot restore a '", kind(), "'"));
  }
  absl::Status status = RestoreKindState(state.kind_state());
  if (!status.ok()) return status;
  // Counters continue from the saved values (stats survive upgrades).
  const engines::EngineCounters& c = state.counters();
#define SNAPD_RESTORE(name, meaning) stats_.name.Add(c.name());
  SNAPD_ENGINE_COUNTERS(SNAPD_RESTORE)
#undef SNAPD_RESTORE
  for (const engines::PortCounters& pc : state.ports()) ContinuePortCounters(pc);
  return absl::OkStatus();
}

void Engine::ContinuePortCounters(const engines::PortCounters& saved) {
  ForEachPort([&](Port& port) {
    if (port.name() == saved.name()) AddPortCounters(saved, port);
  });
}

}  // namespace snapd
