// Q4_Kx16 (repacked Q4_K, packed_q4_kx16.h) x Q8_K activations on AVX-512 VNNI, any
// number of tokens, in both of llama.cpp's repacked Q4_K orders (DotOrder).
//
// Lane r of every vector is row r of a 16-row group. Per 32-value sub-block and token: 8
// vpdpbusd of the unsigned nibbles by 4 activation bytes broadcast from memory give the 16
// rows' exact int32 dots; times the rows' 6-bit scales (vpmulld) they are the int32 sums the
// AVX2 kernel forms with maddubs and madd (matmul_q4_kx8_avx2.cpp: there s * (A + B) of two
// int16 pair sums, here s * dot), and the mins part is min_2j * S_2j + min_2j+1 * S_2j+1 as
// there. The fp32 steps per lane are the AVX2 kernel's, in the same order, so a row gives
// the same bits from any layout, ISA and batch. Rows outside whole groups run the AVX2
// GGUF-layout tile, which sums alike.
//
// Why: the AVX2 tile spends a maddubs and an int16 add per 8 rows, 4 values and token, and a
// batch of 8 tokens ran at 3x a one-token step (8192x2048 Q4_K: 0.89 against 0.30 ms).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "cpu/dot_kernels.h"
#include "cpu/packed_q4_kx16.h"
#include "cpu/x16_common.h"

namespace tessera::cpu::avx512vnni {

namespace {

using x16::dpbusd_x;
using x16::lane_byte;
using x16::Q8KSubSums;

// About three columns ahead (~300 ns of a core's stream): 2 KB, less than one column,
// left Q5_K's one-token matvec waiting on DRAM (8192x2048, 2 threads: 0.20 -> 0.175 ms at
// 8 KB; 16 KB was slower again).
constexpr int kPrefetchBytes = 3 * int(sizeof(q4_kx16::Column));

// Tokens k0..k0+T-1 against one whole group (rows row0..row0+15).
template <int T, DotOrder kOrder>
void group_tokens(const q4_kx16::Column* columns, int64_t nb, const DotTile& t, int k0, int64_t row0, const Q8KSubSums& sums) {
  const __m512i m4 = _mm512_set1_epi8(0xF);
  const __m512i low6 = _mm512_set1_epi32(0x3f3f3f3f), low4 = _mm512_set1_epi32(0x0f0f0f0f), low2 = _mm512_set1_epi32(0x03030303);
  const BlockQ8_K* xrow[T];
  for (int n = 0; n < T; ++n) xrow[n] = reinterpret_cast<const BlockQ8_K*>(t.act + (k0 + n) * t.act_stride);
  __m512 acc[T], acc_min[T];
  for (int n = 0; n < T; ++n) acc[n] = acc_min[n] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const q4_kx16::Column& c = columns[b];
    for (int o = 0; o < int(sizeof(c)); o += 64) _mm_prefetch(reinterpret_cast<const char*>(&c) + kPrefetchBytes + o, _MM_HINT_T0);
    const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(c.d)));
    const __m512 dmin = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(c.dmin)));
    const __m512i w0 = _mm512_loadu_si512(c.scales[0]), w1 = _mm512_loadu_si512(c.scales[1]), w2 = _mm512_loadu_si512(c.scales[2]);
    // Per row: scales and mins 0..3 in words 0 and 1 (low 6 bits of each byte), 4..7 from the
    // nibbles of word 2 and bits 6..7 of words 0 and 1 (as the AVX2 kernel decodes them).
    const __m512i sc[2] = {
        _mm512_and_si512(w0, low6),
        _mm512_or_si512(_mm512_and_si512(w2, low4), _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(w0, 6), low2), 4))};
    const __m512i mn[2] = {
        _mm512_and_si512(w1, low6),
        _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(w2, 4), low4), _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(w1, 6), low2), 4))};
    const int32_t* S[T];
    for (int n = 0; n < T; ++n) S[n] = sums.s.data() + (size_t(k0 + n) * nb + b) * 8;
    __m512i block_sum[T], block_min[T];
    for (int n = 0; n < T; ++n) block_sum[n] = block_min[n] = _mm512_setzero_si512();
    for (int j = 0; j < 4; ++j) {
      // Sub-blocks 2j (low nibbles of vectors 8j..8j+7) and 2j+1 (high nibbles).
      __m512i sum[T];
      for (int h = 0; h < 2; ++h) {
        __m512i v[8];
        for (int m = 0; m < 8; ++m) {
          const __m512i packed = _mm512_loadu_si512(c.quants[8 * j + m]);
          v[m] = _mm512_and_si512(h == 0 ? packed : _mm512_srli_epi16(packed, 4), m4);
        }
        const __m512i scale = lane_byte(sc[j / 2], (2 * j + h) % 4);
        for (int n = 0; n < T; ++n) {
          const int8_t* x = xrow[n][b].qs + 64 * j + 32 * h;
          __m512i dot = _mm512_setzero_si512();
          for (int m = 0; m < 8; ++m) dot = dpbusd_x(dot, v[m], x + 4 * m);
          const __m512i part = _mm512_mullo_epi32(dot, scale);
          sum[n] = h == 0 ? part : _mm512_add_epi32(sum[n], part);
        }
      }
      if constexpr (kOrder == DotOrder::Gemm) {
        const __m512i min_lo = lane_byte(mn[j / 2], (2 * j) % 4), min_hi = lane_byte(mn[j / 2], (2 * j + 1) % 4);
        for (int n = 0; n < T; ++n) {
          const __m512i mins = _mm512_add_epi32(_mm512_mullo_epi32(min_lo, _mm512_set1_epi32(S[n][2 * j])),
                                                _mm512_mullo_epi32(min_hi, _mm512_set1_epi32(S[n][2 * j + 1])));
          const __m512 dx = _mm512_set1_ps(xrow[n][b].d);
          acc[n] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum[n]), _mm512_mul_ps(dw, dx), acc[n]);
          acc_min[n] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(mins), _mm512_mul_ps(dmin, dx), acc_min[n]);
        }
      } else {
        for (int n = 0; n < T; ++n) block_sum[n] = _mm512_add_epi32(block_sum[n], sum[n]);
      }
    }
    if constexpr (kOrder == DotOrder::Gemv) {
      // The block's whole min term at once, the same integer as the pairwise sums.
      __m512i mn16[4];
      x16::min_pairs(mn, mn16);
      for (int n = 0; n < T; ++n) block_min[n] = x16::min_term(block_min[n], mn16, sums.pairs_at(k0 + n, nb, b));
    }
    if constexpr (kOrder == DotOrder::Gemv)
      for (int n = 0; n < T; ++n) {
        const __m512 dx = _mm512_set1_ps(xrow[n][b].d);
        acc[n] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(block_sum[n]), _mm512_mul_ps(dw, dx), acc[n]);
        acc_min[n] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(block_min[n]), _mm512_mul_ps(dmin, dx), acc_min[n]);
      }
  }
  for (int n = 0; n < T; ++n) _mm512_storeu_ps(t.y + (k0 + n) * t.ldy + row0, _mm512_sub_ps(acc[n], acc_min[n]));
}

template <DotOrder kOrder>
void groups(const DotTile& t, int64_t g0, int64_t g1, const Q8KSubSums& sums) {
  const int64_t nb = t.cols / QK_K;
  x16::token_tiles<4>(g0, g1, t.n_tokens, [&](auto tokens, int64_t g, int k0) {
    group_tokens<decltype(tokens)::value, kOrder>(q4_kx16::group(t.packed, t.row_bytes, g), nb, t, k0, g * q4_kx16::kRows, sums);
  });
}

}  // namespace

void matmul_q4_kx16(const DotTile& t, int64_t r0, int64_t r1) {
  const int64_t g0 = (r0 + q4_kx16::kRows - 1) / q4_kx16::kRows, g1 = r1 / q4_kx16::kRows;
  if (g0 >= g1) {
    avx2::matmul_tile(GgmlType::Q4_K, WeightLayout::Gguf, t, r0, r1);
    return;
  }
  thread_local Q8KSubSums sums;
  sums.build(t, t.cols / QK_K);
  if (t.order == DotOrder::Gemv)
    groups<DotOrder::Gemv>(t, g0, g1, sums);
  else
    groups<DotOrder::Gemm>(t, g0, g1, sums);
  // Rows around the whole groups: the GGUF rows, in the same order.
  if (r0 < g0 * q4_kx16::kRows) avx2::matmul_tile(GgmlType::Q4_K, WeightLayout::Gguf, t, r0, g0 * q4_kx16::kRows);
  if (g1 * q4_kx16::kRows < r1) avx2::matmul_tile(GgmlType::Q4_K, WeightLayout::Gguf, t, g1 * q4_kx16::kRows, r1);
}

}  // namespace tessera::cpu::avx512vnni
