// rms_norm: y[r] = x[r] / sqrt(mean(x[r]^2) + eps) * w (w may be null). In place allowed.
// Launch: grid rows, block 256; block-wide sum of squares through warp shuffles + smem.
#include "cuda/common.cuh"
#include "cuda/ops.cuh"

namespace tessera::cuda {

namespace {

__global__ void rms_norm_kernel(const float* x, const float* w, float* y, int dim, float eps) {
  const float* xr = x + int64_t(blockIdx.x) * dim;
  float* yr = y + int64_t(blockIdx.x) * dim;
  float ss = 0.f;
  for (int i = threadIdx.x; i < dim; i += blockDim.x) ss += xr[i] * xr[i];
  __shared__ float partial[32];
  ss = warp_sum(ss);
  if ((threadIdx.x & 31) == 0) partial[threadIdx.x >> 5] = ss;
  __syncthreads();
  if (threadIdx.x < 32) {
    float v = threadIdx.x < (blockDim.x >> 5) ? partial[threadIdx.x] : 0.f;
    v = warp_sum(v);
    if (threadIdx.x == 0) partial[0] = rsqrtf(v / dim + eps);
  }
  __syncthreads();
  const float scale = partial[0];
  for (int i = threadIdx.x; i < dim; i += blockDim.x) yr[i] = xr[i] * scale * (w ? w[i] : 1.f);
}

}  // namespace

void launch_rms_norm(const float* x, const float* w, float* y, int rows, int dim, float eps, cudaStream_t s) {
  rms_norm_kernel<<<rows, 256, 0, s>>>(x, w, y, dim, eps);
}

}  // namespace tessera::cuda
