// AVX2 twin of attention.cpp (same contract and the same rounding: q and the normalized
// probabilities pass through fp16, via F16C). Scores run 8 lanes of head_dim at a time; head
// sizes that are not a multiple of 8 finish with a scalar tail.
// The summation orders are llama.cpp's standard (non-flash) CPU path, so that the two
// engines agree to the bit: each score is one 8-lane fp32 accumulator over head_dim reduced
// by hsum8; the softmax runs over 8-blocks aligned to position 0 (exp_sum_row, masked
// positions as -inf); the probability-weighted sum of V keeps, per output column, one
// accumulator per position lane (j mod 8), combined in hsum8's order at the end.
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "core/thread_pool.h"
#include "cpu/hsum_avx2.h"
#include "cpu/ops.h"
#include "cpu/softmax_kernels.h"

namespace tessera::cpu::avx2 {

namespace {

inline __m256 load_half8(const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }

inline float round_half(float x) { return _cvtsh_ss(_cvtss_sh(x, _MM_FROUND_TO_NEAREST_INT)); }

}  // namespace

void attention(const AttentionArgs& a, int ith, int nth) {
  const int group = a.n_head / a.n_head_kv;
  const int hd = a.head_dim, hdv = a.head_dim_v;
  const int hd8 = hd / 8 * 8, hdv8 = hdv / 8 * 8;
  float* scores = a.scratch + size_t(ith) * attention_scratch_floats(a.kv.capacity, hd, hdv);
  float* q16 = scores + attention_scores_floats(a.kv.capacity);
  float* lanes = q16 + hd;  // [8][hdv]: lane l sums positions j with j % 8 == l
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

    // Whole 8-blocks of positions around [lo, pos], the masked ones at -inf.
    const int block0 = lo & ~7, block_end = (pos + 8) & ~7;
    float max = -INFINITY;
    for (int j = block0; j < lo; ++j) scores[j] = -INFINITY;
    for (int j = lo; j <= pos; ++j) {
      const uint16_t* kj = kh + int64_t(j) * hd;
      __m256 s8 = _mm256_setzero_ps();
      for (int i = 0; i < hd8; i += 8) s8 = _mm256_fmadd_ps(_mm256_loadu_ps(q16 + i), load_half8(kj + i), s8);
      float s = hsum8(s8);
      for (int i = hd8; i < hd; ++i) s += q16[i] * _cvtsh_ss(kj[i]);
      s *= a.scale;
      if (a.softcap != 0.f) s = a.softcap * std::tanh(s / a.softcap);
      scores[j] = s;
      max = std::max(max, s);
    }
    for (int j = pos + 1; j < block_end; ++j) scores[j] = -INFINITY;
    const double sum = exp_sum_row(scores + block0, max, scores + block0, block_end - block0);
    const float inv = float(1.0 / sum);

    std::fill(lanes, lanes + 8 * hdv, 0.f);
    for (int j = lo; j <= pos; ++j) {
      const uint16_t* vj = vh + j * ldv;
      float* lane = lanes + (j & 7) * hdv;
      const float p = round_half(scores[j] * inv);
      const __m256 p8 = _mm256_set1_ps(p);
      for (int i = 0; i < hdv8; i += 8) _mm256_storeu_ps(lane + i, _mm256_fmadd_ps(p8, load_half8(vj + i), _mm256_loadu_ps(lane + i)));
      for (int i = hdv8; i < hdv; ++i) lane[i] = std::fma(p, _cvtsh_ss(vj[i]), lane[i]);
    }
    float* out = a.out + t * a.ldo + int64_t(h) * hdv;
    auto L = [&](int l, int i) { return _mm256_loadu_ps(lanes + l * hdv + i); };
    int i = 0;
    for (; i < hdv8; i += 8) {
      const __m256 even = _mm256_add_ps(_mm256_add_ps(L(0, i), L(4, i)), _mm256_add_ps(L(2, i), L(6, i)));
      const __m256 odd = _mm256_add_ps(_mm256_add_ps(L(1, i), L(5, i)), _mm256_add_ps(L(3, i), L(7, i)));
      _mm256_storeu_ps(out + i, _mm256_add_ps(even, odd));
    }
    for (; i < hdv; ++i) {
      const float* c = lanes + i;
      out[i] = ((c[0] + c[4 * hdv]) + (c[2 * hdv] + c[6 * hdv])) + ((c[hdv] + c[5 * hdv]) + (c[3 * hdv] + c[7 * hdv]));
    }
  }
}

}  // namespace tessera::cpu::avx2
