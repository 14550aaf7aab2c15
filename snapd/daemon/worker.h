// Worker: a thread that runs engines. It loops over its engines' Poll() and, between polls, runs
// the closures posted to its mailbox: control operations (attach a port, save state, move an
// engine) execute on the engine's own thread at a batch boundary, so engines need no locks.
//
// Modes:
//  - kDedicated: the worker spins on its engines without ever sleeping (pin it to a core of its
//    own); lowest latency, a whole core spent whether or not there is traffic. Without engines
//    (a new snapd's before they move in) it sleeps on its mailbox.
//  - kBlocking: after a short spin with no work, it arms every port that can wake it (app rings'
//    interrupt eventfds) and blocks in ppoll on them and its mailbox; ports that cannot wake it
//    (NIC queues without rx interrupts) bound the sleep, from a microsecond doubling up to four
//    milliseconds. CPU use follows load.
#ifndef SNAPD_SNAPD_DAEMON_WORKER_H_
#define SNAPD_SNAPD_DAEMON_WORKER_H_

#include <poll.h>
#include <sched.h>

#include <atomic>
#include <functional>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "base/counter.h"
#include "base/mutex.h"
#include "base/unique_fd.h"
#include "engines/engine.h"
#include "ipc/peer_fd.h"

namespace snapd {

// Every worker counter, declared once: X(name, meaning). WorkerStats and the API (v1::Worker in
// control/proto/snapd.proto) come from this list.
#define SNAPD_WORKER_COUNTERS(X)                                                                 \
  X(loops, "loops over the worker's engines")                                                    \
  X(sleeps, "times the worker blocked")                                                          \
  X(port_wakeups, "sleeps ended by a port's wake fd (an app's ring, a NIC rx interrupt)")        \
  X(timed_wakeups, "sleeps ended by their bound, to look at a port that cannot wake the worker") \
  X(stalls, "batches the watchdog found running past its limit")

struct alignas(64) WorkerStats {
#define SNAPD_WORKER_COUNTER_FIELD(name, meaning) Counter name;
  SNAPD_WORKER_COUNTERS(SNAPD_WORKER_COUNTER_FIELD)
#undef SNAPD_WORKER_COUNTER_FIELD
  Counter busy_ns;  // time in loops that found work (the API shows it as busy_percent)
};

class Worker {
 public:
  enum class Mode { kBlocking, kDedicated };

  // Starts the thread, pinned to `core` when core >= 0.
  explicit Worker(std::string name, int core = -1, Mode mode = Mode::kBlocking);
  // Stops and joins the thread; the engines it ran are not destroyed (the daemon owns them).
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  const std::string& name() const { return name_; }
  // The core the worker is pinned to, -1 if none.
  int core() const { return core_.load(std::memory_order_relaxed); }
  // Pins the worker to `core` (-1: any core of the process), at a batch boundary.
  void SetCore(int core);

  // Runs `fn` on the worker's thread between two polls and returns when it has run. Any thread but
  // the worker's own.
  void RunSync(const std::function<void()>& fn);

  // Starts / stops polling `engine` on this worker, at a batch boundary. Any thread but the
  // worker's.
  // Both return when the worker has done it, with the time it did (MonotonicNs on the worker:
  // the engine's first poll follows at once, or its last poll has ended).
  int64_t AddEngine(Engine* engine);
  int64_t RemoveEngine(Engine* engine);
  // Engines polled now (a copy). Any thread.
  std::vector<Engine*> engines();

  // Changes the mode, at a batch boundary. Any thread but the worker's.
  void SetMode(Mode mode);
  // While an engine's queueing delay exceeds `slo_ns`, writes `alarm_fd` (an eventfd), at most
  // every couple of milliseconds: how a compacting group learns of an overload without polling.
  // slo_ns 0 turns it off. Any thread but the worker's.
  void SetOverloadAlarm(int64_t slo_ns, int alarm_fd);
  Mode mode() const { return mode_.load(std::memory_order_relaxed); }

  const WorkerStats& stats() const { return stats_; }

  // The watchdog's look at this worker, from its own thread (see snapd/watchdog.h). Interrupts a
  // call on an app's fd that has lasted past `call_limit_ns` (the app raced the check that keeps
  // such calls from blocking: the call fails and the app's ring stops with a reason). Returns a
  // description of a batch that has run past `batch_limit_ns` the first time it sees it (and
  // counts it in stats().stalls), else "".
  std::string Inspect(int64_t now_ns, int64_t batch_limit_ns, int64_t call_limit_ns);
  // Calls fn on every live worker of the process, under a lock that keeps them alive meanwhile.
  static void ForEachWorker(const std::function<void(Worker&)>& fn);

  // The CPUs the process may use, as it had them at the first call of either function below
  // (main calls it first thing). Any thread.
  static cpu_set_t ProcessCpus();
  // Keeps every thread of the process but the pinned workers off the `reserved` cores (the
  // dedicated workers'): the control plane (gRPC, the metrics server, capture readers, DPDK's
  // own threads) and the unpinned workers share the rest, so that a dedicated core runs its
  // worker alone. Threads started later inherit the rest from the thread that starts them.
  // Reserving every CPU reserves none. Main thread.
  static void ReserveCores(const std::vector<int>& reserved);

 private:
  void Loop(std::promise<void>* started);
  void RunMail();
  void Pin(int core);  // worker thread only
  void CheckOverload(int64_t now);
  // Blocks until a port has frames, mail arrives, or `max_ns` passes when a port cannot wake us.
  void Sleep(int64_t max_ns);

  const std::string name_;
  std::atomic<int> core_;
  std::atomic<pid_t> tid_{0};  // the thread's, known once the constructor returns
  std::atomic<Mode> mode_;
  UniqueFd mail_fd_;  // eventfd: written with every posted closure, to wake a blocked worker
  std::atomic<bool> stop_{false};
  int64_t alarm_slo_ns_ = 0;      // worker thread only (set through the mailbox)
  int64_t alarm_set_slo_ns_ = 0;  // what the controlling thread last set
  int alarm_set_fd_ = -1;
  int alarm_fd_ = -1;
  int64_t last_alarm_ns_ = 0;
  std::atomic<bool> has_mail_{false};
  Mutex mu_;
  std::vector<std::function<void()>> mail_ ABSL_GUARDED_BY(mu_);
  std::vector<Engine*> engines_;  // worker thread only
  std::vector<Engine*> engines_copy_ ABSL_GUARDED_BY(mu_);
  WorkerStats stats_;
  // Seen by the watchdog: when the batch being run began (0: none), which engine of engines_copy_
  // it polls, and the worker's calls on apps' fds.
  std::atomic<int64_t> batch_since_{0};
  std::atomic<size_t> polling_{0};
  int64_t reported_since_ = 0;  // the watchdog's: the batch it last reported
  memif::PeerFdCalls peer_calls_;
  std::vector<pollfd> sleep_fds_;  // Sleep's, worker thread only
  std::vector<Port*> sleep_ports_;
  std::thread thread_;
};

// Moves `engine` from one worker to another: it stops at a batch boundary on `from` and resumes on
// `to`; frames wait in their queues meanwhile and none is lost.
void MoveEngine(Engine* engine, Worker& from, Worker& to);

}  // namespace snapd

#endif  // SNAPD_SNAPD_DAEMON_WORKER_H_
