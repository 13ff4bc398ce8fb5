// The emulator's scheduler and runtime (see cuda_emulator.h). One block runs at a time, under
// a process-wide lock; its threads are ucontext fibers on the calling OS thread. A fiber
// runs until it reaches a barrier or a warp collective, then the scheduler moves on; a
// waiting fiber resumes once every thread its primitive needs has arrived. A full pass in
// which no fiber can resume is a deadlock (a barrier or collective some threads never reach)
// and fails the launch.
//
// Switching fibers: swapcontext saves and restores the signal mask with a system call at every
// switch, which made the emulated test suite spend about as long in the kernel as in the
// kernels (1.8 million rt_sigprocmask calls for one decode step of stories260K). Outside
// AddressSanitizer builds, each stack slot starts one fiber once (makecontext + setcontext)
// that runs block after block, and every switch after that is _setjmp/_longjmp, which leave
// the signal mask alone. _FORTIFY_SOURCE would turn _longjmp into __longjmp_chk, which
// refuses jumps between stacks, so it is off for this file.
#undef _FORTIFY_SOURCE
#include "cuda/emulator/cuda_emulator.h"

#include <ucontext.h>

#include <csetjmp>
#include <memory>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#define TESSERA_EMU_ASAN 1
#endif

struct CUstream_st;
struct CUgraph_st;
struct CUgraphExec_st;
struct CUevent_st;

namespace tessera_emu {
namespace {

constexpr size_t kStackBytes = size_t(512) << 10;
constexpr size_t kDeviceMemoryDefault = size_t(16) << 30;

enum class WaitKind { None, Barrier, Warp };

struct Fiber {
  ucontext_t context;
  ThreadCoords coords;
  int linear = 0;
  bool done = false;
  WaitKind wait = WaitKind::None;
  uint64_t wait_value = 0;
  void* stack = nullptr;
};

struct WarpState {
  uint64_t seq[32];
  int kind[2][32];
  alignas(16) unsigned char slot[2][32 * kSlotBytes];
  int lanes = 0;
};

struct BlockRun {
#ifndef TESSERA_EMU_ASAN
  // Where a fiber jumps back to (set by the scheduler before each resume), and the first of
  // the stack slots this block's fibers use.
  jmp_buf scheduler_jmp;
  size_t base = 0;
#endif
  std::vector<Fiber> fibers;
  std::vector<WarpState> warps;
  uint64_t barrier_generation = 0;
  int barrier_arrived = 0;
  int n_threads = 0;
  ucontext_t scheduler;
  Fiber* running = nullptr;
  std::string error;
  const std::function<void()>* body = nullptr;
#ifdef TESSERA_EMU_ASAN
  void* scheduler_fake_stack = nullptr;
  const void* scheduler_stack_bottom = nullptr;
  size_t scheduler_stack_size = 0;
#endif
};

std::recursive_mutex& launch_mutex() {
  static std::recursive_mutex m;
  return m;
}

thread_local BlockRun* g_run = nullptr;
int g_failures = 0;
#ifdef TESSERA_EMU_ASAN
std::vector<void*> g_stacks;  // reused across launches (guarded by launch_mutex)
#endif

#ifndef TESSERA_EMU_ASAN
// A stack with the fiber that lives on it: started once, it runs one block's thread after
// another, parking in `park` at every barrier, collective and thread exit.
struct Slot {
  void* stack = nullptr;
  ucontext_t start;
  jmp_buf park;
  bool started = false;
};
std::vector<std::unique_ptr<Slot>> g_slots;  // guarded by launch_mutex
size_t g_slots_in_use = 0;                   // a launch inside a running block takes the next ones
#endif

Fiber& running_fiber() {
  if (!g_run || !g_run->running) {
    std::fprintf(stderr, "tessera emulator: a device intrinsic was called outside a kernel\n");
    std::abort();
  }
  return *g_run->running;
}

void switch_to_scheduler() {
  Fiber& f = running_fiber();
#ifdef TESSERA_EMU_ASAN
  void* fake = nullptr;
  __sanitizer_start_switch_fiber(&fake, g_run->scheduler_stack_bottom, g_run->scheduler_stack_size);
  swapcontext(&f.context, &g_run->scheduler);
  __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#else
  Slot& slot = *g_slots[g_run->base + size_t(f.linear)];
  if (_setjmp(slot.park) == 0) _longjmp(g_run->scheduler_jmp, 1);
#endif
}

#ifndef TESSERA_EMU_ASAN
// The life of a stack slot's fiber: each resume after a thread's exit starts the thread of
// the next block that uses this slot (g_run and the running fiber are that block's by then).
void fiber_loop() {
  for (;;) {
    (*g_run->body)();
    running_fiber().done = true;
    switch_to_scheduler();
  }
}
#endif

#ifdef TESSERA_EMU_ASAN
// Under AddressSanitizer every block starts fresh fibers and switches with swapcontext, which
// the sanitizer's fiber annotations follow.
void fiber_main() {
  __sanitizer_finish_switch_fiber(nullptr, &g_run->scheduler_stack_bottom, &g_run->scheduler_stack_size);
  (*g_run->body)();
  running_fiber().done = true;
  __sanitizer_start_switch_fiber(nullptr, g_run->scheduler_stack_bottom, g_run->scheduler_stack_size);
  // Returning resumes uc_link, the scheduler.
}
#endif

bool ready(const BlockRun& run, const Fiber& f) {
  switch (f.wait) {
    case WaitKind::None: return true;
    case WaitKind::Barrier: return run.barrier_generation > f.wait_value;
    case WaitKind::Warp: {
      const WarpState& w = run.warps[f.linear / 32];
      for (int l = 0; l < 32; ++l)
        if (w.seq[l] < f.wait_value) return false;
      return true;
    }
  }
  return false;
}

std::string describe_deadlock(const BlockRun& run) {
  int at_barrier = 0, at_warp = 0, done = 0;
  for (const Fiber& f : run.fibers) {
    if (f.done) ++done;
    else if (f.wait == WaitKind::Barrier) ++at_barrier;
    else if (f.wait == WaitKind::Warp) ++at_warp;
  }
  return "deadlock: " + std::to_string(at_barrier) + " thread(s) wait at __syncthreads, " + std::to_string(at_warp) +
         " at a warp collective, " + std::to_string(done) + " exited (a barrier or collective not reached by every thread)";
}

// The order in which a block's warps (and the lanes inside a warp) get to run. Warps run
// greedily, each as far as it can before the next one starts, so that a warp that races
// ahead of a missing barrier shows up as a wrong result:
//   greedy (default): warps ascending; greedy-reverse: warps and lanes descending;
//   random: a fresh shuffled order per block; lockstep: round-robin over every thread.
struct Schedule {
  bool lockstep = false;
  std::vector<int> warps;
  std::vector<int> lanes;
};

Schedule make_schedule(int n_warps, uint64_t salt) {
  Schedule s;
  s.warps.resize(n_warps);
  s.lanes.resize(32);
  for (int i = 0; i < n_warps; ++i) s.warps[i] = i;
  for (int i = 0; i < 32; ++i) s.lanes[i] = i;
  const char* mode = std::getenv("TESSERA_EMU_SCHEDULE");
  if (!mode || std::strcmp(mode, "greedy") == 0) return s;
  if (std::strcmp(mode, "lockstep") == 0) {
    s.lockstep = true;
  } else if (std::strcmp(mode, "greedy-reverse") == 0) {
    std::reverse(s.warps.begin(), s.warps.end());
    std::reverse(s.lanes.begin(), s.lanes.end());
  } else {
    std::mt19937_64 rng(0x5eed ^ salt);
    std::shuffle(s.warps.begin(), s.warps.end(), rng);
    std::shuffle(s.lanes.begin(), s.lanes.end(), rng);
  }
  return s;
}

// Runs one block; returns an error message or "".
std::string run_block(const std::function<void()>& body, dim3 grid, dim3 block, uint3 block_idx, uint64_t salt) {
  BlockRun run;
  run.body = &body;
  run.n_threads = int(block.x * block.y * block.z);
  run.fibers.resize(run.n_threads);
  run.warps.resize((run.n_threads + 31) / 32);
  for (size_t w = 0; w < run.warps.size(); ++w) {
    std::memset(run.warps[w].seq, 0, sizeof run.warps[w].seq);
    run.warps[w].lanes = std::min(32, run.n_threads - int(w) * 32);
    // Lanes past the end of a partial warp never arrive: a collective there deadlocks.
  }
  for (int i = 0; i < run.n_threads; ++i) {
    Fiber& f = run.fibers[i];
    f.linear = i;
    f.coords.thread_idx = make_uint3(unsigned(i) % block.x, (unsigned(i) / block.x) % block.y, unsigned(i) / (block.x * block.y));
    f.coords.block_idx = block_idx;
    f.coords.block_dim = block;
    f.coords.grid_dim = grid;
  }
#ifndef TESSERA_EMU_ASAN
  run.base = g_slots_in_use;
  g_slots_in_use += size_t(run.n_threads);
  while (g_slots.size() < g_slots_in_use) {
    g_slots.push_back(std::make_unique<Slot>());
    g_slots.back()->stack = std::malloc(kStackBytes);
  }
#else
  while (g_stacks.size() < size_t(run.n_threads)) g_stacks.push_back(std::malloc(kStackBytes));
  for (int i = 0; i < run.n_threads; ++i) {
    Fiber& f = run.fibers[i];
    f.stack = g_stacks[i];
    getcontext(&f.context);
    f.context.uc_stack.ss_sp = f.stack;
    f.context.uc_stack.ss_size = kStackBytes;
    f.context.uc_link = &run.scheduler;
    makecontext(&f.context, fiber_main, 0);
  }
#endif
  for (WarpState& w : run.warps)
    for (int l = w.lanes; l < 32; ++l) w.seq[l] = 0;

  BlockRun* saved = g_run;
  g_run = &run;
  const Schedule sched = make_schedule(int(run.warps.size()), salt);
  // Resumes fiber i if it can run; returns whether it did.
  auto step = [&](int i) {
    Fiber& f = run.fibers[i];
    if (f.done || !ready(run, f)) return false;
    f.wait = WaitKind::None;
    run.running = &f;
#ifdef TESSERA_EMU_ASAN
    __sanitizer_start_switch_fiber(&run.scheduler_fake_stack, f.stack, kStackBytes);
    swapcontext(&run.scheduler, &f.context);
    __sanitizer_finish_switch_fiber(run.scheduler_fake_stack, nullptr, nullptr);
#else
    Slot& slot = *g_slots[run.base + size_t(i)];
    if (_setjmp(run.scheduler_jmp) == 0) {
      if (slot.started) _longjmp(slot.park, 1);
      slot.started = true;
      getcontext(&slot.start);
      slot.start.uc_stack.ss_sp = slot.stack;
      slot.start.uc_stack.ss_size = kStackBytes;
      slot.start.uc_link = nullptr;
      makecontext(&slot.start, fiber_loop, 0);
      setcontext(&slot.start);
    }
#endif
    run.running = nullptr;
    return true;
  };
  for (;;) {
    bool progressed = false;
    for (int w : sched.warps) {
      // Greedy: keep running this warp until none of its lanes can move.
      for (bool moved = true; moved && run.error.empty();) {
        moved = false;
        for (int l : sched.lanes) {
          const int i = w * 32 + l;
          if (i >= run.n_threads) continue;
          if (step(i)) moved = progressed = true;
          if (!run.error.empty()) break;
        }
        if (sched.lockstep) break;
      }
      if (!run.error.empty()) break;
    }
    if (!run.error.empty()) break;
    bool all_done = true;
    for (const Fiber& f : run.fibers) all_done = all_done && f.done;
    if (all_done) break;
    if (!progressed) {
      run.error = describe_deadlock(run);
      break;
    }
  }
#ifndef TESSERA_EMU_ASAN
  // A failed block leaves fibers parked inside its threads: their slots start afresh.
  if (!run.error.empty())
    for (int i = 0; i < run.n_threads; ++i) g_slots[run.base + size_t(i)]->started = false;
  g_slots_in_use = run.base;
#endif
  g_run = saved;
  return run.error;
}

// ---- streams, graphs, events

struct Work {
  std::function<void()> run;
};

}  // namespace

const ThreadCoords& current() { return running_fiber().coords; }

int lane_id() { return running_fiber().linear % 32; }

void sync_threads() {
  Fiber& f = running_fiber();
  BlockRun& run = *g_run;
  f.wait = WaitKind::Barrier;
  f.wait_value = run.barrier_generation;
  if (++run.barrier_arrived == run.n_threads) {
    run.barrier_arrived = 0;
    ++run.barrier_generation;
  }
  switch_to_scheduler();
}

const unsigned char* warp_collective(unsigned mask, CollectiveKind kind, const void* data, size_t bytes) {
  Fiber& f = running_fiber();
  BlockRun& run = *g_run;
  if (mask != 0xffffffffu) kernel_fail("warp collective with a partial mask (tessera kernels use full warps only)");
  if (bytes > size_t(kSlotBytes)) kernel_fail("warp collective payload too large");
  WarpState& w = run.warps[f.linear / 32];
  const int lane = f.linear % 32;
  const uint64_t seq = w.seq[lane];
  const int buf = int(seq & 1);
  if (bytes) std::memcpy(w.slot[buf] + lane * kSlotBytes, data, bytes);
  w.kind[buf][lane] = kind;
  w.seq[lane] = seq + 1;
  f.wait = WaitKind::Warp;
  f.wait_value = seq + 1;
  switch_to_scheduler();
  for (int l = 0; l < 32; ++l)
    if (w.kind[buf][l] != kind) kernel_fail("lanes of one warp reached different warp collectives");
  return w.slot[buf];
}

void kernel_fail(const char* what) {
  BlockRun& run = *g_run;
  run.error = what;
  Fiber& f = running_fiber();
  f.done = true;
  switch_to_scheduler();
  std::abort();  // unreachable: a failed block is never resumed
}

void mma_m16n8k16_f16_f32(float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4]) {
  uint32_t mine[6] = {a[0], a[1], a[2], a[3], b[0], b[1]};
  const unsigned char* all = warp_collective(0xffffffffu, kMma, mine, sizeof mine);
  // Fragment layouts of mma.m16n8k16 .f16 (PTX ISA "Matrix Fragments for mma.m16n8k16 with
  // floating point type"): groupID = lane >> 2, tig = lane % 4; the low half of a .f16x2
  // register is the lower-numbered element.
  float A[16][16], B[16][8];
  auto half_lo = [](uint32_t r) { return __half2float(__ushort_as_half(uint16_t(r & 0xFFFF))); };
  auto half_hi = [](uint32_t r) { return __half2float(__ushort_as_half(uint16_t(r >> 16))); };
  for (int l = 0; l < 32; ++l) {
    uint32_t r[6];
    std::memcpy(r, all + l * kSlotBytes, sizeof r);
    const int g = l >> 2, t = l & 3;
    A[g][2 * t] = half_lo(r[0]);
    A[g][2 * t + 1] = half_hi(r[0]);
    A[g + 8][2 * t] = half_lo(r[1]);
    A[g + 8][2 * t + 1] = half_hi(r[1]);
    A[g][2 * t + 8] = half_lo(r[2]);
    A[g][2 * t + 9] = half_hi(r[2]);
    A[g + 8][2 * t + 8] = half_lo(r[3]);
    A[g + 8][2 * t + 9] = half_hi(r[3]);
    B[2 * t][g] = half_lo(r[4]);
    B[2 * t + 1][g] = half_hi(r[4]);
    B[2 * t + 8][g] = half_lo(r[5]);
    B[2 * t + 9][g] = half_hi(r[5]);
  }
  const int lane = lane_id(), g = lane >> 2, t = lane & 3;
  const int rows[4] = {g, g, g + 8, g + 8}, cols[4] = {2 * t, 2 * t + 1, 2 * t, 2 * t + 1};
  for (int i = 0; i < 4; ++i) {
    float s = c[i];
    for (int k = 0; k < 16; ++k) s += A[rows[i]][k] * B[k][cols[i]];
    d[i] = s;
  }
}

void ldmatrix_x4_b16(uint32_t r[4], const void* row) {
  if (reinterpret_cast<uintptr_t>(row) % 16 != 0) kernel_fail("ldmatrix row address not 16-byte aligned");
  const unsigned char* all = warp_collective(0xffffffffu, kLdmatrix, &row, sizeof row);
  const int lane = lane_id();
  for (int i = 0; i < 4; ++i) {
    const unsigned char* src;
    std::memcpy(&src, all + (8 * i + lane / 4) * kSlotBytes, sizeof src);
    std::memcpy(&r[i], src + 4 * (lane % 4), 4);
  }
}

int failure_count() { return g_failures; }

}  // namespace tessera_emu

// ---------------------------------------------------------------- runtime API

struct CUgraph_st {
  std::vector<tessera_emu::Work> nodes;
};
struct CUgraphExec_st {
  std::vector<tessera_emu::Work> nodes;
};
struct CUstream_st {
  CUgraph_st* capture = nullptr;
};
struct CUevent_st {
  std::chrono::steady_clock::time_point at;
};

namespace {

using tessera_emu::Work;

thread_local cudaError_t g_last_error = cudaSuccess;
size_t g_allocated = 0;
std::vector<std::pair<void*, size_t>> g_allocations;

size_t device_memory_total() {
  const char* mb = std::getenv("TESSERA_EMU_MEMORY_MB");
  return mb ? size_t(std::strtoull(mb, nullptr, 10)) << 20 : tessera_emu::kDeviceMemoryDefault;
}

cudaError_t set_error(cudaError_t e) {
  if (e != cudaSuccess) g_last_error = e;
  return e;
}

CUstream_st g_default_stream;

CUstream_st* stream_of(cudaStream_t s) { return s ? s : &g_default_stream; }

// Runs `w` now, or appends it to the graph `stream` is capturing.
void enqueue(cudaStream_t stream, std::function<void()> w) {
  CUstream_st* s = stream_of(stream);
  if (s->capture) s->capture->nodes.push_back(Work{std::move(w)});
  else w();
}

}  // namespace

namespace tessera_emu {

void launch(dim3 grid, dim3 block, cudaStream_t stream, std::function<void()> body) {
  const unsigned long long threads = 1ull * block.x * block.y * block.z;
  if (threads == 0 || threads > 1024 || block.z > 64 || grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.y > 65535 ||
      grid.z > 65535 || grid.x > 2147483647u) {
    std::fprintf(stderr, "tessera emulator: invalid launch configuration grid (%u, %u, %u) block (%u, %u, %u)\n", grid.x,
                 grid.y, grid.z, block.x, block.y, block.z);
    ++g_failures;
    set_error(cudaErrorInvalidConfiguration);
    return;
  }
  enqueue(stream, [grid, block, body = std::move(body)]() {
    std::lock_guard<std::recursive_mutex> lock(launch_mutex());
    uint64_t salt = 0;
    for (unsigned z = 0; z < grid.z; ++z)
      for (unsigned y = 0; y < grid.y; ++y)
        for (unsigned x = 0; x < grid.x; ++x) {
          const std::string err = run_block(body, grid, block, make_uint3(x, y, z), ++salt);
          if (!err.empty()) {
            std::fprintf(stderr, "tessera emulator: kernel failed in block (%u, %u, %u): %s\n", x, y, z, err.c_str());
            ++g_failures;
            set_error(cudaErrorLaunchFailure);
            return;
          }
        }
  });
}

}  // namespace tessera_emu

extern "C" {

cudaError_t cudaGetDeviceCount(int* count) {
  if (const char* none = std::getenv("TESSERA_EMU_NO_DEVICE"); none && none[0] == '1') {
    *count = 0;
    return set_error(cudaErrorNoDevice);
  }
  *count = 1;
  return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) { return device == 0 ? cudaSuccess : set_error(cudaErrorInvalidDevice); }

cudaError_t cudaGetDevice(int* device) {
  *device = 0;
  return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
  if (device != 0) return set_error(cudaErrorInvalidDevice);
  std::memset(prop, 0, sizeof *prop);
  std::snprintf(prop->name, sizeof prop->name, "Tessera CUDA emulator");
  prop->major = 9;
  prop->minor = 0;
  prop->multiProcessorCount = 4;
  prop->totalGlobalMem = device_memory_total();
  prop->sharedMemPerBlock = 48 << 10;
  prop->l2CacheSize = 1 << 20;
  prop->warpSize = 32;
  prop->maxThreadsPerBlock = 1024;
  return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device) {
  if (device != 0) return set_error(cudaErrorInvalidDevice);
  switch (attr) {
    case cudaDevAttrMultiProcessorCount: *value = 4; return cudaSuccess;
    case cudaDevAttrComputeCapabilityMajor: *value = 9; return cudaSuccess;
    case cudaDevAttrComputeCapabilityMinor: *value = 0; return cudaSuccess;
    case cudaDevAttrL2CacheSize: *value = 1 << 20; return cudaSuccess;
    default: *value = 0; return cudaSuccess;
  }
}

cudaError_t cudaMalloc(void** ptr, size_t size) {
  *ptr = nullptr;
  if (g_allocated + size > device_memory_total()) return set_error(cudaErrorMemoryAllocation);
  void* p = std::aligned_alloc(256, (size + 255) / 256 * 256);
  if (!p) return set_error(cudaErrorMemoryAllocation);
  // Fresh device memory holds garbage, not zeros: kernels must not rely on it.
  std::memset(p, 0xA5, size);
  g_allocated += size;
  g_allocations.emplace_back(p, size);
  *ptr = p;
  return cudaSuccess;
}

cudaError_t cudaFree(void* ptr) {
  if (!ptr) return cudaSuccess;
  for (size_t i = 0; i < g_allocations.size(); ++i)
    if (g_allocations[i].first == ptr) {
      g_allocated -= g_allocations[i].second;
      g_allocations.erase(g_allocations.begin() + long(i));
      std::free(ptr);
      return cudaSuccess;
    }
  return set_error(cudaErrorInvalidValue);
}

cudaError_t cudaMallocHost(void** ptr, size_t size) {
  *ptr = std::malloc(size ? size : 1);
  return *ptr ? cudaSuccess : set_error(cudaErrorMemoryAllocation);
}

cudaError_t cudaFreeHost(void* ptr) {
  std::free(ptr);
  return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total) {
  *total = device_memory_total();
  *free_bytes = *total - g_allocated;
  return cudaSuccess;
}

cudaError_t cudaMemcpy(void* dst, const void* src, size_t count, cudaMemcpyKind) {
  if (count) std::memcpy(dst, src, count);
  return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t count, cudaMemcpyKind, cudaStream_t stream) {
  enqueue(stream, [=]() {
    if (count) std::memcpy(dst, src, count);
  });
  return cudaSuccess;
}

cudaError_t cudaMemset(void* dst, int value, size_t count) {
  std::memset(dst, value, count);
  return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void* dst, int value, size_t count, cudaStream_t stream) {
  enqueue(stream, [=]() { std::memset(dst, value, count); });
  return cudaSuccess;
}

cudaError_t cudaStreamCreate(cudaStream_t* stream) {
  *stream = new CUstream_st;
  return cudaSuccess;
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned int) { return cudaStreamCreate(stream); }

cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  delete stream;
  return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
  if (stream_of(stream)->capture) return set_error(cudaErrorStreamCaptureUnsupported);
  return cudaSuccess;
}

cudaError_t cudaStreamQuery(cudaStream_t) { return cudaSuccess; }

cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }

cudaError_t cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode) {
  if (!stream) return set_error(cudaErrorStreamCaptureUnsupported);  // the legacy stream cannot be captured
  if (stream->capture) return set_error(cudaErrorIllegalState);
  stream->capture = new CUgraph_st;
  return cudaSuccess;
}

cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t* graph) {
  if (!stream || !stream->capture) return set_error(cudaErrorIllegalState);
  *graph = stream->capture;
  stream->capture = nullptr;
  return cudaSuccess;
}

cudaError_t cudaGraphInstantiate(cudaGraphExec_t* exec, cudaGraph_t graph, unsigned long long) {
  *exec = new CUgraphExec_st{graph->nodes};
  return cudaSuccess;
}

cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream) {
  for (const Work& w : exec->nodes) enqueue(stream, w.run);
  return cudaSuccess;
}

cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
  delete exec;
  return cudaSuccess;
}

cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
  delete graph;
  return cudaSuccess;
}

cudaError_t cudaEventCreate(cudaEvent_t* event) {
  *event = new CUevent_st;
  return cudaSuccess;
}

cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned int) { return cudaEventCreate(event); }

cudaError_t cudaEventDestroy(cudaEvent_t event) {
  delete event;
  return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
  enqueue(stream, [event]() { event->at = std::chrono::steady_clock::now(); });
  return cudaSuccess;
}

cudaError_t cudaEventSynchronize(cudaEvent_t) { return cudaSuccess; }

cudaError_t cudaEventQuery(cudaEvent_t) { return cudaSuccess; }

cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  *ms = std::chrono::duration<float, std::milli>(end->at - start->at).count();
  return cudaSuccess;
}

cudaError_t cudaFuncSetAttribute(const void*, cudaFuncAttribute, int) { return cudaSuccess; }

cudaError_t cudaGetLastError() {
  const cudaError_t e = g_last_error;
  g_last_error = cudaSuccess;
  return e;
}

cudaError_t cudaPeekAtLastError() { return g_last_error; }

const char* cudaGetErrorName(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorIllegalState: return "cudaErrorIllegalState";
    case cudaErrorStreamCaptureUnsupported: return "cudaErrorStreamCaptureUnsupported";
    default: return "cudaErrorUnknown";
  }
}

const char* cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorLaunchFailure: return "unspecified launch failure (emulated kernel failed)";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorIllegalState: return "operation not permitted in the current state";
    case cudaErrorStreamCaptureUnsupported: return "operation not permitted when stream is capturing";
    default: return "unknown error";
  }
}

}  // extern "C"
