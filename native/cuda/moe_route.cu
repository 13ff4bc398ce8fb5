// moe_route: the mixture-of-experts router on the device, the semantics of
// native/cpu/moe_route.cpp per token: gating probabilities (softmax or sigmoid) of the
// router logits; selection scores = probability + optional bias (steers selection only);
// with group-limited routing, experts outside the best n_group_used groups (group score: sum
// of its two best selection scores) drop out; the k best scores win (ties: lower expert id),
// and their probabilities, renormalized to sum 1 when norm_top_k, times weights_scale, are
// the routing weights.
// Layout: logits [n][ld] (first n_expert columns) -> experts, weights [n][k], choice order =
// descending score.
// Launch: grid n, block 32 (one warp per token); scores and probabilities in shared memory.
// Invariants: n_expert <= kMaxExperts, n_group <= kMaxExpertGroups, n_expert divisible by
// n_group, k <= n_expert (checked by the backend).
#include "cuda/device.cuh"
#include "cuda/ops.cuh"

namespace tessera::cuda {

namespace {

constexpr int kLanes = 32;

// The better of (va, ia) and (vb, ib): higher value, then lower index; ib < 0 never wins.
__device__ __forceinline__ bool better(float va, int ia, float vb, int ib) {
  if (ib < 0) return true;
  if (ia < 0) return false;
  return va > vb || (va == vb && ia < ib);
}

// Warp-wide best (value, index) over the lanes' candidates; every lane gets it.
__device__ __forceinline__ int warp_best(float v, int i) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, v, o);
    const int oi = __shfl_xor_sync(0xffffffffu, i, o);
    if (better(ov, oi, v, i)) {
      v = ov;
      i = oi;
    }
  }
  return i;
}

__global__ void __launch_bounds__(kLanes)
    moe_route_kernel(const float* logits, int64_t ld, const float* bias, MoeParams p, int32_t* experts, float* weights) {
  begin_kernel();
  __shared__ float probs[kMaxExperts];
  __shared__ float select[kMaxExperts];
  __shared__ unsigned char taken[kMaxExperts];
  __shared__ float group_score[kMaxExpertGroups];
  __shared__ unsigned char group_kept[kMaxExpertGroups];
  const int t = blockIdx.x, lane = threadIdx.x, n = p.n_expert, k = p.n_expert_used;
  const float* l = logits + int64_t(t) * ld;

  if (p.gating == ExpertGating::Softmax) {
    float m = -INFINITY;
    for (int e = lane; e < n; e += kLanes) m = fmaxf(m, l[e]);
    m = warp_max(m);
    float sum = 0.f;
    for (int e = lane; e < n; e += kLanes) {
      probs[e] = expf(l[e] - m);
      sum += probs[e];
    }
    const float inv = 1.0f / warp_sum(sum);
    for (int e = lane; e < n; e += kLanes) probs[e] *= inv;
  } else if (p.gating == ExpertGating::SoftmaxWeight) {
    for (int e = lane; e < n; e += kLanes) probs[e] = l[e];  // picked by raw logit, weighted below
  } else {
    for (int e = lane; e < n; e += kLanes) probs[e] = 1.0f / (1.0f + expf(-l[e]));
  }
  for (int e = lane; e < n; e += kLanes) {
    select[e] = probs[e] + (bias ? bias[e] : 0.f);
    taken[e] = 0;
  }
  __syncwarp();

  if (p.n_group > 1 && p.n_group_used < p.n_group) {
    const int per_group = n / p.n_group;
    for (int g = lane; g < p.n_group; g += kLanes) {
      float best = -INFINITY, second = -INFINITY;
      for (int e = g * per_group; e < (g + 1) * per_group; ++e) {
        if (select[e] > best) {
          second = best;
          best = select[e];
        } else if (select[e] > second) {
          second = select[e];
        }
      }
      group_score[g] = per_group > 1 ? best + second : best;
      group_kept[g] = 0;
    }
    __syncwarp();
    for (int round = 0; round < p.n_group_used; ++round) {
      float bv = -INFINITY;
      int bi = -1;
      for (int g = lane; g < p.n_group; g += kLanes)
        if (!group_kept[g] && better(group_score[g], g, bv, bi)) {
          bv = group_score[g];
          bi = g;
        }
      const int win = warp_best(bv, bi);
      if (lane == 0) group_kept[win] = 1;
      __syncwarp();
    }
    for (int e = lane; e < n; e += kLanes)
      if (!group_kept[e / per_group]) select[e] = -INFINITY;
    __syncwarp();
  }

  int32_t* out_e = experts + int64_t(t) * k;
  float* out_w = weights + int64_t(t) * k;
  for (int j = 0; j < k; ++j) {
    float bv = -INFINITY;
    int bi = -1;
    for (int e = lane; e < n; e += kLanes)
      if (!taken[e] && better(select[e], e, bv, bi)) {
        bv = select[e];
        bi = e;
      }
    const int win = warp_best(bv, bi);
    if (lane == 0) {
      taken[win] = 1;
      out_e[j] = win;
      out_w[j] = probs[win];
    }
    __syncwarp();
  }
  if (lane == 0) {
    // Serial, in choice order, as the CPU sums.
    if (p.gating == ExpertGating::SoftmaxWeight) {
      float m = -INFINITY, sum = 0.f;
      for (int j = 0; j < k; ++j) m = fmaxf(m, out_w[j]);
      for (int j = 0; j < k; ++j) sum += out_w[j] = expf(out_w[j] - m);
      for (int j = 0; j < k; ++j) out_w[j] *= 1.0f / sum;
    }
    if (p.norm_top_k) {
      float sum = 0.f;
      for (int j = 0; j < k; ++j) sum += out_w[j];
      const float inv = 1.0f / fmaxf(sum, 6.103515625e-5f);
      for (int j = 0; j < k; ++j) out_w[j] *= inv;
    }
    if (p.weights_scale != 0.f && p.weights_scale != 1.f)
      for (int j = 0; j < k; ++j) out_w[j] *= p.weights_scale;
  }
}

}  // namespace

void launch_moe_route(const MoeRouteArgs& a, cudaStream_t s) {
  launch_kernel(moe_route_kernel, dim3(a.n_tokens), dim3(kLanes), s, a.logits, a.ld, a.selection_bias, a.params, a.experts,
                a.weights);
}

}  // namespace tessera::cuda
