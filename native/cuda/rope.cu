// rope: rotary embedding of x [n_tokens][n_heads][head_dim] in place, normal (2i, 2i+1) or
// neox (i, i + n_dims/2) pairs, linear / YaRN scaling and optional frequency factors, as
// the CPU rope (cpu/rope.cpp). Launch: grid n_tokens * n_heads, block n_dims / 2 threads
// (one rotated pair each). Positions come from device memory (graph-capturable).
#include "cuda/common.cuh"
#include "cuda/ops.cuh"

namespace tessera::cuda {

namespace {

struct RopeConsts {
  int kind, n_dims;
  float freq_base, freq_scale, ext_factor, mscale, corr_lo, corr_hi;
};

__global__ void rope_kernel(float* x, const int32_t* pos, int n_heads, int head_dim, RopeConsts c, const float* freq_factors) {
  const int row = blockIdx.x, i = threadIdx.x;
  const int t = row / n_heads;
  float* v = x + int64_t(row) * head_dim;
  float theta_extrap = float(pos[t]) * powf(c.freq_base, -2.0f * i / c.n_dims);
  if (freq_factors) theta_extrap /= freq_factors[i];
  const float theta_interp = c.freq_scale * theta_extrap;
  float theta = theta_interp;
  if (c.ext_factor != 0.f) {
    const float y = (i - c.corr_lo) / fmaxf(0.001f, c.corr_hi - c.corr_lo);
    const float mix = (1.f - fminf(1.f, fmaxf(0.f, y))) * c.ext_factor;
    theta = theta_interp * (1.f - mix) + theta_extrap * mix;
  }
  float sn, cs;
  sincosf(theta, &sn, &cs);
  cs *= c.mscale;
  sn *= c.mscale;
  const int a = c.kind == int(RopeKind::Neox) ? i : 2 * i;
  const int b = c.kind == int(RopeKind::Neox) ? i + c.n_dims / 2 : 2 * i + 1;
  const float x0 = v[a], x1 = v[b];
  v[a] = x0 * cs - x1 * sn;
  v[b] = x0 * sn + x1 * cs;
}

float corr_dim(int n_dims, int n_ctx_orig, float n_rot, float base) {
  return n_dims * logf(n_ctx_orig / (n_rot * 2 * 3.14159265358979f)) / (2 * logf(base));
}

}  // namespace

void launch_rope(float* x, const int32_t* pos, int n_tokens, int n_heads, int head_dim, const RopeParams& p,
                 const float* freq_factors, cudaStream_t s) {
  RopeConsts c{int(p.kind), p.n_dims, p.freq_base, 1.f, 0.f, 1.f, 0.f, 0.f};
  const bool yarn = p.scaling == RopeScaling::Yarn;
  if (p.scaling == RopeScaling::Linear || yarn) c.freq_scale = p.freq_scale;
  if (yarn) {
    c.ext_factor = p.yarn_ext_factor;
    c.corr_lo = fmaxf(0.f, floorf(corr_dim(p.n_dims, p.n_ctx_orig, p.yarn_beta_fast, p.freq_base)));
    c.corr_hi = fminf(float(p.n_dims - 1), ceilf(corr_dim(p.n_dims, p.n_ctx_orig, p.yarn_beta_slow, p.freq_base)));
    c.mscale = p.yarn_attn_factor * (c.ext_factor != 0.f ? 1.f + 0.1f * logf(1.f / c.freq_scale) : 1.f);
  }
  rope_kernel<<<n_tokens * n_heads, p.n_dims / 2, 0, s>>>(x, pos, n_heads, head_dim, c, freq_factors);
}

}  // namespace tessera::cuda
