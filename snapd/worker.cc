#include "snapd/worker.h"

#include <pthread.h>
#include <sched.h>
#include <sys/prctl.h>
#include <time.h>

#include <algorithm>
#include <future>

#include "glog/logging.h"
#include "snapd/dpdk.h"

namespace snapd {

Worker::Worker(std::string name, int core) : name_(std::move(name)), core_(core) {
  thread_ = std::thread([this] { Loop(); });
}

Worker::~Worker() {
  stop_ = true;
  thread_.join();
}

void Worker::RunSync(const std::function<void()>& fn) {
  std::promise<void> done;
  {
    std::lock_guard<std::mutex> lock(mu_);
    mail_.push_back([&] {
      fn();
      done.set_value();
    });
    has_mail_.store(true, std::memory_order_release);
  }
  done.get_future().wait();
}

void Worker::AddEngine(Engine* engine) {
  RunSync([&] {
    engines_.push_back(engine);
    std::lock_guard<std::mutex> lock(mu_);
    engines_copy_ = engines_;
  });
}

void Worker::RemoveEngine(Engine* engine) {
  RunSync([&] {
    engines_.erase(std::remove(engines_.begin(), engines_.end(), engine), engines_.end());
    std::lock_guard<std::mutex> lock(mu_);
    engines_copy_ = engines_;
  });
}

std::vector<Engine*> Worker::engines() {
  std::lock_guard<std::mutex> lock(mu_);
  return engines_copy_;
}

void Worker::RunMail() {
  std::vector<std::function<void()>> mail;
  {
    std::lock_guard<std::mutex> lock(mu_);
    mail.swap(mail_);
    has_mail_.store(false, std::memory_order_relaxed);
  }
  for (auto& fn : mail) fn();
}

void Worker::Loop() {
  pthread_setname_np(pthread_self(), name_.substr(0, 15).c_str());
  if (core_ >= 0) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(core_, &set);
    if (sched_setaffinity(0, sizeof(set), &set) != 0) {
      LOG(WARNING) << name_ << ": cannot pin to core " << core_;
    }
  }
  // Short sleeps must be short: the default timer slack stretches them to 50 us.
  prctl(PR_SET_TIMERSLACK, 1000, 0, 0, 0);
  RegisterDataplaneThread();
  uint32_t idle = 0;
  int64_t backoff_ns = 1000;
  while (true) {
    if (has_mail_.load(std::memory_order_acquire)) RunMail();
    if (stop_.load(std::memory_order_relaxed)) break;
    int64_t start = MonotonicNs();
    uint32_t work = 0;
    for (Engine* e : engines_) work += e->Poll();
    stats_.loops.Add();
    if (work > 0) {
      stats_.busy_ns.Add(MonotonicNs() - start);
      idle = 0;
      backoff_ns = 1000;
      continue;
    }
    if (++idle < 256) continue;
    timespec ts{0, backoff_ns};
    nanosleep(&ts, nullptr);
    stats_.sleeps.Add();
    backoff_ns = std::min<int64_t>(backoff_ns * 2, 1000000);
  }
  UnregisterDataplaneThread();
}

void MoveEngine(Engine* engine, Worker& from, Worker& to) {
  if (&from == &to) return;
  from.RemoveEngine(engine);
  to.AddEngine(engine);
}

}  // namespace snapd
