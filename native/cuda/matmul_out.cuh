// The matmul epilogue (ops.cuh, MatmulOut): bias, scale, residual accumulation, soft-capping.
#pragma once
#include "cuda/device.cuh"
#include "cuda/ops.cuh"

namespace tessera::cuda {

__device__ __forceinline__ void store_matmul_out(const MatmulOut& o, int64_t row, int64_t token, float v) {
  if (o.bias) v += o.bias[row];
  // Rounded on its own (no FMA with the add below): ggml scales, then adds.
  if (o.scale != 0.f) v = __fmul_rn(v, o.scale);
  float* p = o.y + token * o.ldy + row;
  if (o.accumulate) v += *p;
  if (o.softcap != 0.f) v = o.softcap * tanhf(v * (1.0f / o.softcap));
  *p = v;
}

}  // namespace tessera::cuda
