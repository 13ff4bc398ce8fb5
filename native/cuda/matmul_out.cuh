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

// The expert matmuls' per-expert bias of output column col (parts of expert_rows columns).
__device__ __forceinline__ float expert_bias(const MatmulOut& o, int expert, int64_t col) {
  if (!o.expert_bias[0] && !o.expert_bias[1]) return 0.f;
  const float* b = o.expert_bias[col / o.expert_rows];
  return b ? b[int64_t(expert) * o.expert_rows + col % o.expert_rows] : 0.f;
}

}  // namespace tessera::cuda
