// A fixed pool for data-parallel regions: run(fn) calls fn(ith, nth) on every thread and
// returns when all have finished. Inside a region, barrier() syncs all threads, so a whole
// forward pass is one region with a barrier between dependent ops (one wake-up per decode
// step instead of one per op).
//
// With more than one thread, the pool's own threads run every part of a region and the
// caller sleeps until they are done. The caller is typically a libuv worker woken for each
// step: as one of the compute threads, it was often placed on the core of a still-spinning
// pool thread, and the two then took turns on one core for milliseconds until the scheduler
// moved one (a decode step of a 0.5B model ran ~20% slower). Pool threads that stay busy
// across steps keep their cores.
//
// Workers spin briefly after a region ends (the next one usually follows within
// microseconds during generation), then sleep on a condition variable so an idle model
// costs no CPU. Never create more threads than cores: the caller decides the count.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace tessera {

class ThreadPool {
 public:
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // The process's pool of n_threads threads, made on first use and freed with its last user.
  // Models share it: two pools of the same size (a speculative target and its draft, or two
  // models serving at once) each kept their threads spinning or yielding for up to
  // kSpinBeforeSleep after every step, on the cores the other pool's step was using; a
  // target's 9-row verification step ran at half the speed it has alone. One pool runs the
  // models' steps in turn (run() takes a lock), with its threads kept warm by all of them.
  static std::shared_ptr<ThreadPool> shared(int n_threads);

  // Runs fn(ith, nth) on `active` threads (0: all; nth = active), the others staying idle;
  // not reentrant; callers on other threads wait for the region running to end (also one
  // started by try_start). With one active thread fn runs on the caller.
  void run(const std::function<void(int ith, int nth)>& fn, int active = 0);

  // Starts fn(ith, nth) on `active` threads (as run) without waiting: the thread that finishes
  // the region last calls done(ctx) after releasing the pool, on that pool thread. fn must stay
  // valid until then. With active 1, pool thread 0 runs fn and the others stay idle. False,
  // with nothing started, when the pool has one thread or another region holds it; the
  // caller then runs its work through run() instead.
  // Why: a decode step handed from the JS thread to a libuv thread that sleeps until the pool
  // is done pays two thread wake-ups per step (~0.1 ms each on the dev VM) that this avoids.
  bool try_start(const std::function<void(int ith, int nth)>& fn, int active, void (*done)(void* ctx), void* ctx);

  // Called by every thread of the current region; returns when all have arrived.
  void barrier();

  // One counter per thread, which the threads of a region share to claim work
  // (matmul_shared): each reads 0 when a region starts and after every barrier, so the work
  // between two barriers may use them once. Each on its own cache line.
  struct alignas(64) WorkCursor {
    std::atomic<int64_t> value{0};
  };
  WorkCursor* work_cursors() { return cursors_.get(); }

 private:
  void worker_loop(int ith);
  void spin_wait_for_generation(uint64_t seen);
  // Takes the pool for one region (waiting while another holds it), or gives it back.
  void acquire_region();
  bool try_acquire_region();
  void release_region();
  // Wakes the workers for job_ on active_ threads.
  void launch();
  void reset_cursors(int n) {
    for (int i = 0; i < n; ++i) cursors_[i].value.store(0, std::memory_order_relaxed);
  }

  const int n_threads_;
  int active_ = 0;  // threads taking part in the current region
  std::vector<std::thread> workers_;
  const std::function<void(int, int)>* job_ = nullptr;

  alignas(64) std::atomic<uint64_t> generation_{0};
  alignas(64) std::atomic<int> pending_{0};
  alignas(64) std::atomic<int> barrier_count_{0};
  alignas(64) std::atomic<uint32_t> barrier_phase_{0};
  std::unique_ptr<WorkCursor[]> cursors_;  // [n_threads_]
  std::atomic<bool> stop_{false};
  std::atomic<int> sleepers_{0};
  // One region at a time, across threads: a flag rather than a mutex held for the region, as
  // a region started by try_start ends on a pool thread, not on the thread that started it.
  std::mutex region_mutex_;
  std::condition_variable region_free_;
  bool region_busy_ = false;
  void (*async_done_)(void*) = nullptr;  // set while a try_start region runs
  void* async_ctx_ = nullptr;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;  // the caller waits here for pending_ to reach 0
};

// Splits [0, n) into nth nearly equal contiguous parts; returns part ith as [begin, end).
inline void split_range(int64_t n, int ith, int nth, int64_t* begin, int64_t* end) {
  const int64_t base = n / nth, extra = n % nth;
  *begin = ith * base + (ith < extra ? ith : extra);
  *end = *begin + base + (ith < extra ? 1 : 0);
}

}  // namespace tessera
