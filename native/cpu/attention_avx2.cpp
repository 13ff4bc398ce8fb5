// AVX2 twin of attention.cpp (same contract and the same rounding: q and the normalized
// probabilities pass through fp16, via F16C). Scores and the V accumulation run 8 lanes of
// head_dim at a time; head sizes that are not a multiple of 8 finish with a scalar tail.
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "core/thread_pool.h"
#include "cpu/ops.h"

namespace tessera::cpu::avx2 {

namespace {

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline __m256 load_half8(const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }

inline float round_half(float x) { return _cvtsh_ss(_cvtss_sh(x, _MM_FROUND_TO_NEAREST_INT)); }

}  // namespace

void attention(const AttentionArgs& a, int ith, int nth) {
  const int group = a.n_head / a.n_head_kv;
  const int hd = a.head_dim, hdv = a.head_dim_v;
  const int hd8 = hd / 8 * 8, hdv8 = hdv / 8 * 8;
  float* scores = a.scratch + size_t(ith) * attention_scratch_floats(a.kv.capacity, hd, hdv);
  float* q16 = scores + a.kv.capacity;
  float* acc = q16 + hd;
  int64_t r0, r1;
  split_range(int64_t(a.n_tokens) * a.n_head, ith, nth, &r0, &r1);
  for (int64_t r = r0; r < r1; ++r) {
    const int t = int(r / a.n_head), h = int(r % a.n_head), g = h / group;
    const int pos = a.pos0 + t;
    const int lo = a.sliding_window > 0 ? std::max(0, pos - a.sliding_window + 1) : 0;
    const float* q = a.q + t * a.ldq + int64_t(h) * hd;
    for (int i = 0; i < hd; ++i) q16[i] = round_half(q[i]);
    const uint16_t* kh = a.kv.k + int64_t(g) * a.kv.capacity * hd;
    const int64_t ldv = a.kv.v_in_k ? hd : hdv;
    const uint16_t* vh = a.kv.v_in_k ? kh : a.kv.v + int64_t(g) * a.kv.capacity * hdv;

    float max = -INFINITY;
    for (int j = lo; j <= pos; ++j) {
      const uint16_t* kj = kh + int64_t(j) * hd;
      __m256 s8 = _mm256_setzero_ps();
      for (int i = 0; i < hd8; i += 8) s8 = _mm256_fmadd_ps(_mm256_loadu_ps(q16 + i), load_half8(kj + i), s8);
      float s = hsum(s8);
      for (int i = hd8; i < hd; ++i) s += q16[i] * _cvtsh_ss(kj[i]);
      s *= a.scale;
      if (a.softcap != 0.f) s = a.softcap * std::tanh(s / a.softcap);
      scores[j] = s;
      max = std::max(max, s);
    }
    double sum = 0.0;
    for (int j = lo; j <= pos; ++j) {
      scores[j] = std::exp(scores[j] - max);
      sum += scores[j];
    }
    const float inv = float(1.0 / sum);
    std::fill(acc, acc + hdv, 0.f);
    for (int j = lo; j <= pos; ++j) {
      const uint16_t* vj = vh + j * ldv;
      const float p = round_half(scores[j] * inv);
      const __m256 p8 = _mm256_set1_ps(p);
      for (int i = 0; i < hdv8; i += 8) _mm256_storeu_ps(acc + i, _mm256_fmadd_ps(p8, load_half8(vj + i), _mm256_loadu_ps(acc + i)));
      for (int i = hdv8; i < hdv; ++i) acc[i] += p * _cvtsh_ss(vj[i]);
    }
    std::copy(acc, acc + hdv, a.out + t * a.ldo + int64_t(h) * hdv);
  }
}

}  // namespace tessera::cpu::avx2
