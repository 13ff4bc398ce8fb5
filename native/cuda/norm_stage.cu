// norm_stage: y = RMSNorm(x) * weight, or LayerNorm(x) * weight + bias, for each row of x,
// written straight into the staged formats the next matmuls read (no fp32 y in between).
// RMS: scale = 1 / sqrt(mean(x^2) + eps). Layer: mean first, then the variance of x - mean.
// Launch: grid (rows, stage_blocks_per_row), block 256; every block reduces its row's
// statistics (a decode row is read from L2 by each of its blocks: cheaper than a second
// launch), then its warps stage 32-value chunks, one per warp at a time.
// Invariants: dim >= 1; x rows strided by ldx >= dim.
#include "cuda/device.cuh"
#include "cuda/ops.cuh"
#include "cuda/stage.cuh"

namespace tessera::cuda {

namespace {

constexpr int kWarps = 8, kThreads = kWarps * 32;

template <bool kLayer>
__global__ void __launch_bounds__(kThreads)
    norm_stage_kernel(const float* x, int64_t ldx, int dim, const float* weight, const float* bias, float eps,
                      unsigned formats, StagedAct out, int64_t cols32) {
  begin_kernel();
  __shared__ float scratch[32];
  const int64_t row = blockIdx.x;
  const float* xr = x + row * ldx;
  float mean = 0.f, scale;
  if (kLayer) {
    float s = 0.f;
#pragma unroll 8
    for (int i = threadIdx.x; i < dim; i += kThreads) s += xr[i];
    mean = block_sum(s, scratch) / float(dim);
    float v = 0.f;
#pragma unroll 8
    for (int i = threadIdx.x; i < dim; i += kThreads) v += (xr[i] - mean) * (xr[i] - mean);
    scale = 1.0f / sqrtf(block_sum(v, scratch) / float(dim) + eps);
  } else {
    float s = 0.f;
    // Unrolled: a single-row (decode) norm is a chain of dependent round trips otherwise.
#pragma unroll 8
    for (int i = threadIdx.x; i < dim; i += kThreads) s += xr[i] * xr[i];
    scale = 1.0f / sqrtf(block_sum(s, scratch) / float(dim) + eps);
  }
  stage_row<kWarps>(out, formats, cols32, row, [&](int64_t col) {
    if (col >= dim) return 0.f;
    float y = (xr[col] - mean) * scale;
    if (weight) y *= weight[col];
    if (kLayer && bias) y += bias[col];
    return y;
  });
}

}  // namespace

void launch_norm_stage(const float* x, int64_t ldx, int rows, int dim, NormKind kind, const float* weight,
                       const float* bias, float eps, unsigned formats, const StagedAct& out, cudaStream_t s) {
  const int64_t cols32 = round_up(dim, kChunk);
  const dim3 grid(rows, stage_blocks_per_row(rows, cols32, kWarps));
  if (kind == NormKind::Layer)
    launch_kernel(norm_stage_kernel<true>, grid, dim3(kThreads), s, x, ldx, dim, weight, bias, eps, formats, out,
                  cols32);
  else
    launch_kernel(norm_stage_kernel<false>, grid, dim3(kThreads), s, x, ldx, dim, weight, bias, eps, formats, out,
                  cols32);
}

}  // namespace tessera::cuda
