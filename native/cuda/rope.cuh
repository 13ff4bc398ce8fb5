// Rotary position embedding as the CPU op computes it (cpu/rope.cpp), for the kernels that
// rotate heads in shared memory (qkv_post, mla_post): normal pairs (2i, 2i+1) or neox pairs
// (i, i + n_dims/2) of the first n_dims dimensions; the angle pos * base^(-2i/n_dims)
// advances by repeated float multiplication as ggml computes it; frequency factors,
// linear/YaRN/llama3 scaling and the YaRN magnitude correction as the CPU op; cos/sin
// evaluated in double so large angles keep full float accuracy. RopeConsts is computed on
// the host once per launch (rope_consts) and passed by value.
#pragma once
#include <algorithm>
#include <cmath>

#include "core/model_plan.h"
#include "cuda/device.cuh"

namespace tessera::cuda {

struct RopeConsts {
  int kind = 0, n_dims = 0;
  float theta_scale = 1.f, freq_scale = 1.f, ext_factor = 0.f, corr_lo = 0.f, corr_hi = 0.f, mscale = 1.f;
  bool llama3 = false;
  float l3_factor = 1.f, l3_low_wavelen = 0.f, l3_high_wavelen = 0.f, l3_n_ctx_orig = 0.f, l3_low = 1.f, l3_high = 4.f;
};

inline float yarn_corr_dim(int n_dims, int n_ctx_orig, float n_rot, float base) {
  return n_dims * std::log(n_ctx_orig / (n_rot * 2 * static_cast<float>(M_PI))) / (2 * std::log(base));
}

inline RopeConsts rope_consts(const RopeParams& p, bool have_factors) {
  RopeConsts c;
  c.kind = int(p.kind);
  c.n_dims = p.n_dims;
  if (p.kind == RopeKind::None) return c;
  c.theta_scale = std::pow(p.freq_base, -2.0f / p.n_dims);
  const bool yarn = p.scaling == RopeScaling::Yarn;
  c.freq_scale = (p.scaling == RopeScaling::Linear || yarn) ? p.freq_scale : 1.0f;
  c.ext_factor = yarn ? p.yarn_ext_factor : 0.0f;
  c.mscale = p.yarn_attn_factor;  // with or without YaRN, as the CPU's rope
  if (yarn) {
    c.corr_lo = std::max(0.0f, std::floor(yarn_corr_dim(p.n_dims, p.n_ctx_orig, p.yarn_beta_fast, p.freq_base)));
    c.corr_hi = std::min(float(p.n_dims - 1), std::ceil(yarn_corr_dim(p.n_dims, p.n_ctx_orig, p.yarn_beta_slow, p.freq_base)));
    if (c.ext_factor != 0.0f) c.mscale *= 1.0f + 0.1f * std::log(1.0f / c.freq_scale);
  }
  c.llama3 = p.scaling == RopeScaling::Llama3 && !have_factors;
  if (c.llama3) {
    c.l3_factor = 1.0f / p.freq_scale;
    c.l3_low_wavelen = p.n_ctx_orig / p.llama3_low_freq_factor;
    c.l3_high_wavelen = p.n_ctx_orig / p.llama3_high_freq_factor;
    c.l3_n_ctx_orig = float(p.n_ctx_orig);
    c.l3_low = p.llama3_low_freq_factor;
    c.l3_high = p.llama3_high_freq_factor;
  }
  return c;
}

__device__ __forceinline__ float llama3_divisor(const RopeConsts& c, float freq) {
  const float wavelen = 2 * 3.14159265358979323846f / freq;
  if (wavelen < c.l3_high_wavelen) return 1.0f;
  if (wavelen > c.l3_low_wavelen) return c.l3_factor;
  const float smooth = (c.l3_n_ctx_orig / wavelen - c.l3_low) / (c.l3_high - c.l3_low);
  return 1.0f / ((1 - smooth) / c.l3_factor + smooth);
}

// Rotates pair i of v (shared memory) for position pos.
__device__ __forceinline__ void rope_pair(float* v, int i, int pos, const RopeConsts& c, const float* freq_factors) {
  float theta_base = float(pos), freq = 1.0f;
  for (int k = 0; k < i; ++k) {
    theta_base *= c.theta_scale;
    freq *= c.theta_scale;
  }
  float theta_extrap = theta_base;
  if (freq_factors) theta_extrap /= freq_factors[i];
  if (c.llama3) theta_extrap /= llama3_divisor(c, freq);
  const float theta_interp = c.freq_scale * theta_extrap;
  float theta = theta_interp;
  if (c.ext_factor != 0.0f) {
    const float y = (float(i) - c.corr_lo) / fmaxf(0.001f, c.corr_hi - c.corr_lo);
    const float mix = (1.0f - fminf(1.0f, fmaxf(0.0f, y))) * c.ext_factor;
    theta = theta_interp * (1 - mix) + theta_extrap * mix;
  }
  const float cs = float(cos(double(theta))) * c.mscale, sn = float(sin(double(theta))) * c.mscale;
  const int a = c.kind == int(RopeKind::Neox) ? i : 2 * i;
  const int b = c.kind == int(RopeKind::Neox) ? i + c.n_dims / 2 : 2 * i + 1;
  const float x0 = v[a], x1 = v[b];
  v[a] = x0 * cs - x1 * sn;
  v[b] = x0 * sn + x1 * cs;
}

}  // namespace tessera::cuda
