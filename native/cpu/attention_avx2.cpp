// AVX2 twin of attention.cpp (same contract and the same rounding: q and the normalized
// probabilities pass through fp16, via F16C). Scores run 8 lanes of head_dim at a time, 4
// positions at once (independent accumulator chains); head sizes that are not a multiple of
// 8 finish with a scalar tail.
// The summation orders are llama.cpp's standard (non-flash) CPU path, so that the two
// engines agree to the bit: each score is one 8-lane fp32 accumulator over head_dim reduced
// by hsum8; the softmax runs over 8-blocks aligned to position 0 (exp_sum_row, masked
// positions as -inf); the probability-weighted sum of V keeps, per output column, one
// accumulator per position lane (j mod 8), combined in hsum8's order at the end. Over whole
// 8-blocks of positions those 8 lanes stay in registers, 8 columns at a time.
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "cpu/hsum_avx2.h"
#include "cpu/ops.h"
#include "cpu/softmax_kernels.h"

namespace tessera::cpu::avx2 {

namespace {

inline __m256 load_half8(const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }

inline float round_half(float x) { return _cvtsh_ss(_cvtss_sh(x, _MM_FROUND_TO_NEAREST_INT)); }

// Scores of positions [j, j + P) against q16: P independent 8-lane accumulators over head_dim
// (one chain each, so P of them overlap), each reduced by hsum8 and finished by `finish`.
template <int P, typename Finish>
inline void scores_tile(const float* q16, const uint16_t* kh, int hd, int j, Finish&& finish) {
  const int hd8 = hd / 8 * 8;
  __m256 s8[P];
  for (int p = 0; p < P; ++p) s8[p] = _mm256_setzero_ps();
  for (int i = 0; i < hd8; i += 8) {
    const __m256 q8 = _mm256_loadu_ps(q16 + i);
    for (int p = 0; p < P; ++p) s8[p] = _mm256_fmadd_ps(q8, load_half8(kh + int64_t(j + p) * hd + i), s8[p]);
  }
  for (int p = 0; p < P; ++p) {
    const uint16_t* kj = kh + int64_t(j + p) * hd;
    float s = hsum8(s8[p]);
    for (int i = hd8; i < hd; ++i) s += q16[i] * _cvtsh_ss(kj[i]);
    finish(j + p, s);
  }
}

// lanes[j % 8][i] += p[j] * v_j[i] for positions [j0, j1) one at a time (the blocks only partly
// inside the attended range) and columns [i0, hdv).
inline void add_positions(float* lanes, const float* p, const uint16_t* vh, int64_t ldv, int hdv, int j0, int j1, int i0) {
  for (int j = j0; j < j1; ++j) {
    const uint16_t* vj = vh + j * ldv;
    float* lane = lanes + (j & 7) * hdv;
    const __m256 p8 = _mm256_set1_ps(p[j]);
    int i = i0;
    for (; i + 8 <= hdv; i += 8) _mm256_storeu_ps(lane + i, _mm256_fmadd_ps(p8, load_half8(vj + i), _mm256_loadu_ps(lane + i)));
    for (; i < hdv; ++i) lane[i] = std::fma(p[j], _cvtsh_ss(vj[i]), lane[i]);
  }
}

// The same for whole 8-blocks of positions [j0, j1) (multiples of 8) and 8-column chunks
// [0, hdv8): per chunk the 8 lanes stay in registers across all the blocks.
inline void add_blocks(float* lanes, const float* p, const uint16_t* vh, int64_t ldv, int hdv, int hdv8, int j0, int j1) {
  for (int i = 0; i < hdv8; i += 8) {
    __m256 acc[8];
    for (int l = 0; l < 8; ++l) acc[l] = _mm256_loadu_ps(lanes + l * hdv + i);
    for (int j = j0; j < j1; j += 8)
      for (int l = 0; l < 8; ++l) acc[l] = _mm256_fmadd_ps(_mm256_broadcast_ss(p + j + l), load_half8(vh + (j + l) * ldv + i), acc[l]);
    for (int l = 0; l < 8; ++l) _mm256_storeu_ps(lanes + l * hdv + i, acc[l]);
  }
}

}  // namespace

void attention(const AttentionArgs& a, int ith, int nth) {
  const int group = a.n_head / a.n_head_kv;
  const int hd = a.head_dim, hdv = a.head_dim_v;
  const int hdv8 = hdv / 8 * 8;
  float* scores = a.scratch + size_t(ith) * attention_scratch_floats(a.kv.capacity, hd, hdv);
  float* q16 = scores + attention_scores_floats(a.kv.capacity);
  float* lanes = q16 + hd;  // [8][hdv]: lane l sums positions j with j % 8 == l
  // Pairs dealt round-robin: a causal row's work grows with its position, so contiguous
  // halves would leave the thread with the early tokens idle for most of a prefill.
  for (int64_t r = ith; r < int64_t(a.n_tokens) * a.n_head; r += nth) {
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
    auto finish = [&](int j, float s) {
      s *= a.scale;
      if (a.softcap != 0.f) s = a.softcap * std::tanh(s / a.softcap);
      scores[j] = s;
      max = std::max(max, s);
    };
    for (int j = block0; j < lo; ++j) scores[j] = -INFINITY;
    int j = lo;
    for (; j + 4 <= pos + 1; j += 4) scores_tile<4>(q16, kh, hd, j, finish);
    for (; j <= pos; ++j) scores_tile<1>(q16, kh, hd, j, finish);
    for (int jm = pos + 1; jm < block_end; ++jm) scores[jm] = -INFINITY;
    const double sum = exp_sum_row(scores + block0, max, scores + block0, block_end - block0);
    // The probabilities, normalized and rounded to fp16, in place (masked ones are 0).
    const __m256 inv = _mm256_set1_ps(float(1.0 / sum));
    for (int jb = block0; jb < block_end; jb += 8) {
      const __m256 p = _mm256_mul_ps(_mm256_loadu_ps(scores + jb), inv);
      _mm256_storeu_ps(scores + jb, _mm256_cvtph_ps(_mm256_cvtps_ph(p, _MM_FROUND_TO_NEAREST_INT)));
    }

    // Per lane, positions in order: the partial block at lo, the whole blocks, the partial
    // block at pos (whose unattended positions may hold stale rows, so they are skipped).
    std::fill(lanes, lanes + 8 * hdv, 0.f);
    const int full0 = (lo + 7) & ~7, full1 = (pos + 1) & ~7;
    const int head_end = std::min(full0, pos + 1);
    add_positions(lanes, scores, vh, ldv, hdv, lo, head_end, 0);
    if (full0 < full1) {
      add_blocks(lanes, scores, vh, ldv, hdv, hdv8, full0, full1);
      add_positions(lanes, scores, vh, ldv, hdv, full0, full1, hdv8);
    }
    add_positions(lanes, scores, vh, ldv, hdv, std::max(head_end, full1), pos + 1, 0);

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
