// post_norm_add: x[r] += RMSNorm(y[r]) * weight (times residual_scale when nonzero) for each
// row: Gemma's post-attention and post-FFN norms, which normalize a block's output before it
// joins the residual stream (the CPU executor's residual_add with a post norm).
// Launch: grid (rows), block 256; each block reduces its row's sum of squares, then adds.
// Invariants: dim >= 1; y and x rows dim apart; y and x do not overlap.
#include "cuda/device.cuh"
#include "cuda/ops.cuh"

namespace tessera::cuda {

namespace {

constexpr int kThreads = 256;

__global__ void __launch_bounds__(kThreads)
    post_norm_add_kernel(const float* y, const float* weight, int dim, float eps, float residual_scale, float* x) {
  begin_kernel();
  __shared__ float scratch[32];
  const int64_t row = blockIdx.x;
  const float* yr = y + row * dim;
  float* xr = x + row * dim;
  float s = 0.f;
#pragma unroll 8
  for (int i = threadIdx.x; i < dim; i += kThreads) s += yr[i] * yr[i];
  const float scale = 1.0f / sqrtf(block_sum(s, scratch) / float(dim) + eps);
  for (int i = threadIdx.x; i < dim; i += kThreads) {
    float v = yr[i] * scale * weight[i];
    if (residual_scale != 0.f) v *= residual_scale;
    xr[i] += v;
  }
}

}  // namespace

void launch_post_norm_add(const float* y, const float* weight, int rows, int dim, float eps, float residual_scale, float* x,
                          cudaStream_t s) {
  launch_kernel(post_norm_add_kernel, dim3(rows), dim3(kThreads), s, y, weight, dim, eps, residual_scale, x);
}

}  // namespace tessera::cuda
