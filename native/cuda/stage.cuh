// Writing one 32-value chunk of an activation row in the staged formats (ops.cuh,
// StagedAct), one warp per chunk, lane i holding value i of it. Shared by the staging
// kernels (norm_stage, swiglu_stage, copy_stage) and the attention combine.
//  - q8: q_i = round-to-nearest-even(x_i * 127 / amax), d = amax / 127, and d * sum(q);
//  - f32: the values; f16: the values rounded to fp16 (saturating).
// Values past the row's width are passed in as zeros, so padding is written as zeros.
// A warp per chunk rather than a thread: a decode step stages single rows, and a thread per
// chunk left a 14336-wide row to 448 threads, each a serial chain of 64 strided loads.
#pragma once
#include <algorithm>

#include "cuda/device.cuh"
#include "cuda/ops.cuh"

namespace tessera::cuda {

// Called by all 32 lanes of a warp (it reduces over the warp).
__device__ __forceinline__ void stage_chunk(const StagedAct& o, unsigned formats, int64_t cols32, int64_t row,
                                            int64_t c, float v, int lane) {
  const int64_t at = row * cols32 + 32 * c + lane;
  if (formats & kStageQ8) {
    const float amax = warp_max(fabsf(v));
    const float d = amax / 127.f, id = amax > 0.f ? 127.f / amax : 0.f;
    const int q = max(-127, min(127, int(rintf(v * id))));
    o.q8[at] = int8_t(q);
    const int sum = warp_sum(q);
    if (lane == 0) o.ds[row * (cols32 / 32) + c] = make_float2(d, d * float(sum));
  }
  if (formats & kStageF32) o.f32[at] = v;
  if (formats & kStageF16) o.f16[at] = float_to_half_sat(v);
}

// Stages this block's share of row `row`: its kWarps warps take chunks blockIdx.y * kWarps
// + warp, then every gridDim.y * kWarps-th (so a row may spread over grid.y). value(col)
// is the value at col < cols32; it returns 0 past the row's width. Called by every thread.
template <int kWarps, class Value>
__device__ __forceinline__ void stage_row(const StagedAct& o, unsigned formats, int64_t cols32, int64_t row,
                                          const Value& value) {
  const int lane = threadIdx.x & 31;
  for (int64_t c = int64_t(blockIdx.y) * kWarps + (threadIdx.x >> 5); c < cols32 / 32; c += int64_t(gridDim.y) * kWarps)
    stage_chunk(o, formats, cols32, row, c, value(32 * c + lane), lane);
}

// grid.y of a staging launch whose blocks of `warps` warps walk the chunks of their row:
// about 1024 blocks in all, so a single decode row still spreads over the GPU, and no more
// blocks per row than there are warps' worth of chunks.
inline unsigned stage_blocks_per_row(int rows, int64_t cols32, int warps) {
  const int64_t chunk_groups = (cols32 / 32 + warps - 1) / warps;
  return unsigned(std::max<int64_t>(1, std::min<int64_t>(chunk_groups, (1024 + rows - 1) / std::max(rows, 1))));
}

}  // namespace tessera::cuda
