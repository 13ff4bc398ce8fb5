// qkv_post: everything between the q/k/v projections and attention, per (token, head):
// optional per-head RMSNorm (q_norm / k_norm, qwen3), rotary embedding at the token's
// position (read from device memory), then q written back in place (fp32) and k, v stored
// into the fp16 paged KV cache at the position (through the row's block table). RoPE as the CPU op (rope.cuh).
// Launch: grid (n_tokens, n_head + n_head_kv), block 128; a block loads its head vector
// into shared memory. Invariants: head_dim, head_dim_v <= 256; n_dims even, <= head_dim.
#include "cuda/device.cuh"
#include "cuda/ops.cuh"
#include "cuda/rope.cuh"

namespace tessera::cuda {

namespace {

constexpr int kThreads = 128;
constexpr int kMaxHeadDim = 256;

__global__ void __launch_bounds__(kThreads) qkv_post_kernel(QkvPost p, RopeConsts rc) {
  begin_kernel();
  __shared__ float v[kMaxHeadDim];
  __shared__ float scratch[32];
  const int t = blockIdx.x, slot = blockIdx.y;
  const bool is_q = slot < p.n_head;
  const int h = is_q ? slot : slot - p.n_head;
  const int hd = p.head_dim;
  const int pos = p.pos[t];
  float* row = p.qkv + int64_t(t) * p.ldqkv;
  float* src = row + (is_q ? int64_t(h) * hd : int64_t(p.n_head) * hd + int64_t(h) * hd);
  for (int i = threadIdx.x; i < hd; i += kThreads) v[i] = src[i];

  const float* norm = is_q ? p.q_norm : p.k_norm;  // uniform across the block
  if (norm) {
    float ss = 0.f;
    for (int i = threadIdx.x; i < hd; i += kThreads) ss += v[i] * v[i];
    const float scale = 1.0f / sqrtf(block_sum(ss, scratch) / float(hd) + p.norm_eps);
    for (int i = threadIdx.x; i < hd; i += kThreads) v[i] = v[i] * scale * norm[i];
  }
  __syncthreads();
  if (rc.kind != int(RopeKind::None))
    for (int i = threadIdx.x; i < rc.n_dims / 2; i += kThreads) rope_pair(v, i, pos, rc, p.freq_factors);
  __syncthreads();

  if (is_q) {
    // Mistral 3's attention temperature, as core/model_plan.h attention_temperature.
    const float temp = p.temp_scale != 0.f
                           ? float(log(double(floorf(float(pos) / float(p.temp_floor))) + 1.0) * double(p.temp_scale) + 1.0)
                           : 1.f;
    for (int i = threadIdx.x; i < hd; i += kThreads) src[i] = p.temp_scale != 0.f ? v[i] * temp : v[i];
    return;
  }
  const int32_t* table = p.kv.table_of(t);
  uint16_t* kc = p.kv.k + p.kv.row(table, h, pos, hd);
  for (int i = threadIdx.x; i < hd; i += kThreads) kc[i] = __half_as_ushort(__float2half_rn(v[i]));
  const float* vs = row + int64_t(p.n_head + p.n_head_kv) * hd + int64_t(h) * p.head_dim_v;
  uint16_t* vc = p.kv.v + p.kv.row(table, h, pos, p.head_dim_v);
  for (int i = threadIdx.x; i < p.head_dim_v; i += kThreads) vc[i] = __half_as_ushort(__float2half_rn(vs[i]));
}

}  // namespace

void launch_qkv_post(const QkvPost& p, cudaStream_t s) {
  launch_kernel(qkv_post_kernel, dim3(p.n_tokens, p.n_head + p.n_head_kv), dim3(kThreads), s, p,
                rope_consts(p.rope, p.freq_factors != nullptr));
}

}  // namespace tessera::cuda
