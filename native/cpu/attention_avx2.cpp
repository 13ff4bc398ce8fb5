// AVX2 twin of attention.cpp (same contract and the same rounding: q and the normalized
// probabilities pass through fp16, via F16C).
//
// Shape: work items are (token, kv head, chunk of up to kAttentionHeads query heads of that
// kv head). Each token's items are split into contiguous runs, one per thread, starting one
// thread later per token (a causal row's work grows with its position). The
// heads of an item share every K and V load: scores run as tiles of heads x positions with
// one 8-lane accumulator each, over head_dim; the value sum runs over the transposed V store
// (ops.h), 8 positions per vector, as tiles of heads x value columns.
//
// The summation orders are llama.cpp's standard (non-flash) CPU path, so that the two engines
// agree to the bit: each score is one 8-lane fp32 accumulator over head_dim (k in steps of 8)
// reduced by hsum8's order; the softmax runs over 8-blocks aligned to position 0
// (exp_sum_row, masked positions as -inf); each output value is one 8-lane accumulator over
// those 8-blocks of positions (lane l: positions j = l mod 8), reduced in hsum8's order.
// Positions of a partly attended block weigh 0 and their (possibly stale) values are masked
// to 0, which adds exact zeros. With v_in_k (MLA) the values are the prefixes of the key
// rows, summed per position lane in memory in the same order.
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

// Lane k of the result is hsum8(v[k]), each summed in hsum8's order
// ((x0+x4)+(x2+x6)) + ((x1+x5)+(x3+x7)), for 8 vectors at once.
inline __m256 hsum8_x8(const __m256 v[8]) {
  __m256 halves[4];  // [a0+a4, a1+a5, a2+a6, a3+a7 | b0+b4, ...] for pairs (v0,v1), (v2,v3), ...
  for (int k = 0; k < 4; ++k)
    halves[k] = _mm256_add_ps(_mm256_permute2f128_ps(v[2 * k], v[2 * k + 1], 0x20), _mm256_permute2f128_ps(v[2 * k], v[2 * k + 1], 0x31));
  __m256 pairs[2];  // per vector: (x0+x4)+(x2+x6), (x1+x5)+(x3+x7)
  for (int k = 0; k < 2; ++k)
    pairs[k] = _mm256_add_ps(_mm256_shuffle_ps(halves[2 * k], halves[2 * k + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                             _mm256_shuffle_ps(halves[2 * k], halves[2 * k + 1], _MM_SHUFFLE(3, 2, 3, 2)));
  const __m256 sums = _mm256_add_ps(_mm256_shuffle_ps(pairs[0], pairs[1], _MM_SHUFFLE(2, 0, 2, 0)),
                                    _mm256_shuffle_ps(pairs[0], pairs[1], _MM_SHUFFLE(3, 1, 3, 1)));
  // sums holds v0, v2, v4, v6 | v1, v3, v5, v7.
  return _mm256_permutevar8x32_ps(sums, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

// Reduces up to 8 accumulators (the rest zero) and hands each sum to out(index, sum).
template <int N, typename Out>
inline void reduce_tile(const __m256 (&acc)[N], Out&& out) {
  static_assert(N <= 8, "one reduction covers 8 accumulators");
  __m256 v[8];
  for (int k = 0; k < 8; ++k) v[k] = k < N ? acc[k] : _mm256_setzero_ps();
  alignas(32) float sums[8];
  _mm256_store_ps(sums, hsum8_x8(v));
  for (int k = 0; k < N; ++k) out(k, sums[k]);
}

// The query heads of one work item and their per-thread rows.
struct Item {
  int pos, lo, block0, block_end;     // attended positions [lo, pos]; 8-blocks [block0, block_end)
  const uint16_t* k;                   // the kv head's key rows [capacity][head_dim]
  const float* q16[kAttentionHeads];   // rounded queries
  float* scores[kAttentionHeads];      // per head, indexed by position
  float* out[kAttentionHeads];         // per head, head_dim_v outputs
};

// Scores of NQ heads x positions [j, j + NP).
template <int NQ, int NP, typename Finish>
inline void score_tile(const Item& it, int hd, int j, Finish&& finish) {
  const int hd8 = hd / 8 * 8;
  __m256 acc[NQ * NP];
  for (int k = 0; k < NQ * NP; ++k) acc[k] = _mm256_setzero_ps();
  for (int i = 0; i < hd8; i += 8) {
    __m256 k8[NP];
    for (int p = 0; p < NP; ++p) k8[p] = load_half8(it.k + int64_t(j + p) * hd + i);
    for (int q = 0; q < NQ; ++q) {
      const __m256 q8 = _mm256_loadu_ps(it.q16[q] + i);
      for (int p = 0; p < NP; ++p) acc[q * NP + p] = _mm256_fmadd_ps(q8, k8[p], acc[q * NP + p]);
    }
  }
  reduce_tile(acc, [&](int k, float s) {
    const int q = k / NP, jp = j + k % NP;
    const uint16_t* kj = it.k + int64_t(jp) * hd;
    for (int i = hd8; i < hd; ++i) s += it.q16[q][i] * _cvtsh_ss(kj[i]);
    finish(q, jp, s);
  });
}

// Value columns [i, i + NC) of NQ heads from the transposed V store of the kv head (vt:
// [head_dim_v][stride]). first/last: the lanes attended in the first and last 8-block.
template <int NQ, int NC>
inline void value_tile(const Item& it, const uint16_t* vt, int64_t stride, int i, __m256 first, __m256 last) {
  __m256 acc[NQ * NC];
  for (int k = 0; k < NQ * NC; ++k) acc[k] = _mm256_setzero_ps();
  for (int jb = it.block0; jb < it.block_end; jb += 8) {
    const __m256 mask = jb == it.block0 ? first : jb + 8 == it.block_end ? last : _mm256_castsi256_ps(_mm256_set1_epi32(-1));
    __m256 v8[NC];
    for (int c = 0; c < NC; ++c) v8[c] = _mm256_and_ps(mask, load_half8(vt + (i + c) * stride + jb));
    for (int q = 0; q < NQ; ++q) {
      const __m256 p8 = _mm256_loadu_ps(it.scores[q] + jb);
      for (int c = 0; c < NC; ++c) acc[q * NC + c] = _mm256_fmadd_ps(p8, v8[c], acc[q * NC + c]);
    }
  }
  reduce_tile(acc, [&](int k, float s) { it.out[k / NC][i + k % NC] = s; });
}

// MLA: values are key-row prefixes (not transposed). lanes[j % 8][i] += p[j] * v_j[i] per
// position in order, then the 8 lanes combined in hsum8's order.
void value_rows(const float* p, const uint16_t* vh, int64_t ldv, int hdv, int lo, int pos, float* lanes, float* out) {
  std::fill(lanes, lanes + 8 * hdv, 0.f);
  for (int j = lo; j <= pos; ++j) {
    const uint16_t* vj = vh + j * ldv;
    float* lane = lanes + (j & 7) * hdv;
    const __m256 p8 = _mm256_set1_ps(p[j]);
    int i = 0;
    for (; i + 8 <= hdv; i += 8) _mm256_storeu_ps(lane + i, _mm256_fmadd_ps(p8, load_half8(vj + i), _mm256_loadu_ps(lane + i)));
    for (; i < hdv; ++i) lane[i] = std::fma(p[j], _cvtsh_ss(vj[i]), lane[i]);
  }
  for (int i = 0; i < hdv; ++i) {
    const float* c = lanes + i;
    out[i] = ((c[0] + c[4 * hdv]) + (c[2 * hdv] + c[6 * hdv])) + ((c[hdv] + c[5 * hdv]) + (c[3 * hdv] + c[7 * hdv]));
  }
}

// Lanes of the 8-block at jb whose positions lie in [lo, pos].
inline __m256 attended_lanes(int jb, int lo, int pos) {
  const __m256i j = _mm256_add_epi32(_mm256_set1_epi32(jb), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  const __m256i below = _mm256_cmpgt_epi32(_mm256_set1_epi32(lo), j), above = _mm256_cmpgt_epi32(j, _mm256_set1_epi32(pos));
  return _mm256_castsi256_ps(_mm256_andnot_si256(_mm256_or_si256(below, above), _mm256_set1_epi32(-1)));
}

// Walks the cache lines of the item's transposed V store (value columns x attended 8-blocks)
// a few at a time while the scores are computed. Each column is its own short run of a few
// lines, one kv_v_stride apart, which the hardware prefetcher does not pick up: without this
// the value sum of a decode step waits on DRAM for nearly every line.
class ValuePrefetch {
 public:
  ValuePrefetch(const uint16_t* vt, int64_t stride, int block0, int block_end, int hdv, int n_tiles)
      : vt_(vt), stride_(stride), first_(int64_t(block0) * 2 & ~int64_t(63)), end_(int64_t(block_end) * 2), hdv_(hdv) {
    const int64_t lines = int64_t(hdv) * ((end_ - first_ + 63) / 64);
    per_tile_ = vt ? int((lines + n_tiles - 1) / std::max(n_tiles, 1)) : 0;
    offset_ = first_;
  }
  void next() {
    for (int k = 0; k < per_tile_ && column_ < hdv_; ++k) {
      _mm_prefetch(reinterpret_cast<const char*>(vt_ + column_ * stride_) + offset_, _MM_HINT_T0);
      offset_ += 64;
      if (offset_ >= end_) offset_ = first_, ++column_;
    }
  }

 private:
  const uint16_t* vt_;
  int64_t stride_, first_, end_, offset_;
  int hdv_, column_ = 0, per_tile_;
};

constexpr int kKeyPrefetchBytes = 2048;

template <int NQ>
void attend(const AttentionArgs& a, const Item& it, const AttentionScratch& scratch, const uint16_t* vt) {
  const int hd = a.head_dim, hdv = a.head_dim_v;
  float max[NQ];
  for (int q = 0; q < NQ; ++q) {
    max[q] = -INFINITY;
    std::fill(it.scores[q] + it.block0, it.scores[q] + it.lo, -INFINITY);
    std::fill(it.scores[q] + it.pos + 1, it.scores[q] + it.block_end, -INFINITY);
  }
  auto finish = [&](int q, int j, float s) {
    s *= a.scale;
    if (a.softcap != 0.f) s = a.softcap * std::tanh(s / a.softcap);
    it.scores[q][j] = s;
    max[q] = std::max(max[q], s);
  };
  // Tiles of up to 8 accumulators.
  constexpr int NP = 8 / NQ;
  const int64_t stride = kv_v_stride(a.kv.capacity);
  ValuePrefetch prefetch(vt, stride, it.block0, it.block_end, hdv, (it.pos + 1 - it.lo) / NP + 1);
  int j = it.lo;
  for (; j + NP <= it.pos + 1; j += NP) {
    prefetch.next();
    // Key rows are one stream, but each step reads only NP of them: the hardware prefetcher
    // does not run far enough ahead of it.
    const char* keys = reinterpret_cast<const char*>(it.k + int64_t(j) * hd);
    for (int o = 0; o < NP * hd * 2; o += 64) _mm_prefetch(keys + kKeyPrefetchBytes + o, _MM_HINT_T0);
    score_tile<NQ, NP>(it, hd, j, finish);
  }
  for (; j <= it.pos; ++j) score_tile<NQ, 1>(it, hd, j, finish);

  // Softmax; the probabilities, normalized and rounded to fp16, in place (masked ones are 0).
  for (int q = 0; q < NQ; ++q) {
    float* row = it.scores[q];
    const double sum = exp_sum_row(row + it.block0, max[q], row + it.block0, it.block_end - it.block0);
    const __m256 inv = _mm256_set1_ps(float(1.0 / sum));
    for (int jb = it.block0; jb < it.block_end; jb += 8) {
      const __m256 p = _mm256_mul_ps(_mm256_loadu_ps(row + jb), inv);
      _mm256_storeu_ps(row + jb, _mm256_cvtph_ps(_mm256_cvtps_ph(p, _MM_FROUND_TO_NEAREST_INT)));
    }
  }

  if (a.kv.v_in_k) {
    for (int q = 0; q < NQ; ++q) value_rows(it.scores[q], it.k, hd, hdv, it.lo, it.pos, scratch.lanes, it.out[q]);
    return;
  }
  const __m256 first = attended_lanes(it.block0, it.lo, it.pos), last = attended_lanes(it.block_end - 8, it.lo, it.pos);
  constexpr int NC = 8 / NQ;
  int i = 0;
  for (; i + NC <= hdv; i += NC) value_tile<NQ, NC>(it, vt, stride, i, first, last);
  for (; i < hdv; ++i) value_tile<NQ, 1>(it, vt, stride, i, first, last);
}

}  // namespace

void attention(const AttentionArgs& a, int ith, int nth) {
  const int group = a.n_head / a.n_head_kv;
  const int hd = a.head_dim, hdv = a.head_dim_v;
  // Heads per item: as many as share the kv head (up to kAttentionHeads), fewer when that
  // would leave threads without an item (decode has a single token).
  int per_item = std::min(group, kAttentionHeads);
  auto items_with = [&](int heads) { return int64_t(a.n_tokens) * a.n_head_kv * ((group + heads - 1) / heads); };
  while (per_item > 1 && items_with(per_item) < 2 * nth) per_item = (per_item + 1) / 2;
  const int chunks = (group + per_item - 1) / per_item;
  const AttentionScratch scratch = attention_scratch(a, ith);
  const int64_t v_head = int64_t(hdv) * kv_v_stride(a.kv.capacity);
  const int per_token = a.n_head_kv * chunks;
  for (int64_t r = 0; r < items_with(per_item); ++r) {
    const int t = int(r / per_token), i = int(r % per_token);
    // A token's items go to the threads in contiguous runs (the chunks of one kv head stay
    // on one thread, which then reads that head's K and V alone), and each token starts its
    // runs one thread later than the last, so a causal prefill's growing rows spread evenly.
    if ((t + int64_t(i) * nth / per_token) % nth != ith) continue;
    const int g = i / chunks, h0 = g * group + (i % chunks) * per_item;
    const int nq = std::min(per_item, g * group + group - h0);
    Item it;
    it.pos = a.pos0 + t;
    it.lo = a.sliding_window > 0 ? std::max(0, it.pos - a.sliding_window + 1) : 0;
    it.block0 = it.lo & ~7;
    it.block_end = (it.pos + 8) & ~7;
    it.k = a.kv.k + int64_t(g) * a.kv.capacity * hd;
    for (int q = 0; q < nq; ++q) {
      const float* qh = a.q + t * a.ldq + int64_t(h0 + q) * hd;
      float* q16 = scratch.q16 + q * hd;
      for (int i = 0; i < hd; ++i) q16[i] = round_half(qh[i]);
      it.q16[q] = q16;
      it.scores[q] = scratch.scores + q * scratch.scores_stride;
      it.out[q] = a.out + t * a.ldo + int64_t(h0 + q) * hdv;
    }
    const uint16_t* vt = a.kv.v_in_k ? nullptr : a.kv.v + g * v_head;
    switch (nq) {
      case 4: attend<4>(a, it, scratch, vt); break;
      case 3: attend<3>(a, it, scratch, vt); break;
      case 2: attend<2>(a, it, scratch, vt); break;
      default: attend<1>(a, it, scratch, vt); break;
    }
  }
}

}  // namespace tessera::cpu::avx2
