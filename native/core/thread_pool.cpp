#include "core/thread_pool.h"

#include <chrono>
#include <map>
#include <thread>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define TESSERA_CPU_RELAX() _mm_pause()
#else
#define TESSERA_CPU_RELAX() ((void)0)
#endif

namespace tessera {

namespace {
// How long an idle worker spins before sleeping: long enough to bridge the gap between
// decode steps (sampling in JS), short enough that an idle process stops burning CPU.
constexpr auto kSpinBeforeSleep = std::chrono::microseconds(2000);
// Between regions an idle worker yields after this many pauses (~10 us): the thread that
// runs next (the JS thread sampling a token) has no core of its own when every core has a
// spinning worker, and a 4096-pause spin held it off for ~0.2 ms per decode step.
constexpr int kPausesBeforeYieldIdle = 256;

// Waits for `done()` by spinning briefly, then yielding the core on every check: when the
// machine is oversubscribed the thread being waited for may be descheduled, and a pure spin
// would burn the very time slice it needs (turning each barrier into a scheduler quantum).
template <typename Done>
void wait_until(Done done) {
  for (int spins = 0; !done(); ++spins) {
    if (spins < 4096) TESSERA_CPU_RELAX();
    else std::this_thread::yield();
  }
}
}  // namespace

ThreadPool::ThreadPool(int n_threads)
    : n_threads_(n_threads < 1 ? 1 : n_threads), cursors_(std::make_unique<WorkCursor[]>(size_t(n_threads_))) {
  if (n_threads_ == 1) return;
  workers_.reserve(n_threads_);
  for (int i = 0; i < n_threads_; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_.store(true);
    generation_.fetch_add(1);
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

std::shared_ptr<ThreadPool> ThreadPool::shared(int n_threads) {
  static std::mutex registry_mutex;
  static std::map<int, std::weak_ptr<ThreadPool>> registry;
  std::lock_guard<std::mutex> lock(registry_mutex);
  std::weak_ptr<ThreadPool>& slot = registry[n_threads < 1 ? 1 : n_threads];
  std::shared_ptr<ThreadPool> pool = slot.lock();
  if (!pool) {
    pool = std::make_shared<ThreadPool>(n_threads);
    slot = pool;
  }
  return pool;
}

void ThreadPool::acquire_region() {
  std::unique_lock<std::mutex> lock(region_mutex_);
  region_free_.wait(lock, [&] { return !region_busy_; });
  region_busy_ = true;
}

bool ThreadPool::try_acquire_region() {
  std::lock_guard<std::mutex> lock(region_mutex_);
  if (region_busy_) return false;
  region_busy_ = true;
  return true;
}

void ThreadPool::release_region() {
  {
    std::lock_guard<std::mutex> lock(region_mutex_);
    region_busy_ = false;
  }
  region_free_.notify_all();
}

void ThreadPool::launch() {
  pending_.store(n_threads_, std::memory_order_relaxed);
  {
    // The lock orders the generation bump against a worker deciding to sleep.
    std::lock_guard<std::mutex> lock(mutex_);
    generation_.fetch_add(1, std::memory_order_release);
  }
  if (sleepers_.load(std::memory_order_acquire) > 0) wake_.notify_all();
}

void ThreadPool::run(const std::function<void(int, int)>& fn, int active) {
  // One region at a time: models sharing the pool (shared()) step in turn.
  acquire_region();
  reset_cursors(n_threads_);
  active_ = active < 1 || active > n_threads_ ? n_threads_ : active;
  if (active_ == 1) {
    fn(0, 1);
    release_region();
    return;
  }
  job_ = &fn;
  launch();
  {
    // Sleep, not spin: a spinning caller would take a core from the threads doing the work.
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [&] { return pending_.load(std::memory_order_acquire) == 0; });
  }
  job_ = nullptr;
  release_region();
}

bool ThreadPool::try_start(const std::function<void(int, int)>& fn, int active, void (*done)(void*), void* ctx) {
  const int n = active < 1 || active > n_threads_ ? n_threads_ : active;
  if (n_threads_ == 1 || !try_acquire_region()) return false;
  reset_cursors(n_threads_);
  active_ = n;
  job_ = &fn;
  async_done_ = done;
  async_ctx_ = ctx;
  launch();
  return true;
}

void ThreadPool::barrier() {
  if (active_ <= 1) {
    reset_cursors(1);
    return;
  }
  const uint32_t phase = barrier_phase_.load(std::memory_order_acquire);
  if (barrier_count_.fetch_add(1, std::memory_order_acq_rel) == active_ - 1) {
    // Every thread is here, so none still claims work: the release below publishes the reset.
    reset_cursors(active_);
    barrier_count_.store(0, std::memory_order_relaxed);
    barrier_phase_.fetch_add(1, std::memory_order_release);
    return;
  }
  wait_until([&] { return barrier_phase_.load(std::memory_order_acquire) != phase; });
}

void ThreadPool::spin_wait_for_generation(uint64_t seen) {
  auto start = std::chrono::steady_clock::now();
  int spins = 0;
  while (generation_.load(std::memory_order_acquire) == seen) {
    if (spins < kPausesBeforeYieldIdle) TESSERA_CPU_RELAX();
    else std::this_thread::yield();
    if (++spins % 1024 == 0 && std::chrono::steady_clock::now() - start > kSpinBeforeSleep) {
      std::unique_lock<std::mutex> lock(mutex_);
      sleepers_.fetch_add(1, std::memory_order_acq_rel);
      wake_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
      sleepers_.fetch_sub(1, std::memory_order_acq_rel);
      return;
    }
  }
}

void ThreadPool::worker_loop(int ith) {
  uint64_t seen = 0;
  for (;;) {
    spin_wait_for_generation(seen);
    seen = generation_.load(std::memory_order_acquire);
    if (stop_.load(std::memory_order_acquire)) return;
    if (ith < active_) (*job_)(ith, active_);
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      if (async_done_) {
        // The last thread of a try_start region: give the pool back, then report (done may
        // start the next region, from this thread or any other).
        void (*done)(void*) = async_done_;
        void* ctx = async_ctx_;
        async_done_ = nullptr;
        async_ctx_ = nullptr;
        job_ = nullptr;
        release_region();
        done(ctx);
        continue;
      }
      // Under the lock, so the caller cannot check pending_ and then miss this notify.
      std::lock_guard<std::mutex> lock(mutex_);
      done_.notify_one();
    }
  }
}

}  // namespace tessera
