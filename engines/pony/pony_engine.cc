#include "engines/pony/pony_engine.h"

#include <arpa/inet.h>
#include <string.h>

#include <algorithm>
#include <random>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/addr.h"
#include "base/big_endian.h"
#include "base/checksum.h"
#include "base/clock.h"
#include "engines/frame.h"
#include "engines/registry.h"

namespace snapd {

using pony::AppOp;
using pony::AppOpCode;
using pony::PacketType;
using pony::PonyHeader;
using pony::ResetReason;

namespace {

uint32_t OrDefault(uint32_t v, uint32_t def) { return v == 0 ? def : v; }

constexpr uint32_t kIpUdpBytes = 20 + 8;
// The bytes a DATA packet spends before its segment, past the Ethernet header.
constexpr uint32_t kDataOverhead = kIpUdpBytes + pony::kCommonBytes + pony::kMessageBytes;
// A message's bytes per RECEIVED frame to the app (a frame holds at most 64 KiB).
constexpr uint32_t kAppSegment = 60000;
// Messages a connection takes out of its Receiver ahead of the app's ring.
constexpr size_t kToAppMessages = 64;
constexpr uint64_t kToAppBytes = 1 << 20;
constexpr uint32_t kMaxNeighbors = 4096;
constexpr uint32_t kConnIndexBits = 20;
constexpr uint32_t kConnIndexMask = (1u << kConnIndexBits) - 1;
// A connection id's index in conns_, which is also its journal slot (the low bits count from 1:
// an id of 0 is no connection, and wraps to an index no table has).
uint32_t SlotOf(uint32_t id) { return (id & kConnIndexMask) - 1; }
// ARP: a request every 100 ms, three times, before a connect fails as unreachable.
constexpr int64_t kArpRetryNs = 100000000;
constexpr int kArpTries = 3;
// SYN and FIN: from 1 ms, doubling to 128 ms, 10 times (about 1.3 s) before a timeout.
constexpr int64_t kCtlFirstRtoNs = 1000000;
constexpr int64_t kCtlMaxRtoNs = 128000000;
constexpr int kCtlTries = 10;
// A connection picked up from the journal whose app is not back after this is reset (app gone).
constexpr int64_t kAppReturnNs = 10000000000;

void PutMac(uint8_t* p, uint64_t mac) { MacToBytes(mac, p); }

// The sum of the UDP pseudo-header (addresses in network order, as they sit in memory).
uint32_t PseudoSum(uint32_t src, uint32_t dst, uint16_t udp_len) {
  uint8_t b[12];
  memcpy(b, &src, 4);
  memcpy(b + 4, &dst, 4);
  b[8] = 0;
  b[9] = kIpProtoUdp;
  Put16(b + 10, udp_len);
  return ChecksumAdd(b, sizeof(b), 0);
}

const char* StateName(int state);

uint32_t RandomIsn(int64_t now) {
  static thread_local std::mt19937 rng(static_cast<uint32_t>(now) ^ std::random_device()());
  return rng();
}

}  // namespace

struct PonyEngine::Conn {
  // kResyncing: picked up from the journal after a crash, asking its peer to go on (RESYNC).
  enum class State { kResolving, kSynSent, kOpen, kDone, kResyncing };
  uint32_t id = 0;
  State state = State::kResolving;
  bool passive = false;
  bool opened = false;  // CONNECTED or INCOMING was (or is to be) told
  uint16_t app = 0;
  uint32_t peer_ip = 0;  // network order
  uint16_t peer_app = 0;
  uint32_t peer_conn = 0;
  uint64_t peer_mac = 0;
  uint16_t src_port = 0;
  uint32_t token = 0;  // CONNECT's
  uint32_t isn = 0;
  std::unique_ptr<pony::Sender> sender;
  std::unique_ptr<pony::Receiver> receiver;
  // Handshake, FIN and ARP retries.
  int64_t ctl_at = INT64_MAX;
  int64_t ctl_rto_ns = kCtlFirstRtoNs;
  int ctl_tries = 0;
  bool close_requested = false;
  bool fin_sent = false;
  uint32_t fin_seq = 0;
  bool peer_fin = false;  // the peer's FIN came after all its data: acknowledged as fin_seq + 1
  uint32_t peer_fin_seq = 0;
  // From the app: the message being assembled from its SEND frames, and what is queued unacked.
  std::string assembling;
  uint32_t assembled = 0;
  uint32_t assembling_token = 0;
  uint64_t queued_bytes = 0;
  std::deque<uint32_t> queued_sizes;
  // To the app.
  bool notify_open = false;
  std::deque<uint32_t> sent_tokens;
  struct ToApp {
    std::string bytes;
    uint32_t end_seq;  // one past its last segment's sequence number
  };
  std::deque<ToApp> to_app;
  uint64_t to_app_bytes = 0;
  uint32_t to_app_offset = 0;
  uint16_t code = 0;  // kDone: why, for CLOSED or REFUSED
  bool told_done = false;
  // Acknowledgement. ack_due: an ACK must go (a duplicate, a probe, a FIN); ack_owed: data came,
  // and its acknowledgement may ride on a DATA packet this poll sends (piggybacked) instead.
  bool ack_due = false;
  bool ack_owed = false;
  uint32_t acked_through = 0;  // the cumulative ack the peer was last sent
  // Both ends said kCapResync: what is acknowledged is what the app was handed (every sequence
  // number before delivered_seq); what came and waits for the app is SACKed, and the peer keeps
  // it. So a restarted engine can ask the peer for everything its app did not get (RESYNC).
  bool resync = false;
  uint32_t delivered_seq = 0;
  // In the journal (journal_ keeps it: what was committed last is jr).
  bool journaled = false;
  pony::JournalConn jr;
  // After a RESYNC: bytes of the first message the app had been handed already, and the peer's
  // sequence number the RESYNC this side answered or took named (a copy of it changes nothing).
  uint32_t resync_skip = 0;
  uint32_t peer_resync_isn = 0;
  bool peer_resynced = false;
  // Picked up from the journal: the first burst from its app may serve again frames the journal
  // has (jr.app_cursor, jr.app_frames).
  bool replay_check = false;
  // Picked up from the journal: by then its app must be back (else it died while no snapd ran).
  int64_t app_due_at = 0;
  uint32_t advertised_credit = 0;  // and the credit
  uint8_t ack_flags = 0;
  uint32_t echo_ts = 0;
  int64_t echo_at = 0;
  // For snapctl.
  uint64_t tx_bytes = 0, rx_bytes = 0, tx_messages = 0, rx_messages = 0, retransmits = 0;
};

namespace {
const char* StateName(int state) {
  switch (static_cast<PonyEngine::Conn::State>(state)) {
    case PonyEngine::Conn::State::kResolving:
      return "resolving";
    case PonyEngine::Conn::State::kSynSent:
      return "syn_sent";
    case PonyEngine::Conn::State::kOpen:
      return "open";
    case PonyEngine::Conn::State::kDone:
      return "closed";
    case PonyEngine::Conn::State::kResyncing:
      return "resyncing";
  }
  return "?";
}
}  // namespace

template <typename Self, typename Fn>
void PonyEngine::ForEachCounter(Self& self, Fn fn) {
  for (int e = 1; e <= static_cast<int>(pony::WireError::kBadReason); ++e) {
    fn(pony::WireErrorName(static_cast<pony::WireError>(e)), self.wire_drops_[e]);
  }
  for (int e = 1; e <= static_cast<int>(pony::AppOpError::kBadAddress); ++e) {
    fn(pony::AppOpErrorName(static_cast<pony::AppOpError>(e)), self.op_drops_[e]);
  }
  fn("rx_not_pony", self.rx_not_pony_);
  fn("drop_bad_checksum", self.drop_bad_checksum_);
  fn("drop_fragment", self.drop_fragment_);
  fn("drop_unknown_connection", self.drop_unknown_connection_);
  fn("drop_wrong_peer", self.drop_wrong_peer_);
  fn("drop_over_credit", self.drop_over_credit_);
  fn("drop_not_open", self.drop_not_open_);
  fn("drop_protocol_error", self.drop_protocol_error_);
  fn("drop_memory_full", self.drop_memory_full_);
  fn("op_drop_unknown_connection", self.op_drop_unknown_connection_);
  fn("op_drop_over_budget", self.op_drop_over_budget_);
  fn("op_drop_out_of_order", self.op_drop_out_of_order_);
  fn("tx_nic_full", self.tx_nic_full_);
  fn("arp_requests", self.arp_requests_);
  fn("arp_replies", self.arp_replies_);
  fn("arp_table_full", self.arp_table_full_);
  fn("connections_opened", self.connections_opened_);
  fn("connections_accepted", self.connections_accepted_);
  fn("connections_refused", self.connections_refused_);
  fn("connections_closed", self.connections_closed_);
  fn("resets_sent", self.resets_sent_);
  fn("resets_received", self.resets_received_);
  fn("timeouts", self.timeouts_);
  fn("retransmits", self.retransmits_);
  fn("messages_sent", self.messages_sent_);
  fn("messages_received", self.messages_received_);
  fn("resyncs", self.resyncs_);
  fn("resyncs_answered", self.resyncs_answered_);
  fn("journal_overflows", self.journal_overflows_);
  fn("journal_dropped", self.journal_dropped_);
  fn("drop_stale", self.drop_stale_);
  fn("app_frames_replayed", self.app_frames_replayed_);
  fn("app_bursts_went", self.app_bursts_went_);
}

void PonyEngine::ForEachKindCounter(
    const std::function<void(absl::string_view name, uint64_t value)>& fn) const {
  ForEachCounter(*this, [&](absl::string_view name, const Counter& c) { fn(name, c.Get()); });
}

absl::StatusOr<std::unique_ptr<Engine>> PonyEngine::Create(const std::string& name,
                                                           const engines::PonyConfig& config) {
  std::vector<std::string> parts = absl::StrSplit(config.address(), '/');
  uint32_t ip = 0;
  int prefix = 0;
  if (config.address().empty()) {
    return absl::InvalidArgumentError("address: required (the engine's IPv4 address/prefix)");
  }
  if (parts.size() != 2 || !ParseIpv4(parts[0], &ip) || !absl::SimpleAtoi(parts[1], &prefix) ||
      prefix < 1 || prefix > 32 || ip == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("address: '", config.address(), "' is not an IPv4 address/prefix"));
  }
  const uint32_t mask = htonl(prefix == 32 ? 0xffffffffu : ~(0xffffffffu >> prefix));
  uint64_t mac = 0;
  if (!config.mac().empty()) {
    if (!ParseMac(config.mac(), &mac) || IsMulticast(mac) || mac == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("mac: '", config.mac(), "' is not a unicast MAC"));
    }
  } else {
    uint8_t b[6] = {0x02, 0x50};
    memcpy(b + 2, &ip, 4);
    mac = MacFromBytes(b);
  }
  if (config.udp_port() > 65535) return absl::InvalidArgumentError("udp_port: at most 65535");
  if (config.max_message_bytes() > pony::kMaxMessageBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_message_bytes: at most ", pony::kMaxMessageBytes));
  }
  const uint32_t max_message = OrDefault(config.max_message_bytes(), 1 << 20);
  if (config.connection_buffer_bytes() != 0 && config.connection_buffer_bytes() < max_message) {
    return absl::InvalidArgumentError(
        "connection_buffer_bytes: at least max_message_bytes (a message must fit)");
  }
  if (config.max_connections() > kConnIndexMask) {
    return absl::InvalidArgumentError(absl::StrCat("max_connections: at most ", kConnIndexMask));
  }
  if (config.burst() > 256) return absl::InvalidArgumentError("burst: at most 256");
  if (config.min_rto_us() > 100000) return absl::InvalidArgumentError("min_rto_us: at most 100000");
  if (config.mss() != 0 && (config.mss() < 64 || config.mss() > 9000 - kDataOverhead)) {
    return absl::InvalidArgumentError(absl::StrCat("mss: between 64 and ", 9000 - kDataOverhead));
  }
  return std::unique_ptr<Engine>(new PonyEngine(name, config, ip, mask, mac));
}

PonyEngine::PonyEngine(std::string name, const engines::PonyConfig& config, uint32_t ip,
                       uint32_t mask, uint64_t mac)
    : Engine(std::move(name)),
      ip_(ip),
      mask_(mask),
      mac_(mac),
      udp_port_(static_cast<uint16_t>(OrDefault(config.udp_port(), pony::kDefaultUdpPort))),
      max_message_(OrDefault(config.max_message_bytes(), 1 << 20)),
      buffer_bytes_(OrDefault(config.connection_buffer_bytes(),
                              std::max<uint32_t>(4u << 20, 4 * max_message_))),
      max_conns_(OrDefault(config.max_connections(), 1024)),
      burst_(OrDefault(config.burst(), 32)),
      mss_config_(config.mss()),
      max_buffered_(config.max_buffered_bytes() == 0 ? uint64_t{256} << 20
                                                     : config.max_buffered_bytes()),
      max_per_peer_(OrDefault(config.max_connections_per_peer(), 64)) {
  if (config.min_rto_us() != 0) sender_options_.min_rto_ns = int64_t{config.min_rto_us()} * 1000;
  if (config.target_delay_us() != 0) {
    sender_options_.swift.base_target_ns = int64_t{config.target_delay_us()} * 1000;
  }
  rx_.resize(burst_);
  app_scratch_.resize(size_t{burst_} * (kAppSegment + pony::kAppOpBytes));
  app_pkts_.resize(burst_);
}

PonyEngine::~PonyEngine() = default;

// ---------------------------------------------------------------------------------------------
// Ports

size_t PonyEngine::AppSlot(uint16_t app_id) const {
  for (size_t i = 0; i < slots_.slot_count(); ++i) {
    const Slot& s = slots_[i];
    if (s.port && s.is_app && s.app_id == app_id) return i;
  }
  return slots_.kNoIndex;
}

absl::Status PonyEngine::AddPort(std::unique_ptr<Port> port,
                                 const engines::PortAttachment& attachment) {
  absl::Status status = slots_.CanAdd(port->name());
  if (!status.ok()) return status;
  Slot slot;
  slot.is_app = port->kind() == PortKind::kApp;
  if (slot.is_app) {
    if (attachment.app_id() == 0 || attachment.app_id() > 65535) {
      return absl::InvalidArgumentError(absl::StrCat("app port ", port->name(),
                                                     ": a pony app's id must be 1..65535, not ",
                                                     attachment.app_id()));
    }
    slot.app_id = static_cast<uint16_t>(attachment.app_id());
    if (AppSlot(slot.app_id) != slots_.kNoIndex) {
      return absl::AlreadyExistsError(
          absl::StrCat("app id ", slot.app_id, " is attached to this engine already"));
    }
  }
  slot.port = std::move(port);
  const size_t index = slots_.next_index();
  status = slots_.Add(std::move(slot));
  if (!status.ok()) return status;
  next_deadline_ns_ = 0;  // connections restored before their app came back have work now
  if (slots_[index].is_app) ResolvePendingBursts(slots_[index]);
  if (!slots_[index].is_app) {
    nic_slots_.push_back(index);
    NicOut out;
    const uint32_t mtu = slots_[index].port->mtu() == 0 ? 1500 : slots_[index].port->mtu();
    out.scratch.resize(size_t{64} * (mtu + 18));
    out.pkts.reserve(64);
    nic_out_.push_back(std::move(out));
  }
  return absl::OkStatus();
}

std::unique_ptr<Port> PonyEngine::RemovePort(absl::string_view name) {
  const size_t index = slots_.IndexOf(name);
  if (index == slots_.kNoIndex) return nullptr;
  const int64_t now = MonotonicNs();
  if (slots_[index].is_app) {
    const uint16_t app = slots_[index].app_id;
    for (size_t i = 0; i < live_.size() && !handed_over_;) {
      Conn& c = *conns_[live_[i]];
      if (c.app != app) {
        ++i;
        continue;
      }
      if (c.state != Conn::State::kDone && c.peer_conn != 0) {
        Finish(c, static_cast<uint16_t>(ResetReason::kAppGone), true, ResetReason::kAppGone, now);
      }
      FreeConn(c);  // swaps the last live connection into i
    }
    FlushNic();
  } else {
    FlushNic();
    auto it = std::find(nic_slots_.begin(), nic_slots_.end(), index);
    nic_out_.erase(nic_out_.begin() + (it - nic_slots_.begin()));
    nic_slots_.erase(it);
  }
  return slots_.RemoveAt(index);
}

// ---------------------------------------------------------------------------------------------
// Connections

PonyEngine::Conn* PonyEngine::Find(uint32_t id) {
  const uint32_t index = SlotOf(id);
  if (index >= conns_.size() || !conns_[index] || conns_[index]->id != id) return nullptr;
  return conns_[index].get();
}

PonyEngine::Conn* PonyEngine::NewConn(uint16_t app, uint32_t peer_ip, uint16_t peer_app,
                                      int64_t now) {
  if (live_.size() >= max_conns_) return nullptr;
  uint32_t index = 0;
  while (index < conns_.size() && conns_[index]) ++index;
  if (index == conns_.size()) conns_.emplace_back();
  auto c = std::make_unique<Conn>();
  generation_ = (generation_ + 1) & 0xfff;
  c->id = generation_ << kConnIndexBits | (index + 1);
  c->app = app;
  c->peer_ip = peer_ip;
  c->peer_app = peer_app;
  c->src_port = static_cast<uint16_t>(49152 + c->id % 16384);
  c->isn = RandomIsn(now);
  conns_[index] = std::move(c);
  live_.push_back(index);
  return conns_[index].get();
}

void PonyEngine::FreeConn(Conn& c) {
  buffered_ -= (c.receiver ? c.receiver->buffered() : 0) + c.to_app_bytes;
  const uint32_t index = SlotOf(c.id);
  auto it = std::find(live_.begin(), live_.end(), index);
  *it = live_.back();
  live_.pop_back();
  conns_[index].reset();
  while (!conns_.empty() && !conns_.back()) conns_.pop_back();
}

uint32_t PonyEngine::Mss() const {
  uint32_t mtu = 9000;
  for (size_t s : nic_slots_) {
    const uint32_t m = slots_[s].port->mtu() == 0 ? 1500 : slots_[s].port->mtu();
    mtu = std::min(mtu, m);
  }
  const uint32_t mss = mtu - kDataOverhead;
  return mss_config_ != 0 ? std::min(mss, mss_config_) : mss;
}

void PonyEngine::Open(Conn& c, uint32_t peer_seq, uint32_t peer_credit, bool resync) {
  pony::SenderOptions o = sender_options_;
  o.mss = Mss();
  c.sender = std::make_unique<pony::Sender>(c.isn + 1, peer_credit, o);
  c.receiver = std::make_unique<pony::Receiver>(peer_seq + 1, buffer_bytes_, max_message_);
  c.delivered_seq = peer_seq + 1;
  c.state = Conn::State::kOpen;
  c.opened = true;
  c.notify_open = true;
  c.ctl_at = INT64_MAX;
  c.resync = resync;
  c.jr.rx_next_msg = 1;
  if (resync) StartJournal(c);
}

void PonyEngine::Finish(Conn& c, uint16_t code, bool reset, ResetReason reason, int64_t now) {
  if (c.state == Conn::State::kDone) return;
  if (reset && c.peer_conn != 0) {
    PonyHeader h;
    h.type = PacketType::kRst;
    h.reason = reason;
    SendPony(c, h, nullptr, 0, now);
    resets_sent_.Add();
  }
  if (!c.opened) connections_refused_.Add();
  if (c.opened) connections_closed_.Add();
  if (code == static_cast<uint16_t>(ResetReason::kTimeout)) timeouts_.Add();
  if (c.sender) c.retransmits = c.sender->retransmits();
  StopJournal(c);  // a closed connection is not picked up again
  c.state = Conn::State::kDone;
  c.code = code;
  c.sender.reset();  // what the peer did not acknowledge is lost; the app is told by CLOSED
  c.assembling.clear();
  c.assembled = 0;
  c.ctl_at = INT64_MAX;
}

void PonyEngine::StartConnect(Conn& c, int64_t now) {
  if ((c.peer_ip & mask_) != (ip_ & mask_) || c.peer_ip == ip_ || nic_slots_.empty()) {
    Finish(c, static_cast<uint16_t>(PonyAppCode::kUnreachable), false, ResetReason::kTimeout, now);
    return;
  }
  auto it = neighbors_.find(c.peer_ip);
  if (it != neighbors_.end()) {
    c.peer_mac = it->second;
    SendSyn(c, now);
    return;
  }
  c.state = Conn::State::kResolving;
  c.ctl_tries = 1;
  c.ctl_at = now + kArpRetryNs;
  SendArp(1, 0xffffffffffffULL, c.peer_ip);
}

void PonyEngine::SendSyn(Conn& c, int64_t now) {
  c.state = Conn::State::kSynSent;
  PonyHeader h;
  h.type = PacketType::kSyn;
  h.seq = c.isn;
  h.credit = buffer_bytes_;
  h.hold_ns = pony::kCapResync;
  SendPony(c, h, nullptr, 0, now);
  if (c.ctl_at == INT64_MAX || c.ctl_tries == 0) {
    c.ctl_tries = 0;
    c.ctl_rto_ns = kCtlFirstRtoNs;
  }
  ++c.ctl_tries;
  c.ctl_at = now + c.ctl_rto_ns;
  c.ctl_rto_ns = std::min(c.ctl_rto_ns * 2, kCtlMaxRtoNs);
}

void PonyEngine::RunTimers(Conn& c, int64_t now) {
  if (c.app_due_at != 0 && now >= c.app_due_at) {
    c.app_due_at = 0;
    if (AppSlot(c.app) == slots_.kNoIndex) {
      Finish(c, static_cast<uint16_t>(ResetReason::kAppGone), true, ResetReason::kAppGone, now);
      c.told_done = true;  // no one to tell
      return;
    }
  }
  switch (c.state) {
    case Conn::State::kResolving:
      if (now < c.ctl_at) return;
      if (c.ctl_tries >= kArpTries) {
        Finish(c, static_cast<uint16_t>(PonyAppCode::kUnreachable), false, ResetReason::kTimeout,
               now);
        return;
      }
      ++c.ctl_tries;
      c.ctl_at = now + kArpRetryNs;
      SendArp(1, 0xffffffffffffULL, c.peer_ip);
      return;
    case Conn::State::kSynSent:
      if (now < c.ctl_at) return;
      if (c.ctl_tries >= kCtlTries) {
        Finish(c, static_cast<uint16_t>(ResetReason::kTimeout), false, ResetReason::kTimeout, now);
        return;
      }
      SendSyn(c, now);
      return;
    case Conn::State::kResyncing:
      if (now < c.ctl_at) return;
      if (c.ctl_tries >= kCtlTries) {
        Finish(c, static_cast<uint16_t>(ResetReason::kTimeout), true, ResetReason::kTimeout, now);
        return;
      }
      SendResync(c, true, now);
      ++c.ctl_tries;
      c.ctl_at = now + c.ctl_rto_ns;
      c.ctl_rto_ns = std::min(c.ctl_rto_ns * 2, kCtlMaxRtoNs);
      return;
    case Conn::State::kOpen:
      break;
    case Conn::State::kDone:
      return;
  }
  pony::Sender& s = *c.sender;
  if (now >= s.NextTimerNs()) {
    s.OnTimer(now);
    if (s.dead()) {
      Finish(c, static_cast<uint16_t>(ResetReason::kTimeout), true, ResetReason::kTimeout, now);
      return;
    }
  }
  if (s.ProbeDue(now)) SendAck(c, pony::kFlagAckNow, now);
  if (c.close_requested && !c.fin_sent && s.idle() && c.assembled == 0) {
    c.fin_sent = true;
    c.fin_seq = s.next_seq();
    c.ctl_tries = 0;
    c.ctl_rto_ns = std::max(s.rto_ns(), kCtlFirstRtoNs);
    c.ctl_at = now;  // sent just below
  }
  if (c.fin_sent && now >= c.ctl_at) {
    if (c.ctl_tries >= kCtlTries) {
      Finish(c, static_cast<uint16_t>(ResetReason::kTimeout), true, ResetReason::kTimeout, now);
      return;
    }
    PonyHeader h;
    h.type = PacketType::kFin;
    h.seq = c.fin_seq;
    h.flags = pony::kFlagAckNow;
    SendPony(c, h, nullptr, 0, now);
    ++c.ctl_tries;
    c.ctl_at = now + c.ctl_rto_ns;
    c.ctl_rto_ns = std::min(c.ctl_rto_ns * 2, kCtlMaxRtoNs);
  }
}

void PonyEngine::PushData(Conn& c, int64_t now) {
  if (c.state != Conn::State::kOpen) return;
  pony::Outgoing out;
  while (c.sender->NextPacket(now, &out)) {
    PonyHeader h;
    h.type = PacketType::kData;
    h.flags = out.flags;
    h.seq = out.seq;
    h.msg_id = out.msg_id;
    h.msg_len = out.msg_len;
    h.msg_offset = out.msg_offset;
    SendPony(c, h, out.data, out.len, now);
    if (out.flags & pony::kFlagRetransmit) retransmits_.Add();
    c.tx_bytes += out.len;
  }
}

// ---------------------------------------------------------------------------------------------
// The NIC side

uint8_t* PonyEngine::FrameRoom(uint32_t len, NicOut** out) {
  if (nic_slots_.empty()) return nullptr;
  NicOut& o = nic_out_[0];
  if (o.used + len > o.scratch.size() || o.pkts.size() == o.pkts.capacity()) FlushNic();
  if (len > o.scratch.size()) return nullptr;
  uint8_t* p = o.scratch.data() + o.used;
  o.pkts.push_back(Packet{p, len});
  o.used += len;
  *out = &o;
  return p;
}

void PonyEngine::FlushNic() {
  for (size_t i = 0; i < nic_out_.size(); ++i) {
    NicOut& o = nic_out_[i];
    if (o.pkts.empty()) continue;
    Port& port = *slots_[nic_slots_[i]].port;
    const uint16_t n = static_cast<uint16_t>(o.pkts.size());
    const uint16_t sent = port.Transmit(o.pkts.data(), n);
    uint64_t bytes = 0;
    for (uint16_t k = 0; k < sent; ++k) bytes += o.pkts[k].len;
    port.stats().tx_frames.Add(sent);
    port.stats().tx_bytes.Add(bytes);
    if (sent < n) {
      // Lost as on a wire: the senders' retransmissions recover them.
      port.stats().tx_dropped.Add(n - sent);
      tx_nic_full_.Add(n - sent);
      stats().drops.Add(n - sent);
    }
    o.pkts.clear();
    o.used = 0;
  }
}

void PonyEngine::SendArp(uint16_t op, uint64_t dst_mac, uint32_t target_ip) {
  NicOut* out;
  uint8_t* f = FrameRoom(60, &out);
  if (f == nullptr) return;
  memset(f, 0, 60);
  PutMac(f, dst_mac);
  PutMac(f + 6, mac_);
  Put16(f + 12, kEtherTypeArp);
  uint8_t* a = f + 14;
  Put16(a, 1);
  Put16(a + 2, kEtherTypeIpv4);
  a[4] = 6;
  a[5] = 4;
  Put16(a + 6, op);
  PutMac(a + 8, mac_);
  memcpy(a + 14, &ip_, 4);
  if (op == 2) PutMac(a + 18, dst_mac);
  memcpy(a + 24, &target_ip, 4);
  (op == 1 ? arp_requests_ : arp_replies_).Add();
}

namespace {
// Writes Ethernet, IPv4 and UDP headers for a datagram of `payload` bytes at f, and returns the
// sum the UDP checksum starts from (pseudo-header and UDP header).
uint32_t WriteHeaders(uint8_t* f, uint64_t dst_mac, uint64_t src_mac, uint32_t src_ip,
                      uint32_t dst_ip, uint16_t src_port, uint16_t dst_port, uint32_t payload) {
  PutMac(f, dst_mac);
  PutMac(f + 6, src_mac);
  Put16(f + 12, kEtherTypeIpv4);
  uint8_t* ip = f + 14;
  ip[0] = 0x45;
  ip[1] = 0;
  Put16(ip + 2, static_cast<uint16_t>(kIpUdpBytes + payload));
  Put16(ip + 4, 0);
  Put16(ip + 6, 0x4000);  // DF
  ip[8] = 64;
  ip[9] = kIpProtoUdp;
  Put16(ip + 10, 0);
  memcpy(ip + 12, &src_ip, 4);
  memcpy(ip + 16, &dst_ip, 4);
  Put16(ip + 10, InternetChecksum(ip, 20));
  uint8_t* udp = ip + 20;
  const uint16_t udp_len = static_cast<uint16_t>(8 + payload);
  Put16(udp, src_port);
  Put16(udp + 2, dst_port);
  Put16(udp + 4, udp_len);
  Put16(udp + 6, 0);
  return ChecksumAdd(udp, 8, PseudoSum(src_ip, dst_ip, udp_len));
}
}  // namespace

void PonyEngine::SendPony(Conn& c, PonyHeader& h, const uint8_t* payload, uint32_t len,
                          int64_t now) {
  h.src_app = c.app;
  h.dst_app = c.peer_app;
  h.src_conn = c.id;
  h.dst_conn = h.type == PacketType::kSyn ? 0 : c.peer_conn;
  h.ts = static_cast<uint32_t>(now);
  if (h.ts == 0) h.ts = 1;
  if (c.receiver && h.type != PacketType::kAck && h.type != PacketType::kRst) {
    h.ack = AckPoint(c);
    h.credit = c.receiver->credit();
    if (h.type == PacketType::kData && c.echo_ts != 0) {
      // The acknowledgement rides on the data: the delay sample too.
      h.ts_echo = c.echo_ts;
      h.hold_ns = static_cast<uint32_t>(std::min<int64_t>(now - c.echo_at, UINT32_MAX));
      c.echo_ts = 0;
    }
  }
  if (c.receiver && (h.type == PacketType::kData || h.type == PacketType::kAck)) {
    c.acked_through = h.ack;
    c.advertised_credit = h.credit;
  }
  const uint32_t hlen = pony::PonyHeaderBytes(h);
  const uint32_t total = kEthernetHeaderBytes + kIpUdpBytes + hlen + len;
  NicOut* out;
  uint8_t* f = FrameRoom(total, &out);
  if (f == nullptr) {
    tx_nic_full_.Add();
    stats().drops.Add();
    return;
  }
  uint32_t sum =
      WriteHeaders(f, c.peer_mac, mac_, ip_, c.peer_ip, c.src_port, udp_port_, hlen + len);
  uint8_t* p = f + kEthernetHeaderBytes + kIpUdpBytes;
  pony::WritePonyHeader(h, p, hlen);
  if (len > 0) memcpy(p + hlen, payload, len);
  sum = ChecksumAdd(p, hlen + len, sum);
  uint16_t csum = ChecksumFinish(sum);
  Put16(f + kEthernetHeaderBytes + 20 + 6, csum == 0 ? 0xffff : csum);
}

void PonyEngine::SendStrayReset(const PonyHeader& in, uint32_t src_ip, uint64_t src_mac,
                                uint16_t src_port, ResetReason reason, int64_t now) {
  if (in.type == PacketType::kRst || in.src_conn == 0) return;  // never answer a RST
  PonyHeader h;
  h.type = PacketType::kRst;
  h.reason = reason;
  h.src_app = in.dst_app;
  h.dst_app = in.src_app;
  h.src_conn = 0;
  h.dst_conn = in.src_conn;
  h.ts = static_cast<uint32_t>(now);
  const uint32_t hlen = pony::PonyHeaderBytes(h);
  NicOut* out;
  uint8_t* f = FrameRoom(kEthernetHeaderBytes + kIpUdpBytes + hlen, &out);
  if (f == nullptr) return;
  // Pony listens on its port only: the answer goes there, whatever port the packet came from.
  uint32_t sum = WriteHeaders(f, src_mac, mac_, ip_, src_ip, udp_port_, udp_port_, hlen);
  uint8_t* p = f + kEthernetHeaderBytes + kIpUdpBytes;
  pony::WritePonyHeader(h, p, hlen);
  uint16_t csum = ChecksumFinish(ChecksumAdd(p, hlen, sum));
  Put16(f + kEthernetHeaderBytes + 20 + 6, csum == 0 ? 0xffff : csum);
  resets_sent_.Add();
}

void PonyEngine::SendAck(Conn& c, uint8_t flags, int64_t now) {
  if (!c.receiver) return;
  PonyHeader h;
  h.type = PacketType::kAck;
  h.flags = flags;
  h.ack = c.peer_fin ? c.peer_fin_seq + 1 : AckPoint(c);
  h.credit = c.receiver->credit();
  h.sack_count = static_cast<uint8_t>(c.receiver->SackBlocks(h.sack, AckPoint(c)));
  if (c.echo_ts != 0) {
    h.ts_echo = c.echo_ts;
    h.hold_ns = static_cast<uint32_t>(std::min<int64_t>(now - c.echo_at, UINT32_MAX));
    c.echo_ts = 0;
  }
  SendPony(c, h, nullptr, 0, now);
  c.ack_due = false;
  c.ack_owed = false;
  c.ack_flags = 0;
}

uint32_t PonyEngine::AckPoint(const Conn& c) const {
  return c.resync ? c.delivered_seq : c.receiver->cumulative_ack();
}

bool PonyEngine::AckNeeded(const Conn& c) const {
  if (c.ack_due) return true;
  if (!c.ack_owed || !c.receiver) return false;
  // Owed, and no DATA of this poll carried it (or a gap needs SACK blocks, which only an ACK has).
  if (c.acked_through != AckPoint(c) || c.receiver->HasGaps() ||
      AckPoint(c) != c.receiver->cumulative_ack()) {
    return true;
  }
  // A credit that grew while the peer's view of it was low: the peer may be waiting for it.
  const uint32_t credit = c.receiver->credit();
  return credit > c.advertised_credit && (c.advertised_credit < buffer_bytes_ / 2 ||
                                          credit - c.advertised_credit >= buffer_bytes_ / 4);
}

bool PonyEngine::TakeAck(Conn& c, const PonyHeader& h, int64_t now) {
  if (c.peer_resynced && !c.sender->AcksOnlySent(h)) {
    drop_stale_.Add();  // of the sequence numbers before a RESYNC, still on the wire
    stats().drops.Add();
    return true;
  }
  if (!c.sender->OnAck(h, now)) {
    drop_protocol_error_.Add();
    stats().drops.Add();
    Finish(c, static_cast<uint16_t>(ResetReason::kProtocolError), true, ResetReason::kProtocolError,
           now);
    return false;
  }
  uint32_t token;
  while (c.sender->PopCompleted(&token)) MessageDone(c, token);
  return true;
}

void PonyEngine::MessageDone(Conn& c, uint32_t token) {
  c.sent_tokens.push_back(token);
  if (!c.queued_sizes.empty()) {
    c.queued_bytes -= c.queued_sizes.front();
    c.queued_sizes.pop_front();
  }
  ++c.tx_messages;
  messages_sent_.Add();
}

void PonyEngine::HandleWireFrame(size_t slot, const Packet& pkt, int64_t now) {
  Port& port = *slots_[slot].port;
  FrameInfo info;
  if (ParseFrame(pkt.data, pkt.len, 65535, &info) != ParseError::kNone) {
    port.stats().drop_malformed.Add();
    stats().drops.Add();
    return;
  }
  if (info.vlan_tags != 0) {
    rx_not_pony_.Add();
    return;
  }
  if (info.ethertype == kEtherTypeArp) {
    HandleArp(pkt.data + info.l3_offset, pkt.len - info.l3_offset, info.src_mac);
    return;
  }
  if (info.ethertype != kEtherTypeIpv4 || info.ipv4_dst != ip_ ||
      info.ipv4_protocol != kIpProtoUdp || (info.l4_head & 0xffff) != udp_port_ ||
      info.dst_mac != mac_) {
    rx_not_pony_.Add();
    return;
  }
  const uint8_t* ip = pkt.data + info.l3_offset;
  const uint32_t ihl = (ip[0] & 0xf) * 4u;
  const uint32_t ip_len = Get16(ip + 2);
  if ((Get16(ip + 6) & 0x3fff) != 0) {
    drop_fragment_.Add();
    stats().drops.Add();
    return;
  }
  if (InternetChecksum(ip, ihl) != 0) {
    drop_bad_checksum_.Add();
    stats().drops.Add();
    return;
  }
  const uint8_t* udp = ip + ihl;
  const uint32_t udp_len = ip_len >= ihl + 8 ? Get16(udp + 4) : 0;
  if (udp_len < 8 || udp_len > ip_len - ihl) {
    port.stats().drop_malformed.Add();
    stats().drops.Add();
    return;
  }
  // Pony always sets the UDP checksum; the sum over a datagram with its checksum is 0.
  if (Get16(udp + 6) == 0 ||
      ChecksumFinish(ChecksumAdd(
          udp, udp_len, PseudoSum(info.ipv4_src, info.ipv4_dst, static_cast<uint16_t>(udp_len)))) !=
          0) {
    drop_bad_checksum_.Add();
    stats().drops.Add();
    return;
  }
  PonyHeader h;
  uint32_t payload_offset = 0;
  const pony::WireError err = pony::ParsePonyHeader(udp + 8, udp_len - 8, &h, &payload_offset);
  if (err != pony::WireError::kNone) {
    wire_drops_[static_cast<int>(err)].Add();
    stats().drops.Add();
    return;
  }
  HandlePony(h, udp + 8 + payload_offset, udp_len - 8 - payload_offset, info.ipv4_src, info.src_mac,
             static_cast<uint16_t>(info.l4_head >> 16), now);
}

void PonyEngine::HandleArp(const uint8_t* arp, uint32_t len, uint64_t src_mac) {
  if (len < 28) return;
  const uint16_t op = Get16(arp + 6);
  const uint64_t sender_mac = MacFromBytes(arp + 8);
  uint32_t sender_ip, target_ip;
  memcpy(&sender_ip, arp + 14, 4);
  memcpy(&target_ip, arp + 24, 4);
  if (target_ip != ip_ || sender_ip == 0 || sender_ip == ip_ || IsMulticast(sender_mac) ||
      (sender_ip & mask_) != (ip_ & mask_)) {
    rx_not_pony_.Add();
    return;
  }
  auto it = neighbors_.find(sender_ip);
  if (it != neighbors_.end()) {
    it->second = sender_mac;
  } else if (neighbors_.size() >= kMaxNeighbors) {
    arp_table_full_.Add();
  } else {
    neighbors_.emplace(sender_ip, sender_mac);
  }
  if (op == 1) SendArp(2, sender_mac, sender_ip);
  // Connections waiting for this neighbour go on.
  const int64_t now = MonotonicNs();
  for (uint32_t index : live_) {
    Conn& c = *conns_[index];
    if (c.state == Conn::State::kResolving && c.peer_ip == sender_ip) {
      c.peer_mac = sender_mac;
      c.ctl_tries = 0;
      c.ctl_at = INT64_MAX;
      SendSyn(c, now);
    }
  }
}

void PonyEngine::HandleSyn(const PonyHeader& h, uint32_t src_ip, uint64_t src_mac,
                           uint16_t src_port, int64_t now) {
  if ((src_ip & mask_) != (ip_ & mask_) || src_ip == ip_) {
    drop_wrong_peer_.Add();  // pony peers are on the engine's link
    stats().drops.Add();
    return;
  }
  if (AppSlot(h.dst_app) == slots_.kNoIndex) {
    SendStrayReset(h, src_ip, src_mac, src_port, ResetReason::kNoSuchApp, now);
    connections_refused_.Add();
    return;
  }
  for (uint32_t index : live_) {
    Conn& c = *conns_[index];
    if (c.peer_ip == src_ip && c.peer_app == h.src_app && c.peer_conn == h.src_conn &&
        c.app == h.dst_app && c.passive) {
      // Our SYN_ACK was lost: again.
      if (c.state == Conn::State::kOpen) {
        PonyHeader a;
        a.type = PacketType::kSynAck;
        a.seq = c.isn;
        a.credit = buffer_bytes_;
        a.hold_ns = pony::kCapResync;
        SendPony(c, a, nullptr, 0, now);
      }
      return;
    }
  }
  uint32_t from_peer = 0;
  for (uint32_t index : live_)
    from_peer += conns_[index]->passive && conns_[index]->peer_ip == src_ip;
  Conn* c = from_peer < max_per_peer_ ? NewConn(h.dst_app, src_ip, h.src_app, now) : nullptr;
  if (c == nullptr) {
    SendStrayReset(h, src_ip, src_mac, src_port, ResetReason::kRefused, now);
    connections_refused_.Add();
    return;
  }
  c->passive = true;
  c->peer_conn = h.src_conn;
  c->peer_mac = src_mac;
  if (neighbors_.size() < kMaxNeighbors) neighbors_[src_ip] = src_mac;
  Open(*c, h.seq, h.credit, (h.hold_ns & pony::kCapResync) != 0);
  connections_accepted_.Add();
  PonyHeader a;
  a.type = PacketType::kSynAck;
  a.seq = c->isn;
  a.credit = buffer_bytes_;
  a.hold_ns = pony::kCapResync;
  SendPony(*c, a, nullptr, 0, now);
}

void PonyEngine::HandlePony(const PonyHeader& h, const uint8_t* payload, uint32_t len,
                            uint32_t src_ip, uint64_t src_mac, uint16_t src_port, int64_t now) {
  if (h.type == PacketType::kSyn) {
    HandleSyn(h, src_ip, src_mac, src_port, now);
    return;
  }
  Conn* found = Find(h.dst_conn);
  if (found == nullptr) {
    drop_unknown_connection_.Add();
    stats().drops.Add();
    SendStrayReset(h, src_ip, src_mac, src_port, ResetReason::kUnknownConnection, now);
    return;
  }
  Conn& c = *found;
  const bool first_answer = c.state == Conn::State::kSynSent &&
                            (h.type == PacketType::kSynAck || h.type == PacketType::kRst);
  if (c.peer_ip != src_ip || c.peer_app != h.src_app || c.app != h.dst_app ||
      (c.peer_conn != h.src_conn && !first_answer &&
       !(h.type == PacketType::kRst && h.src_conn == 0))) {
    drop_wrong_peer_.Add();
    stats().drops.Add();
    return;
  }
  switch (h.type) {
    case PacketType::kSynAck:
      if (c.state == Conn::State::kSynSent) {
        c.peer_conn = h.src_conn;
        Open(c, h.seq, h.credit, (h.hold_ns & pony::kCapResync) != 0);
        connections_opened_.Add();
        c.ack_due = true;
      } else if (c.state == Conn::State::kOpen) {
        c.ack_due = true;  // our ACK of it was lost, or this is a copy: harmless
      }
      return;
    case PacketType::kRst:
      resets_received_.Add();
      if (c.state == Conn::State::kDone) return;
      Finish(c, c.fin_sent ? 0 : static_cast<uint16_t>(h.reason), false, h.reason, now);
      return;
    case PacketType::kData: {
      if (c.state != Conn::State::kOpen) {
        drop_not_open_.Add();
        stats().drops.Add();
        return;
      }
      // A new message's whole length is held from its first segment: past the engine's bound, it
      // waits (not acknowledged: it comes again), whatever its connection's credit.
      if (buffered_ + h.msg_len > max_buffered_ && c.receiver->WouldReserve(h.msg_id)) {
        drop_memory_full_.Add();
        stats().drops.Add();
        return;
      }
      if (c.peer_resynced && !pony::SeqBefore(h.seq, c.receiver->cumulative_ack()) &&
          h.seq - c.receiver->cumulative_ack() >= pony::kSeqWindow) {
        drop_stale_.Add();  // sent before a RESYNC, still on the wire
        stats().drops.Add();
        return;
      }
      const uint32_t held_before = c.receiver->buffered();
      const pony::Receiver::Verdict verdict = c.receiver->OnData(h, payload, len);
      buffered_ += c.receiver->buffered() - held_before;  // it only grows here
      switch (verdict) {
        case pony::Receiver::Verdict::kAccepted:
          c.rx_bytes += len;
          c.ack_owed = true;
          break;
        case pony::Receiver::Verdict::kDuplicate:
          c.ack_due = true;  // our acknowledgement was lost: say it again, now
          break;
        case pony::Receiver::Verdict::kOverCredit:
          // The sender's view of the credit is stale (or it is hostile): tell it the credit now.
          drop_over_credit_.Add();
          stats().drops.Add();
          c.ack_due = true;
          if (!(c.fin_sent && h.ack == c.fin_seq + 1)) TakeAck(c, h, now);
          return;
        case pony::Receiver::Verdict::kProtocolError:
          drop_protocol_error_.Add();
          stats().drops.Add();
          Finish(c, static_cast<uint16_t>(ResetReason::kProtocolError), true,
                 ResetReason::kProtocolError, now);
          return;
      }
      if (h.flags & pony::kFlagAckNow) c.ack_owed = true;
      c.echo_ts = h.ts;
      c.echo_at = now;
      // Every DATA packet acknowledges the other direction (its ack, credit, ts_echo, hold_ns).
      if (!(c.fin_sent && h.ack == c.fin_seq + 1)) TakeAck(c, h, now);
      return;
    }
    case PacketType::kAck: {
      if (c.state != Conn::State::kOpen) {
        if (c.state == Conn::State::kDone && (h.flags & pony::kFlagAckNow)) c.ack_due = true;
        return;
      }
      if (h.flags & pony::kFlagAckNow) c.ack_due = true;  // a probe: it wants our credit
      if (c.fin_sent && h.ack == c.fin_seq + 1) {
        Finish(c, 0, false, ResetReason::kUnknownConnection, now);
        return;
      }
      TakeAck(c, h, now);
      return;
    }
    case PacketType::kFin:
      if (c.state == Conn::State::kOpen && c.receiver->cumulative_ack() == h.seq) {
        c.peer_fin = true;
        c.peer_fin_seq = h.seq;
        c.ack_due = true;
        Finish(c, 0, false, ResetReason::kUnknownConnection, now);
      } else if (c.peer_fin && h.seq == c.peer_fin_seq) {
        c.ack_due = true;  // our ACK of it was lost
      } else {
        drop_not_open_.Add();  // data before it is still missing: it comes again
        stats().drops.Add();
      }
      return;
    case PacketType::kResync:
      if (c.state == Conn::State::kResyncing) {
        CompleteResync(c, h, now);
        if (c.state == Conn::State::kOpen && (h.flags & pony::kFlagAckNow)) {
          SendResync(c, false, now);  // it restarted too
        }
      } else if (c.state == Conn::State::kOpen && c.resync && (h.flags & pony::kFlagAckNow)) {
        AnswerResync(c, h, now);
      } else {
        // An answer to nothing asked (a copy), or not between kCapResync ends.
        drop_not_open_.Add();
        stats().drops.Add();
      }
      return;
    case PacketType::kSyn:
      return;
  }
}

// ---------------------------------------------------------------------------------------------
// The app side

void PonyEngine::HandleAppFrame(size_t slot, const Packet& pkt, int64_t now) {
  Slot& s = slots_[slot];
  AppOp op;
  uint32_t payload_offset = 0;
  const pony::AppOpError err = pony::ParseAppOp(pkt.data, pkt.len, pony::Direction::kFromApp,
                                                max_message_, &op, &payload_offset);
  if (err != pony::AppOpError::kNone) {
    op_drops_[static_cast<int>(err)].Add();
    s.port->stats().drop_malformed.Add();
    stats().drops.Add();
    return;
  }
  if (op.op == AppOpCode::kConnect) {
    Conn* c = NewConn(s.app_id, htonl(op.addr), op.app, now);
    if (c == nullptr) {
      AppOp r;
      r.op = AppOpCode::kRefused;
      r.token = op.token;
      r.code = static_cast<uint16_t>(PonyAppCode::kNoResources);
      s.outbox.push_back(r);
      connections_refused_.Add();
      return;
    }
    c->token = op.token;
    StartConnect(*c, now);
    return;
  }
  Conn* found = Find(op.conn);
  if (found != nullptr && found->replay_check && burst_cursor_ >= 0 &&
      static_cast<uint32_t>(burst_cursor_) == found->jr.app_cursor &&
      burst_index_ < found->jr.app_frames) {
    app_frames_replayed_.Add();  // the dead engine took it into the journal already
    return;
  }
  if (found == nullptr || found->app != s.app_id) {
    op_drop_unknown_connection_.Add();
    s.port->stats().drop_malformed.Add();
    stats().drops.Add();
    return;
  }
  Conn& c = *found;
  switch (op.op) {
    case AppOpCode::kSend:
      AppSend(c, op, pkt.data + payload_offset, pkt.len - payload_offset, now);
      return;
    case AppOpCode::kClose:
      // A message the app was half way through sending is given up (the FIN waits for none).
      c.assembling.clear();
      c.assembled = 0;
      if (c.state == Conn::State::kOpen || c.state == Conn::State::kResyncing) {
        c.close_requested = true;
        c.jr.close_requested = 1;
        c.jr.asm_len = c.jr.asm_token = c.jr.asm_done = 0;
        MarkAppFrame(c);
        CommitJournal(c);
      } else if (c.state != Conn::State::kDone) {
        Finish(c, 0, true, ResetReason::kAppGone, now);
      }
      return;
    case AppOpCode::kAccept:
      return;  // the engine accepted it already; ACCEPT only confirms
    case AppOpCode::kRefuse:
      if (c.passive) {
        Finish(c, static_cast<uint16_t>(ResetReason::kRefused), true, ResetReason::kRefused, now);
      }
      return;
    default:
      return;
  }
}

void PonyEngine::AppSend(Conn& c, const AppOp& op, const uint8_t* bytes, uint32_t len,
                         int64_t now) {
  Port& port = *slots_[AppSlot(c.app)].port;
  auto refuse = [&](Counter& counter) {
    counter.Add();
    port.stats().drop_malformed.Add();
    stats().drops.Add();
  };
  // A connection resyncing takes what its app sends into the journal: its sender is made from
  // there when the peer answers.
  if ((c.state != Conn::State::kOpen && c.state != Conn::State::kResyncing) || c.close_requested) {
    // The connection closed under the app (it is told by CLOSED), or it closed it itself.
    refuse(drop_not_open_);
    return;
  }
  if (op.offset == 0) {
    if (c.assembled != 0 || c.queued_bytes + op.length > buffer_bytes_) {
      refuse(c.assembled != 0 ? op_drop_out_of_order_ : op_drop_over_budget_);
      Finish(c, static_cast<uint16_t>(ResetReason::kProtocolError), true,
             ResetReason::kProtocolError, now);
      return;
    }
    c.assembling.resize(op.length);
    c.assembling_token = op.token;
  } else if (op.offset != c.assembled || op.length != c.assembling.size() ||
             op.token != c.assembling_token) {
    refuse(op_drop_out_of_order_);
    Finish(c, static_cast<uint16_t>(ResetReason::kProtocolError), true, ResetReason::kProtocolError,
           now);
    return;
  }
  // ParseAppOp checked that the bytes fit the message.
  memcpy(&c.assembling[op.offset], bytes, len);
  c.assembled += len;
  MarkAppFrame(c);
  if (c.journaled &&
      !journal_.AddSendFrame(SlotOf(c.id), &c.jr, op.offset, bytes, len, op.length, op.token)) {
    journal_overflows_.Add();
    if (c.state == Conn::State::kResyncing) {
      // Without the journal a resyncing connection has nowhere to keep what its app sends.
      Finish(c, static_cast<uint16_t>(PonyAppCode::kNoResources), true, ResetReason::kProtocolError,
             now);
      return;
    }
    StopJournal(c);
  }
  if (c.assembled < c.assembling.size()) return;
  if (c.journaled) journal_.FinishMessage(SlotOf(c.id), &c.jr);
  c.queued_bytes += c.assembling.size();
  if (c.state == Conn::State::kResyncing) {
    c.assembling.clear();  // in the journal; the RESYNC's answer queues it
    c.assembled = 0;
    return;
  }
  c.queued_sizes.push_back(static_cast<uint32_t>(c.assembling.size()));
  c.sender->Queue(std::move(c.assembling), c.assembling_token);
  c.assembling.clear();
  c.assembled = 0;
}

void PonyEngine::DeliverOutbox(Slot& s) {
  uint32_t n = 0;
  for (; n < s.outbox.size() && n < burst_; ++n) {
    uint8_t* p = app_scratch_.data() + size_t{n} * pony::kAppOpBytes;
    pony::WriteAppOp(s.outbox[n], p, pony::kAppOpBytes);
    app_pkts_[n] = Packet{p, pony::kAppOpBytes};
  }
  if (n == 0) return;
  const uint16_t sent = s.port->Transmit(app_pkts_.data(), static_cast<uint16_t>(n));
  s.port->stats().tx_frames.Add(sent);
  s.outbox.erase(s.outbox.begin(), s.outbox.begin() + sent);
}

void PonyEngine::Deliver(Conn& c) {
  const size_t slot = AppSlot(c.app);
  if (slot == slots_.kNoIndex) return;  // restored before its app came back
  Port& port = *slots_[slot].port;
  // What goes to the app, in order: the open, SENT completions, messages, the close. Each frame
  // says what it commits, applied only for the frames the ring took.
  enum class Kind : uint8_t { kOpen, kSent, kSegment, kDone };
  struct Item {
    Kind kind;
    uint32_t len;  // kSegment: bytes of the message
  };
  Item items[256];
  uint32_t n = 0;
  size_t used = 0;
  auto room = [&](uint32_t bytes) -> uint8_t* {
    if (n >= burst_) return nullptr;
    uint8_t* p = app_scratch_.data() + used;
    app_pkts_[n] = Packet{p, bytes};
    used += bytes;
    return p;
  };
  auto put = [&](const AppOp& op, Kind kind) {
    uint8_t* p = room(pony::kAppOpBytes);
    if (p == nullptr) return false;
    pony::WriteAppOp(op, p, pony::kAppOpBytes);
    items[n++] = Item{kind, 0};
    return true;
  };
  if (c.notify_open) {
    AppOp op;
    op.op = c.passive ? AppOpCode::kIncoming : AppOpCode::kConnected;
    op.conn = c.id;
    op.token = c.token;
    op.length = buffer_bytes_;
    op.addr = ntohl(c.peer_ip);
    op.app = c.peer_app;
    if (!put(op, Kind::kOpen)) return;
  }
  bool all_placed = true;  // everything waiting is in this batch
  for (uint32_t token : c.sent_tokens) {
    AppOp op;
    op.op = AppOpCode::kSent;
    op.conn = c.id;
    op.token = token;
    if (!put(op, Kind::kSent)) {
      all_placed = false;
      break;
    }
  }
  // Messages: taken out of the Receiver ahead of the ring, a bounded few.
  while (c.receiver && c.receiver->HasMessage() && c.to_app.size() < kToAppMessages &&
         c.to_app_bytes < std::min<uint64_t>(kToAppBytes, buffer_bytes_ / 4)) {
    Conn::ToApp m;
    m.bytes = c.receiver->PopMessage(&m.end_seq);
    c.to_app_bytes += m.bytes.size();
    if (c.resync_skip != 0) {
      // The first message after a RESYNC: the app had its first bytes already.
      if (c.to_app.empty() && c.resync_skip < m.bytes.size()) c.to_app_offset = c.resync_skip;
      c.resync_skip = 0;
    }
    c.to_app.push_back(std::move(m));
    c.ack_owed = true;  // the credit grew: AckNeeded decides whether the peer must hear now
  }
  uint32_t offset = c.to_app_offset;
  for (const Conn::ToApp& t : c.to_app) {
    const std::string& m = t.bytes;
    while (offset < m.size()) {
      const uint32_t seg =
          std::min<uint32_t>(kAppSegment, static_cast<uint32_t>(m.size()) - offset);
      uint8_t* p = room(pony::kAppOpBytes + seg);
      if (p == nullptr) break;
      AppOp op;
      op.op = AppOpCode::kReceived;
      op.conn = c.id;
      op.length = static_cast<uint32_t>(m.size());
      op.offset = offset;
      pony::WriteAppOp(op, p, pony::kAppOpBytes);
      memcpy(p + pony::kAppOpBytes, m.data() + offset, seg);
      items[n++] = Item{Kind::kSegment, seg};
      offset += seg;
    }
    if (offset < m.size()) {
      all_placed = false;
      break;
    }
    offset = 0;
  }
  // The close goes last, once every message is handed over.
  if (c.state == Conn::State::kDone && !c.told_done && all_placed &&
      !(c.receiver && c.receiver->HasMessage())) {
    AppOp op;
    op.op = c.opened ? AppOpCode::kClosed : AppOpCode::kRefused;
    op.conn = c.id;
    op.token = c.token;
    op.code = c.code;
    put(op, Kind::kDone);
  }
  if (n == 0) return;
  // What the app will have been handed once the burst goes, in the journal before it goes: a
  // crash during or after Transmit finds it, and the app's ring says whether it went.
  const int64_t tx_cursor = c.journaled ? port.TxCursor() : -1;
  if (tx_cursor >= 0) {
    n = port.TxWouldTake(app_pkts_.data(), static_cast<uint16_t>(n));  // whole or not at all
    if (n == 0) return;
    pony::JournalConn& r = c.jr;
    r.pend_valid = 1;
    r.pend_cursor = static_cast<uint32_t>(tx_cursor);
    r.pend_told_open = r.told_open;
    r.pend_sents = 0;
    r.pend_rx_next_msg = r.rx_next_msg;
    uint32_t off = c.to_app_offset;
    size_t m = 0;
    for (uint32_t i = 0; i < n; ++i) {
      if (items[i].kind == Kind::kOpen) r.pend_told_open = 1;
      if (items[i].kind == Kind::kSent) ++r.pend_sents;
      if (items[i].kind != Kind::kSegment) continue;
      off += items[i].len;
      if (off == c.to_app[m].bytes.size()) {
        ++r.pend_rx_next_msg;
        off = 0;
        ++m;
      }
    }
    r.pend_rx_msg_offset = off;
    journal_.Put(SlotOf(c.id), r);
  }
  const uint16_t sent = port.Transmit(app_pkts_.data(), static_cast<uint16_t>(n));
  uint64_t bytes = 0;
  uint32_t sents = 0;
  for (uint16_t i = 0; i < sent; ++i) {
    bytes += app_pkts_[i].len;
    switch (items[i].kind) {
      case Kind::kOpen:
        c.notify_open = false;
        c.jr.told_open = 1;
        break;
      case Kind::kSent:
        c.sent_tokens.pop_front();
        ++sents;
        break;
      case Kind::kSegment:
        c.to_app_offset += items[i].len;
        if (c.to_app_offset == c.to_app.front().bytes.size()) {
          c.to_app_bytes -= c.to_app.front().bytes.size();
          buffered_ -= c.to_app.front().bytes.size();
          if (c.resync) {
            c.delivered_seq = c.to_app.front().end_seq;
            c.ack_owed = true;  // the acknowledgement moved: AckNeeded sees it did
          }
          c.to_app.pop_front();
          c.to_app_offset = 0;
          ++c.jr.rx_next_msg;
          ++c.rx_messages;
          messages_received_.Add();
        }
        break;
      case Kind::kDone:
        c.told_done = true;
        break;
    }
  }
  port.stats().tx_frames.Add(sent);
  port.stats().tx_bytes.Add(bytes);
  // The app has these now: the journal says so (a crash from here on asks the peer for what
  // comes after, and tells the app SENT for nothing twice).
  c.jr.rx_msg_offset = c.to_app.empty() ? c.resync_skip : c.to_app_offset;
  c.jr.pend_valid = 0;
  if (sents > 0 && c.journaled) {
    journal_.DropFront(SlotOf(c.id), &c.jr, sents);
  } else {
    CommitJournal(c);
  }
}

// ---------------------------------------------------------------------------------------------
// The poll

uint32_t PonyEngine::PollPorts(uint32_t* full_bursts) {
  handed_over_ = false;  // polled again: an upgrade that saved it gave up, and it serves on
  uint32_t total = 0;
  int64_t now = poll_start_ns();
  for (size_t i = 0; i < slots_.slot_count(); ++i) {
    Slot& s = slots_[i];
    if (!s.port || !s.port->healthy()) continue;
    const uint16_t n = s.port->Receive(rx_.data(), static_cast<uint16_t>(burst_));
    if (n == 0) {
      if (s.is_app && !s.outbox.empty()) DeliverOutbox(s);
      continue;
    }
    if (n == burst_) ++*full_bursts;
    uint64_t bytes = 0;
    burst_cursor_ = s.is_app ? s.port->RxCursor() : -1;
    for (uint16_t k = 0; k < n; ++k) {
      bytes += rx_[k].len;
      if (s.is_app) {
        burst_index_ = k;
        HandleAppFrame(i, rx_[k], now);
      } else {
        // When the frame reached this host, where the NIC knows: delay samples leave out the
        // time this engine took to look.
        const int64_t age = s.port->RxAgeNs(k);
        HandleWireFrame(i, rx_[k], age > 0 && age < now ? now - age : now);
      }
    }
    s.port->Release();
    burst_cursor_ = -1;
    if (s.is_app) AppBurstReleased(s.app_id);
    s.port->stats().rx_frames.Add(n);
    s.port->stats().rx_bytes.Add(bytes);
    stats().frames.Add(n);
    stats().bytes.Add(bytes);
    stats().batches.Add();
    total += n;
    if (s.is_app && !s.outbox.empty()) DeliverOutbox(s);
  }
  // The connections have work only when a frame came, or a deadline passed: an idle worker polls
  // an engine many times before it sleeps, and each of those polls stops here.
  if (total == 0 && now < next_deadline_ns_) return 0;
  int64_t deadline = INT64_MAX;
  for (size_t i = 0; i < live_.size();) {
    Conn& c = *conns_[live_[i]];
    RunTimers(c, now);
    Deliver(c);  // first: the data this poll sends then carries the credit the app freed
    PushData(c, now);
    if (AckNeeded(c) && c.state != Conn::State::kSynSent && c.state != Conn::State::kResolving) {
      SendAck(c, c.ack_flags, now);
    }
    c.ack_owed = false;
    if (c.state == Conn::State::kDone && c.told_done) {
      FreeConn(c);  // the last live connection moves to i
      continue;
    }
    if (c.state == Conn::State::kOpen) deadline = std::min(deadline, c.sender->NextTimerNs());
    if (!c.journaled && c.resync && c.state == Conn::State::kOpen) StartJournal(c);
    deadline = std::min(deadline, c.ctl_at);
    if (c.app_due_at != 0) deadline = std::min(deadline, c.app_due_at);
    // A connection whose app's ring was full tries again soon.
    if (c.notify_open || !c.sent_tokens.empty() || !c.to_app.empty() ||
        (c.state == Conn::State::kDone && !c.told_done)) {
      deadline = std::min(deadline, now + 50000);
    }
    ++i;
  }
  FlushNic();
  next_deadline_ns_ = deadline;
  return total;
}

std::vector<ConnectionInfo> PonyEngine::Connections() const {
  std::vector<ConnectionInfo> out;
  for (uint32_t index : live_) {
    const Conn& c = *conns_[index];
    ConnectionInfo i;
    i.id = c.id;
    i.app = c.app;
    i.peer_ip = c.peer_ip;
    i.peer_app = c.peer_app;
    i.state = StateName(static_cast<int>(c.state));
    if (c.sender) {
      i.cwnd = c.sender->swift().cwnd();
      i.srtt_ns = c.sender->srtt_ns();
      i.retransmits = c.sender->retransmits();
    } else {
      i.retransmits = c.retransmits;
    }
    i.tx_bytes = c.tx_bytes;
    i.rx_bytes = c.rx_bytes;
    i.tx_messages = c.tx_messages;
    i.rx_messages = c.rx_messages;
    out.push_back(i);
  }
  return out;
}

absl::Status PonyEngine::SaveKindState(std::string* out) const {
  engines::PonyState st;
  for (uint32_t index : live_) {
    const Conn& c = *conns_[index];
    // Picked up from the journal and not yet answered: what it is made of is in the journal, which
    // the new snapd does not take (its peer resets it when it finds no such connection).
    if (c.state == Conn::State::kResyncing) continue;
    engines::PonyConnectionState* o = st.add_connections();
    o->set_id(c.id);
    o->set_state(static_cast<int>(c.state));
    o->set_passive(c.passive);
    o->set_opened(c.opened);
    o->set_app(c.app);
    o->set_peer_ip(c.peer_ip);
    o->set_peer_app(c.peer_app);
    o->set_peer_conn(c.peer_conn);
    o->set_peer_mac(c.peer_mac);
    o->set_src_port(c.src_port);
    o->set_token(c.token);
    o->set_isn(c.isn);
    o->set_ctl_at_ns(c.ctl_at);
    o->set_ctl_rto_ns(c.ctl_rto_ns);
    o->set_ctl_tries(c.ctl_tries);
    o->set_close_requested(c.close_requested);
    o->set_fin_sent(c.fin_sent);
    o->set_fin_seq(c.fin_seq);
    o->set_peer_fin(c.peer_fin);
    o->set_peer_fin_seq(c.peer_fin_seq);
    o->set_assembling(c.assembling);
    o->set_assembled(c.assembled);
    o->set_assembling_token(c.assembling_token);
    for (uint32_t size : c.queued_sizes) o->add_queued_sizes(size);
    o->set_notify_open(c.notify_open);
    for (uint32_t t : c.sent_tokens) o->add_sent_tokens(t);
    for (const Conn::ToApp& m : c.to_app) {
      o->add_to_app(m.bytes);
      o->add_to_app_end_seq(m.end_seq);
    }
    o->set_resync(c.resync);
    o->set_delivered_seq(c.delivered_seq);
    o->set_resync_skip(c.resync_skip);
    o->set_peer_resynced(c.peer_resynced);
    o->set_peer_resync_isn(c.peer_resync_isn);
    o->set_to_app_offset(c.to_app_offset);
    o->set_code(c.code);
    o->set_told_done(c.told_done);
    o->set_ack_due(c.ack_due);
    o->set_echo_ts(c.echo_ts);
    o->set_echo_at_ns(c.echo_at);
    o->set_tx_bytes(c.tx_bytes);
    o->set_rx_bytes(c.rx_bytes);
    o->set_tx_messages(c.tx_messages);
    o->set_rx_messages(c.rx_messages);
    o->set_retransmits(c.retransmits);
    if (c.sender) {
      c.sender->Save(o->mutable_sender());
    }
    if (c.receiver) {
      c.receiver->Save(o->mutable_receiver());
    }
  }
  for (const auto& [ip, mac] : neighbors_) {
    auto* n = st.add_neighbors();
    n->set_ip(ip);
    n->set_mac(mac);
  }
  st.set_generation(generation_);
  ForEachCounter(*this, [&](absl::string_view name, const Counter& c) {
    (*st.mutable_counters())[std::string(name)] = c.Get();
  });
  // From here on this engine is a copy: the new snapd runs the connections. Taking its ports
  // away (the old snapd withdraws) must not reset them at the peers.
  handed_over_ = true;
  if (!st.SerializeToString(out)) return absl::InternalError("pony state does not serialize");
  return absl::OkStatus();
}

absl::Status PonyEngine::RestoreKindState(const std::string& in) {
  if (in.empty()) return absl::OkStatus();
  engines::PonyState st;
  if (!st.ParseFromString(in)) return absl::InvalidArgumentError("pony state does not parse");
  if (!live_.empty()) return absl::FailedPreconditionError("pony: restore into a used engine");
  auto bad = [](uint32_t id, const char* what) {
    return absl::InvalidArgumentError(absl::StrCat("pony state: connection ", id, ": ", what));
  };
  for (const engines::PonyConnectionState& o : st.connections()) {
    const uint32_t index = SlotOf(o.id());
    if ((o.id() & kConnIndexMask) == 0 || index >= max_conns_) return bad(o.id(), "bad id");
    if (index >= conns_.size()) conns_.resize(index + 1);
    if (conns_[index]) return bad(o.id(), "id given twice");
    if (o.state() < 0 || o.state() > static_cast<int>(Conn::State::kDone) || o.app() == 0 ||
        o.app() > 65535 || o.peer_app() > 65535 || o.assembled() > o.assembling().size() ||
        (o.assembled() == 0) != o.assembling().empty() ||
        o.to_app_offset() >= (o.to_app().empty() ? 1 : o.to_app(0).size())) {
      return bad(o.id(), "inconsistent");
    }
    for (const std::string& m : o.to_app()) {
      if (m.empty()) return bad(o.id(), "an empty message for the app");
    }
    // An engine that holds its acknowledgements needs to know where each message ends.
    if (o.resync() &&
        (o.to_app_end_seq_size() != o.to_app_size() ||
         (o.has_receiver() && o.receiver().ready_end_seq_size() != o.receiver().ready_size()))) {
      return bad(o.id(), "messages without their end");
    }
    // Each message the app sent and has not seen SENT for: one size, in the sender or its SENTs.
    if (o.has_sender() && static_cast<size_t>(o.queued_sizes_size()) !=
                              static_cast<size_t>(o.sender().messages_size()) +
                                  static_cast<size_t>(o.sender().completed_size())) {
      return bad(o.id(), "queued messages disagree with the sender's");
    }
    auto c = std::make_unique<Conn>();
    c->id = o.id();
    c->state = static_cast<Conn::State>(o.state());
    c->passive = o.passive();
    c->opened = o.opened();
    c->app = static_cast<uint16_t>(o.app());
    c->peer_ip = o.peer_ip();
    c->peer_app = static_cast<uint16_t>(o.peer_app());
    c->peer_conn = o.peer_conn();
    c->peer_mac = o.peer_mac();
    c->src_port = static_cast<uint16_t>(o.src_port());
    c->token = o.token();
    c->isn = o.isn();
    c->ctl_at = o.ctl_at_ns();
    c->ctl_rto_ns = o.ctl_rto_ns();
    c->ctl_tries = o.ctl_tries();
    c->close_requested = o.close_requested();
    c->fin_sent = o.fin_sent();
    c->fin_seq = o.fin_seq();
    c->peer_fin = o.peer_fin();
    c->peer_fin_seq = o.peer_fin_seq();
    c->assembling = o.assembling();
    c->assembled = o.assembled();
    c->assembling_token = o.assembling_token();
    for (uint32_t size : o.queued_sizes()) {
      c->queued_sizes.push_back(size);
      c->queued_bytes += size;
    }
    c->notify_open = o.notify_open();
    c->sent_tokens.assign(o.sent_tokens().begin(), o.sent_tokens().end());
    for (int i = 0; i < o.to_app_size(); ++i) {
      c->to_app.push_back(Conn::ToApp{o.to_app(i), o.resync() ? o.to_app_end_seq(i) : 0});
      c->to_app_bytes += o.to_app(i).size();
    }
    c->resync = o.resync();
    c->delivered_seq = o.delivered_seq();
    c->resync_skip = o.resync_skip();
    c->peer_resynced = o.peer_resynced();
    c->peer_resync_isn = o.peer_resync_isn();
    c->to_app_offset = o.to_app_offset();
    c->code = static_cast<uint16_t>(o.code());
    c->told_done = o.told_done();
    c->ack_due = o.ack_due();
    c->echo_ts = o.echo_ts();
    c->echo_at = o.echo_at_ns();
    c->tx_bytes = o.tx_bytes();
    c->rx_bytes = o.rx_bytes();
    c->tx_messages = o.tx_messages();
    c->rx_messages = o.rx_messages();
    c->retransmits = o.retransmits();
    if (o.has_sender()) {
      pony::SenderOptions opt = sender_options_;
      opt.mss = Mss();
      c->sender = std::make_unique<pony::Sender>(0, 0, opt);
      if (!c->sender->Restore(o.sender())) return bad(o.id(), "sender state inconsistent");
    }
    if (o.has_receiver()) {
      c->receiver = std::make_unique<pony::Receiver>(0, buffer_bytes_, max_message_);
      if (!c->receiver->Restore(o.receiver())) return bad(o.id(), "receiver state inconsistent");
    }
    if (c->state == Conn::State::kOpen && (!c->sender || !c->receiver)) {
      return bad(o.id(), "open without its sender and receiver");
    }
    buffered_ += (c->receiver ? c->receiver->buffered() : 0) + c->to_app_bytes;
    // The next message the app is to be handed: before what waits for it in order.
    c->jr.rx_next_msg = c->receiver ? c->receiver->next_message() -
                                          static_cast<uint32_t>(c->receiver->ready_count()) -
                                          static_cast<uint32_t>(c->to_app.size())
                                    : 1;
    conns_[index] = std::move(c);
    live_.push_back(index);
  }
  for (const auto& n : st.neighbors()) {
    if (neighbors_.size() < kMaxNeighbors) neighbors_[n.ip()] = n.mac();
  }
  generation_ = st.generation();
  next_deadline_ns_ = 0;  // the next poll looks at every connection
  ForEachCounter(*this, [&](absl::string_view name, Counter& c) {
    auto it = st.counters().find(std::string(name));
    if (it != st.counters().end()) c.Add(it->second);
  });
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------------
// Crash survival: the journal and RESYNC

pony::Journal::Shape PonyEngine::JournalShape() const {
  pony::Journal::Shape s;
  s.slots = max_conns_;
  // What a connection's app may have unacknowledged, the message it is sending, and room for
  // the entries' heads: past it, the connection is not kept until it drains (journal_overflows).
  s.ring_bytes = static_cast<uint32_t>(
      (uint64_t{buffer_bytes_} + max_message_ + (64u << 10) + 4095) & ~uint64_t{4095});
  s.owner = mac_ ^ (uint64_t{ip_} << 16) ^ (uint64_t{udp_port_} << 48);
  return s;
}

size_t PonyEngine::CheckpointBytes() const { return pony::Journal::BytesFor(JournalShape()); }

void PonyEngine::StartJournal(Conn& c) {
  if (!journal_.valid() || c.journaled || !c.resync || c.state != Conn::State::kOpen ||
      !c.sender->idle() || !c.sent_tokens.empty() || c.assembled != 0 || c.close_requested) {
    return;  // not yet: what is in flight was not kept
  }
  pony::JournalConn& r = c.jr;
  const uint32_t rx_next = r.rx_next_msg;
  r = pony::JournalConn();
  r.id = c.id;
  r.peer_ip = c.peer_ip;
  r.peer_mac = c.peer_mac;
  r.peer_conn = c.peer_conn;
  r.app = c.app;
  r.peer_app = c.peer_app;
  r.src_port = c.src_port;
  r.passive = c.passive;
  r.told_open = !c.notify_open;
  r.token = c.token;
  r.rx_next_msg = rx_next;
  r.rx_msg_offset = c.to_app.empty() ? c.resync_skip : c.to_app_offset;
  r.tx_first_id = c.sender->next_id();
  journal_.Put(SlotOf(c.id), r);
  c.journaled = true;
}

void PonyEngine::StopJournal(Conn& c) {
  if (!c.journaled) return;
  journal_.Free(SlotOf(c.id));
  c.journaled = false;
}

void PonyEngine::CommitJournal(Conn& c) {
  if (c.journaled) journal_.Put(SlotOf(c.id), c.jr);
}

absl::StatusOr<std::string> PonyEngine::UseCheckpoint(void* memory, size_t bytes, bool recover) {
  const pony::Journal::Shape shape = JournalShape();
  if (bytes < pony::Journal::BytesFor(shape)) {
    return absl::InvalidArgumentError(absl::StrCat("pony: the checkpoint memory has ", bytes,
                                                   " bytes, not ", pony::Journal::BytesFor(shape)));
  }
  std::string report;
  if (recover) {
    if (!live_.empty()) {
      return absl::FailedPreconditionError("pony: a checkpoint is picked up by a fresh engine");
    }
    absl::StatusOr<pony::Journal> j = pony::Journal::Recover(memory, bytes, shape);
    if (j.ok()) {
      journal_ = *j;
    } else {
      report = absl::StrCat("no connections picked up: ", j.status().message(), "; ");
      recover = false;
    }
  }
  if (!recover) {
    journal_ = pony::Journal::Format(memory, shape);
    for (uint32_t index : live_) StartJournal(*conns_[index]);  // after an upgrade
    return absl::StrCat(report, "journal for ", shape.slots, " connections");
  }
  const int64_t now = MonotonicNs();
  uint32_t picked = 0, dropped = 0;
  std::string why_dropped;
  for (uint32_t slot = 0; slot < shape.slots; ++slot) {
    const pony::JournalConn r = journal_.Get(slot);
    if (r.id == 0) continue;
    std::vector<pony::JournalMessage> messages;
    std::string assembled, why;
    if ((r.id & kConnIndexMask) != slot + 1) {
      why = "its id is not its slot's";
    } else if (r.app == 0 || r.peer_app == 0 || r.peer_conn == 0 || r.rx_next_msg == 0 ||
               r.rx_msg_offset >= max_message_ || (r.peer_ip & mask_) != (ip_ & mask_)) {
      why = "it names no peer, app or message it could have";
    } else {
      journal_.Read(slot, r, max_message_, &messages, &assembled, &why);
    }
    if (!why.empty()) {
      journal_.Free(slot);
      journal_dropped_.Add();
      if (dropped++ < 3) absl::StrAppend(&why_dropped, "; connection ", r.id, ": ", why);
      continue;
    }
    if (slot >= conns_.size()) conns_.resize(slot + 1);
    auto c = std::make_unique<Conn>();
    c->id = r.id;
    c->state = Conn::State::kResyncing;
    c->passive = r.passive != 0;
    c->opened = true;
    c->notify_open = r.told_open == 0;
    c->app = r.app;
    c->peer_ip = r.peer_ip;
    c->peer_app = r.peer_app;
    c->peer_conn = r.peer_conn;
    c->peer_mac = r.peer_mac;
    c->src_port = r.src_port;
    c->token = r.token;
    c->isn = RandomIsn(now);
    c->close_requested = r.close_requested != 0;
    c->resync = true;
    c->journaled = true;
    c->jr = r;
    c->resync_skip = r.rx_msg_offset;
    c->replay_check = r.app_frames != 0;
    replay_checks_ += c->replay_check;
    for (const pony::JournalMessage& m : messages) c->queued_bytes += m.bytes.size();
    if (r.asm_len != 0) {
      c->assembling = assembled;
      c->assembling.resize(r.asm_len);
      c->assembled = r.asm_done;
      c->assembling_token = r.asm_token;
    }
    c->ctl_at = 0;  // the first poll asks the peer
    c->app_due_at = now + kAppReturnNs;
    c->ctl_rto_ns = kCtlFirstRtoNs;
    if (neighbors_.size() < kMaxNeighbors) neighbors_[r.peer_ip] = r.peer_mac;
    conns_[slot] = std::move(c);
    live_.push_back(slot);
    ++picked;
  }
  next_deadline_ns_ = 0;
  return absl::StrCat("picked up ", picked, " connection(s) from the journal, dropped ", dropped,
                      why_dropped);
}

void PonyEngine::ResolvePendingBursts(Slot& s) {
  const int64_t cursor = s.port->TxCursor();
  for (uint32_t index : live_) {
    Conn& c = *conns_[index];
    if (c.app != s.app_id || !c.journaled || !c.jr.pend_valid) continue;
    pony::JournalConn& r = c.jr;
    r.pend_valid = 0;
    if (cursor >= 0 && static_cast<uint32_t>(cursor) != r.pend_cursor) {
      // The burst went: the app has what it said.
      app_bursts_went_.Add();
      r.told_open = r.pend_told_open;
      c.notify_open = !r.told_open;
      r.rx_next_msg = r.pend_rx_next_msg;
      r.rx_msg_offset = r.pend_rx_msg_offset;
      c.resync_skip = r.rx_msg_offset;
      // Its SENTs reached the app: those messages leave the journal (and the app's budget).
      for (uint32_t k = std::min(r.pend_sents, r.tx_count); k > 0; --k) {
        c.queued_bytes -= std::min<uint64_t>(journal_.FrontLength(index, r), c.queued_bytes);
        journal_.DropFront(index, &r, 1);
      }
      CommitJournal(c);
    } else {
      CommitJournal(c);
    }
  }
}

void PonyEngine::MarkAppFrame(Conn& c) {
  if (!c.journaled || burst_cursor_ < 0) return;
  if (c.jr.app_frames == 0) marked_.push_back(c.id);
  c.jr.app_cursor = static_cast<uint32_t>(burst_cursor_);
  c.jr.app_frames = burst_index_ + 1u;
}

void PonyEngine::AppBurstReleased(uint16_t app) {
  // Released: a crash from here on does not serve these frames again.
  for (uint32_t id : marked_) {
    Conn* c = Find(id);
    if (c == nullptr || c->jr.app_frames == 0) continue;
    c->jr.app_frames = 0;
    CommitJournal(*c);
  }
  marked_.clear();
  if (replay_checks_ == 0) return;
  for (uint32_t index : live_) {
    Conn& c = *conns_[index];
    if (c.replay_check && c.app == app) {
      c.replay_check = false;
      --replay_checks_;
    }
  }
}

void PonyEngine::SendResync(Conn& c, bool ask, int64_t now) {
  PonyHeader h;
  h.type = PacketType::kResync;
  h.flags = ask ? pony::kFlagAckNow : 0;
  h.seq = c.isn;
  h.msg_id = c.jr.rx_next_msg;
  h.credit = c.receiver ? c.receiver->credit() : buffer_bytes_;
  SendPony(c, h, nullptr, 0, now);
}

void PonyEngine::CompleteResync(Conn& c, const PonyHeader& h, int64_t now) {
  const uint32_t slot = SlotOf(c.id);
  std::vector<pony::JournalMessage> messages;
  std::string assembled, why;
  const uint32_t first = c.jr.tx_first_id;
  const bool read = journal_.Read(slot, c.jr, max_message_, &messages, &assembled, &why);
  const uint32_t end = first + static_cast<uint32_t>(messages.size());
  // The peer's app was handed messages up to h.msg_id: this side holds them all from the first
  // one its app was not told SENT for, so h.msg_id lies in [first, end].
  if (!read || pony::SeqBefore(h.msg_id, first) || pony::SeqBefore(end, h.msg_id)) {
    drop_protocol_error_.Add();
    stats().drops.Add();
    Finish(c, static_cast<uint16_t>(ResetReason::kProtocolError), true, ResetReason::kProtocolError,
           now);
    return;
  }
  pony::SenderOptions o = sender_options_;
  o.mss = Mss();
  c.sender = std::make_unique<pony::Sender>(c.isn + 1, h.credit, o, h.msg_id);
  c.queued_bytes = 0;
  c.queued_sizes.clear();
  for (pony::JournalMessage& m : messages) {
    if (pony::SeqBefore(m.id, h.msg_id)) {
      MessageDone(c, m.token);  // the peer's app has it (queued_sizes is empty until the next)
      continue;
    }
    c.queued_bytes += m.bytes.size();
    c.queued_sizes.push_back(static_cast<uint32_t>(m.bytes.size()));
    c.sender->Queue(std::move(m.bytes), m.token);
  }
  c.receiver =
      std::make_unique<pony::Receiver>(h.seq + 1, buffer_bytes_, max_message_, c.jr.rx_next_msg);
  c.delivered_seq = h.seq + 1;
  c.acked_through = c.delivered_seq;
  c.advertised_credit = buffer_bytes_;
  c.state = Conn::State::kOpen;
  c.ctl_at = INT64_MAX;
  c.ctl_tries = 0;
  c.peer_resync_isn = h.seq;
  c.peer_resynced = true;
  resyncs_.Add();
}

void PonyEngine::AnswerResync(Conn& c, const PonyHeader& h, int64_t now) {
  if (c.peer_resynced && h.seq == c.peer_resync_isn) {
    SendResync(c, false, now);  // our answer was lost
    return;
  }
  std::vector<uint32_t> done;
  std::vector<std::pair<std::string, uint32_t>> rest;
  if (!c.sender->TakeMessages(h.msg_id, &done, &rest)) {
    drop_protocol_error_.Add();
    stats().drops.Add();
    Finish(c, static_cast<uint16_t>(ResetReason::kProtocolError), true, ResetReason::kProtocolError,
           now);
    return;
  }
  for (uint32_t token : done) MessageDone(c, token);
  // This side's sending half starts afresh from what the peer's app lacks; its receiving half
  // from what this side's app lacks (what came and was not handed to it, the peer still holds).
  c.retransmits += c.sender->retransmits();
  c.isn = RandomIsn(now);
  pony::SenderOptions o = sender_options_;
  o.mss = Mss();
  c.sender = std::make_unique<pony::Sender>(c.isn + 1, h.credit, o, h.msg_id);
  for (auto& [bytes, token] : rest) c.sender->Queue(std::move(bytes), token);
  buffered_ -= c.receiver->buffered() + c.to_app_bytes;
  if (!c.to_app.empty()) c.resync_skip = c.to_app_offset;
  c.to_app.clear();
  c.to_app_bytes = 0;
  c.to_app_offset = 0;
  c.receiver =
      std::make_unique<pony::Receiver>(h.seq + 1, buffer_bytes_, max_message_, c.jr.rx_next_msg);
  c.delivered_seq = h.seq + 1;
  c.acked_through = c.delivered_seq;
  c.ack_due = c.ack_owed = false;
  c.echo_ts = 0;
  if (c.fin_sent) {
    c.fin_sent = false;  // sent again once what the peer lacks is acknowledged
    c.ctl_at = INT64_MAX;
  }
  c.peer_resync_isn = h.seq;
  c.peer_resynced = true;
  resyncs_answered_.Add();
  SendResync(c, false, now);
}

SNAPD_REGISTER_ENGINE_KIND(PonyEngine::kKind, PonyEngine, engines::PonyConfig);

}  // namespace snapd
