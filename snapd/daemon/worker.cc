#include "snapd/daemon/worker.h"

#include <dirent.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <future>
#include <set>

#include "absl/strings/str_cat.h"
#include "glog/logging.h"
#include "snapd/daemon/dpdk.h"

namespace snapd {
namespace {

// The longest a blocked worker sleeps when a port cannot wake it (a NIC queue without rx
// interrupts): the worst first-frame delay on an idle NIC, against idle CPU (each wake-up costs
// ~30 us of CPU on these VMs: 4 ms keeps an idle worker under 1% of a core).
constexpr int64_t kMaxBackoffNs = 4000000;
// After work, a worker that may sleep polls on for at least this long (and 256 polls) first: an
// answer that comes back within it costs no wake-up. Counted in time, not polls, since an empty
// poll costs an engine anything from tens of nanoseconds to microseconds.
constexpr int64_t kSpinAfterWorkNs = 50000;

// Every live worker, for the watchdog.
Mutex workers_mu;
std::vector<Worker*>& LiveWorkers() ABSL_EXCLUSIVE_LOCKS_REQUIRED(workers_mu) {
  static auto* workers = new std::vector<Worker*>();
  return *workers;
}

// The process's CPUs as it started, and those of them no dedicated worker holds (ReserveCores).
Mutex cpus_mu;
bool cpus_known ABSL_GUARDED_BY(cpus_mu) = false;
cpu_set_t process_cpus ABSL_GUARDED_BY(cpus_mu);
cpu_set_t shared_cpus ABSL_GUARDED_BY(cpus_mu);

void KnowCpus() ABSL_EXCLUSIVE_LOCKS_REQUIRED(cpus_mu) {
  if (cpus_known) return;
  CPU_ZERO(&process_cpus);
  sched_getaffinity(0, sizeof(process_cpus), &process_cpus);
  shared_cpus = process_cpus;
  cpus_known = true;
}

cpu_set_t SharedCpus() {
  MutexLock lock(&cpus_mu);
  KnowCpus();
  return shared_cpus;
}

}  // namespace

cpu_set_t Worker::ProcessCpus() {
  MutexLock lock(&cpus_mu);
  KnowCpus();
  return process_cpus;
}

void Worker::ReserveCores(const std::vector<int>& reserved) {
  cpu_set_t shared = ProcessCpus();
  for (int core : reserved) {
    if (core >= 0 && core < CPU_SETSIZE) CPU_CLR(core, &shared);
  }
  if (CPU_COUNT(&shared) == 0) shared = ProcessCpus();
  {
    MutexLock lock(&cpus_mu);
    if (CPU_EQUAL(&shared, &shared_cpus)) return;
    shared_cpus = shared;
  }
  // Every thread but the pinned workers'. A worker's thread id is known once its constructor
  // returns, and this thread (main) is the one that constructs and re-pins workers.
  std::set<pid_t> pinned;
  {
    MutexLock lock(&workers_mu);
    for (Worker* w : LiveWorkers()) {
      if (w->core() >= 0) pinned.insert(w->tid_.load(std::memory_order_acquire));
    }
  }
  DIR* tasks = opendir("/proc/self/task");
  if (tasks == nullptr) {
    LOG(WARNING) << "cannot list the process's threads to keep them off the dedicated cores";
    return;
  }
  while (dirent* entry = readdir(tasks)) {
    const pid_t tid = static_cast<pid_t>(atoi(entry->d_name));
    if (tid <= 0 || pinned.count(tid) > 0) continue;
    // A thread that ended meanwhile (ESRCH) is no matter.
    (void)sched_setaffinity(tid, sizeof(shared), &shared);
  }
  closedir(tasks);
}

Worker::Worker(std::string name, int core, Mode mode)
    : name_(std::move(name)),
      core_(core),
      mode_(mode),
      mail_fd_(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
  std::promise<void> started;
  thread_ = std::thread([this, &started] { Loop(&started); });
  started.get_future().wait();  // pinned, its thread id known (ReserveCores)
  MutexLock lock(&workers_mu);
  LiveWorkers().push_back(this);
}

Worker::~Worker() {
  {
    MutexLock lock(&workers_mu);
    auto& live = LiveWorkers();
    live.erase(std::remove(live.begin(), live.end(), this), live.end());
  }
  stop_ = true;
  uint64_t one = 1;
  (void)!write(mail_fd_.get(), &one, sizeof(one));
  thread_.join();
}

void Worker::Pin(int core) {
  cpu_set_t set = SharedCpus();
  if (core >= 0) {
    CPU_ZERO(&set);
    CPU_SET(core, &set);
  }
  if (sched_setaffinity(0, sizeof(set), &set) != 0) {
    LOG(WARNING) << name_ << ": cannot pin to core " << core;
  }
}

void Worker::SetCore(int core) {
  RunSync([&] {
    Pin(core);
    core_.store(core, std::memory_order_relaxed);
  });
}

void Worker::SetOverloadAlarm(int64_t slo_ns, int alarm_fd) {
  if (alarm_set_slo_ns_ == slo_ns && alarm_set_fd_ == alarm_fd) return;  // nothing changes
  alarm_set_slo_ns_ = slo_ns;
  alarm_set_fd_ = alarm_fd;
  RunSync([&] {
    alarm_slo_ns_ = slo_ns;
    alarm_fd_ = alarm_fd;
  });
}

void Worker::CheckOverload(int64_t now) {
  if (now - last_alarm_ns_ < 2000000) return;
  for (Engine* e : engines_) {
    if (e->QueueingDelayNs(now) > alarm_slo_ns_) {
      uint64_t one = 1;
      (void)!write(alarm_fd_, &one, sizeof(one));
      last_alarm_ns_ = now;
      return;
    }
  }
}

void Worker::SetMode(Mode mode) {
  RunSync([&] { mode_.store(mode, std::memory_order_relaxed); });
}

void Worker::RunSync(const std::function<void()>& fn) {
  std::promise<void> done;
  {
    MutexLock lock(&mu_);
    mail_.push_back([&] {
      fn();
      done.set_value();
    });
    has_mail_.store(true, std::memory_order_release);
  }
  uint64_t one = 1;
  (void)!write(mail_fd_.get(), &one, sizeof(one));
  done.get_future().wait();
}

int64_t Worker::AddEngine(Engine* engine) {
  int64_t at = 0;
  RunSync([&] {
    at = MonotonicNs();
    engines_.push_back(engine);
    MutexLock lock(&mu_);
    engines_copy_ = engines_;
  });
  return at;
}

int64_t Worker::RemoveEngine(Engine* engine) {
  int64_t at = 0;
  RunSync([&] {
    at = MonotonicNs();
    engines_.erase(std::remove(engines_.begin(), engines_.end(), engine), engines_.end());
    MutexLock lock(&mu_);
    engines_copy_ = engines_;
  });
  return at;
}

std::vector<Engine*> Worker::engines() {
  MutexLock lock(&mu_);
  return engines_copy_;
}

void Worker::RunMail() {
  std::vector<std::function<void()>> mail;
  {
    MutexLock lock(&mu_);
    mail.swap(mail_);
    has_mail_.store(false, std::memory_order_relaxed);
  }
  for (auto& fn : mail) fn();
}

void Worker::ForEachWorker(const std::function<void(Worker&)>& fn) {
  MutexLock lock(&workers_mu);
  for (Worker* w : LiveWorkers()) fn(*w);
}

std::string Worker::Inspect(int64_t now_ns, int64_t batch_limit_ns, int64_t call_limit_ns) {
  // The batch first: once interrupted, the call (and then the batch) may end at once.
  int64_t since = batch_since_.load(std::memory_order_acquire);
  int64_t call_since = peer_calls_.since_ns.load(std::memory_order_acquire);
  bool in_call = call_since != 0;
  bool interrupted = in_call && now_ns - call_since > call_limit_ns;
  if (interrupted) memif::InterruptPeerFdCall(peer_calls_);
  if (since == 0 || now_ns - since <= batch_limit_ns || since == reported_since_) return "";
  reported_since_ = since;
  stats_.stalls.Add();
  std::string engine = "?";
  {
    MutexLock lock(&mu_);
    size_t i = polling_.load(std::memory_order_relaxed);
    // An engine stays in engines_copy_ until the worker has stopped polling it, and is destroyed
    // only after that.
    if (i < engines_copy_.size()) engine = engines_copy_[i]->name();
  }
  std::string what = absl::StrCat(name_, ": engine ", engine, " has been in one batch for ",
                                  (now_ns - since) / 1000000, " ms");
  if (in_call) {
    absl::StrAppend(&what, ", in ", memif::DescribePeerFdCall(peer_calls_),
                    interrupted ? " (interrupted)" : "");
  }
  return what;
}

void Worker::Loop(std::promise<void>* started) {
  pthread_setname_np(pthread_self(), name_.substr(0, 15).c_str());
  memif::WatchPeerFdCalls(&peer_calls_);
  tid_.store(gettid(), std::memory_order_release);
  Pin(core());
  started->set_value();
  // Short sleeps must be short: the default timer slack stretches them to 50 us.
  prctl(PR_SET_TIMERSLACK, 1000, 0, 0, 0);
  RegisterDataplaneThread();
  uint32_t idle = 0;
  int64_t backoff_ns = 1000;
  int64_t last_work_ns = 0;
  while (true) {
    if (has_mail_.load(std::memory_order_acquire)) RunMail();
    if (stop_.load(std::memory_order_relaxed)) break;
    int64_t start = MonotonicNs();
    batch_since_.store(start, std::memory_order_release);
    uint32_t work = 0;
    for (size_t i = 0; i < engines_.size(); ++i) {
      polling_.store(i, std::memory_order_relaxed);
      work += engines_[i]->Poll();
    }
    batch_since_.store(0, std::memory_order_release);
    stats_.loops.Add();
    if (work > 0) {
      int64_t end = MonotonicNs();
      stats_.busy_ns.Add(end - start);
      if (alarm_slo_ns_ > 0) CheckOverload(end);
      idle = 0;
      backoff_ns = 1000;
      last_work_ns = end;
      continue;
    }
    // A dedicated worker spins while it has engines; one without any (a new snapd's, before the
    // engines move in) sleeps until its mailbox is written, leaving the core to the worker it
    // is about to replace.
    if (++idle < 256 || start - last_work_ns < kSpinAfterWorkNs ||
        (mode_.load(std::memory_order_relaxed) == Mode::kDedicated && !engines_.empty())) {
      continue;
    }
    Sleep(backoff_ns);
    stats_.sleeps.Add();
    backoff_ns = std::min<int64_t>(backoff_ns * 2, kMaxBackoffNs);
  }
  UnregisterDataplaneThread();
}

void Worker::Sleep(int64_t max_ns) {
  // Kept between sleeps: an idle worker sleeps hundreds of times a second, and each sleep should
  // cost one system call, not an allocation and a read per port.
  std::vector<pollfd>& fds = sleep_fds_;
  std::vector<Port*>& armed = sleep_ports_;
  fds.assign(1, pollfd{mail_fd_.get(), POLLIN, 0});
  armed.clear();
  bool all_can_wake = true;
  bool pending = false;
  // Timed work an engine has (a retransmission) bounds the sleep as a port that cannot wake does.
  int64_t deadline = INT64_MAX;
  for (Engine* e : engines_) {
    deadline = std::min(deadline, e->NextDeadlineNs());
    e->ForEachPort([&](Port& p) {
      if (!p.healthy()) return;  // a broken port is not polled either
      int fd = p.wake_fd();
      if (!p.wake_reliable()) all_can_wake = false;
      if (fd < 0) return;
      p.ArmWake(true);
      armed.push_back(&p);
      fds.push_back({fd, POLLIN, 0});
    });
  }
  // Anything that arrived before the arming raised no wake-up: look once more.
  for (Port* p : armed) pending = pending || p->Pending();
  if (!pending && !has_mail_.load(std::memory_order_acquire) && !stop_.load()) {
    int64_t sleep_ns = all_can_wake ? INT64_MAX : max_ns;
    if (deadline != INT64_MAX)
      sleep_ns = std::min(sleep_ns, std::max<int64_t>(0, deadline - MonotonicNs()));
    timespec ts{sleep_ns / 1000000000, sleep_ns % 1000000000};
    int ready = ppoll(fds.data(), fds.size(), sleep_ns == INT64_MAX ? nullptr : &ts, nullptr);
    if (ready == 0) stats_.timed_wakeups.Add();
    if (ready > 0) {
      for (size_t i = 1; i < fds.size(); ++i) {
        if (fds[i].revents & POLLIN) {
          stats_.port_wakeups.Add();
          break;
        }
      }
    }
  }
  // Only what woke us is drained; an fd that turns readable later just ends the next sleep early.
  for (size_t i = 0; i < armed.size(); ++i) {
    // An error (a packet socket whose interface went down) must be drained too, or the fd would
    // end every sleep at once.
    if (fds[i + 1].revents & (POLLIN | POLLERR)) armed[i]->DrainWake();
    armed[i]->ArmWake(false);
  }
  if (fds[0].revents & POLLIN) {
    uint64_t count;
    (void)!read(mail_fd_.get(), &count, sizeof(count));
  }
}

void MoveEngine(Engine* engine, Worker& from, Worker& to) {
  if (&from == &to) return;
  from.RemoveEngine(engine);
  to.AddEngine(engine);
}

}  // namespace snapd
