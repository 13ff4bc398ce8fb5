// rope: rotary position embedding of x [n_tokens][n_heads][head_dim] in place. Pair i of
// the first n_dims dimensions rotates by angle pos * base^(-2i/n_dims) (divided by the
// per-pair freq_factors when present), with linear scaling (freq_scale) and YaRN ramp
// mixing plus magnitude correction; dimensions past n_dims pass through. Normal style
// rotates (2i, 2i+1), neox style (i, i + n_dims/2). The angle advances by repeated float
// multiplication exactly as ggml computes it, so the rounding matches llama.cpp.
// llama.cpp's x86 CPU builds compile ggml's scalar RoPE with FMA and GCC's default
// floating-point contraction, so each rotated value there is one fused multiply-add of x0's
// product onto x1's rounded product (and the YaRN mixes are contracted the same way); the
// explicit std::fma calls reproduce that rounding. Without them a last-bit difference in
// q or k now and then crosses an fp16 rounding boundary of the KV cache, and from there an
// int8 activation quantum downstream.
// Work is split over (token, head) rows; the AVX2 twin (rope_avx2.cpp) rotates each row.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/cpu_features.h"
#include "core/thread_pool.h"
#include "cpu/ops.h"
#include "cpu/rope_kernels.h"

namespace tessera::cpu {

namespace {

float yarn_corr_dim(int n_dims, int n_ctx_orig, float n_rot, float base) {
  return n_dims * std::log(n_ctx_orig / (n_rot * 2 * static_cast<float>(M_PI))) / (2 * std::log(base));
}

float yarn_ramp(float low, float high, int i0) {
  const float y = (i0 / 2 - low) / std::max(0.001f, high - low);
  return 1 - std::min(1.0f, std::max(0.0f, y));
}

// Llama 3.1 frequency adjustment, used when the file has no precomputed rope_freqs.
float llama3_factor(const RopeParams& p, float freq) {
  const float factor = 1.0f / p.freq_scale;
  const float low_wavelen = p.n_ctx_orig / p.llama3_low_freq_factor;
  const float high_wavelen = p.n_ctx_orig / p.llama3_high_freq_factor;
  const float wavelen = 2 * static_cast<float>(M_PI) / freq;
  if (wavelen < high_wavelen) return 1.0f;
  if (wavelen > low_wavelen) return factor;
  const float smooth = (p.n_ctx_orig / wavelen - p.llama3_low_freq_factor) / (p.llama3_high_freq_factor - p.llama3_low_freq_factor);
  return 1.0f / ((1 - smooth) / factor + smooth);
}

}  // namespace

void rope(float* x, const int32_t* pos, int n_tokens, int n_heads, int head_dim, const RopeParams& p,
          const float* freq_factors, int ith, int nth) {
  const int n_dims = p.n_dims;
  const float theta_scale = std::pow(p.freq_base, -2.0f / n_dims);
  const bool yarn = p.scaling == RopeScaling::Yarn;
  const bool llama3 = p.scaling == RopeScaling::Llama3 && freq_factors == nullptr;
  // Linear and llama3 scaling act through the frequencies; YaRN also mixes in the
  // unscaled angle for the high-frequency pairs.
  const float freq_scale = (p.scaling == RopeScaling::Linear || yarn) ? p.freq_scale : 1.0f;
  const float ext_factor = yarn ? p.yarn_ext_factor : 0.0f;
  // The attention factor (rope.scaling.attn_factor) scales every rotation, with or without
  // YaRN, as llama.cpp's attn_factor does (Phi-3's LongRoPE sets it without YaRN).
  float corr_lo = 0, corr_hi = 0, mscale = p.yarn_attn_factor;
  if (yarn) {
    corr_lo = std::max(0.0f, std::floor(yarn_corr_dim(n_dims, p.n_ctx_orig, p.yarn_beta_fast, p.freq_base)));
    corr_hi = std::min(float(n_dims - 1), std::ceil(yarn_corr_dim(n_dims, p.n_ctx_orig, p.yarn_beta_slow, p.freq_base)));
    if (ext_factor != 0.0f) mscale *= std::fma(0.1f, std::log(1.0f / freq_scale), 1.0f);
  }

  // The rotation of each pair depends on the token only: computed when the token changes
  // and applied to all of its heads (rows are (token, head), token-major).
  thread_local std::vector<float> rotation_storage;
  rotation_storage.resize(size_t(n_dims));
  const int half = n_dims / 2;
  float* const cos_i = rotation_storage.data();  // [half]
  float* const sin_i = cos_i + half;             // [half]
  const bool avx2 = active_cpu_isa() >= CpuIsa::Avx2, neox = p.kind == RopeKind::Neox;
  int64_t r0, r1;
  // kv_store splits k's rows the same way (the executor relies on it: no barrier between).
  split_range(int64_t(n_tokens) * n_heads, ith, nth, &r0, &r1);
  // The table of the last token this thread computed, with what it was computed from: the
  // layers of a decode step (and q then k) ask for the same table again, and its 2 * half
  // sines and cosines took ~6 us per layer of a 1B model (0.1 ms per token).
  struct Memo {
    bool valid = false;
    RopeParams params;
    int32_t pos = 0;
    std::vector<float> factors;  // a copy: another model's table may reuse the address
  };
  thread_local Memo memo;
  static_assert(sizeof(RopeParams) == 13 * 4, "RopeParams compared with memcmp: no padding");
  auto memo_holds = [&](int32_t position) {
    if (!memo.valid || memo.pos != position || std::memcmp(&memo.params, &p, sizeof(RopeParams)) != 0) return false;
    if (!freq_factors) return memo.factors.empty();
    return memo.factors.size() == size_t(half) && std::memcmp(memo.factors.data(), freq_factors, sizeof(float) * half) == 0;
  };
  int rotation_token = -1;
  for (int64_t r = r0; r < r1; ++r) {
    const int t = int(r / n_heads);
    if (t != rotation_token && memo_holds(pos[t])) rotation_token = t;
    if (t != rotation_token) {
      rotation_token = t;
      memo.valid = false;
      float theta_base = static_cast<float>(pos[t]);
      float freq = 1.0f;  // base^(-2i/n_dims), tracked for the llama3 wavelength test
      for (int i0 = 0; i0 < n_dims; i0 += 2) {
        float theta_extrap = theta_base;
        if (freq_factors) theta_extrap /= freq_factors[i0 / 2];
        if (llama3) theta_extrap /= llama3_factor(p, freq);
        const float theta_interp = freq_scale * theta_extrap;
        float theta = theta_interp;
        if (ext_factor != 0.0f) {
          const float mix = yarn_ramp(corr_lo, corr_hi, i0) * ext_factor;
          theta = std::fma(theta_interp, 1 - mix, theta_extrap * mix);
        }
        cos_i[i0 / 2] = std::cos(theta) * mscale;
        sin_i[i0 / 2] = std::sin(theta) * mscale;
        theta_base *= theta_scale;
        freq *= theta_scale;
      }
      memo.valid = true;
      memo.params = p;
      memo.pos = pos[t];
      if (freq_factors)
        memo.factors.assign(freq_factors, freq_factors + half);
      else
        memo.factors.clear();
    }
    float* v = x + r * head_dim;
    if (avx2) {
      avx2::rope_rotate(v, cos_i, sin_i, n_dims, neox);
      continue;
    }
    for (int i = 0; i < half; ++i) {
      const int a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
      const float x0 = v[a], x1 = v[b];
      v[a] = std::fma(x0, cos_i[i], -(x1 * sin_i[i]));
      v[b] = std::fma(x0, sin_i[i], x1 * cos_i[i]);
    }
  }
}

}  // namespace tessera::cpu
