#include "engines/pony/sender.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <utility>

namespace snapd::pony {

Sender::Sender(uint32_t first_seq, uint32_t credit, const SenderOptions& options, uint32_t first_id)
    : o_(options),
      swift_(options.swift),
      una_(first_seq),
      next_seq_(first_seq),
      next_id_(first_id),
      peer_credit_(credit),
      rto_ns_(options.initial_rto_ns) {}

bool Sender::TakeMessages(uint32_t deliver_from, std::vector<uint32_t>* done,
                          std::vector<std::pair<std::string, uint32_t>>* rest) {
  const uint32_t oldest = messages_.empty() ? next_id_ : messages_.front().id;
  if (SeqBefore(deliver_from, oldest) || SeqBefore(next_id_, deliver_from)) return false;
  done->assign(completed_.begin(), completed_.end());
  completed_.clear();
  rest->clear();
  for (Message& m : messages_) {
    if (SeqBefore(m.id, deliver_from)) {
      done->push_back(m.token);
    } else {
      rest->emplace_back(std::move(m.bytes), m.token);
    }
  }
  messages_.clear();
  inflight_.clear();
  acked_prefix_ = 0;
  return true;
}

uint32_t Sender::Queue(std::string message, uint32_t token) {
  Message m;
  m.id = next_id_++;
  m.token = token;
  m.bytes = std::move(message);
  messages_.push_back(std::move(m));
  return messages_.back().id;
}

bool Sender::MayStart(const Message& m) const {
  const uint32_t avail = peer_credit_ > unseen_reserved_ ? peer_credit_ - unseen_reserved_ : 0;
  return m.bytes.size() <= avail;
}

bool Sender::CreditBlocked() const {
  return in_flight_ == 0 && lost_count_ == 0 && cut_ < messages_.size() &&
         messages_[cut_].next_offset == 0 && !MayStart(messages_[cut_]);
}

bool Sender::HeldBlocked() const {
  return in_flight_ == 0 && lost_count_ == 0 && !inflight_.empty();
}

bool Sender::ProbeDue(int64_t now_ns) {
  if (!CreditBlocked() && !HeldBlocked()) {
    probe_at_ns_ = 0;
    return false;
  }
  if (probe_at_ns_ == 0) probe_at_ns_ = now_ns + rto_ns_;
  if (now_ns < probe_at_ns_) return false;
  // The last probe went unanswered (an answer resets the count): a peer that holds data for its
  // app still answers; one that stopped does not, and is given up as a timeout would give it up.
  if (probes_unanswered_ >= o_.max_timeouts) {
    dead_ = true;
    return false;
  }
  ++probes_unanswered_;
  probe_at_ns_ = now_ns + std::min(rto_ns_ << std::min(probes_unanswered_, 20), o_.max_rto_ns);
  return true;
}

void Sender::Fill(const Sent& s, uint32_t seq, uint8_t flags, Outgoing* out) {
  const Message& m = messages_[s.msg_index - messages_base_];
  out->seq = seq;
  out->msg_id = m.id;
  out->msg_len = static_cast<uint32_t>(m.bytes.size());
  out->msg_offset = s.offset;
  out->flags = flags;
  out->data = reinterpret_cast<const uint8_t*>(m.bytes.data()) + s.offset;
  out->len = s.len;
}

bool Sender::NextPacket(int64_t now_ns, Outgoing* out) {
  if (dead_) return false;
  const double cwnd = swift_.cwnd();
  if (cwnd < 1 && now_ns < next_paced_ns_) return false;
  const uint32_t window = cwnd < 1 ? 1 : static_cast<uint32_t>(cwnd);
  if (in_flight_ >= window) return false;
  auto paced = [&] {
    if (cwnd < 1) next_paced_ns_ = now_ns + swift_.PacingGapNs(srtt_ns_ > 0 ? srtt_ns_ : rto_ns_);
    return true;
  };
  // What was lost goes first, oldest first.
  if (lost_count_ > 0) {
    for (size_t i = acked_prefix_; i < inflight_.size(); ++i) {
      Sent& s = inflight_[i];
      if (!s.lost) continue;
      s.lost = false;
      s.sent_twice = true;
      s.sent_ns = now_ns;
      --lost_count_;
      ++in_flight_;
      ++retransmits_;
      Fill(s, una_ + static_cast<uint32_t>(i), kFlagRetransmit | kFlagAckNow, out);
      return paced();
    }
  }
  if (cut_ >= messages_.size()) return false;
  // Never past what the receiver tracks (a loss keeps una_ and the oldest message back while
  // SACKed packets leave the window).
  if (next_seq_ - una_ >= kSeqWindow) return false;
  Message& m = messages_[cut_];
  if (m.next_offset == 0) {
    if (m.id - messages_.front().id >= kMessageWindow) return false;
    if (!MayStart(m)) return false;  // the receiver has no room for it yet
    m.first_seq = next_seq_;
    unseen_reserved_ += static_cast<uint32_t>(m.bytes.size());
  }
  Sent s;
  s.msg_index = messages_base_ + cut_;
  s.offset = m.next_offset;
  s.len = std::min<uint32_t>(o_.mss, static_cast<uint32_t>(m.bytes.size()) - m.next_offset);
  s.sent_ns = now_ns;
  m.next_offset += s.len;
  uint8_t flags = 0;
  if (m.next_offset == m.bytes.size()) {
    m.last_seq = next_seq_;
    ++cut_;
    flags = kFlagAckNow;  // a message's end is worth an ack at once
  }
  inflight_.push_back(s);
  ++in_flight_;
  Fill(inflight_.back(), next_seq_++, flags, out);
  return paced();
}

void Sender::MarkSeen(uint32_t seq) {
  const Sent& s = inflight_[seq - una_];
  Message& m = messages_[s.msg_index - messages_base_];
  if (m.seen) return;
  m.seen = true;
  unseen_reserved_ -= static_cast<uint32_t>(m.bytes.size());
}

void Sender::RttSample(int64_t rtt_ns) {
  if (srtt_ns_ == 0) {
    srtt_ns_ = rtt_ns;
    rttvar_ns_ = rtt_ns / 2;
  } else {
    rttvar_ns_ = (3 * rttvar_ns_ + std::llabs(srtt_ns_ - rtt_ns)) / 4;
    srtt_ns_ = (7 * srtt_ns_ + rtt_ns) / 8;
  }
  rto_ns_ = std::clamp(srtt_ns_ + 4 * rttvar_ns_, o_.min_rto_ns, o_.max_rto_ns);
}

bool Sender::AcksOnlySent(const PonyHeader& ack) const {
  if (SeqBefore(next_seq_, ack.ack)) return false;
  for (uint8_t i = 0; i < ack.sack_count; ++i) {
    if (SeqBefore(next_seq_, ack.sack[i].end)) return false;
  }
  return true;
}

bool Sender::OnAck(const PonyHeader& ack, int64_t now_ns) {
  // Nothing may be acknowledged that was not sent.
  if (!AcksOnlySent(ack)) return false;
  // The peer is there: whatever probe was out is answered (the next one waits a whole timeout).
  if (probes_unanswered_ > 0) {
    probes_unanswered_ = 0;
    probe_at_ns_ = 0;
  }
  // An acknowledgement older than one already taken (reordered) says nothing new of the credit.
  if (!SeqBefore(ack.ack, una_)) peer_credit_ = ack.credit;
  uint32_t newly = 0;
  while (SeqBefore(una_, ack.ack)) {
    Sent& s = inflight_.front();
    if (!s.acked) {
      ++newly;
      MarkSeen(una_);
      if (s.lost) {
        s.lost = false;  // no need to send it again
        --lost_count_;
      } else {
        --in_flight_;
      }
    }
    inflight_.pop_front();
    if (acked_prefix_ > 0) --acked_prefix_;
    ++una_;
  }
  for (uint8_t i = 0; i < ack.sack_count; ++i) {
    const SackBlock& b = ack.sack[i];
    for (uint32_t seq = SeqBefore(b.start, una_) ? una_ : b.start; SeqBefore(seq, b.end); ++seq) {
      Sent& s = inflight_[seq - una_];
      if (s.acked) continue;
      s.acked = true;
      ++newly;
      MarkSeen(seq);
      if (s.lost) {
        s.lost = false;  // no need to send it again
        --lost_count_;
      } else {
        --in_flight_;
      }
    }
  }
  // Fast retransmit: a packet that three packets after it were SACKed past is lost.
  bool lost_now = false;
  int acked_above = 0;
  while (acked_prefix_ < inflight_.size() && inflight_[acked_prefix_].acked) ++acked_prefix_;
  for (size_t i = inflight_.size(); i-- > acked_prefix_;) {
    Sent& s = inflight_[i];
    if (s.acked) {
      ++acked_above;
    } else if (acked_above >= 3 && !s.lost && !s.sent_twice) {
      s.lost = true;
      --in_flight_;
      ++lost_count_;
      ++fast_retransmits_;
      lost_now = true;
    }
  }
  if (lost_now) swift_.OnFastRetransmit(srtt_ns_, now_ns);
  if (newly > 0) {
    timeouts_in_row_ = 0;
    if (ack.ts_echo != 0) {
      // The fabric's round trip: now less when the packet left, less the time it waited there.
      const int32_t rtt =
          static_cast<int32_t>(static_cast<uint32_t>(now_ns) - ack.ts_echo - ack.hold_ns);
      if (rtt > 0) {
        RttSample(rtt);
        swift_.OnAck(newly, rtt, srtt_ns_, now_ns);
      }
    }
  }
  Retire();
  return true;
}

void Sender::Retire() {
  while (cut_ > 0 && !messages_.empty() && SeqBefore(messages_.front().last_seq, una_)) {
    Message& m = messages_.front();
    if (!m.seen) unseen_reserved_ -= static_cast<uint32_t>(m.bytes.size());
    completed_.push_back(m.token);
    messages_.pop_front();
    ++messages_base_;
    --cut_;
  }
}

int64_t Sender::NextTimerNs() const {
  int64_t next = INT64_MAX;
  for (size_t i = acked_prefix_; i < inflight_.size(); ++i) {
    const Sent& s = inflight_[i];
    if (!s.acked && !s.lost) {
      next = s.sent_ns + rto_ns_;
      break;
    }
  }
  if (swift_.cwnd() < 1 && (lost_count_ > 0 || cut_ < messages_.size())) {
    next = std::min(next, next_paced_ns_);
  }
  if (CreditBlocked() || HeldBlocked()) {
    next = std::min(next, probe_at_ns_ == 0 ? int64_t{0} : probe_at_ns_);
  }
  return next;
}

void Sender::OnTimer(int64_t now_ns) {
  const Sent* oldest = nullptr;
  for (size_t i = acked_prefix_; i < inflight_.size(); ++i) {
    const Sent& s = inflight_[i];
    if (!s.acked && !s.lost) {
      oldest = &s;
      break;
    }
  }
  if (oldest == nullptr || now_ns < oldest->sent_ns + rto_ns_) return;
  ++timeouts_;
  if (++timeouts_in_row_ > o_.max_timeouts) dead_ = true;
  // Everything unacknowledged goes again, oldest first, under a window cut to its minimum.
  for (size_t i = acked_prefix_; i < inflight_.size(); ++i) {
    Sent& s = inflight_[i];
    if (s.acked || s.lost) continue;
    s.lost = true;
    --in_flight_;
    ++lost_count_;
  }
  rto_ns_ = std::min(rto_ns_ * 2, o_.max_rto_ns);
  swift_.OnTimeout(now_ns);
  // The first packet goes again at once; pacing at the minimum window spaces the rest.
  next_paced_ns_ = 0;
}

std::string Sender::DebugString() const {
  char buf[256];
  snprintf(buf, sizeof(buf),
           "una=%u next=%u inflight=%zu in_flight=%u lost=%u cut=%u queued=%zu credit=%u "
           "unseen=%u cwnd=%.2f rto=%ld dead=%d",
           una_, next_seq_, inflight_.size(), in_flight_, lost_count_, cut_, messages_.size(),
           peer_credit_, unseen_reserved_, swift_.cwnd(), static_cast<long>(rto_ns_), dead_);
  return buf;
}

void Sender::Save(engines::PonySenderState* out) const {
  out->set_una(una_);
  out->set_next_seq(next_seq_);
  for (const Sent& s : inflight_) {
    auto* o = out->add_inflight();
    o->set_msg_index(s.msg_index);
    o->set_offset(s.offset);
    o->set_len(s.len);
    o->set_sent_ns(s.sent_ns);
    o->set_acked(s.acked);
    o->set_lost(s.lost);
    o->set_sent_twice(s.sent_twice);
  }
  out->set_packets_in_flight(in_flight_);
  for (const Message& m : messages_) {
    auto* o = out->add_messages();
    o->set_id(m.id);
    o->set_token(m.token);
    o->set_bytes(m.bytes);
    o->set_next_offset(m.next_offset);
    o->set_first_seq(m.first_seq);
    o->set_last_seq(m.last_seq);
    o->set_seen(m.seen);
  }
  out->set_messages_base(messages_base_);
  out->set_next_id(next_id_);
  out->set_cut(cut_);
  out->set_lost_count(lost_count_);
  out->set_peer_credit(peer_credit_);
  out->set_unseen_reserved(unseen_reserved_);
  for (uint32_t t : completed_) out->add_completed(t);
  out->set_srtt_ns(srtt_ns_);
  out->set_rttvar_ns(rttvar_ns_);
  out->set_rto_ns(rto_ns_);
  out->set_next_paced_ns(next_paced_ns_);
  out->set_probe_at_ns(probe_at_ns_);
  out->set_timeouts_in_row(timeouts_in_row_);
  out->set_dead(dead_);
  out->set_retransmits(retransmits_);
  out->set_fast_retransmits(fast_retransmits_);
  out->set_timeouts(timeouts_);
  swift_.Save(out->mutable_swift());
  out->set_mss(o_.mss);
}

bool Sender::Restore(const engines::PonySenderState& in) {
  if (in.mss() < 64 || in.mss() > 65535) return false;
  // Messages already cut keep their packets; new ones fit this snapd's NICs too.
  o_.mss = std::min(o_.mss, in.mss());
  una_ = in.una();
  next_seq_ = in.next_seq();
  messages_.clear();
  for (const auto& o : in.messages()) {
    Message m;
    m.id = o.id();
    m.token = o.token();
    m.bytes = o.bytes();
    m.next_offset = o.next_offset();
    m.first_seq = o.first_seq();
    m.last_seq = o.last_seq();
    m.seen = o.seen();
    if (m.bytes.empty() || m.next_offset > m.bytes.size()) return false;
    messages_.push_back(std::move(m));
  }
  messages_base_ = in.messages_base();
  inflight_.clear();
  for (const auto& o : in.inflight()) {
    Sent s;
    s.msg_index = o.msg_index();
    s.offset = o.offset();
    s.len = o.len();
    s.sent_ns = o.sent_ns();
    s.acked = o.acked();
    s.lost = o.lost();
    s.sent_twice = o.sent_twice();
    // Every packet must point into a message it fits.
    if (s.msg_index - messages_base_ >= messages_.size()) return false;
    const Message& m = messages_[s.msg_index - messages_base_];
    if (s.offset > m.bytes.size() || s.len > m.bytes.size() - s.offset) return false;
    inflight_.push_back(s);
  }
  if (next_seq_ - una_ != inflight_.size()) return false;
  acked_prefix_ = 0;
  while (acked_prefix_ < inflight_.size() && inflight_[acked_prefix_].acked) ++acked_prefix_;
  in_flight_ = in.packets_in_flight();
  next_id_ = in.next_id();
  cut_ = in.cut();
  lost_count_ = in.lost_count();
  if (cut_ > messages_.size() || uint64_t{in_flight_} + lost_count_ > inflight_.size())
    return false;
  // Messages cut whole lie in [una_, next_seq_) (the retired ones left), the rest are not started
  // but the one being cut.
  for (uint32_t i = 0; i < messages_.size(); ++i) {
    const Message& m = messages_[i];
    if (i < cut_ && (m.next_offset != m.bytes.size() || SeqBefore(m.last_seq, una_) ||
                     !SeqBefore(m.last_seq, next_seq_))) {
      return false;
    }
    if (i > cut_ && m.next_offset != 0) return false;
  }
  peer_credit_ = in.peer_credit();
  unseen_reserved_ = in.unseen_reserved();
  completed_.assign(in.completed().begin(), in.completed().end());
  srtt_ns_ = in.srtt_ns();
  rttvar_ns_ = in.rttvar_ns();
  rto_ns_ = std::clamp(in.rto_ns(), o_.min_rto_ns, o_.max_rto_ns);
  next_paced_ns_ = in.next_paced_ns();
  probe_at_ns_ = in.probe_at_ns();
  timeouts_in_row_ = in.timeouts_in_row();
  dead_ = in.dead();
  retransmits_ = in.retransmits();
  fast_retransmits_ = in.fast_retransmits();
  timeouts_ = in.timeouts();
  swift_.Restore(in.swift());
  return true;
}

bool Sender::PopCompleted(uint32_t* token) {
  if (completed_.empty()) return false;
  *token = completed_.front();
  completed_.pop_front();
  return true;
}

}  // namespace snapd::pony
