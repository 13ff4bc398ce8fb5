// Elementwise ops of a decoder block: SwiGLU/GELU gating, residual add, bias broadcast.
// Launch: grid-stride, block 256. out may alias gate.
#include <algorithm>

#include "cuda/common.cuh"
#include "cuda/ops.cuh"

namespace tessera::cuda {

namespace {

__global__ void swiglu_kernel(const float* gate, const float* up, float* out, int64_t n, int gelu) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float g = gate[i];
    const float a = gelu ? 0.5f * g * (1.f + tanhf(0.7978845608f * g * (1.f + 0.044715f * g * g))) : g / (1.f + __expf(-g));
    out[i] = a * up[i];
  }
}

__global__ void add_kernel(float* x, const float* y, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) x[i] += y[i];
}

__global__ void add_bias_kernel(float* x, const float* b, int64_t n, int dim) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) x[i] += b[i % dim];
}

unsigned blocks_for(int64_t n) { return unsigned(std::min<int64_t>((n + 255) / 256, 4096)); }

}  // namespace

void launch_swiglu(const float* gate, const float* up, float* out, int64_t n, GateActivation act, cudaStream_t s) {
  swiglu_kernel<<<blocks_for(n), 256, 0, s>>>(gate, up, out, n, act == GateActivation::Gelu);
}

void launch_add(float* x, const float* y, int64_t n, cudaStream_t s) { add_kernel<<<blocks_for(n), 256, 0, s>>>(x, y, n); }

void launch_add_bias(float* x, const float* bias, int rows, int dim, cudaStream_t s) {
  add_bias_kernel<<<blocks_for(int64_t(rows) * dim), 256, 0, s>>>(x, bias, int64_t(rows) * dim, dim);
}

}  // namespace tessera::cuda
