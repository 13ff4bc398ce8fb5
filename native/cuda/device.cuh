// Device-side building blocks shared by every kernel: kernel launch, warp and block
// reductions, the int8 dot product, the fp16 tensor-core MMA and its ldmatrix fragment
// loads, half packing and conversion-free small-integer decoding. Each has one
// CUDA definition and, where hardware instructions are involved, an emulator twin
// (native/cuda/emulator), so the kernels compile unchanged for both.
#pragma once
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace tessera::cuda {

// Programmatic dependent launch (Hopper and later): each kernel may be scheduled while its
// predecessor in the stream drains, so launch latency overlaps the previous kernel instead
// of adding to it (a decode step is ~350 small dependent launches). Correct only because
// every kernel starts with begin_kernel(), which waits for the predecessor's completion and
// memory before touching any buffer. Set by the backend for devices of compute capability 9+.
inline bool& programmatic_launch() {
  static bool enabled = false;
  return enabled;
}

// Launches `kernel` over grid x block on `stream` (arguments are converted to the kernel's
// parameter types and copied, as a <<<>>> launch does). Errors surface through
// cudaGetLastError, which the backend checks after enqueuing a forward pass.
template <typename... Params, typename... Args>
inline void launch_kernel(void (*kernel)(Params...), dim3 grid, dim3 block, cudaStream_t stream, Args... args) {
  static_assert(sizeof...(Params) == sizeof...(Args), "kernel argument count mismatch");
#ifdef TESSERA_CUDA_EMULATOR
  ::tessera_emu::launch(grid, block, stream, [=]() { kernel(Params(args)...); });
#else
  cudaLaunchConfig_t config = {};
  config.gridDim = grid;
  config.blockDim = block;
  config.stream = stream;
  cudaLaunchAttribute attribute = {};
  attribute.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attribute.val.programmaticStreamSerializationAllowed = 1;
  config.attrs = &attribute;
  config.numAttrs = programmatic_launch() ? 1 : 0;
  cudaLaunchKernelEx(&config, kernel, Params(args)...);
#endif
}

// The two halves of a kernel's start under programmatic launch. allow_dependents lets the
// next kernel in the stream be scheduled now (its blocks take SM slots only after all of
// this grid's blocks are resident, so no deadlock); wait_for_inputs waits until the previous
// kernel has finished and its writes are visible. Every thread of every kernel calls both,
// in this order, before touching a buffer an earlier kernel writes: a grid completes only
// after its predecessor then, so "finished" reaches back along the whole stream. Between the
// two a kernel may read only what no kernel writes (weights). Both are no-ops without
// programmatic launch, before sm_90 and in the emulator.
__device__ __forceinline__ void allow_dependents() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

__device__ __forceinline__ void wait_for_inputs() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

// First statement of a kernel with nothing to do before its inputs are ready.
__device__ __forceinline__ void begin_kernel() {
  allow_dependents();
  wait_for_inputs();
}

// One warp asks L2 for the 128-byte lines of [p, p + bytes), a lane per line. Used between
// allow_dependents and wait_for_inputs, so a kernel's weights start streaming while the
// kernels before it still run (a decode step is mostly short dependent kernels, during which
// memory would otherwise idle). Only where programmatic launch exists: elsewhere the kernel
// starts after its predecessor ends and its own loads follow at once.
__device__ __forceinline__ void prefetch_l2(const void* p, size_t bytes, int lane) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  const uintptr_t end = reinterpret_cast<uintptr_t>(p) + bytes;
  for (uintptr_t line = (reinterpret_cast<uintptr_t>(p) & ~uintptr_t(127)) + 128 * uintptr_t(lane); line < end;
       line += 32 * 128)
    asm volatile("prefetch.global.L2 [%0];" ::"l"(line));
#else
  (void)p;
  (void)bytes;
  (void)lane;
#endif
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ int warp_sum(int v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Sum over the whole block; every thread must call it (it contains barriers) and gets the
// total. `scratch` is 32 floats of shared memory, reusable right after the call returns.
__device__ __forceinline__ float block_sum(float v, float* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = (blockDim.x + 31) >> 5;
  v = warp_sum(v);
  __syncthreads();  // scratch may still be read by a previous block_sum
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  float total = 0.f;
  for (int w = 0; w < warps; ++w) total += scratch[w];
  return total;
}

// Maximum over the whole block, with the same contract as block_sum.
__device__ __forceinline__ float block_max(float v, float* scratch) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = (blockDim.x + 31) >> 5;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  float m = -INFINITY;
  for (int w = 0; w < warps; ++w) m = fmaxf(m, scratch[w]);
  return m;
}

// c + sum of the four int8 products of a and b.
__device__ __forceinline__ int dot_i8x4(int a, int b, int c) { return __dp4a(a, b, c); }

__device__ __forceinline__ float half_to_float(uint16_t h) { return __half2float(__ushort_as_half(h)); }
__device__ __forceinline__ float bf16_to_float(uint16_t h) { return __uint_as_float(uint32_t(h) << 16); }

// v clamped to the finite fp16 range: activations past it saturate instead of becoming inf.
__device__ __forceinline__ float clamp_to_half_range(float v) { return fminf(fmaxf(v, -65504.f), 65504.f); }

// fp16 with saturation.
__device__ __forceinline__ uint16_t float_to_half_sat(float v) {
  return __half_as_ushort(__float2half_rn(clamp_to_half_range(v)));
}

// Two floats as an fp16 pair (lo in the low half), saturating; one conversion instruction
// for both on the GPU.
__device__ __forceinline__ uint32_t pack_half2(float lo, float hi) {
  const __half2 h = __floats2half2_rn(clamp_to_half_range(lo), clamp_to_half_range(hi));
  return *reinterpret_cast<const uint32_t*>(&h);
}

// An integer 0 <= u < 2^23 as a float without an int-to-float conversion (whose throughput
// is a fraction of the FMA pipe's): u is the mantissa of 2^23 + u, then 2^23 comes off.
// `minus` is subtracted too, in the same exact addition.
__device__ __forceinline__ float small_uint_to_float(uint32_t u, float minus = 0.f) {
  return __uint_as_float(0x4B000000u | u) - (8388608.f + minus);
}

// Bytes b0 and b1 of word w as an fp16 pair of 1024 + b (exact: fp16 spacing is 1 on
// [1024, 2048)), b0 in the low half; `second` takes bytes 2 and 3 instead.
__device__ __forceinline__ __half2 bytes_plus_1024(uint32_t w, bool second) {
  const uint32_t bits = __byte_perm(w, 0x64646464u, second ? 0x4342u : 0x4140u);
  return *reinterpret_cast<const __half2*>(&bits);
}

// d += a * b for one warp-wide mma.sync.m16n8k16 (fp16 operands, fp32 accumulators). The
// fragment layouts are those of the PTX ISA (groupID = lane / 4, tig = lane % 4):
//   a[0] = A[g][2t..2t+1]   a[1] = A[g+8][2t..2t+1]   a[2] = A[g][2t+8..]   a[3] = A[g+8][2t+8..]
//   b[0] = B[2t..2t+1][g]   b[1] = B[2t+8..2t+9][g]
//   d[0..1] = D[g][2t..2t+1]   d[2..3] = D[g+8][2t..2t+1]
// (the lower-numbered element in the low half of each register).
__device__ __forceinline__ void mma_16x8x16(float d[4], const uint32_t a[4], const uint32_t b[2]) {
#ifdef TESSERA_CUDA_EMULATOR
  ::tessera_emu::mma_m16n8k16_f16_f32(d, a, b, d);
#else
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#endif
}

// r[i] = this lane's word of the 8x8 fp16 matrix i of ldmatrix.x4: lanes 8i..8i+7 pass the
// shared-memory addresses of matrix i's eight 16-byte rows (16-byte aligned), and lane l
// receives the pair at row l / 4, columns 2 (l % 4) and 2 (l % 4) + 1, which is the
// mma.m16n8k16 fragment layout. One instruction replaces four 32-bit shared loads per lane.
__device__ __forceinline__ void ldmatrix_x4(uint32_t r[4], const uint16_t* row) {
#ifdef TESSERA_CUDA_EMULATOR
  ::tessera_emu::ldmatrix_x4_b16(r, row);
#else
  const unsigned addr = unsigned(__cvta_generic_to_shared(row));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
#endif
}

// 16-byte and 8-byte loads (the pointers must be aligned accordingly).
__device__ __forceinline__ uint4 load16(const void* p) { return *reinterpret_cast<const uint4*>(p); }
__device__ __forceinline__ uint2 load8(const void* p) { return *reinterpret_cast<const uint2*>(p); }

}  // namespace tessera::cuda
