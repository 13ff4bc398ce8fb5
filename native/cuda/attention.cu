// attention: causal softmax(q K^T * scale) V over the fp16 KV cache with GQA/MQA, sliding
// window and soft-capping, FlashAttention-style: one warp per (query, head, KV split)
// walks its positions in tiles of 32 with an online softmax (running max and sum), so no
// score matrix is materialized. Lanes score one position each; for V, lanes own head_dim_v/32
// output dimensions and accumulate each tile's probabilities broadcast by shuffle.
// Long decode contexts split the KV range across `splits` warps; a combine kernel merges
// the partial (max, sum, output) triples. Positions come from device memory.
// Launch: attention grid (n_head, n_tokens, splits), block 32; combine grid (n_head,
// n_tokens), block 32. Invariants: head_dim <= 256, head_dim_v <= 256.
#include "cuda/common.cuh"
#include "cuda/ops.cuh"

namespace tessera::cuda {

namespace {

constexpr int kMaxDimPerLane = 8;  // head_dim_v <= 256

__global__ void attention_kernel(AttentionLaunch a) {
  const int h = blockIdx.x, t = blockIdx.y, split = blockIdx.z, lane = threadIdx.x;
  const int g = h / (a.n_head / a.n_head_kv);
  const int pos = a.pos[t];
  const int lo = a.sliding_window > 0 ? max(0, pos - a.sliding_window + 1) : 0;
  const int len = pos - lo + 1;
  const int per_split = (len + a.splits - 1) / a.splits;
  const int begin = lo + split * per_split, end = min(pos + 1, begin + per_split);

  __shared__ float q[256];
  const float* qg = a.q + (int64_t(t) * a.n_head + h) * a.head_dim;
  for (int i = lane; i < a.head_dim; i += 32) q[i] = qg[i];
  __syncwarp();
  const uint16_t* kh = a.k_cache + int64_t(g) * a.capacity * a.head_dim;
  const uint16_t* vh = a.v_cache + int64_t(g) * a.capacity * a.head_dim_v;

  float m = -INFINITY, l = 0.f, acc[kMaxDimPerLane] = {};
  for (int j0 = begin; j0 < end; j0 += 32) {
    const int j = j0 + lane;
    float s = -INFINITY;
    if (j < end) {
      const __half2* k2 = reinterpret_cast<const __half2*>(kh + int64_t(j) * a.head_dim);
      float dot = 0.f;
      for (int i = 0; i < a.head_dim / 2; ++i) {
        const float2 kv = __half22float2(k2[i]);
        dot += q[2 * i] * kv.x + q[2 * i + 1] * kv.y;
      }
      s = dot * a.scale;
      if (a.softcap != 0.f) s = a.softcap * tanhf(s / a.softcap);
    }
    const float m_new = fmaxf(m, warp_max(s));
    const float p = j < end ? __expf(s - m_new) : 0.f;
    const float correction = __expf(m - m_new);
    l = l * correction + warp_sum(p);
    for (int d = 0; d < kMaxDimPerLane; ++d) acc[d] *= correction;
    const int n_pos = min(32, end - j0);
    for (int jj = 0; jj < n_pos; ++jj) {
      const float pj = __shfl_sync(0xffffffffu, p, jj);
      const uint16_t* vj = vh + int64_t(j0 + jj) * a.head_dim_v;
      for (int d = 0; d < kMaxDimPerLane; ++d) {
        const int dim = lane + 32 * d;
        if (dim < a.head_dim_v) acc[d] += pj * half_bits(vj[dim]);
      }
    }
    m = m_new;
  }
  if (a.splits == 1) {
    float* o = a.out + (int64_t(t) * a.n_head + h) * a.head_dim_v;
    for (int d = 0; d < kMaxDimPerLane; ++d) {
      const int dim = lane + 32 * d;
      if (dim < a.head_dim_v) o[dim] = l > 0.f ? acc[d] / l : 0.f;
    }
    return;
  }
  // Partial record per split: [max, sum, out[head_dim_v]].
  float* rec = a.partials + ((int64_t(t) * a.n_head + h) * a.splits + split) * (2 + a.head_dim_v);
  if (lane == 0) {
    rec[0] = m;
    rec[1] = l;
  }
  for (int d = 0; d < kMaxDimPerLane; ++d) {
    const int dim = lane + 32 * d;
    if (dim < a.head_dim_v) rec[2 + dim] = acc[d];
  }
}

__global__ void combine_kernel(AttentionLaunch a) {
  const int h = blockIdx.x, t = blockIdx.y, lane = threadIdx.x;
  const float* recs = a.partials + (int64_t(t) * a.n_head + h) * a.splits * (2 + a.head_dim_v);
  float m = -INFINITY;
  for (int s = 0; s < a.splits; ++s) m = fmaxf(m, recs[s * (2 + a.head_dim_v)]);
  float l = 0.f;
  for (int s = 0; s < a.splits; ++s) {
    const float* r = recs + s * (2 + a.head_dim_v);
    if (r[1] > 0.f) l += r[1] * __expf(r[0] - m);
  }
  float* o = a.out + (int64_t(t) * a.n_head + h) * a.head_dim_v;
  for (int dim = lane; dim < a.head_dim_v; dim += 32) {
    float v = 0.f;
    for (int s = 0; s < a.splits; ++s) {
      const float* r = recs + s * (2 + a.head_dim_v);
      if (r[1] > 0.f) v += r[2 + dim] * __expf(r[0] - m);
    }
    o[dim] = l > 0.f ? v / l : 0.f;
  }
}

}  // namespace

size_t attention_partial_floats(int n_tokens, int n_head, int head_dim_v, int splits) {
  return size_t(n_tokens) * n_head * splits * (2 + head_dim_v);
}

void launch_attention(const AttentionLaunch& a, cudaStream_t s) {
  attention_kernel<<<dim3(a.n_head, a.n_tokens, a.splits), 32, 0, s>>>(a);
  if (a.splits > 1) combine_kernel<<<dim3(a.n_head, a.n_tokens), 32, 0, s>>>(a);
}

}  // namespace tessera::cuda
