// A CUDA emulator for machines without a GPU, so the kernels of native/cuda can be run and
// checked here. The .cu sources are compiled as plain C++ (g++) with this header forced in
// front; it supplies the CUDA execution model the kernels use and nothing more:
//  - the runtime API subset the backend calls (device memory is host memory; streams run
//    work immediately, or record it while a graph is captured; graphs replay the record),
//  - kernel launches: the blocks of a grid run one after another; the threads of a block
//    run as cooperative fibers that switch only at __syncthreads and warp collectives; each
//    warp runs as far ahead as it can before the next one starts, in ascending, descending
//    or shuffled order (TESSERA_EMU_SCHEDULE), so a missing barrier shows as a wrong result,
//  - strict collectives: every warp collective must be reached by all 32 lanes with a full
//    mask, every __syncthreads by every thread of the block; anything else (which is
//    undefined or deadlocks on hardware) fails the launch with a message,
//  - mma.sync.m16n8k16 (fp16 in, fp32 accumulate) with the fragment layouts of the PTX ISA,
//    and ldmatrix.x4 (the 16-byte alignment it requires is checked),
//  - __shared__ variables as function statics (blocks never run concurrently).
// It checks semantics, not speed or memory-model corner cases beyond the above.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>

#define TESSERA_CUDA_EMULATOR 1

#undef __shared__
#define __shared__ static
#ifndef __launch_bounds__
#define __launch_bounds__(...)
#endif

namespace tessera_emu {

struct ThreadCoords {
  uint3 thread_idx;
  uint3 block_idx;
  dim3 block_dim;
  dim3 grid_dim;
};

const ThreadCoords& current();
int lane_id();
void sync_threads();

enum CollectiveKind { kSyncWarp = 1, kShuffle = 2, kVote = 3, kMma = 4, kLdmatrix = 5 };
constexpr int kSlotBytes = 64;
// Every lane of the calling warp contributes `bytes` (<= kSlotBytes) bytes; returns the 32
// contributions, lane l's at offset l * kSlotBytes, valid until this lane's next collective.
const unsigned char* warp_collective(unsigned mask, CollectiveKind kind, const void* data, size_t bytes);

// Fails the running launch with `what` (does not return to the caller's kernel code).
[[noreturn]] void kernel_fail(const char* what);

// Runs (or records, while `stream` is being captured) `body` over the grid.
void launch(dim3 grid, dim3 block, cudaStream_t stream, std::function<void()> body);

// d = a * b + c for one warp-wide m16n8k16 fp16 product with fp32 accumulators.
void mma_m16n8k16_f16_f32(float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4]);

// r = this lane's words of ldmatrix.sync.aligned.m8n8.x4.b16: lanes 8i..8i+7 give the 16-byte
// rows of matrix i; lane l gets word l % 4 of row l / 4 of each matrix.
void ldmatrix_x4_b16(uint32_t r[4], const void* row);

// Launch failures (kernel_fail, invalid configurations) since the process started.
int failure_count();

}  // namespace tessera_emu

#define threadIdx (::tessera_emu::current().thread_idx)
#define blockIdx (::tessera_emu::current().block_idx)
#define blockDim (::tessera_emu::current().block_dim)
#define gridDim (::tessera_emu::current().grid_dim)

inline void __syncthreads() { ::tessera_emu::sync_threads(); }
inline void __syncwarp(unsigned mask = 0xffffffffu) {
  ::tessera_emu::warp_collective(mask, ::tessera_emu::kSyncWarp, nullptr, 0);
}

template <typename T>
inline T tessera_emu_lane_value(const unsigned char* all, int lane) {
  T out;
  std::memcpy(&out, all + lane * ::tessera_emu::kSlotBytes, sizeof out);
  return out;
}

template <typename T>
inline T __shfl_sync(unsigned mask, T value, int src_lane, int width = 32) {
  static_assert(sizeof(T) <= ::tessera_emu::kSlotBytes, "shuffle payload too large");
  const unsigned char* all = ::tessera_emu::warp_collective(mask, ::tessera_emu::kShuffle, &value, sizeof value);
  const int lane = ::tessera_emu::lane_id();
  const int base = lane & ~(width - 1);
  return tessera_emu_lane_value<T>(all, base + (src_lane & (width - 1)));
}

template <typename T>
inline T __shfl_xor_sync(unsigned mask, T value, int lane_mask, int width = 32) {
  const unsigned char* all = ::tessera_emu::warp_collective(mask, ::tessera_emu::kShuffle, &value, sizeof value);
  const int lane = ::tessera_emu::lane_id();
  int src = lane ^ lane_mask;
  if ((src & ~(width - 1)) != (lane & ~(width - 1))) src = lane;
  return tessera_emu_lane_value<T>(all, src);
}

template <typename T>
inline T __shfl_down_sync(unsigned mask, T value, unsigned delta, int width = 32) {
  const unsigned char* all = ::tessera_emu::warp_collective(mask, ::tessera_emu::kShuffle, &value, sizeof value);
  const int lane = ::tessera_emu::lane_id();
  int src = lane + int(delta);
  if ((src & ~(width - 1)) != (lane & ~(width - 1))) src = lane;
  return tessera_emu_lane_value<T>(all, src);
}

inline unsigned __ballot_sync(unsigned mask, int predicate) {
  const int p = predicate != 0;
  const unsigned char* all = ::tessera_emu::warp_collective(mask, ::tessera_emu::kVote, &p, sizeof p);
  unsigned out = 0;
  for (int l = 0; l < 32; ++l)
    if (tessera_emu_lane_value<int>(all, l)) out |= 1u << l;
  return out;
}
inline int __any_sync(unsigned mask, int predicate) { return __ballot_sync(mask, predicate) != 0; }
inline int __all_sync(unsigned mask, int predicate) { return __ballot_sync(mask, predicate) == 0xffffffffu; }

// ---- device math and bit intrinsics, host versions
inline float __expf(float x) { return std::exp(x); }
inline float __logf(float x) { return std::log(x); }
inline float __sinf(float x) { return std::sin(x); }
inline float __cosf(float x) { return std::cos(x); }
inline float __powf(float x, float y) { return std::pow(x, y); }
inline float __fdividef(float x, float y) { return x / y; }
inline float __fdiv_rn(float x, float y) { return x / y; }
inline float __frcp_rn(float x) { return 1.0f / x; }
inline float __fmul_rn(float x, float y) { return x * y; }
inline float __fadd_rn(float x, float y) { return x + y; }
inline float __saturatef(float x) { return x < 0.f ? 0.f : (x > 1.f ? 1.f : x); }
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline float __int_as_float(int v) { float f; std::memcpy(&f, &v, 4); return f; }
inline float __uint_as_float(unsigned v) { float f; std::memcpy(&f, &v, 4); return f; }
inline int __float_as_int(float f) { int v; std::memcpy(&v, &f, 4); return v; }
inline unsigned __float_as_uint(float f) { unsigned v; std::memcpy(&v, &f, 4); return v; }

inline int __dp4a(int a, int b, int c) {
  for (int i = 0; i < 4; ++i) c += int(int8_t(uint32_t(a) >> (8 * i))) * int(int8_t(uint32_t(b) >> (8 * i)));
  return c;
}
inline unsigned __dp4a(unsigned a, unsigned b, unsigned c) {
  for (int i = 0; i < 4; ++i) c += ((a >> (8 * i)) & 0xFF) * ((b >> (8 * i)) & 0xFF);
  return c;
}

// Result byte i is byte (s >> 4i) & 7 of the eight bytes x (0-3), y (4-7).
inline unsigned __byte_perm(unsigned x, unsigned y, unsigned s) {
  const uint64_t both = uint64_t(x) | (uint64_t(y) << 32);
  unsigned out = 0;
  for (int i = 0; i < 4; ++i) out |= unsigned((both >> (8 * ((s >> (4 * i)) & 7))) & 0xFF) << (8 * i);
  return out;
}

template <typename T>
inline T __ldg(const T* p) { return *p; }

inline float atomicAdd(float* p, float v) { const float old = *p; *p = old + v; return old; }
inline int atomicAdd(int* p, int v) { const int old = *p; *p = old + v; return old; }
inline unsigned atomicAdd(unsigned* p, unsigned v) { const unsigned old = *p; *p = old + v; return old; }

inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }
inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }
inline long long min(long long a, long long b) { return a < b ? a : b; }
inline long long max(long long a, long long b) { return a > b ? a : b; }
inline long min(long a, long b) { return a < b ? a : b; }
inline long max(long a, long b) { return a > b ? a : b; }
