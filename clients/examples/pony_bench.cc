// pony_bench: a pony client app against pony_echo. It opens one connection and runs one mode:
//
//   rpc       --count round trips of --size bytes, one at a time: p50 and p99 in microseconds
//   pipeline  --window messages of --size bytes in flight for --duration_s: answers a second
//   bulk      1 MiB messages (--size) for --duration_s, as many in flight as the budget allows,
//             each answered by its digest: Gbit/s of messages delivered intact
//   check     --count messages (or for --duration_s) of random sizes up to --size, --window in
//             flight, each carrying its sequence number: every answer must match, in order
//
// Prints one line (`pony_bench MODE key=value ...`) and exits 0, or names what went wrong and exits
// non-zero: 2 refused, 3 the connection closed, 4 no progress for --timeout_s, 5 a wrong answer.
//
//   pony_bench --id=N --peer=IP --peer_app=M --mode=rpc [--size=64 --count=10000]
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <deque>
#include <random>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "base/addr.h"
#include "base/clock.h"
#include "clients/libsnap.h"
#include "clients/pony.h"
#include "clients/traffic.h"

ABSL_FLAG(std::string, socket, "", "snapd's memif socket (default: snapd's default).");
ABSL_FLAG(uint32_t, id, 0, "Interface id registered with snapd (the app's pony id).");
ABSL_FLAG(std::string, secret, "", "Interface secret, if registered with one.");
ABSL_FLAG(std::string, peer, "", "The peer host's pony address (required).");
ABSL_FLAG(uint32_t, peer_app, 0, "The peer app's id (required).");
ABSL_FLAG(std::string, mode, "rpc", "rpc, pipeline, bulk or check.");
ABSL_FLAG(uint32_t, size, 64, "Message bytes (check: the largest; bulk: default 1 MiB).");
ABSL_FLAG(uint64_t, count, 10000, "rpc, check: messages.");
ABSL_FLAG(uint32_t, window, 32, "pipeline, check: messages in flight.");
ABSL_FLAG(double, duration_s, 0,
          "pipeline, bulk: seconds (0: 3); check: seconds instead of --count if set.");
ABSL_FLAG(uint32_t, echo_max, 4096,
          "pony_echo's --echo_max: longer messages come back as digests.");
ABSL_FLAG(bool, poll, false, "Spin while waiting instead of sleeping on the ring's interrupt.");
ABSL_FLAG(int, timeout_s, 10, "Give up after this many seconds without progress.");
ABSL_FLAG(uint32_t, seed, 1, "check: the random sizes' seed.");
ABSL_FLAG(std::string, stop_file, "",
          "check: stop sending once this file exists (then wait for the answers and report).");

namespace {

std::atomic<bool> g_stop{false};
void OnSignal(int) { g_stop = true; }

[[noreturn]] void Fail(int code, const std::string& what) {
  fprintf(stderr, "pony_bench: %s\n", what.c_str());
  exit(code);
}

class Bench {
 public:
  Bench(snap::Pony* pony, bool poll, int timeout_s, uint32_t echo_max)
      : pony_(pony),
        poll_(poll),
        timeout_ns_(int64_t{timeout_s} * 1000000000),
        echo_max_(echo_max) {}

  void Connect(uint32_t peer, uint16_t app) {
    absl::Status s = pony_->Connect(peer, app, 1);
    if (!s.ok()) Fail(2, std::string(s.message()));
    snap::PonyEvent ev = Await();
    if (ev.type == snap::PonyEvent::kRefused) {
      Fail(2, std::string("refused: ") + snap::PonyCodeName(ev.code));
    }
    if (ev.type != snap::PonyEvent::kConnected) Fail(5, "expected CONNECTED");
    conn_ = ev.conn;
  }

  // Sends `m` (queued until the budget takes it) and remembers it for its answer.
  void Send(std::string m) {
    outstanding_.push_back(std::move(m));
    Pump();
  }
  size_t outstanding() const { return outstanding_.size(); }

  // Waits for the next answer and checks it against the oldest message sent; returns its size.
  size_t Answer() {
    while (true) {
      snap::PonyEvent ev = Await();
      if (ev.type == snap::PonyEvent::kSent) continue;
      if (ev.type != snap::PonyEvent::kMessage) Fail(5, "unexpected event");
      if (outstanding_.empty()) Fail(5, "an answer to nothing");
      const std::string& m = outstanding_.front();
      bool ok;
      if (m.size() <= echo_max_) {
        ok = ev.message == m;
      } else {
        const uint64_t digest = snap::MessageDigest(m);
        ok = ev.message.size() == 16;
        for (int i = 0; ok && i < 8; ++i) {
          ok = static_cast<uint8_t>(ev.message[i]) ==
                   static_cast<uint8_t>(m.size() >> (56 - 8 * i)) &&
               static_cast<uint8_t>(ev.message[8 + i]) ==
                   static_cast<uint8_t>(digest >> (56 - 8 * i));
        }
      }
      if (!ok) {
        ++errors_;
        fprintf(stderr, "pony_bench: answer %lu does not match its message (%zu bytes)\n",
                answered_, m.size());
      }
      const size_t size = m.size();
      outstanding_.pop_front();
      --next_;  // the answered message was sent
      ++answered_;
      Pump();
      return size;
    }
  }

  uint64_t errors() const { return errors_; }

  // Closes the connection once what was sent is acknowledged, and waits for the close.
  void Close() {
    absl::Status s = pony_->Close(conn_);
    if (!s.ok()) Fail(3, std::string(s.message()));
    snap::PonyEvent ev;
    const int64_t deadline = snapd::MonotonicNs() + timeout_ns_;
    while (snapd::MonotonicNs() < deadline) {
      if (!pony_->Next(&ev)) {
        if (!poll_) pony_->Wait(100);
        continue;
      }
      if (ev.type == snap::PonyEvent::kClosed) {
        if (ev.code != 0) Fail(3, std::string("close: ") + snap::PonyCodeName(ev.code));
        return;
      }
    }
    Fail(4, "no close within the timeout");
  }

 private:
  // Hands the library the messages its budget takes now.
  void Pump() {
    while (next_ < outstanding_.size()) {
      const std::string& m = outstanding_[next_];
      absl::Status s = pony_->Send(conn_, m, 0);
      if (absl::IsResourceExhausted(s)) return;
      // Closed under us: its kClosed event, queued behind this one, says why.
      if (absl::IsFailedPrecondition(s)) return;
      if (!s.ok()) Fail(3, std::string(s.message()));
      ++next_;
    }
  }

  snap::PonyEvent Await() {
    int64_t since = snapd::MonotonicNs();
    snap::PonyEvent ev;
    while (true) {
      if (g_stop) Fail(4, "interrupted");
      if (pony_->Next(&ev)) {
        if (ev.type == snap::PonyEvent::kClosed) {
          Fail(3, std::string("connection closed: ") + snap::PonyCodeName(ev.code));
        }
        if (ev.type == snap::PonyEvent::kSent) Pump();
        return ev;
      }
      absl::Status c = pony_->app().CheckConnection();
      if (!c.ok()) Fail(3, std::string("detached from snapd: ") + std::string(c.message()));
      if (snapd::MonotonicNs() - since > timeout_ns_) {
        Fail(4, "no progress for " + std::to_string(timeout_ns_ / 1000000000) + " s (" +
                    std::to_string(answered_) + " answers)");
      }
      if (!poll_) pony_->Wait(100);
    }
  }

  snap::Pony* pony_;
  const bool poll_;
  const int64_t timeout_ns_;
  const uint32_t echo_max_;
  uint32_t conn_ = 0;
  std::deque<std::string> outstanding_;  // sent or queued, not answered, oldest first
  size_t next_ = 0;                      // outstanding_[next_] is the first not yet sent
  uint64_t answered_ = 0;
  uint64_t errors_ = 0;
};

std::string Message(uint64_t seq, uint32_t size, std::mt19937& rng) {
  std::string m(size, '\0');
  for (char& ch : m) ch = static_cast<char>(rng());
  for (int i = 0; i < 8 && i < static_cast<int>(size); ++i)
    m[i] = static_cast<char>(seq >> (8 * i));
  return m;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "Measures pony against pony_echo.\nUsage: pony_bench --id=N --peer=IP --peer_app=M "
      "--mode=rpc|pipeline|bulk|check");
  absl::ParseCommandLine(argc, argv);
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  uint32_t peer = 0;
  if (!snapd::ParseIpv4(absl::GetFlag(FLAGS_peer), &peer) || absl::GetFlag(FLAGS_peer_app) == 0 ||
      absl::GetFlag(FLAGS_peer_app) > 65535) {
    Fail(1, "--peer=IPv4 and --peer_app=1..65535 are required");
  }
  const std::string mode = absl::GetFlag(FLAGS_mode);
  if (mode != "rpc" && mode != "pipeline" && mode != "bulk" && mode != "check") {
    Fail(1, "--mode: rpc, pipeline, bulk or check");
  }
  auto app = snap::App::Attach({absl::GetFlag(FLAGS_socket), absl::GetFlag(FLAGS_id),
                                absl::GetFlag(FLAGS_secret), "pony_bench"});
  if (!app.ok()) Fail(1, std::string(app.status().message()));
  snap::Pony pony(app->get());
  Bench bench(&pony, absl::GetFlag(FLAGS_poll), absl::GetFlag(FLAGS_timeout_s),
              absl::GetFlag(FLAGS_echo_max));
  bench.Connect(peer, static_cast<uint16_t>(absl::GetFlag(FLAGS_peer_app)));
  std::mt19937 rng(absl::GetFlag(FLAGS_seed));
  uint32_t size = absl::GetFlag(FLAGS_size);
  const double duration_s = absl::GetFlag(FLAGS_duration_s);
  const int64_t duration_ns = static_cast<int64_t>((duration_s > 0 ? duration_s : 3) * 1e9);
  const uint64_t count = absl::GetFlag(FLAGS_count);
  const uint32_t window = std::max<uint32_t>(1, absl::GetFlag(FLAGS_window));
  if (mode == "rpc") {
    std::vector<int64_t> rtt;
    std::string m = Message(0, size, rng);
    for (uint64_t i = 0; i < count; ++i) {
      const int64_t t0 = snapd::MonotonicNs();
      bench.Send(m);
      bench.Answer();
      rtt.push_back(snapd::MonotonicNs() - t0);
    }
    const int64_t p50 = snap::Percentile(rtt, 50), p99 = snap::Percentile(rtt, 99);
    printf("pony_bench rpc rounds=%lu p50_us=%ld p99_us=%ld errors=%lu\n", count, p50 / 1000,
           p99 / 1000, bench.errors());
  } else if (mode == "pipeline" || mode == "bulk") {
    if (mode == "bulk" && size == 64) size = 1 << 20;
    std::string m = Message(0, size, rng);
    const int64_t start = snapd::MonotonicNs();
    uint64_t answers = 0, bytes = 0;
    const uint32_t in_flight = mode == "bulk" ? 8 : window;  // bulk: the budget decides
    while (snapd::MonotonicNs() - start < duration_ns) {
      while (bench.outstanding() < in_flight) bench.Send(m);
      bytes += bench.Answer();
      ++answers;
    }
    const double s = (snapd::MonotonicNs() - start) / 1e9;
    if (mode == "pipeline") {
      printf("pony_bench pipeline msgs=%lu msgs_per_s=%.0f errors=%lu\n", answers, answers / s,
             bench.errors());
    } else {
      printf("pony_bench bulk bytes=%lu gbps=%.2f errors=%lu\n", bytes, bytes * 8 / s / 1e9,
             bench.errors());
    }
  } else {
    std::uniform_int_distribution<uint32_t> sizes(1, size);
    const int64_t start = snapd::MonotonicNs();
    uint64_t sent = 0, received = 0;
    const std::string stop_file = absl::GetFlag(FLAGS_stop_file);
    auto more = [&] {
      if (!stop_file.empty() && access(stop_file.c_str(), F_OK) == 0) return false;
      return duration_s > 0 ? snapd::MonotonicNs() - start < duration_ns : sent < count;
    };
    while (more() || bench.outstanding() > 0) {
      while (more() && bench.outstanding() < window) bench.Send(Message(sent++, sizes(rng), rng));
      bench.Answer();
      ++received;
    }
    printf("pony_bench check sent=%lu received=%lu errors=%lu\n", sent, received, bench.errors());
  }
  fflush(stdout);
  bench.Close();
  return bench.errors() > 0 ? 5 : 0;
}
