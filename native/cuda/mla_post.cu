// mla_post: multi-head latent attention (deepseek2) between its projections and attention,
// as the CPU executor's mla_attention_block does it:
//  - per (token, head): RoPE of q_pe (the last head_dim_rope values of the head's q row),
//    written as the RoPE part of the head's MQA query row [latent | rope] (the latent part
//    is wk_b . q_nope, written by the head matmul);
//  - per token: RMSNorm of the latent (kv_a_norm), RoPE of k_pe, and the row [latent | k_pe]
//    stored fp16 into the latent cache at the token's position (one row per position, in
//    the row's blocks, read as keys and, through its prefix, as values).
// RoPE as the CPU op (rope.cuh). Launch: grid (n_tokens, n_head + 1), block 128; a block
// works on its vector in shared memory. Invariants: kv_lora + rope <= 576; rope even.
#include "cuda/device.cuh"
#include "cuda/ops.cuh"
#include "cuda/rope.cuh"

namespace tessera::cuda {

namespace {

constexpr int kThreads = 128;
constexpr int kMaxRow = 576;

__global__ void __launch_bounds__(kThreads) mla_post_kernel(MlaPost p, RopeConsts rc) {
  begin_kernel();
  __shared__ float v[kMaxRow];
  __shared__ float scratch[32];
  const int t = blockIdx.x, h = blockIdx.y;
  const int pos = p.pos[t];
  const int row_w = p.kv_lora + p.rope_dims;
  if (h < p.n_head) {
    const float* q_pe = p.q + (int64_t(t) * p.n_head + h) * (p.nope + p.rope_dims) + p.nope;
    for (int i = threadIdx.x; i < p.rope_dims; i += kThreads) v[i] = q_pe[i];
    __syncthreads();
    for (int i = threadIdx.x; i < rc.n_dims / 2; i += kThreads) rope_pair(v, i, pos, rc, p.freq_factors);
    __syncthreads();
    float* dst = p.q_mqa + (int64_t(t) * p.n_head + h) * row_w + p.kv_lora;
    for (int i = threadIdx.x; i < p.rope_dims; i += kThreads) dst[i] = v[i];
    return;
  }
  const float* kv = p.kv + int64_t(t) * row_w;
  float ss = 0.f;
  for (int i = threadIdx.x; i < row_w; i += kThreads) {
    v[i] = kv[i];
    if (i < p.kv_lora) ss += v[i] * v[i];
  }
  const float scale = 1.0f / sqrtf(block_sum(ss, scratch) / float(p.kv_lora) + p.norm_eps);  // barriers publish v
  for (int i = threadIdx.x; i < p.kv_lora; i += kThreads) v[i] = v[i] * scale * p.kv_norm[i];
  for (int i = threadIdx.x; i < rc.n_dims / 2; i += kThreads) rope_pair(v + p.kv_lora, i, pos, rc, p.freq_factors);
  __syncthreads();
  uint16_t* dst = p.cache.k + p.cache.row(p.cache.table_of(t), 0, pos, row_w);
  for (int i = threadIdx.x; i < row_w; i += kThreads) dst[i] = __half_as_ushort(__float2half_rn(v[i]));
}

}  // namespace

void launch_mla_post(const MlaPost& p, cudaStream_t s) {
  launch_kernel(mla_post_kernel, dim3(p.n_tokens, p.n_head + 1), dim3(kThreads), s, p,
                rope_consts(p.rope, p.freq_factors != nullptr));
}

}  // namespace tessera::cuda
