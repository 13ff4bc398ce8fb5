// Q3_Kx16 (repacked Q3_K, packed_q3_kx16.h) x Q8_K activations on AVX-512 VNNI, any number
// of tokens.
//
// Lane r of every vector is row r of a 16-row group. A Q3_K value is q - 4 with q = low 2
// bits | high bit << 2 (0..7); per 16-value sub-block s and token, 4 vpdpbusd of q (unsigned)
// by 4 broadcast activation bytes give dot_s = sum q * x exactly, and sum (q - 4) * x =
// dot_s - 4 * S_s (S_s: the activation's 16-value sum, Q8_K's bsums). Per super-block and
// row: isum = sum_s (scale_s - 32) * (dot_s - 4 * S_s) in int32, then one fp32 multiply-add
// by d * dx. That is not vec_dot_q3_K's order (8 partial lanes per row), so on AVX-512
// machines Q3_K agrees with llama.cpp within the activation-rounding budget rather than to
// the bit; the AVX2 path keeps llama.cpp's order. Rows outside whole groups take the same
// steps one row at a time (row_in_order).
//
// Why: the AVX2 kernel decodes the 3-bit values with ~12 vector operations per 32 values
// and row, and reached 34% of the read bandwidth on decode (8192x2048: 0.34 ms).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <cmath>
#include <cstring>

#include "cpu/packed_q3_kx16.h"
#include "cpu/x16_common.h"

namespace tessera::cpu::avx512vnni {

namespace {

using x16::dpbusd_x;
using x16::half;

// About three columns ahead (~300 ns of a core's stream): 2 KB, less than one column,
// left Q5_K's one-token matvec waiting on DRAM (8192x2048, 2 threads: 0.20 -> 0.175 ms at
// 8 KB; 16 KB was slower again).
constexpr int kPrefetchBytes = 3 * int(sizeof(q3_kx16::Column));

// Sub-block s's scale minus 32 of each row, as int32 (the 6-bit fields of
// packed_q3_kx16.h moved to the top of the lane, then shifted down with the sign).
inline __m512i scale_of(const q3_kx16::Column& c, int s) {
  if (s < 15) return _mm512_srai_epi32(_mm512_slli_epi32(_mm512_loadu_si512(c.scales[s / 5]), 26 - 6 * (s % 5)), 26);
  // Scale 15: bits 4..5 at the top of word 2, 2..3 of word 1, 0..1 of word 0.
  const __m512i top = _mm512_ternarylogic_epi32(_mm512_loadu_si512(c.scales[2]), _mm512_srli_epi32(_mm512_loadu_si512(c.scales[1]), 2),
                                                _mm512_set1_epi32(int32_t(0xC0000000u)), 0xE4);
  const __m512i all = _mm512_ternarylogic_epi32(top, _mm512_srli_epi32(_mm512_loadu_si512(c.scales[0]), 4),
                                                _mm512_set1_epi32(int32_t(0xF0000000u)), 0xE4);
  return _mm512_srai_epi32(all, 26);
}

// Tokens k0..k0+T-1 against one whole group (rows row0..row0+15).
template <int T>
void group_tokens(const q3_kx16::Column* columns, int64_t nb, const DotTile& t, int k0, int64_t row0) {
  const __m512i m3 = _mm512_set1_epi8(3), m7 = _mm512_set1_epi8(7);
  const BlockQ8_K* xrow[T];
  for (int n = 0; n < T; ++n) xrow[n] = reinterpret_cast<const BlockQ8_K*>(t.act + (k0 + n) * t.act_stride);
  __m512 acc[T];
  for (int n = 0; n < T; ++n) acc[n] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const q3_kx16::Column& c = columns[b];
    for (int o = 0; o < int(sizeof(c)); o += 64) _mm_prefetch(reinterpret_cast<const char*>(&c) + kPrefetchBytes + o, _MM_HINT_T0);
    __m512i isum[T];
    for (int n = 0; n < T; ++n) isum[n] = _mm512_setzero_si512();
    // Unrolled so that the scale shifts are immediates.
#pragma GCC unroll 8
    for (int g = 0; g < 8; ++g) {
      // Sub-blocks 2g (values u0..u3 of packed_q3_kx16.h) and 2g + 1 (u4..u7).
      const __m512i b0 = _mm512_loadu_si512(c.q[3 * g]), b1 = _mm512_loadu_si512(c.q[3 * g + 1]), b2 = _mm512_loadu_si512(c.q[3 * g + 2]);
      const __m512i lo[4] = {
          // u0, u1: low bits from b0/b1, the high bit from b2 (one bit select, 0xE4: m3 ? a : b).
          _mm512_and_si512(_mm512_ternarylogic_epi32(b0, _mm512_srli_epi16(b2, 4), m3, 0xE4), m7),
          _mm512_and_si512(_mm512_ternarylogic_epi32(b1, _mm512_srli_epi16(b2, 5), m3, 0xE4), m7),
          _mm512_and_si512(_mm512_srli_epi16(b0, 2), m7), _mm512_and_si512(_mm512_srli_epi16(b0, 5), m7)};
      const __m512i hi[4] = {_mm512_and_si512(_mm512_srli_epi16(b1, 2), m7), _mm512_and_si512(_mm512_srli_epi16(b1, 5), m7),
                             _mm512_and_si512(b2, m7), _mm512_and_si512(_mm512_srli_epi16(b2, 3), m7)};
      x16::sub_block_dots(isum, lo, scale_of(c, 2 * g), xrow, b, 2 * g, 4);
      x16::sub_block_dots(isum, hi, scale_of(c, 2 * g + 1), xrow, b, 2 * g + 1, 4);
    }
    x16::scale_super_block(acc, isum, c.d, xrow, b);
  }
  for (int n = 0; n < T; ++n) _mm512_storeu_ps(t.y + (k0 + n) * t.ldy + row0, acc[n]);
}

// One GGUF row, every token: a lane of group_tokens, step for step.
void row_in_order(const DotTile& t, int64_t r, int64_t nb) {
  const BlockQ3_K* w = reinterpret_cast<const BlockQ3_K*>(t.w + r * t.row_bytes);
  for (int k = 0; k < t.n_tokens; ++k) {
    const BlockQ8_K* x = reinterpret_cast<const BlockQ8_K*>(t.act + k * t.act_stride);
    float acc = 0.f;
    for (int64_t b = 0; b < nb; ++b) {
      int32_t isum = 0;
      for (int s = 0; s < 16; ++s) {
        int32_t dot = -4 * int32_t(x[b].bsums[s]);
        for (int l = 16 * s; l < 16 * s + 16; ++l) dot += q3_kx16::value3(w[b], l) * x[b].qs[l];
        isum += (q3_kx16::scale6(w[b].scales, s) - 32) * dot;
      }
      acc = std::fmaf(float(isum), half(w[b].d) * x[b].d, acc);
    }
    t.y[k * t.ldy + r] = acc;
  }
}

}  // namespace

void matmul_q3_kx16(const DotTile& t, int64_t r0, int64_t r1) {
  const int64_t nb = t.cols / QK_K;
  x16::groups_and_rows<q3_kx16::kRows>(
      r0, r1,
      [&](int64_t g0, int64_t g1) {
        x16::token_tiles<4>(g0, g1, t.n_tokens, [&](auto tokens, int64_t g, int k0) {
          group_tokens<decltype(tokens)::value>(q3_kx16::group(t.packed, t.row_bytes, g), nb, t, k0, g * q3_kx16::kRows);
        });
      },
      [&](int64_t r) { row_in_order(t, r, nb); });
}

}  // namespace tessera::cpu::avx512vnni
