#include "engines/vswitch/vswitch_engine.h"

#include <string.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "engines/registry.h"

namespace snapd {
namespace {

uint32_t OrDefault(uint32_t v, uint32_t def) { return v == 0 ? def : v; }

// Aged MACs are reclaimed kSweepSlots slots every kSweepEveryNs of engine time with traffic: a
// round of the default table every 16 ms, at a cost too small to measure.
constexpr int64_t kSweepEveryNs = 1000000;
constexpr uint32_t kSweepSlots = 256;

constexpr int64_t kNsPerSecond = 1000000000;

}  // namespace

template <typename Self, typename Fn>
void VswitchEngine::ForEachCounter(Self& self, Fn fn) {
  fn("mac_table_full", self.mac_table_full_);
  fn("mac_learn_limit", self.mac_learn_limit_);
  fn("mac_evicted", self.mac_evicted_);
  fn("mac_static_full", self.mac_static_full_);
  for (int v = 1; v < kEgressVerdicts; ++v) {
    fn(EgressVerdictCounter(static_cast<EgressVerdict>(v)), self.egress_drops_[v]);
  }
  fn("egress_drop_flood_rate", self.egress_drop_flood_rate_);
}

absl::StatusOr<std::unique_ptr<Engine>> VswitchEngine::Create(
    const std::string& name, const engines::VswitchConfig& config) {
  if (config.burst() > 256) return absl::InvalidArgumentError("burst: at most 256");
  if (config.max_frame_bytes() != 0 && config.max_frame_bytes() < 64) {
    return absl::InvalidArgumentError("max_frame_bytes: at least 64");
  }
  if (config.mac_table_size() > (1u << 20)) {
    return absl::InvalidArgumentError("mac_table_size: at most 1048576");
  }
  if (config.mac_learn_limit() > OrDefault(config.mac_table_size(), 4096)) {
    return absl::InvalidArgumentError("mac_learn_limit: at most mac_table_size");
  }
  if (config.app_flood_rate() > 100000000) {
    return absl::InvalidArgumentError("app_flood_rate: at most 100000000 frames a second");
  }
  if (config.app_flood_burst() > 1000000) {
    return absl::InvalidArgumentError("app_flood_burst: at most 1000000 frames");
  }
  return std::make_unique<VswitchEngine>(name, config);
}

VswitchEngine::VswitchEngine(std::string name, const engines::VswitchConfig& config)
    : Engine(std::move(name)),
      burst_(OrDefault(config.burst(), 32)),
      max_frame_(OrDefault(config.max_frame_bytes(), 9022)),
      flood_rate_(OrDefault(config.app_flood_rate(), 10000)),
      flood_capacity_(int64_t{OrDefault(config.app_flood_burst(), 1000)} * kNsPerSecond),
      flood_fill_ns_(flood_capacity_ / flood_rate_ + 1),
      macs_(OrDefault(config.mac_table_size(), 4096),
            int64_t{OrDefault(config.mac_aging_s(), 300)} * 1000000000, config.mac_learn_limit()) {
  rx_.resize(burst_);
  app_copy_.resize(size_t{burst_} * max_frame_);
}

absl::Status VswitchEngine::AddPort(std::unique_ptr<Port> port,
                                    const engines::PortAttachment& attachment) {
  // A name in use (or a full table) is refused before the attachment is looked at.
  absl::Status status = slots_.CanAdd(port->name());
  if (!status.ok()) return status;
  Slot slot;
  slot.is_app = port->kind() == PortKind::kApp;
  slot.mtu = port->mtu();
  if (slot.is_app) {
    status = AppFromAttachment(port->name(), attachment, &slot.app);
    if (!status.ok()) return status;
  } else {
    int owner = OwnerFor(port->link());
    if (owner < 0) return absl::ResourceExhaustedError("too many NICs on one vswitch");
    slot.owner = static_cast<uint16_t>(owner);
  }
  // The table reuses free slots, so port numbers in the MAC table stay small and stable.
  const size_t index = slots_.next_index();
  if (slot.is_app) {
    switch (macs_.AddStatic(slot.app.mac, static_cast<uint16_t>(index), MonotonicNs())) {
      case MacTable::StaticResult::kAdded:
        break;
      case MacTable::StaticResult::kEvicted:
        mac_evicted_.Add();
        break;
      case MacTable::StaticResult::kFull:
        mac_static_full_.Add();
        return absl::ResourceExhaustedError(absl::StrCat(
            "MAC table: every slot where ", MacToString(slot.app.mac),
            " may go holds another app's MAC; give the vswitch a larger mac_table_size"));
    }
  }
  slot.port = std::move(port);
  slot.out.reserve(burst_);
  slot.flood_tokens = flood_capacity_;
  slot.flood_at = MonotonicNs();
  // Takes slot `index`: CanAdd said yes, and the table has not changed since.
  status = slots_.Add(std::move(slot));
  if (!status.ok()) return status;
  RelinkSlots();
  ApplyPendingEntries();
  return absl::OkStatus();
}

std::unique_ptr<Port> VswitchEngine::RemovePort(absl::string_view name) {
  const size_t index = slots_.IndexOf(name);
  if (index == slots_.kNoIndex) return nullptr;
  macs_.ForgetPort(static_cast<uint16_t>(index));
  std::unique_ptr<Port> port = slots_.RemoveAt(index);
  RelinkSlots();
  return port;
}

absl::Status VswitchEngine::AppFromAttachment(const std::string& port,
                                              const engines::PortAttachment& attachment,
                                              AppIdentity* app) {
  if (attachment.mac().size() != 6) {
    return absl::InvalidArgumentError(absl::StrCat("app port ", port, " needs a 6-byte mac"));
  }
  app->mac = MacFromBytes(reinterpret_cast<const uint8_t*>(attachment.mac().data()));
  if (IsMulticast(app->mac)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "app port ", port, ": mac ", MacToString(app->mac), " is a multicast address"));
  }
  app->ipv4 = attachment.ipv4();
  if (attachment.vlan() > 4094) {
    return absl::InvalidArgumentError(
        absl::StrCat("app port ", port, ": vlan ", attachment.vlan(), " is not in 1..4094"));
  }
  app->vlan = static_cast<uint16_t>(attachment.vlan());
  if (attachment.ipv6_size() > AppIdentity::kMaxIpv6) {
    return absl::InvalidArgumentError(
        absl::StrCat("app port ", port, ": at most ", AppIdentity::kMaxIpv6, " IPv6 addresses"));
  }
  for (const std::string& a : attachment.ipv6()) {
    if (a.size() != 16) {
      return absl::InvalidArgumentError(
          absl::StrCat("app port ", port, ": an IPv6 address is 16 bytes, not ", a.size()));
    }
    app->ipv6[app->ipv6_count++] =
        Ipv6Address::FromBytes(reinterpret_cast<const uint8_t*>(a.data()));
  }
  return absl::OkStatus();
}

int VswitchEngine::OwnerFor(const std::string& link) const {
  std::vector<bool> used(MacTable::kMaxOwners, false);
  for (const Slot& s : slots_) {
    if (s.is_app) continue;
    if (s.port->link() == link) return s.owner;
    used[s.owner] = true;
  }
  for (int o = 0; o < MacTable::kMaxOwners; ++o) {
    if (!used[o]) return o;
  }
  return -1;
}

void VswitchEngine::RelinkSlots() {
  std::vector<std::string> links;
  for (Slot& s : slots_) {
    auto it = std::find(links.begin(), links.end(), s.port->link());
    s.floods = it == links.end();
    s.link = static_cast<uint16_t>(it - links.begin());
    if (s.floods) links.push_back(s.port->link());
  }
}

std::string VswitchEngine::PortFor(uint64_t mac) const {
  uint16_t p = macs_.Lookup(mac, MonotonicNs());
  return p == MacTable::kNoPort || p >= slots_.slot_count() || !slots_[p].port
             ? ""
             : slots_[p].port->name();
}

uint32_t VswitchEngine::PollPorts(uint32_t* full_bursts) {
  uint32_t total = 0;
  int64_t now = 0;
  for (size_t i = 0; i < slots_.slot_count(); ++i) {
    Port* port = slots_[i].port.get();
    if (port == nullptr || !port->healthy()) continue;
    uint16_t n = port->Receive(rx_.data(), static_cast<uint16_t>(burst_));
    if (n == 0) continue;
    if (now == 0) {
      now = MonotonicNs();
      if (ABSL_PREDICT_FALSE(now >= next_sweep_ns_)) {
        macs_.Sweep(now, kSweepSlots);
        next_sweep_ns_ = now + kSweepEveryNs;
      }
    }
    if (n == burst_) ++*full_bursts;
    uint64_t bytes = 0;
    if (slots_[i].is_app) CopyOutOfApp(n);
    for (uint16_t k = 0; k < n; ++k) {
      bytes += rx_[k].len;
      Forward(static_cast<uint16_t>(i), rx_[k], now);
    }
    FlushOutputs();
    port->Release();
    port->stats().rx_frames.Add(n);
    port->stats().rx_bytes.Add(bytes);
    stats().frames.Add(n);
    stats().bytes.Add(bytes);
    stats().batches.Add();
    total += n;
  }
  return total;
}

void VswitchEngine::CopyOutOfApp(uint16_t n) {
  // The app can rewrite its buffers at any moment; what is checked must be what is sent.
  size_t used = 0;
  for (uint16_t k = 0; k < n; ++k) {
    Packet& p = rx_[k];
    if (p.len > max_frame_) continue;  // refused on length alone, never read
    memcpy(app_copy_.data() + used, p.data, p.len);
    p.data = app_copy_.data() + used;
    used += p.len;
  }
}

void VswitchEngine::Forward(uint16_t in, const Packet& pkt, int64_t now) {
  Slot& src = slots_[in];
  FrameInfo info;
  if (ABSL_PREDICT_FALSE(ParseFrame(pkt.data, pkt.len, max_frame_, &info) != ParseError::kNone)) {
    src.port->stats().drop_malformed.Add();
    stats().drops.Add();
    return;
  }
  if (src.is_app) {
    EgressVerdict verdict = CheckAppEgress(src.app, info);
    if (ABSL_PREDICT_FALSE(verdict != EgressVerdict::kAllow)) {
      egress_drops_[static_cast<int>(verdict)].Add();
      src.port->stats().drop_spoofed.Add();
      stats().drops.Add();
      return;
    }
  } else if (!IsMulticast(info.src_mac)) {
    MacTable::LearnResult learned = macs_.Learn(info.src_mac, in, src.owner, now);
    if (ABSL_PREDICT_FALSE(learned >= MacTable::LearnResult::kStaticConflict)) {
      if (learned == MacTable::LearnResult::kStaticConflict) {
        // A host behind the NIC claims a MAC an app was given.
        src.port->stats().drop_spoofed.Add();
        stats().drops.Add();
        return;
      }
      (learned == MacTable::LearnResult::kFull ? mac_table_full_ : mac_learn_limit_).Add();
    }
  }
  const bool tagged = info.vlan_tags > 0;
  if (IsMulticast(info.dst_mac)) {
    if (src.is_app && !TakeFloodToken(src, now)) return;
    Flood(in, pkt, tagged, /*apps_too=*/true);
    return;
  }
  uint16_t out = macs_.Lookup(info.dst_mac, now);
  if (out == MacTable::kNoPort) {
    if (src.is_app && !TakeFloodToken(src, now)) return;
    Flood(in, pkt, tagged, /*apps_too=*/false);
    return;
  }
  if (slots_[out].link == src.link) {  // the destination sits behind the link it came from
    stats().drops.Add();
    return;
  }
  Output(out, pkt, tagged);
}

void VswitchEngine::Output(uint16_t out, const Packet& pkt, bool tagged) {
  Slot& dst = slots_[out];
  // What an MTU limits: the bytes after the Ethernet header and one VLAN tag.
  if (ABSL_PREDICT_FALSE(dst.mtu != 0) && pkt.len - 14 - (tagged ? 4 : 0) > dst.mtu) {
    dst.port->stats().drop_oversize.Add();
    stats().drops.Add();
    return;
  }
  if (dst.out.empty()) busy_outputs_.push_back(out);
  dst.out.push_back(pkt);
}

bool VswitchEngine::TakeFloodToken(Slot& s, int64_t now) {
  // Refilled for the time since the last frame (at most what fills it), capped, then one taken.
  const int64_t elapsed = std::min(std::max<int64_t>(0, now - s.flood_at), flood_fill_ns_);
  s.flood_at = std::max(s.flood_at, now);
  s.flood_tokens = std::min(flood_capacity_, s.flood_tokens + elapsed * flood_rate_);
  if (ABSL_PREDICT_FALSE(s.flood_tokens < kNsPerSecond)) {
    egress_drop_flood_rate_.Add();
    stats().drops.Add();
    return false;
  }
  s.flood_tokens -= kNsPerSecond;
  return true;
}

void VswitchEngine::Flood(uint16_t in, const Packet& pkt, bool tagged, bool apps_too) {
  for (size_t k = 0; k < slots_.slot_count(); ++k) {
    Slot& s = slots_[k];
    // One copy per link, never back onto the link it came from.
    if (!s.port || !s.floods || s.link == slots_[in].link || (s.is_app && !apps_too)) continue;
    Output(static_cast<uint16_t>(k), pkt, tagged);
  }
}

void VswitchEngine::FlushOutputs() {
  for (uint16_t k : busy_outputs_) {
    Slot& s = slots_[k];
    uint16_t n = static_cast<uint16_t>(s.out.size());
    uint16_t sent = s.port->Transmit(s.out.data(), n);
    uint64_t bytes = 0;
    for (uint16_t i = 0; i < sent; ++i) bytes += s.out[i].len;
    s.port->stats().tx_frames.Add(sent);
    s.port->stats().tx_bytes.Add(bytes);
    if (sent < n) {
      s.port->stats().tx_dropped.Add(n - sent);
      stats().drops.Add(n - sent);
    }
    s.out.clear();
  }
  busy_outputs_.clear();
}

absl::Status VswitchEngine::SaveKindState(std::string* out) const {
  engines::VswitchState state;
  int64_t now = MonotonicNs();
  macs_.ForEach(now, [&](uint64_t mac, uint16_t port, int64_t last_seen, bool is_static) {
    if (is_static || port >= slots_.slot_count() || !slots_[port].port) return;
    engines::VswitchMacEntry* e = state.add_learned();
    uint8_t b[6];
    MacToBytes(mac, b);
    e->set_mac(std::string(reinterpret_cast<char*>(b), 6));
    e->set_port(slots_[port].port->name());
    e->set_age_ns(now - last_seen);
  });
  // Entries restored earlier whose port never came back are kept for the next engine.
  for (const auto& e : pending_.learned()) *state.add_learned() = e;
  state.set_mac_table_full(mac_table_full_.Get());
  ForEachCounter(*this, [&](absl::string_view name, const Counter& c) {
    if (name != "mac_table_full") (*state.mutable_counters())[std::string(name)] = c.Get();
  });
  if (!state.SerializeToString(out)) return absl::InternalError("cannot serialize vswitch state");
  return absl::OkStatus();
}

absl::Status VswitchEngine::RestoreKindState(const std::string& in) {
  engines::VswitchState state;
  if (!state.ParseFromString(in)) return absl::InvalidArgumentError("corrupt vswitch state");
  for (const auto& e : state.learned()) {
    if (e.mac().size() != 6) return absl::InvalidArgumentError("vswitch state: bad mac");
  }
  // mac_table_full comes in its own field (as snapd 0.3 wrote it, and SaveKindState still does);
  // an entry of that name in `counters` is not added a second time.
  mac_table_full_.Add(state.mac_table_full());
  ForEachCounter(*this, [&](absl::string_view name, Counter& c) {
    if (name == "mac_table_full") return;
    auto it = state.counters().find(std::string(name));
    if (it != state.counters().end()) c.Add(it->second);
  });
  state.clear_counters();
  pending_ = std::move(state);
  ApplyPendingEntries();
  return absl::OkStatus();
}

void VswitchEngine::ForEachKindCounter(
    const std::function<void(absl::string_view name, uint64_t value)>& fn) const {
  ForEachCounter(*this, [&](absl::string_view name, const Counter& c) { fn(name, c.Get()); });
}

void VswitchEngine::ApplyPendingEntries() {
  if (pending_.learned_size() == 0) return;
  int64_t now = MonotonicNs();
  engines::VswitchState still;
  for (const auto& e : pending_.learned()) {
    const size_t i = slots_.IndexOf(e.port());
    if (i == slots_.kNoIndex) {
      *still.add_learned() = e;
      continue;
    }
    if (slots_[i].is_app) continue;  // learned entries are for NIC ports only
    // An age past the ageing time (an old or hostile state: INT64_MAX would overflow the table's
    // arithmetic) is an aged-out entry; a negative one is taken for 0.
    if (e.age_ns() > macs_.aging_ns()) continue;
    const int64_t age = std::max<int64_t>(0, e.age_ns());
    macs_.Learn(MacFromBytes(reinterpret_cast<const uint8_t*>(e.mac().data())),
                static_cast<uint16_t>(i), slots_[i].owner, now - age);
  }
  pending_ = std::move(still);
}

SNAPD_REGISTER_ENGINE_KIND(VswitchEngine::kKind, VswitchEngine, engines::VswitchConfig);

}  // namespace snapd
