// Writing one 32-value chunk of an activation row in the staged formats (ops.cuh,
// StagedAct). Shared by the staging kernels (norm_stage, swiglu_stage, copy_stage).
//  - q8: q_i = round-to-nearest-even(x_i * 127 / amax), d = amax / 127, and d * sum(q);
//  - f32: the values; f16: the values rounded to fp16 (saturating).
// Values past the row's width are passed in as zeros, so padding is written as zeros.
#pragma once
#include "cuda/device.cuh"
#include "cuda/ops.cuh"

namespace tessera::cuda {

__device__ __forceinline__ void stage_chunk(const StagedAct& o, unsigned formats, int64_t cols32, int64_t row,
                                            int64_t c, const float v[32]) {
  const int64_t at = row * cols32 + 32 * c;
  if (formats & kStageQ8) {
    float amax = 0.f;
#pragma unroll
    for (int i = 0; i < 32; ++i) amax = fmaxf(amax, fabsf(v[i]));
    const float d = amax / 127.f, id = amax > 0.f ? 127.f / amax : 0.f;
    uint32_t w[8];
    int sum = 0;
#pragma unroll
    for (int k = 0; k < 8; ++k) {
      uint32_t word = 0;
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int q = max(-127, min(127, int(rintf(v[4 * k + j] * id))));
        sum += q;
        word |= uint32_t(uint8_t(int8_t(q))) << (8 * j);
      }
      w[k] = word;
    }
    uint4* dst = reinterpret_cast<uint4*>(o.q8 + at);
    dst[0] = make_uint4(w[0], w[1], w[2], w[3]);
    dst[1] = make_uint4(w[4], w[5], w[6], w[7]);
    o.ds[row * (cols32 / 32) + c] = make_float2(d, d * float(sum));
  }
  if (formats & kStageF32) {
    float4* dst = reinterpret_cast<float4*>(o.f32 + at);
#pragma unroll
    for (int k = 0; k < 8; ++k) dst[k] = make_float4(v[4 * k], v[4 * k + 1], v[4 * k + 2], v[4 * k + 3]);
  }
  if (formats & kStageF16) {
    uint4* dst = reinterpret_cast<uint4*>(o.f16 + at);
#pragma unroll
    for (int k = 0; k < 4; ++k)
      dst[k] = make_uint4(pack_half2(v[8 * k], v[8 * k + 1]), pack_half2(v[8 * k + 2], v[8 * k + 3]),
                          pack_half2(v[8 * k + 4], v[8 * k + 5]), pack_half2(v[8 * k + 6], v[8 * k + 7]));
  }
}

}  // namespace tessera::cuda
