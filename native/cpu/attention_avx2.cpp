// AVX2 twin of attention.cpp (same contract and the same rounding: q and the normalized
// probabilities pass through fp16, via F16C).
//
// Shape: work items are (token, kv head, chunk of up to kAttentionHeads query heads of that
// kv head). Each token's items are split into contiguous runs, one per thread, starting one
// thread later per token (a causal row's work grows with its position). The heads of an
// item share every K and V load. Scores run over the 8-position key blocks (ops.h): for
// tiles of heads x blocks, lane p of a vector accumulates position p of a block, one
// vector per entry lane l (entries i = l mod 8), so a block's 8 scores need no horizontal
// sums. The value sum runs over 8-position vectors of the transposed V store (or of the
// key blocks with v_in_k), as tiles of heads x value columns.
//
// The summation orders are llama.cpp's standard (non-flash) CPU path, so that the two engines
// agree to the bit: each score sums the entries i = l mod 8 of each lane l in order (k in
// steps of 8) and combines the 8 lane sums in hsum8's order; the softmax runs over 8-blocks
// aligned to position 0 (exp_sum_row, masked positions as -inf); each output value is one
// 8-lane accumulator over those 8-blocks of positions (lane l: positions j = l mod 8),
// reduced in hsum8's order. Positions of a partly attended block score -inf, weigh 0, and
// their (possibly stale) values are masked to 0, which adds exact zeros.
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "cpu/hsum_avx2.h"
#include "cpu/ops.h"
#include "cpu/softmax_kernels.h"

namespace tessera::cpu::avx2 {

namespace {

inline __m256 load_half8(const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }

// y[i] = x[i] rounded to fp16 (nearest even), as fp32.
inline void round_half(const float* x, float* y, int n) {
  int i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT)));
  for (; i < n; ++i) y[i] = _cvtsh_ss(_cvtss_sh(x[i], _MM_FROUND_TO_NEAREST_INT));
}

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

// Reduces the accumulators, 8 at a time, and hands each sum to out(index, sum).
template <int N, typename Out>
inline void reduce_tile(const __m256 (&acc)[N], Out&& out) {
  for (int k0 = 0; k0 < N; k0 += 8) {
    __m256 v[8];
    for (int k = 0; k < 8; ++k) v[k] = k0 + k < N ? acc[k0 + k] : _mm256_setzero_ps();
    alignas(32) float sums[8];
    _mm256_store_ps(sums, hsum8_x8(v));
    for (int k = 0; k < 8 && k0 + k < N; ++k) out(k0 + k, sums[k]);
  }
}

// Tile widths for NQ heads: key blocks per score tile, value columns per value tile. Each
// tile keeps NQ x width accumulator chains: about 8 or more hide the FMA latency (4 cycles,
// 2 issued per cycle), and the chains, their shared loads and a broadcast must fit the 16
// vector registers (measured on Zen 3: 3 heads x 3 beat 3 x 2 by ~14%, 4 x 3 columns beat 4 x 2).
constexpr int score_tile_blocks(int nq) { return nq == 3 ? 3 : 8 / nq; }
constexpr int value_tile_columns(int nq) { return nq >= 3 ? 3 : 8 / nq; }

// The query heads of one work item and their per-thread rows.
struct Item {
  int pos, lo, block0, block_end;     // attended positions [lo, pos]; 8-blocks [block0, block_end)
  const KvLayer* kv;
  const int32_t* table;                // the row's sequence's block ids
  int g;                               // its kv head
  float sink[kAttentionHeads];         // per head, its attention sink (AttentionArgs::sinks), or -inf
  const float* q16[kAttentionHeads];   // rounded queries
  float* scores[kAttentionHeads];      // per head, indexed by position
  float* out[kAttentionHeads];         // per head, head_dim_v outputs
  float* probs[kAttentionHeads];       // per head, the recorded weights (tracing), or null

  // The key tile of the block holding position j.
  const uint16_t* key_tile(int j) const { return reinterpret_cast<const uint16_t*>(kv->key_tile(table[j / kKvBlock], g)); }
  // The 8-position key group [head_dim][8] starting at position jb (a multiple of 8).
  const uint16_t* key_group(int jb, int hd) const { return key_tile(jb) + int64_t(jb % kKvBlock) * hd; }
};

// Scores of NQ heads x the NB key blocks from position jb: finish(q, jb + 8b, scores), lane
// p holding position jb + 8b + p.
template <int NQ, int NB, typename Finish>
inline void score_blocks(const Item& it, int hd, int jb, Finish&& finish) {
  constexpr int T = NQ * NB;
  const int hd8 = hd / 8 * 8;
  const uint16_t* groups[NB];  // a tile may end inside the NB groups: each has its own address
  for (int b = 0; b < NB; ++b) groups[b] = it.key_group(jb + 8 * b, hd);
  __m256 lane_sum[8][T];  // [entry lane l][head q * NB + block b]
  for (int l = 0; l < 8; ++l) {
    __m256 acc[T];
    for (int t = 0; t < T; ++t) acc[t] = _mm256_setzero_ps();
    for (int i = l; i < hd8; i += 8) {
      __m256 k8[NB];
      for (int b = 0; b < NB; ++b) k8[b] = load_half8(groups[b] + i * 8);
      for (int q = 0; q < NQ; ++q) {
        const __m256 q8 = _mm256_broadcast_ss(it.q16[q] + i);
        for (int b = 0; b < NB; ++b) acc[q * NB + b] = _mm256_fmadd_ps(q8, k8[b], acc[q * NB + b]);
      }
    }
    for (int t = 0; t < T; ++t) lane_sum[l][t] = acc[t];
  }
  for (int t = 0; t < T; ++t) {
    const auto& c = lane_sum;
    __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(c[0][t], c[4][t]), _mm256_add_ps(c[2][t], c[6][t])),
                             _mm256_add_ps(_mm256_add_ps(c[1][t], c[5][t]), _mm256_add_ps(c[3][t], c[7][t])));
    const int q = t / NB, b = t % NB;
    // Entries past the last multiple of 8 (no real head size has them) come after the lane sums.
    for (int i = hd8; i < hd; ++i) s = _mm256_fmadd_ps(_mm256_broadcast_ss(it.q16[q] + i), load_half8(groups[b] + i * 8), s);
    finish(q, jb + 8 * b, s);
  }
}

// Where the kv head's values lie: value column i of the 8 positions from jb (a multiple of 8)
// is the 8 fp16 at tile(jb) + i * column_step + (jb % kKvBlock) * position_step, where tile
// is the transposed value tile (column_step kKvBlock, position_step 1) or, with v_in_k, the
// key tile (column_step 8, position_step head_dim) of the block holding jb.
struct Values {
  const Item* it;
  int64_t column_step, position_step;
  const uint16_t* tile(int jb) const {
    const KvLayer& kv = *it->kv;
    const int block = it->table[jb / kKvBlock];
    return reinterpret_cast<const uint16_t*>(kv.v_in_k ? kv.key_tile(block, it->g) : kv.value_tile(block, it->g));
  }
};

// Value columns [i, i + NC) of NQ heads. first/last: the lanes attended in the first and last
// 8-block.
template <int NQ, int NC>
inline void value_tile(const Item& it, const Values& v, int i, __m256 first, __m256 last) {
  __m256 acc[NQ * NC];
  for (int k = 0; k < NQ * NC; ++k) acc[k] = _mm256_setzero_ps();
  const uint16_t* group = nullptr;
  for (int jb = it.block0; jb < it.block_end; jb += 8) {
    const __m256 mask = jb == it.block0 ? first : jb + 8 == it.block_end ? last : _mm256_castsi256_ps(_mm256_set1_epi32(-1));
    // Column i of this 8-group; the tile is looked up once per block.
    if (!group || jb % kKvBlock == 0) group = v.tile(jb) + i * v.column_step + (jb % kKvBlock) * v.position_step;
    else group += 8 * v.position_step;
    __m256 v8[NC];
    for (int c = 0; c < NC; ++c) v8[c] = _mm256_and_ps(mask, load_half8(group + c * v.column_step));
    for (int q = 0; q < NQ; ++q) {
      const __m256 p8 = _mm256_loadu_ps(it.scores[q] + jb);
      for (int c = 0; c < NC; ++c) acc[q * NC + c] = _mm256_fmadd_ps(p8, v8[c], acc[q * NC + c]);
    }
  }
  reduce_tile(acc, [&](int k, float s) { it.out[k / NC][i + k % NC] = s; });
}

// Lanes of the 8-block at jb whose positions lie in [lo, pos].
inline __m256 attended_lanes(int jb, int lo, int pos) {
  const __m256i j = _mm256_add_epi32(_mm256_set1_epi32(jb), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  const __m256i below = _mm256_cmpgt_epi32(_mm256_set1_epi32(lo), j), above = _mm256_cmpgt_epi32(j, _mm256_set1_epi32(pos));
  return _mm256_castsi256_ps(_mm256_andnot_si256(_mm256_or_si256(below, above), _mm256_set1_epi32(-1)));
}

// Decode steps stream a sequence's blocks from DRAM: entering block n of the scores, the
// next block's key tile and this block's value tile are prefetched, so both arrive while the
// scores of the tiles before them are computed (tiles are contiguous 4-8 KiB runs, but one
// score step reads only a few groups of one: the hardware prefetcher does not run ahead far
// enough, and the values are only read after every score). Only single-token steps use it:
// in a batch the blocks are already in L2 (the tokens before read them), and pulling them
// into L1 only evicts the key groups and scores still in use.
inline void prefetch_tile(const uint8_t* p, uint64_t bytes) {
  for (uint64_t o = 0; o < bytes; o += 64) _mm_prefetch(reinterpret_cast<const char*>(p) + o, _MM_HINT_T0);
}

// vt: whether values have their own (transposed) tiles; false with v_in_k.
template <int NQ>
void attend(const AttentionArgs& a, const Item& it, bool vt) {
  const int hd = a.head_dim, hdv = a.head_dim_v;
  const __m256 first = attended_lanes(it.block0, it.lo, it.pos), last = attended_lanes(it.block_end - 8, it.lo, it.pos);
  const __m256 scale = _mm256_set1_ps(a.scale), minus_inf = _mm256_set1_ps(-INFINITY);
  __m256 max[NQ];
  for (int q = 0; q < NQ; ++q) max[q] = minus_inf;
  auto finish = [&](int q, int jb, __m256 s) {
    s = _mm256_mul_ps(s, scale);
    float* row = it.scores[q] + jb;
    _mm256_storeu_ps(row, s);
    if (a.softcap != 0.f)
      for (int p = 0; p < 8; ++p) row[p] = a.softcap * std::tanh(row[p] * (1.0f / a.softcap));
    // Positions outside [lo, pos] score -inf (their keys may be stale or never written).
    const __m256 attended = jb == it.block0 ? first : jb + 8 == it.block_end ? last : _mm256_castsi256_ps(_mm256_set1_epi32(-1));
    s = _mm256_blendv_ps(minus_inf, _mm256_loadu_ps(row), attended);
    _mm256_storeu_ps(row, s);
    max[q] = _mm256_max_ps(max[q], s);
  };
  constexpr int NB = score_tile_blocks(NQ);
  const bool prefetch = a.n_tokens == 1;
  const KvLayer& kv = *it.kv;
  int prefetched = -1;  // the last block whose tiles were prefetched
  auto prefetch_blocks = [&](int jb_end) {
    for (int n = jb_end / kKvBlock; prefetched < n; ) {
      ++prefetched;
      if (prefetched * kKvBlock + kKvBlock < it.block_end)
        prefetch_tile(kv.key_tile(it.table[prefetched + 1], it.g), kv.k_tile);
      if (vt) prefetch_tile(kv.value_tile(it.table[prefetched], it.g), kv.v_tile);
    }
  };
  int jb = it.block0;
  if (prefetch) prefetched = jb / kKvBlock - 1;
  for (; jb + 8 * NB <= it.block_end; jb += 8 * NB) {
    if (prefetch) prefetch_blocks(jb);
    score_blocks<NQ, NB>(it, hd, jb, finish);
  }
  for (; jb < it.block_end; jb += 8) score_blocks<NQ, 1>(it, hd, jb, finish);

  // Softmax; the probabilities, normalized and rounded to fp16, in place (masked ones are 0).
  for (int q = 0; q < NQ; ++q) {
    float* probs = it.probs[q];
    float* row = it.scores[q];
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, max[q]);
    // A sink joins the max and the sum as ggml's soft_max does (its own expf, added last).
    const float row_max = std::max(*std::max_element(lanes, lanes + 8), it.sink[q]);
    double sum = exp_sum_row(row + it.block0, row_max, row + it.block0, it.block_end - it.block0);
    if (it.sink[q] != -INFINITY) sum += double(std::exp(it.sink[q] - row_max));
    const __m256 inv = _mm256_set1_ps(float(1.0 / sum));
    for (int jb = it.block0; jb < it.block_end; jb += 8) {
      const __m256 p = _mm256_mul_ps(_mm256_loadu_ps(row + jb), inv);
      _mm256_storeu_ps(row + jb, _mm256_cvtph_ps(_mm256_cvtps_ph(p, _MM_FROUND_TO_NEAREST_INT)));
    }
    if (probs) {
      std::fill(probs, probs + it.block0, 0.f);
      std::copy(row + it.block0, row + it.pos + 1, probs + it.block0);
    }
  }

  const Values values = vt ? Values{&it, kKvBlock, 1} : Values{&it, 8, hd};
  constexpr int NC = value_tile_columns(NQ);
  int i = 0;
  for (; i + NC <= hdv; i += NC) value_tile<NQ, NC>(it, values, i, first, last);
  for (; i < hdv; ++i) value_tile<NQ, 1>(it, values, i, first, last);
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
    it.pos = a.last ? a.last[t] : a.rows.pos[t];
    it.lo = a.sliding_window > 0 ? std::max(0, it.pos - a.sliding_window + 1) : 0;
    it.block0 = it.lo & ~7;
    it.block_end = (it.pos + 8) & ~7;
    it.kv = &a.kv;
    it.table = a.rows.table[t];
    it.g = g;
    for (int q = 0; q < nq; ++q) {
      const float* qh = a.q + t * a.ldq + int64_t(h0 + q) * hd;
      float* q16 = scratch.q16 + q * hd;
      round_half(qh, q16, hd);
      it.q16[q] = q16;
      it.scores[q] = scratch.scores + q * scratch.scores_stride;
      it.out[q] = a.out + t * a.ldo + int64_t(h0 + q) * hdv;
      it.probs[q] = a.probs ? a.probs + (t * int64_t(a.n_head) + h0 + q) * a.probs_ld : nullptr;
      it.sink[q] = a.sinks ? a.sinks[h0 + q] : -INFINITY;
    }
    const bool vt = !a.kv.v_in_k;
    switch (nq) {
      case 4: attend<4>(a, it, vt); break;
      case 3: attend<3>(a, it, vt); break;
      case 2: attend<2>(a, it, vt); break;
      default: attend<1>(a, it, vt); break;
    }
  }
}

}  // namespace tessera::cpu::avx2
