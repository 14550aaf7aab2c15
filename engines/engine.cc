#include "engines/engine.h"

#include <time.h>

#include "absl/strings/str_cat.h"

namespace snapd {

uint32_t Engine::Poll() {
  const int64_t start = MonotonicNs();
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

namespace {

// The port counters a saved state carries, and their fields.
struct PortCounterField {
  Counter PortStats::*counter;
  uint64_t (engines::PortCounters::*get)() const;
  void (engines::PortCounters::*set)(uint64_t);
};
using PC = engines::PortCounters;
const PortCounterField kPortCounters[] = {
    {&PortStats::rx_frames, &PC::rx_frames, &PC::set_rx_frames},
    {&PortStats::rx_bytes, &PC::rx_bytes, &PC::set_rx_bytes},
    {&PortStats::tx_frames, &PC::tx_frames, &PC::set_tx_frames},
    {&PortStats::tx_bytes, &PC::tx_bytes, &PC::set_tx_bytes},
    {&PortStats::tx_dropped, &PC::tx_dropped, &PC::set_tx_dropped},
    {&PortStats::rx_errors, &PC::rx_errors, &PC::set_rx_errors},
    {&PortStats::drop_malformed, &PC::drop_malformed, &PC::set_drop_malformed},
    {&PortStats::drop_spoofed, &PC::drop_spoofed, &PC::set_drop_spoofed},
    {&PortStats::drop_takeover, &PC::drop_takeover, &PC::set_drop_takeover},
};

}  // namespace

void SavePortCounters(const Port& port, engines::PortCounters* out) {
  out->set_name(port.name());
  for (const PortCounterField& f : kPortCounters) (out->*f.set)((port.stats().*f.counter).Get());
}

void AddPortCounters(const engines::PortCounters& saved, Port& port) {
  for (const PortCounterField& f : kPortCounters) (port.stats().*f.counter).Add((saved.*f.get)());
}

absl::Status Engine::SaveState(engines::EngineState* state) {
  state->Clear();
  state->set_kind(std::string(kind()));
  engines::EngineCounters* c = state->mutable_counters();
  c->set_frames(stats_.frames.Get());
  c->set_bytes(stats_.bytes.Get());
  c->set_batches(stats_.batches.Get());
  c->set_polls(stats_.polls.Get());
  c->set_empty_polls(stats_.empty_polls.Get());
  c->set_drops(stats_.drops.Get());
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
  stats_.frames.Add(c.frames());
  stats_.bytes.Add(c.bytes());
  stats_.batches.Add(c.batches());
  stats_.polls.Add(c.polls());
  stats_.empty_polls.Add(c.empty_polls());
  stats_.drops.Add(c.drops());
  for (const engines::PortCounters& pc : state.ports()) {
    ForEachPort([&](Port& port) {
      if (port.name() == pc.name()) AddPortCounters(pc, port);
    });
  }
  return absl::OkStatus();
}

}  // namespace snapd
