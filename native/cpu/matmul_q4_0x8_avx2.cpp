// AVX2 matmul over WeightLayout::Q4_0x8 weights (8-row interleaved Q4_0, see
// packed_q4_0x8.h) against Q8_0 activations. Compiled with -mavx2 -mfma -mf16c; called only after run-time
// detection.
//
// Shape: one group of 8 rows at a time, tokens in tiles of up to 4 while the group's bytes
// stay in L1, so decode streams each weight byte once and prefill reuses every loaded block
// for all tokens. Per block column: one F16C conversion gives the 8 row scales; each 4-byte
// activation broadcast multiplies 8 rows with one maddubs, and the 8 per-row int32 sums come
// out as the 8 lanes of one vector, scaled and accumulated in fp32 (per row: blocks in
// order, one fp32 multiply-add per block, as the scalar kernel).
// maddubs multiplies the unsigned nibbles 0..15 directly; the -8 offset folds in through the
// activation block's integer sum. Invariant: the int16 partial sums stay below 2^15
// (8 maddubs of 2 products each: 8 * 2 * 15 * 127).
// IQ4_NL (kLevels): the nibbles index a 16-entry int8 table (one pshufb), multiplied as
// |v| times sign(v) * x and widened to int32 after each maddubs (levels reach 127). The int32
// sum per row and block is exact either way, so the fp32 steps, and llama.cpp's repacked
// iq4_nl_8x8 kernels (the same template as its q4_0_8x8), are those of Q4_0.
#include <immintrin.h>

#include <algorithm>
#include <vector>

#include "cpu/dot_kernels.h"
#include "cpu/hsum_avx2.h"
#include "cpu/packed_q4_0x8.h"
#include "cpu/side_by_side.h"

namespace tessera::cpu::avx2 {

namespace {

constexpr int kTokens = 4;

// Per token and block: the activation scale and the sum of its 32 int8 values. Computed
// once per thread and matmul_shared call (DotTile::act_key), else once per
// matmul_q4_0x8_groups call.
struct ActBlocks {
  std::vector<float> d;
  std::vector<int32_t> sum;
  void compute(const DotTile& t, int64_t nb) {
    if (computed_from_.reuse(t)) return;
    d.resize(size_t(t.n_tokens) * nb);
    sum.resize(size_t(t.n_tokens) * nb);
    const __m256i ones8 = _mm256_set1_epi8(1), ones16 = _mm256_set1_epi16(1);
    for (int k = 0; k < t.n_tokens; ++k) {
      const BlockQ8_0* xb = reinterpret_cast<const BlockQ8_0*>(t.act + k * t.act_stride);
      for (int64_t b = 0; b < nb; ++b) {
        d[k * nb + b] = _cvtsh_ss(xb[b].d);
        const __m256i xq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb[b].qs));
        sum[k * nb + b] = hsum_i32(_mm256_madd_epi16(_mm256_maddubs_epi16(ones8, xq), ones16));
      }
    }
  }

 private:
  ActMemo computed_from_;
};

// Every cache line of the block kPrefetchBytes ahead: decode is a pure stream, and the
// hardware prefetcher alone leaves the loads waiting on DRAM.
constexpr int kPrefetchBytes = 1024;
inline void prefetch_ahead(const uint8_t* p, int bytes) {
  for (int o = 0; o < bytes; o += 64) _mm_prefetch(reinterpret_cast<const char*>(p) + kPrefetchBytes + o, _MM_HINT_T0);
}

inline __m256i broadcast4(const int8_t* p) {
  int32_t v;
  __builtin_memcpy(&v, p, 4);
  return _mm256_set1_epi32(v);
}

// Block b of group g: returns the 8 row scales and sets v to the quants, unsigned 0..15
// (kLevels: their int8 levels from `levels`, the table in both 128-bit halves);
// v[k] holds values 4k..4k+3 (k < 4) or 16+4(k-4).. (k >= 4) of every row.
template <bool kLevels>
inline __m256 load_block(const q4_0x8::Group& g, int64_t b, __m256i (&v)[8], __m256i levels) {
  const __m256i m4 = _mm256_set1_epi8(0xF);
  const uint8_t* q = g.quants + b * q4_0x8::kQuantBytes;
  prefetch_ahead(q, q4_0x8::kQuantBytes);
  for (int k = 0; k < 4; ++k) {
    const __m256i p = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + 32 * k));
    v[k] = _mm256_and_si256(p, m4);
    v[k + 4] = _mm256_and_si256(_mm256_srli_epi16(p, 4), m4);
  }
  if constexpr (kLevels)
    for (int k = 0; k < 8; ++k) v[k] = _mm256_shuffle_epi8(levels, v[k]);
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(g.scales + b * q4_0x8::kRows)));
}

// The activation block's 32 quants as the 8 broadcasts that meet load_block's v[0..8).
inline void broadcast_block(const int8_t* xq, __m256i (&xv)[8]) {
  for (int k = 0; k < 4; ++k) {
    xv[k] = broadcast4(xq + 4 * k);
    xv[k + 4] = broadcast4(xq + 16 + 4 * k);
  }
}

// acc lane r + dw[r] * dx * (row r . the activation block broadcast in xv): the block's one
// fp32 multiply-add per row, the -8 offset folded in through the activation sum xsum.
template <bool kLevels>
inline __m256 add_block_dot(__m256 acc, const __m256i (&v)[8], __m256 dw, const __m256i (&xv)[8], float dx, int32_t xsum) {
  __m256i s32;
  if constexpr (kLevels) {
    const __m256i ones = _mm256_set1_epi16(1);
    s32 = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(v[0], v[0]), _mm256_sign_epi8(xv[0], v[0])), ones);
    for (int k = 1; k < 8; ++k)
      s32 = _mm256_add_epi32(s32, _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(v[k], v[k]), _mm256_sign_epi8(xv[k], v[k])), ones));
  } else {
    __m256i s16 = _mm256_maddubs_epi16(v[0], xv[0]);
    for (int k = 1; k < 8; ++k) s16 = _mm256_add_epi16(s16, _mm256_maddubs_epi16(v[k], xv[k]));
    s32 = _mm256_sub_epi32(_mm256_madd_epi16(s16, _mm256_set1_epi16(1)), _mm256_set1_epi32(8 * xsum));
  }
  return _mm256_fmadd_ps(_mm256_mul_ps(dw, _mm256_set1_ps(dx)), _mm256_cvtepi32_ps(s32), acc);
}

// acc[n] lane r += d_w[r] * d_x[n] * (row r . token k0+n) over all blocks of the group.
template <int N, bool kLevels>
void group_q4_0(const q4_0x8::Group& g, int64_t nb, const DotTile& t, int k0, const ActBlocks& xs, __m256 acc[N], __m256i levels) {
  for (int n = 0; n < N; ++n) acc[n] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    __m256i v[8];
    const __m256 dw = load_block<kLevels>(g, b, v, levels);
    for (int n = 0; n < N; ++n) {
      const BlockQ8_0* xb = reinterpret_cast<const BlockQ8_0*>(t.act + (k0 + n) * t.act_stride) + b;
      __m256i xv[8];
      broadcast_block(xb->qs, xv);
      acc[n] = add_block_dot<kLevels>(acc[n], v, dw, xv, xs.d[(k0 + n) * nb + b], xs.sum[(k0 + n) * nb + b]);
    }
  }
}

// Decode: groups g[s] (s < kSideBySideStreams, see side_by_side.h) block by block together.
template <bool kLevels>
void matvec_groups(const int64_t (&g)[kSideBySideStreams], int64_t nb, const DotTile& t, const ActBlocks& xs, __m256i levels) {
  const BlockQ8_0* x = reinterpret_cast<const BlockQ8_0*>(t.act);
  q4_0x8::Group grp[kSideBySideStreams];
  __m256 acc[kSideBySideStreams];
  for (int s = 0; s < kSideBySideStreams; ++s) {
    grp[s] = q4_0x8::group(t.packed, t.row_bytes, nb, g[s]);
    acc[s] = _mm256_setzero_ps();
  }
  for (int64_t b = 0; b < nb; ++b) {
    __m256i xv[8];
    broadcast_block(x[b].qs, xv);
    for (int s = 0; s < kSideBySideStreams; ++s) {
      __m256i v[8];
      const __m256 dw = load_block<kLevels>(grp[s], b, v, levels);
      acc[s] = add_block_dot<kLevels>(acc[s], v, dw, xv, xs.d[b], xs.sum[b]);
    }
  }
  for (int s = 0; s < kSideBySideStreams; ++s) _mm256_storeu_ps(t.y + g[s] * q4_0x8::kRows, acc[s]);
}

template <int N, bool kLevels>
void group_tile(const q4_0x8::Group& g, int64_t nb, const DotTile& t, int k0, const ActBlocks& xs, int64_t row0, __m256i levels) {
  __m256 acc[N];
  group_q4_0<N, kLevels>(g, nb, t, k0, xs, acc, levels);
  for (int n = 0; n < N; ++n) _mm256_storeu_ps(t.y + (k0 + n) * t.ldy + row0, acc[n]);
}

template <bool kLevels>
void q4_0x8_groups(const DotTile& t, int64_t g0, int64_t g1, __m256i levels) {
  const int64_t nb = t.cols / QK4_0;
  thread_local ActBlocks xs;
  xs.compute(t, nb);
  if (t.n_tokens == 1)
    g0 = side_by_side<kSideBySideStreams>(g0, g1, [&](const int64_t (&g)[kSideBySideStreams]) { matvec_groups<kLevels>(g, nb, t, xs, levels); });
  for (int64_t g = g0; g < g1; ++g) {
    const int64_t row0 = g * q4_0x8::kRows;
    const q4_0x8::Group grp = q4_0x8::group(t.packed, t.row_bytes, nb, g);
    int k0 = 0;
    for (; k0 + kTokens <= t.n_tokens; k0 += kTokens) group_tile<kTokens, kLevels>(grp, nb, t, k0, xs, row0, levels);
    switch (t.n_tokens - k0) {
      case 3: group_tile<3, kLevels>(grp, nb, t, k0, xs, row0, levels); break;
      case 2: group_tile<2, kLevels>(grp, nb, t, k0, xs, row0, levels); break;
      case 1: group_tile<1, kLevels>(grp, nb, t, k0, xs, row0, levels); break;
      default: break;
    }
  }
}

}  // namespace

void matmul_q4_0x8_groups(const DotTile& t, int64_t g0, int64_t g1, const int8_t* levels) {
  if (levels)
    q4_0x8_groups<true>(t, g0, g1, _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(levels))));
  else
    q4_0x8_groups<false>(t, g0, g1, _mm256_setzero_si256());
}

}  // namespace tessera::cpu::avx2
