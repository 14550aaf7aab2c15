#include "snapd/daemon/capture.h"

#include <pcap/pcap.h>
#include <rte_bpf.h>
#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <time.h>

#include <algorithm>
#include <cstring>
#include <random>

#include "absl/strings/str_cat.h"
#include "snapd/daemon/pcapng.h"

namespace snapd {
namespace {

static_assert(sizeof(rte_mbuf) <= CaptureFilter::kScratchBytes, "scratch holds an rte_mbuf");

// A frame's record in a ring: this header, then its bytes, padded to 8.
struct Record {
  uint32_t captured;  // kWrap: the ring turns here
  uint32_t original;
  uint64_t tsc;  // when it passed (the reader turns it into Unix time)
  uint32_t sent;
  uint32_t pad;
  uint64_t drops_before;  // the port's drops when this frame went in (epb_dropcount's base)
};
constexpr uint32_t kWrap = 0xffffffffu;

// The longest program the kernel's classic BPF takes (BPF_MAXINSNS in linux/bpf_common.h).
constexpr size_t kMaxInstructions = 4096;

uint64_t Align8(uint64_t n) { return (n + 7) & ~uint64_t{7}; }

size_t PowerOfTwoAtLeast(size_t n) {
  size_t p = 4096;
  while (p < n) p <<= 1;
  return p;
}

int64_t ClockNs(clockid_t clock) {
  timespec ts;
  clock_gettime(clock, &ts);
  return ts.tv_sec * int64_t{1000000000} + ts.tv_nsec;
}

int64_t RealtimeNs() { return ClockNs(CLOCK_REALTIME); }

// The TSC and a clock read together: the clock between two TSC reads close together (the thread
// may be preempted between two reads: then read again).
void ReadTogether(clockid_t clock, uint64_t* tsc, int64_t* ns) {
  for (int i = 0; i < 4; ++i) {
    const uint64_t t0 = rte_rdtsc();
    *ns = ClockNs(clock);
    const uint64_t t1 = rte_rdtsc();
    *tsc = t0 + (t1 - t0) / 2;
    if (t1 - t0 < rte_get_tsc_hz() / 100000) return;  // within 10 us
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<CaptureFilter>> CaptureFilter::Compile(
    const std::string& expression) {
  // libpcap compiles for a link type without a device (no capture of its own, no privileges).
  pcap_t* dead = pcap_open_dead(DLT_EN10MB, 262144);
  if (dead == nullptr) return absl::InternalError("filter: libpcap would not start");
  bpf_program program;
  if (pcap_compile(dead, &program, expression.c_str(), 1, PCAP_NETMASK_UNKNOWN) != 0) {
    std::string why = pcap_geterr(dead);
    pcap_close(dead);
    return absl::InvalidArgumentError(absl::StrCat("filter '", expression, "': ", why));
  }
  pcap_close(dead);
  std::string bytes(reinterpret_cast<const char*>(program.bf_insns),
                    program.bf_len * sizeof(bpf_insn));
  pcap_freecode(&program);
  return FromProgram(expression, bytes);
}

absl::StatusOr<std::unique_ptr<CaptureFilter>> CaptureFilter::FromProgram(
    const std::string& expression, const std::string& program) {
  const size_t n = program.size() / sizeof(bpf_insn);
  if (n == 0 || n > kMaxInstructions || program.size() % sizeof(bpf_insn) != 0) {
    return absl::InvalidArgumentError(absl::StrCat("filter '", expression, "': a program of ",
                                                   program.size(), " bytes is no BPF program"));
  }
  std::vector<bpf_insn> insns(n);
  memcpy(insns.data(), program.data(), program.size());
  if (bpf_validate(insns.data(), static_cast<int>(n)) == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("filter '", expression, "': libpcap finds the program invalid"));
  }
  // Classic BPF to DPDK's eBPF, over an mbuf.
  bpf_program classic{static_cast<u_int>(n), insns.data()};
  rte_bpf_prm* prm = rte_bpf_convert(&classic);
  if (prm == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "filter '", expression, "': rte_bpf cannot convert it (rte_errno ", rte_errno, ")"));
  }
  std::unique_ptr<CaptureFilter> f(new CaptureFilter());
  f->program_ = program;
  f->bpf_ = rte_bpf_load(prm);
  rte_free(prm);
  if (f->bpf_ == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "filter '", expression, "': rte_bpf would not load it (rte_errno ", rte_errno, ")"));
  }
  rte_bpf_jit jit{};
  if (rte_bpf_get_jit(f->bpf_, &jit) == 0 && jit.func != nullptr) f->jit_ = jit.func;
  return f;
}

CaptureFilter::~CaptureFilter() {
  if (bpf_ != nullptr) rte_bpf_destroy(bpf_);
}

bool CaptureFilter::Matches(void* scratch, const uint8_t* data, uint32_t len) const {
  // The program reads an mbuf: one made over the frame's bytes, in place.
  auto* m = static_cast<rte_mbuf*>(scratch);
  m->buf_addr = const_cast<uint8_t*>(data);
  m->data_off = 0;
  m->data_len = static_cast<uint16_t>(std::min<uint32_t>(len, UINT16_MAX));
  m->pkt_len = m->data_len;
  m->nb_segs = 1;
  m->next = nullptr;
  return (jit_ != nullptr ? jit_(m) : rte_bpf_exec(bpf_, m)) != 0;
}

PortCapture::PortCapture(std::string port, size_t ring_bytes, const CaptureSpec& spec,
                         const CaptureFilter* filter, std::atomic<int64_t>* remaining)
    : port_(std::move(port)),
      spec_(spec),
      filter_(filter),
      remaining_(remaining),
      ring_bytes_(PowerOfTwoAtLeast(ring_bytes)),
      ring_(new uint8_t[ring_bytes_]) {
  ReadTogether(CLOCK_MONOTONIC_RAW, &start_tsc_, &start_raw_ns_);
  memset(scratch_, 0, sizeof(scratch_));
}

void PortCapture::Frames(const Packet* pkts, uint16_t n, bool sent) {
  if (sent ? !spec_.tx : !spec_.rx) return;
  seen_.Add(n);
  // One TSC read a burst (its frames came together): a few cycles, where clock_gettime on a VM
  // (kvm-clock) costs tens of nanoseconds.
  const uint64_t now = rte_rdtsc();
  for (uint16_t i = 0; i < n; ++i) {
    if (filter_ != nullptr && !filter_->Matches(scratch_, pkts[i].data, pkts[i].len)) continue;
    accepted_.Add();
    if (spec_.count > 0 && remaining_->fetch_sub(1, std::memory_order_relaxed) <= 0) {
      remaining_->fetch_add(1, std::memory_order_relaxed);  // not ours to take: the count is full
      return;
    }
    if (!Put(pkts[i].data, pkts[i].len, sent, now)) {
      dropped_.Add();
      // The count is of frames written: one dropped leaves room for another.
      if (spec_.count > 0) remaining_->fetch_add(1, std::memory_order_relaxed);
    }
  }
}

bool PortCapture::Put(const uint8_t* data, uint32_t len, bool sent, uint64_t tsc) {
  const uint32_t captured = std::min(len, spec_.snaplen);
  const uint64_t size = Align8(sizeof(Record) + captured);
  if (size > ring_bytes_ / 2) return false;  // larger than the ring can take in one piece
  uint64_t head = head_.load(std::memory_order_relaxed);
  const uint64_t tail = tail_.load(std::memory_order_acquire);
  const uint64_t at = head % ring_bytes_;
  const uint64_t skip = at + size > ring_bytes_ ? ring_bytes_ - at : 0;
  if (head + skip + size - tail > ring_bytes_) return false;  // full: the reader is behind
  if (skip > 0) {
    memcpy(&ring_[at], &kWrap, sizeof(kWrap));
    head += skip;
  }
  Record r{captured, len, tsc, sent ? 1u : 0u, 0, dropped_.Get()};
  memcpy(&ring_[head % ring_bytes_], &r, sizeof(r));
  memcpy(&ring_[head % ring_bytes_ + sizeof(r)], data, captured);
  head_.store(head + size, std::memory_order_release);
  return true;
}

size_t PortCapture::Drain(uint32_t interface, size_t max, size_t max_bytes, std::string* out) {
  uint64_t tail = tail_.load(std::memory_order_relaxed);
  const uint64_t head = head_.load(std::memory_order_acquire);
  // TSC to Unix time: counted back from now (the real-time clock read with the TSC), at the rate
  // the TSC has kept against CLOCK_MONOTONIC_RAW since the capture began (which no clock step
  // moves; the EAL's frequency, rounded to 10 MHz, until 10 ms have passed). Frames wait in the
  // ring for milliseconds: the rate's error, times that, is nothing. A port's stamps never go
  // back.
  uint64_t now_tsc = 0, raw_tsc = 0;
  int64_t now_ns = 0, raw_ns = 0;
  ReadTogether(CLOCK_REALTIME, &now_tsc, &now_ns);
  ReadTogether(CLOCK_MONOTONIC_RAW, &raw_tsc, &raw_ns);
  double ns_per_tick = 1e9 / static_cast<double>(rte_get_tsc_hz());
  if (raw_ns - start_raw_ns_ > 10000000 && raw_tsc > start_tsc_) {
    ns_per_tick =
        static_cast<double>(raw_ns - start_raw_ns_) / static_cast<double>(raw_tsc - start_tsc_);
  }
  size_t taken = 0;
  while (tail < head && taken < max && out->size() < max_bytes) {
    Record r;
    memcpy(&r.captured, &ring_[tail % ring_bytes_], sizeof(r.captured));
    if (r.captured == kWrap) {
      tail += ring_bytes_ - tail % ring_bytes_;
      continue;
    }
    memcpy(&r, &ring_[tail % ring_bytes_], sizeof(r));
    const int64_t unix_ns = std::max(
        last_stamp_ns_,
        r.tsc >= now_tsc
            ? now_ns
            : now_ns - static_cast<int64_t>(static_cast<double>(now_tsc - r.tsc) * ns_per_tick));
    last_stamp_ns_ = unix_ns;
    pcapng::Packet(interface, unix_ns, &ring_[tail % ring_bytes_ + sizeof(r)], r.captured,
                   r.original, r.sent ? pcapng::Direction::kOut : pcapng::Direction::kIn,
                   r.drops_before - dropped_told_, out);
    dropped_told_ = r.drops_before;
    tail += Align8(sizeof(r) + r.captured);
    ++taken;
    written_.Add();
  }
  tail_.store(tail, std::memory_order_release);
  return taken;
}

absl::Status Capture::Check(const CaptureSpec& spec) {
  if (spec.ring_bytes < 4096 || spec.ring_bytes > (size_t{64} << 20)) {
    return absl::InvalidArgumentError("a capture's ring: from 4 KiB to 64 MiB");
  }
  if (spec.snaplen == 0 || spec.snaplen > 262144) {
    return absl::InvalidArgumentError("a capture's snap length: 1 to 262144");
  }
  if (spec.ports.empty() || spec.ports.size() > kMaxPorts) {
    return absl::InvalidArgumentError(absl::StrCat("a capture's ports: 1 to ", kMaxPorts));
  }
  if (!spec.rx && !spec.tx) return absl::InvalidArgumentError("a capture of no direction");
  if (spec.count > (uint64_t{1} << 62)) return absl::InvalidArgumentError("count: too large");
  if (spec.filter.size() > 4096) return absl::InvalidArgumentError("filter: at most 4096 bytes");
  return absl::OkStatus();
}

size_t Capture::RingBytes(const CaptureSpec& spec) {
  return PowerOfTwoAtLeast(spec.ring_bytes) * spec.ports.size();
}

absl::StatusOr<std::unique_ptr<Capture>> Capture::Create(CaptureSpec spec,
                                                         std::unique_ptr<CaptureFilter> compiled,
                                                         uint64_t id, int64_t started_unix_ns) {
  absl::Status checked = Check(spec);
  if (!checked.ok()) return checked;
  // A frame of the snap length fits in half the ring with its record.
  spec.snaplen = std::min<uint32_t>(spec.snaplen, spec.ring_bytes / 2 - 64);
  std::unique_ptr<Capture> c(new Capture(std::move(spec)));
  if (id == 0) {
    std::random_device random;
    id = (uint64_t{random()} << 32 | random()) | 1;  // never 0
  }
  c->id_ = id;
  c->started_unix_ns_ = started_unix_ns > 0 ? started_unix_ns : RealtimeNs();
  if (compiled != nullptr) {
    c->filter_ = std::move(compiled);
  } else if (!c->spec_.filter.empty()) {
    auto filter = CaptureFilter::Compile(c->spec_.filter);
    if (!filter.ok()) return filter.status();
    c->filter_ = std::move(*filter);
  }
  c->remaining_ = static_cast<int64_t>(c->spec_.count);
  for (const std::string& port : c->spec_.ports) {
    c->ports_.push_back(std::make_unique<PortCapture>(port, c->spec_.ring_bytes, c->spec_,
                                                      c->filter_.get(), &c->remaining_));
  }
  return c;
}

std::string Capture::Header(const std::vector<std::string>& descriptions) const {
  std::string out;
  pcapng::SectionHeader("snapd", &out);
  for (size_t i = 0; i < ports_.size(); ++i) {
    pcapng::Interface(ports_[i]->port(), i < descriptions.size() ? descriptions[i] : "",
                      spec_.snaplen, &out);
  }
  return out;
}

size_t Capture::Drain(std::string* out, size_t max_bytes) {
  size_t n = 0;
  // A few frames from each port in turn, so that one busy port does not hold back the others'.
  for (bool any = true; any && out->size() < max_bytes;) {
    any = false;
    for (size_t i = 0; i < ports_.size() && out->size() < max_bytes; ++i) {
      const size_t want = spec_.count > 0 ? std::min<uint64_t>(64, spec_.count - written_) : 64;
      if (want == 0) return n;
      const size_t got = ports_[i]->Drain(static_cast<uint32_t>(i), want, max_bytes, out);
      n += got;
      written_ += got;
      any |= got > 0;
    }
  }
  return n;
}

uint64_t Capture::dropped() const {
  uint64_t d = 0;
  for (const PortTotals& t : Totals()) d += t.dropped;
  return d;
}

absl::Status Capture::Resume(uint64_t written, std::vector<PortTotals> prior) {
  if (prior.size() != ports_.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("resume_prior: ", prior.size(), " port(s); the capture has ", ports_.size()));
  }
  // Figures that add up: what was written and dropped passed the filter, which was seen; and
  // the frames written in all are the ports'.
  uint64_t sum = 0;
  for (const PortTotals& t : prior) {
    if (t.accepted > t.seen || t.written > t.accepted || t.dropped > t.accepted - t.written ||
        t.written > (uint64_t{1} << 62)) {
      return absl::InvalidArgumentError("resume_prior: figures that do not add up");
    }
    sum += t.written;
  }
  if (sum != written) {
    return absl::InvalidArgumentError(
        absl::StrCat("resume_written: ", written, ", but the ports wrote ", sum));
  }
  prior_ = std::move(prior);
  written_ = spec_.count > 0 ? std::min(written, spec_.count) : written;
  // The taps admit no more than the count leaves.
  if (spec_.count > 0) remaining_.fetch_sub(static_cast<int64_t>(written_));
  return absl::OkStatus();
}

uint64_t Capture::Unread() const {
  uint64_t taken = 0, written = 0;
  for (const auto& p : ports_) {
    taken += p->accepted() - std::min(p->accepted(), p->dropped());
    written += p->written();
  }
  return taken - std::min(taken, written);
}

std::vector<PortTotals> Capture::Totals() const {
  std::vector<PortTotals> totals(ports_.size());
  for (size_t i = 0; i < ports_.size(); ++i) {
    const PortCapture& p = *ports_[i];
    const PortTotals before = i < prior_.size() ? prior_[i] : PortTotals{};
    // Figures snapctl handed back: added without wrapping.
    auto add = [](uint64_t a, uint64_t b) { return a + b < a ? UINT64_MAX : a + b; };
    totals[i] = {add(before.seen, p.seen()), add(before.accepted, p.accepted()),
                 add(before.dropped, p.dropped()), add(before.written, p.written())};
  }
  return totals;
}

std::string Capture::Trailer(int64_t start_ns, int64_t end_ns, const std::string& comment) const {
  std::string out;
  const std::vector<PortTotals> totals = Totals();
  for (size_t i = 0; i < totals.size(); ++i) {
    const PortTotals& t = totals[i];
    pcapng::Statistics(static_cast<uint32_t>(i), start_ns, end_ns, t.seen, t.accepted, t.dropped,
                       t.written, comment, &out);
  }
  return out;
}

}  // namespace snapd
