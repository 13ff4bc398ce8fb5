// moe_combine: the end of a mixture-of-experts block, into the residual stream:
// x[t][i] += sum_j weights[t k + j] * expert_out[t k + j][i] + gate(t) * shared_out[t][i],
// the shared term only with shared experts, gate(t) = sigmoid(shared_gate[t * ld_gate]) for
// qwen2moe's gated shared expert, else 1. Summed in choice order, as the CPU does.
// Launch: grid (n, ceil(dim / 128)), block 128; one thread per element.
#include "cuda/device.cuh"
#include "cuda/ops.cuh"

namespace tessera::cuda {

namespace {

constexpr int kThreads = 128;

__global__ void __launch_bounds__(kThreads) moe_combine_kernel(MoeCombine c) {
  begin_kernel();
  const int64_t t = blockIdx.x, i = int64_t(blockIdx.y) * kThreads + threadIdx.x;
  if (i >= c.dim) return;
  float sum = 0.f;
  for (int j = 0; j < c.k; ++j) sum += c.weights[t * c.k + j] * c.expert_out[(t * c.k + j) * c.dim + i];
  if (c.shared_out) {
    const float g = c.shared_gate ? 1.0f / (1.0f + expf(-c.shared_gate[t * c.ld_gate])) : 1.0f;
    sum += g * c.shared_out[t * c.dim + i];
  }
  if (c.scale != 0.f) sum = __fmul_rn(sum, c.scale);
  c.x[t * c.dim + i] += sum;
}

}  // namespace

void launch_moe_combine(const MoeCombine& c, cudaStream_t s) {
  launch_kernel(moe_combine_kernel, dim3(c.n_tokens, unsigned((c.dim + kThreads - 1) / kThreads)), dim3(kThreads), s, c);
}

}  // namespace tessera::cuda
