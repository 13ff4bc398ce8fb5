// AVX2 matmul over WeightLayout::Q4_Kx8 weights (8-row interleaved Q4_K, see
// packed_q4_kx8.h) against Q8_K activations. Compiled with -mavx2 -mfma -mf16c; called only
// after run-time detection.
//
// Shape: one group of 8 rows at a time, tokens in tiles of up to 4, so decode streams each
// weight byte once and prefill reuses every loaded vector for 4 tokens. Per 32-value
// sub-block: 8 maddubs of the unsigned nibbles (0..15) by broadcast activation quads sum in
// int16, then one madd by the row's 6-bit scale gives each row's int32 in its own lane. Then,
// per row, acc += float(scale part) * (d * dx) and acc_min += float(min part) * (dmin * dx),
// one fp32 multiply-add each, and y = acc - acc_min at the end; the parts are those of a pair
// of sub-blocks (64 values) in DotOrder::Gemm, of the whole super-block in DotOrder::Gemv:
// the two orders of llama.cpp's repacked Q4_K GEMM and GEMV, which the GGUF-layout tile in
// matmul_avx2.cpp keeps too, so every layout and both engines round alike.
// Invariant: an int16 sum of 8 maddubs stays below 2^15 (8 * 2 * 15 * 128 = 30720); a
// sub-block's activation sum (at most 32 * 128) fits int16; a super-block's scale part
// (at most 8 * 63 * 32 * 15 * 128) fits int32.
#include <immintrin.h>

#include "cpu/dot_kernels.h"
#include "cpu/packed_q4_kx8.h"

namespace tessera::cpu::avx2 {

namespace {

constexpr int kTokens = 4;

// pshufb controls over 8 rows' packed scale bytes (4 per 32-bit lane). kScale[i]: byte i of
// each lane into both int16 halves of the lane (madd then multiplies the row's pair sums by
// it). kPair[i]: bytes i and i+1 into the two int16 halves.
struct ScaleShuffles {
  alignas(32) uint8_t scale[4][32];
  alignas(32) uint8_t pair[4][32];
  constexpr ScaleShuffles() : scale{}, pair{} {
    for (int i = 0; i < 4; ++i)
      for (int j = 0; j < 32; ++j) {
        const int lane = 4 * ((j / 4) % 4), byte = j % 4;
        scale[i][j] = byte % 2 ? 0x80 : uint8_t(lane + i);
        pair[i][j] = byte % 2 ? 0x80 : uint8_t(lane + (i + byte / 2) % 4);
      }
  }
};
constexpr ScaleShuffles kShuffle{};
inline __m256i shuffle(__m256i v, const uint8_t (&control)[32]) {
  return _mm256_shuffle_epi8(v, _mm256_load_si256(reinterpret_cast<const __m256i*>(control)));
}

inline __m256i broadcast4(const int8_t* p) {
  int32_t v;
  __builtin_memcpy(&v, p, 4);
  return _mm256_set1_epi32(v);
}

// Every cache line 2 KiB ahead of the column: decode is a pure stream, and the hardware
// prefetcher alone leaves the loads waiting on DRAM.
constexpr int kPrefetchBytes = 2048;

template <int N, DotOrder kOrder>
void group_tile(const q4_kx8::Column* columns, int64_t nb, const DotTile& t, int k0, int64_t row0) {
  const __m256i m4 = _mm256_set1_epi8(0xF), ones16 = _mm256_set1_epi16(1);
  const __m256i low6 = _mm256_set1_epi32(0x3f3f3f3f), low4 = _mm256_set1_epi32(0x0f0f0f0f), low2 = _mm256_set1_epi32(0x03030303);
  const BlockQ8_K* xrow[N];
  for (int n = 0; n < N; ++n) xrow[n] = reinterpret_cast<const BlockQ8_K*>(t.act + (k0 + n) * t.act_stride);
  __m256 acc[N], acc_min[N];
  for (int n = 0; n < N; ++n) acc[n] = acc_min[n] = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const q4_kx8::Column& c = columns[b];
    for (int o = 0; o < int(sizeof(c)); o += 64) _mm_prefetch(reinterpret_cast<const char*>(&c) + kPrefetchBytes + o, _MM_HINT_T0);
    const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(c.d)));
    const __m256 dmin = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(c.dmin)));
    // Per row (lane): word 0 bytes = low 6 bits of scales 0..3, word 1 = of mins 0..3, word 2
    // = low 4 bits of scales (low nibble) and mins (high nibble) 4..7, whose top 2 bits are
    // bits 6..7 of words 0 (scales) and 1 (mins).
    const __m256i w0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c.scales[0]));
    const __m256i w1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c.scales[1]));
    const __m256i w2 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c.scales[2]));
    const __m256i sc[2] = {
        _mm256_and_si256(w0, low6),
        _mm256_or_si256(_mm256_and_si256(w2, low4), _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(w0, 6), low2), 4))};
    const __m256i mn[2] = {
        _mm256_and_si256(w1, low6),
        _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi32(w2, 4), low4), _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(w1, 6), low2), 4))};
    // Per token: the 8 sub-block sums of its activations as int16 pairs, pair j in word j.
    alignas(16) int32_t bsum_pairs[N][4];
    for (int n = 0; n < N; ++n) {
      const __m256i s32 = _mm256_madd_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(xrow[n][b].bsums)), ones16);
      _mm_store_si128(reinterpret_cast<__m128i*>(bsum_pairs[n]), _mm_packs_epi32(_mm256_castsi256_si128(s32), _mm256_extracti128_si256(s32, 1)));
    }
    // GEMV order: the super-block's scale and min parts, summed in int32 over the 4 pairs.
    __m256i block_sum[N], block_min[N];
    for (int n = 0; n < N; ++n) block_sum[n] = block_min[n] = _mm256_setzero_si256();
    for (int j = 0; j < 4; ++j) {
      // Sub-blocks 2j (low nibbles) and 2j+1 (high nibbles).
      const __m256i scale_lo = shuffle(sc[j / 2], kShuffle.scale[(2 * j) % 4]);
      const __m256i scale_hi = shuffle(sc[j / 2], kShuffle.scale[(2 * j + 1) % 4]);
      __m256i lo[N], hi[N];
      for (int m = 0; m < 8; ++m) {
        const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c.quants[8 * j + m]));
        const __m256i v_lo = _mm256_and_si256(v, m4), v_hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
        for (int n = 0; n < N; ++n) {
          const int8_t* x = xrow[n][b].qs + 64 * j + 4 * m;
          const __m256i p_lo = _mm256_maddubs_epi16(v_lo, broadcast4(x));
          const __m256i p_hi = _mm256_maddubs_epi16(v_hi, broadcast4(x + 32));
          lo[n] = m == 0 ? p_lo : _mm256_add_epi16(lo[n], p_lo);
          hi[n] = m == 0 ? p_hi : _mm256_add_epi16(hi[n], p_hi);
        }
      }
      const __m256i min_pair = shuffle(mn[j / 2], kShuffle.pair[(2 * j) % 4]);
      for (int n = 0; n < N; ++n) {
        const __m256i sum = _mm256_add_epi32(_mm256_madd_epi16(lo[n], scale_lo), _mm256_madd_epi16(hi[n], scale_hi));
        const __m256i mins = _mm256_madd_epi16(min_pair, _mm256_set1_epi32(bsum_pairs[n][j]));
        if constexpr (kOrder == DotOrder::Gemm) {
          const __m256 dx = _mm256_set1_ps(xrow[n][b].d);
          acc[n] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum), _mm256_mul_ps(dw, dx), acc[n]);
          acc_min[n] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(mins), _mm256_mul_ps(dmin, dx), acc_min[n]);
        } else {
          block_sum[n] = _mm256_add_epi32(block_sum[n], sum);
          block_min[n] = _mm256_add_epi32(block_min[n], mins);
        }
      }
    }
    if constexpr (kOrder == DotOrder::Gemv)
      for (int n = 0; n < N; ++n) {
        const __m256 dx = _mm256_set1_ps(xrow[n][b].d);
        acc[n] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(block_sum[n]), _mm256_mul_ps(dw, dx), acc[n]);
        acc_min[n] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(block_min[n]), _mm256_mul_ps(dmin, dx), acc_min[n]);
      }
  }
  for (int n = 0; n < N; ++n) _mm256_storeu_ps(t.y + (k0 + n) * t.ldy + row0, _mm256_sub_ps(acc[n], acc_min[n]));
}

template <DotOrder kOrder>
void groups(const DotTile& t, int64_t g0, int64_t g1) {
  const int64_t nb = t.cols / QK_K;
  for (int64_t g = g0; g < g1; ++g) {
    const q4_kx8::Column* columns = q4_kx8::group(t.packed, t.row_bytes, g);
    const int64_t row0 = g * q4_kx8::kRows;
    int k0 = 0;
    for (; k0 + kTokens <= t.n_tokens; k0 += kTokens) group_tile<kTokens, kOrder>(columns, nb, t, k0, row0);
    switch (t.n_tokens - k0) {
      case 3: group_tile<3, kOrder>(columns, nb, t, k0, row0); break;
      case 2: group_tile<2, kOrder>(columns, nb, t, k0, row0); break;
      case 1: group_tile<1, kOrder>(columns, nb, t, k0, row0); break;
      default: break;
    }
  }
}

}  // namespace

void matmul_q4_kx8_groups(const DotTile& t, int64_t g0, int64_t g1) {
  if (t.order == DotOrder::Gemv)
    groups<DotOrder::Gemv>(t, g0, g1);
  else
    groups<DotOrder::Gemm>(t, g0, g1);
}

}  // namespace tessera::cpu::avx2
