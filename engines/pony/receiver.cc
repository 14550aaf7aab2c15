#include "engines/pony/receiver.h"

#include <cstring>
#include <utility>

namespace snapd::pony {

Receiver::Receiver(uint32_t first_seq, uint32_t budget, uint32_t max_message,
                   uint32_t first_message)
    : next_seq_(first_seq),
      seen_(kSeqWindow, false),
      next_message_(first_message),
      budget_(budget),
      max_message_(max_message) {}

bool Receiver::Seen(uint32_t seq) const {
  return seen_[(seen_base_ + (seq - next_seq_)) % kSeqWindow];
}

void Receiver::MarkSeen(uint32_t seq) {
  const uint32_t offset = seq - next_seq_;
  seen_[(seen_base_ + offset) % kSeqWindow] = true;
  if (offset + 1 > seen_span_) seen_span_ = offset + 1;
}

void Receiver::Advance() {
  while (seen_span_ > 0 && seen_[seen_base_]) {
    seen_[seen_base_] = false;
    seen_base_ = (seen_base_ + 1) % kSeqWindow;
    ++next_seq_;
    --seen_span_;
  }
  // Hand over, in order, the messages that are whole.
  for (auto it = partial_.find(next_message_); it != partial_.end() && it->second.complete;
       it = partial_.find(next_message_)) {
    ready_.push_back(Ready{std::move(it->second.bytes), it->second.end_seq});
    partial_.erase(it);
    ++next_message_;
  }
}

Receiver::Verdict Receiver::Fail(const char* why) {
  error_ = why;
  return Verdict::kProtocolError;
}

Receiver::Verdict Receiver::OnData(const PonyHeader& h, const uint8_t* bytes, uint32_t len) {
  if (error_ != nullptr) return Verdict::kProtocolError;
  if (SeqBefore(h.seq, next_seq_) || (h.seq - next_seq_ < kSeqWindow && Seen(h.seq))) {
    ++duplicates_;
    return Verdict::kDuplicate;
  }
  if (h.seq - next_seq_ >= kSeqWindow) return Fail("sequence number past the receive window");
  if (h.msg_len > max_message_) return Fail("message larger than the connection's maximum");
  // The common case of small messages in order: the next sequence number carries the next message
  // whole. It goes straight to the app's queue, without a reassembly buffer.
  if (h.seq == next_seq_ && h.msg_id == next_message_ && h.msg_offset == 0 && len == h.msg_len &&
      partial_.find(h.msg_id) == partial_.end()) {
    if (h.msg_len > budget_ - buffered_) {
      ++over_credit_;
      return Verdict::kOverCredit;
    }
    buffered_ += h.msg_len;
    ready_.push_back(Ready{std::string(reinterpret_cast<const char*>(bytes), len), h.seq + 1});
    ++next_message_;
    MarkSeen(h.seq);
    Advance();
    return Verdict::kAccepted;
  }
  if (SeqBefore(h.msg_id, next_message_)) return Fail("new data for a message already delivered");
  if (h.msg_id - next_message_ >= kMessageWindow) return Fail("message id past the window");
  auto it = partial_.find(h.msg_id);
  if (it == partial_.end()) {
    // A message's whole length counts against the budget from its first segment on.
    if (h.msg_len > budget_ - buffered_) {
      ++over_credit_;
      return Verdict::kOverCredit;
    }
    it = partial_.emplace(h.msg_id, Partial()).first;
    it->second.bytes.assign(h.msg_len, '\0');
    buffered_ += h.msg_len;
  } else if (it->second.bytes.size() != h.msg_len) {
    return Fail("a message's segments disagree on its length");
  }
  Partial& m = it->second;
  if (m.complete) return Fail("new data for a message already whole");
  // ParsePonyHeader checked msg_offset + len <= msg_len.
  memcpy(&m.bytes[h.msg_offset], bytes, len);
  m.received += len;
  if (m.received > h.msg_len) return Fail("a message's segments overlap");
  m.complete = m.received == h.msg_len;
  if (h.msg_offset + len == h.msg_len) m.end_seq = h.seq + 1;
  MarkSeen(h.seq);
  Advance();
  return Verdict::kAccepted;
}

std::string Receiver::PopMessage(uint32_t* end_seq) {
  std::string m = std::move(ready_.front().bytes);
  if (end_seq != nullptr) *end_seq = ready_.front().end_seq;
  ready_.pop_front();
  buffered_ -= static_cast<uint32_t>(m.size());
  return m;
}

void Receiver::Save(engines::PonyReceiverState* out) const {
  out->set_next_seq(next_seq_);
  for (uint32_t off = 0; off < seen_span_; ++off) {
    if (seen_[(seen_base_ + off) % kSeqWindow]) out->add_seen(off);
  }
  out->set_next_message(next_message_);
  for (const auto& [id, p] : partial_) {
    auto* o = out->add_partial();
    o->set_id(id);
    o->set_bytes(p.bytes);
    o->set_received(p.received);
    o->set_complete(p.complete);
    o->set_end_seq(p.end_seq);
  }
  for (const Ready& m : ready_) {
    out->add_ready(m.bytes);
    out->add_ready_end_seq(m.end_seq);
  }
  out->set_duplicates(duplicates_);
  out->set_over_credit(over_credit_);
}

bool Receiver::Restore(const engines::PonyReceiverState& in) {
  next_seq_ = in.next_seq();
  seen_.assign(kSeqWindow, false);
  seen_base_ = 0;
  seen_span_ = 0;
  for (uint32_t off : in.seen()) {
    if (off == 0 || off >= kSeqWindow) return false;  // next_seq_ itself is not received yet
    MarkSeen(next_seq_ + off);
  }
  next_message_ = in.next_message();
  partial_.clear();
  ready_.clear();
  uint64_t buffered = 0;
  for (const auto& o : in.partial()) {
    if (o.bytes().empty() || o.bytes().size() > max_message_ || o.received() > o.bytes().size()) {
      return false;
    }
    Partial& p = partial_[o.id()];
    p.bytes = o.bytes();
    p.received = o.received();
    p.complete = o.complete();
    p.end_seq = o.end_seq();
    buffered += p.bytes.size();
  }
  // A state saved before messages carried their end (ready_end_seq empty) restores with 0s: an
  // engine that holds its acknowledgements does not take such a state (its connections say so).
  if (in.ready_end_seq_size() != 0 && in.ready_end_seq_size() != in.ready_size()) return false;
  for (int i = 0; i < in.ready_size(); ++i) {
    ready_.push_back(Ready{in.ready(i), in.ready_end_seq_size() ? in.ready_end_seq(i) : 0});
    buffered += in.ready(i).size();
  }
  if (buffered > budget_) return false;
  buffered_ = static_cast<uint32_t>(buffered);
  duplicates_ = in.duplicates();
  over_credit_ = in.over_credit();
  return true;
}

int Receiver::SackBlocks(SackBlock* out, uint32_t held) const {
  // Runs of seen offsets past the cumulative ack, found from the highest down.
  int n = 0;
  // The held block is news each time (what came in order since): it keeps a place.
  const bool held_block = SeqBefore(held, next_seq_);
  const int gaps = held_block ? kMaxSackBlocks - 1 : kMaxSackBlocks;
  uint32_t offset = seen_span_;
  while (offset > 0 && n < gaps) {
    while (offset > 0 && !seen_[(seen_base_ + offset - 1) % kSeqWindow]) --offset;
    if (offset == 0) break;
    uint32_t end = offset;
    while (offset > 0 && seen_[(seen_base_ + offset - 1) % kSeqWindow]) --offset;
    out[n++] = SackBlock{next_seq_ + offset, next_seq_ + end};
  }
  if (held_block) out[n++] = SackBlock{held, next_seq_};
  return n;
}

}  // namespace snapd::pony
