// Capture: the frames ports receive and send, as pcapng (snapd/daemon/pcapng.h), for
// `snapctl capture` (the Capture RPC). A capture puts a tap on each port it names
// (engines/port.h: PortTap); with no capture a port pays one predictable branch a burst.
//
// On the engine's thread the tap keeps what passes the direction and the filter (a tcpdump
// expression compiled by libpcap and run by DPDK's rte_bpf, JIT-compiled where rte_bpf can), cut
// to the snap length, in a ring of its own (one producer, one consumer, bounded: when the reader
// falls behind, frames are dropped and counted, never waited for). The reader, a control-plane
// thread, drains the rings into pcapng blocks. Engine threads never block on it.
#ifndef SNAPD_SNAPD_DAEMON_CAPTURE_H_
#define SNAPD_SNAPD_DAEMON_CAPTURE_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "base/counter.h"
#include "engines/port.h"

struct rte_bpf;

namespace snapd {

// A compiled --filter. Matches runs on an engine thread, with that thread's scratch space.
class CaptureFilter {
 public:
  // INVALID_ARGUMENT with libpcap's words for an expression it cannot compile.
  static absl::StatusOr<std::unique_ptr<CaptureFilter>> Compile(const std::string& expression);
  // From `program()` of a filter compiled before (a live upgrade carries it): checked as libpcap
  // checks a program (bpf_validate), then loaded as Compile loads it.
  static absl::StatusOr<std::unique_ptr<CaptureFilter>> FromProgram(const std::string& expression,
                                                                    const std::string& program);
  ~CaptureFilter();
  // The classic BPF program libpcap compiled (struct bpf_insn after struct bpf_insn).
  const std::string& program() const { return program_; }
  // Whether the frame passes. `scratch`: kScratchBytes, aligned to 64, of the calling thread's.
  bool Matches(void* scratch, const uint8_t* data, uint32_t len) const;
  bool jit() const { return jit_ != nullptr; }
  static constexpr size_t kScratchBytes = 256;

 private:
  CaptureFilter() = default;
  std::string program_;
  rte_bpf* bpf_ = nullptr;
  uint64_t (*jit_)(void*) = nullptr;
};

struct CaptureSpec {
  std::vector<std::string> ports;  // port names ("app1", "nic0/q0")
  bool rx = true;                  // frames the ports received
  bool tx = true;                  // frames snapd sent out of them
  uint64_t count = 0;              // stop after this many frames (0: no limit)
  uint32_t snaplen = 262144;       // bytes kept of each frame
  std::string filter;              // tcpdump expression ("" : every frame)
  size_t ring_bytes = 4 << 20;     // per port
};

// A port's figures in a capture.
struct PortTotals {
  uint64_t seen = 0;      // frames in the direction asked
  uint64_t accepted = 0;  // of those, the ones the filter let through
  uint64_t dropped = 0;   // lost because the reader fell behind
  uint64_t written = 0;
};

// One port's tap and ring.
class PortCapture final : public PortTap {
 public:
  PortCapture(std::string port, size_t ring_bytes, const CaptureSpec& spec,
              const CaptureFilter* filter, std::atomic<int64_t>* remaining);
  const std::string& port() const { return port_; }

  // PortTap: the engine's thread.
  void Frames(const Packet* pkts, uint16_t n, bool sent) override;

  // The reader: appends an Enhanced Packet Block for each frame waiting (interface `interface`),
  // at most `max`, while *out is under `max_bytes`; returns how many.
  size_t Drain(uint32_t interface, size_t max, size_t max_bytes, std::string* out);

  uint64_t seen() const { return seen_.Get(); }
  uint64_t accepted() const { return accepted_.Get(); }
  uint64_t dropped() const { return dropped_.Get(); }
  uint64_t written() const { return written_.Get(); }

 private:
  bool Put(const uint8_t* data, uint32_t len, bool sent, uint64_t tsc);

  const std::string port_;
  const CaptureSpec& spec_;
  const CaptureFilter* const filter_;
  std::atomic<int64_t>* const remaining_;  // shared by the capture's ports; unused if no count
  const size_t ring_bytes_;                // a power of two
  std::unique_ptr<uint8_t[]> ring_;
  uint64_t start_tsc_ = 0;  // the TSC and CLOCK_MONOTONIC_RAW as the capture began (Drain)
  int64_t start_raw_ns_ = 0;
  alignas(64) std::atomic<uint64_t> head_{0};  // written by the engine's thread
  alignas(64) std::atomic<uint64_t> tail_{0};  // written by the reader
  // Written by the engine's thread (base/counter.h: one writer, no locked instruction)...
  alignas(64) Counter seen_, accepted_, dropped_;
  Counter written_;            // ... and by the reader
  uint64_t dropped_told_ = 0;  // reader: the drops already written in an epb_dropcount
  int64_t last_stamp_ns_ = 0;  // reader: the last frame's time
  alignas(64) unsigned char scratch_[CaptureFilter::kScratchBytes];  // the engine thread's
};

// A capture: its spec, a PortCapture per port, and the pcapng around them.
class Capture {
 public:
  // `filter`: spec.filter compiled already (CaptureFilter::Compile, off the main thread: libpcap
  // may look names up); nullptr: compiled here if there is one. `id`: the capture's (0: a random
  // one); `started_unix_ns` when it began (0: now). INVALID_ARGUMENT for a spec out of bounds (a
  // ring of 4 KiB to 64 MiB, a snap length of 1 to 262144, 1 to kMaxPorts ports); the snap length
  // is cut to what half the ring holds.
  static absl::StatusOr<std::unique_ptr<Capture>> Create(
      CaptureSpec spec, std::unique_ptr<CaptureFilter> filter = nullptr, uint64_t id = 0,
      int64_t started_unix_ns = 0);
  static constexpr size_t kMaxPorts = 256;
  // INVALID_ARGUMENT for a spec out of Create's bounds (a count past 2^62, no direction, a
  // filter longer than 4096 bytes too).
  static absl::Status Check(const CaptureSpec& spec);
  // The bytes the rings of a checked spec take.
  static size_t RingBytes(const CaptureSpec& spec);

  const CaptureSpec& spec() const { return spec_; }
  // What a live upgrade carries the capture by, and snapctl resumes it with; never 0.
  uint64_t id() const { return id_; }
  const CaptureFilter* filter() const { return filter_.get(); }
  // When it began (Unix ns; carried by an upgrade: the statistics blocks count from it).
  int64_t started_unix_ns() const { return started_unix_ns_; }

  // Set as this snapd lets go of everything to the one a live upgrade started (Daemon::Withdraw):
  // no engine here touches the rings again, and the new snapd goes on with the capture.
  void set_handed_over() { handed_over_.store(true, std::memory_order_release); }
  bool handed_over() const { return handed_over_.load(std::memory_order_acquire); }
  // A capture an upgrade carried here, taken up where the old snapd's stream ended: `written`
  // frames were written there, and `prior` holds its figures, one per port (added to this
  // snapd's in Totals and Trailer). INVALID_ARGUMENT, and nothing changed, if `prior` is not one
  // per port or its figures do not add up (to `written`).
  absl::Status Resume(uint64_t written, std::vector<PortTotals> prior);
  // Each port's figures, with the prior ones.
  std::vector<PortTotals> Totals() const;
  // Frames taken into the rings here and not written (yet).
  uint64_t Unread() const;
  std::vector<std::unique_ptr<PortCapture>>& ports() { return ports_; }
  bool jit() const { return filter_ != nullptr && filter_->jit(); }

  // The section header and an interface per port, each described by `descriptions[i]`.
  std::string Header(const std::vector<std::string>& descriptions) const;
  // Frames waiting, as pcapng, while *out is under `max_bytes` (one frame may pass it); how many.
  size_t Drain(std::string* out, size_t max_bytes);
  // The count reached.
  bool done() const { return spec_.count > 0 && written_ >= spec_.count; }
  uint64_t written() const { return written_; }
  uint64_t dropped() const;
  // An Interface Statistics Block per port, from `start_ns` to `end_ns` (Unix ns).
  std::string Trailer(int64_t start_ns, int64_t end_ns, const std::string& comment) const;

 private:
  explicit Capture(CaptureSpec spec) : spec_(std::move(spec)) {}
  CaptureSpec spec_;
  uint64_t id_ = 0;
  int64_t started_unix_ns_ = 0;
  std::atomic<bool> handed_over_{false};
  std::vector<PortTotals> prior_;
  std::unique_ptr<CaptureFilter> filter_;
  std::atomic<int64_t> remaining_{0};
  std::vector<std::unique_ptr<PortCapture>> ports_;
  uint64_t written_ = 0;
};

}  // namespace snapd

#endif  // SNAPD_SNAPD_DAEMON_CAPTURE_H_
