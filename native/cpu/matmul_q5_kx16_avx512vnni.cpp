// Q5_Kx16 (repacked Q5_K, packed_q5_kx16.h) x Q8_K activations on AVX-512 VNNI, any number
// of tokens.
//
// Lane r of every vector is row r of a 16-row group. Per 32-value sub-block and token: the
// 5-bit values (nibble | fifth bit << 4, unsigned 0..31; three units of 4 decoded as q and
// five as 8q, packed_q5_kx16.h) times 4 broadcast activation bytes, 8 vpdpbusd into two
// sums, the second shifted back, give the 16 rows' exact int32 dots; per super-block, per
// row, the integers
//   isum = sum_i scale_i * dot_i,  imin = sum_i min_i * S_i  (S_i: the activation sub-block sum)
// and two fp32 multiply-adds, acc += isum * (d * dx) and accm += imin * (dmin * dx), with
// y = acc - accm at the end. That is not llama.cpp's vec_dot_q5_K order (8 partial lanes per
// row, summed at the end), so on AVX-512 machines Q5_K logits agree with llama.cpp within the
// activation-rounding budget rather than to the bit (as Q8_0's do there); the AVX2 path keeps
// llama.cpp's order. Rows outside whole groups take the same steps one row at a time
// (row_in_order), so a token's bits do not depend on its batch or the row split.
//
// Why: the AVX2 kernel, one row at a time with its lanes summed at the end, reached 56% of
// the read bandwidth on decode (8192x2048: 0.33 ms); Q5_K_M decode stayed at 49% of it.
// The layout of packed_q5_kx16.h and imin by vpdpwssd (the mins and the activation sums as
// int16 pairs, where each min took two shifts, a vpmulld and an add) replaced GGUF's fields
// side by side: 256x2048 on one thread from L2 went from 52 to 59 GB/s (Zen 5 dev VM), with
// the same integer sums, so the same bits.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "cpu/packed_q5_kx16.h"
#include "cpu/x16_common.h"

namespace tessera::cpu::avx512vnni {

namespace {

using x16::dpbusd_x;
using x16::half;
using x16::lane_byte;
using SubSums = x16::Q8KSubSums;

// Scale (or min) i of a Q4_K/Q5_K super-block from its 12 packed bytes (ggml's
// get_scale_min_k4).
inline void scale_min(int i, const uint8_t* q, int* sc, int* mn) {
  if (i < 4) {
    *sc = q[i] & 63;
    *mn = q[i + 4] & 63;
  } else {
    *sc = (q[i + 4] & 0xF) | ((q[i - 4] >> 6) << 4);
    *mn = (q[i + 4] >> 4) | ((q[i] >> 6) << 4);
  }
}

// About three columns ahead (~300 ns of a core's stream): 2 KB, less than one column,
// left Q5_K's one-token matvec waiting on DRAM (8192x2048, 2 threads: 0.20 -> 0.175 ms at
// 8 KB; 16 KB was slower again).
constexpr int kPrefetchBytes = 3 * int(sizeof(q5_kx16::Column));

// Tokens k0..k0+T-1 against one whole group (rows row0..row0+15).
template <int T>
void group_tokens(const q5_kx16::Column* columns, int64_t nb, const DotTile& t, int k0, int64_t row0, const SubSums& sums) {
  const __m512i m1F = _mm512_set1_epi8(0x1F), mF8 = _mm512_set1_epi8(char(0xF8)), mE0 = _mm512_set1_epi8(char(0xE0)),
                m10 = _mm512_set1_epi8(0x10);
  const __m512i low6 = _mm512_set1_epi32(0x3f3f3f3f), low4 = _mm512_set1_epi32(0x0f0f0f0f), low2 = _mm512_set1_epi32(0x03030303);
  const BlockQ8_K* xrow[T];
  for (int n = 0; n < T; ++n) xrow[n] = reinterpret_cast<const BlockQ8_K*>(t.act + (k0 + n) * t.act_stride);
  __m512 acc[T], accm[T];
  for (int n = 0; n < T; ++n) acc[n] = accm[n] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const q5_kx16::Column& c = columns[b];
    for (int o = 0; o < int(sizeof(c)); o += 64) _mm_prefetch(reinterpret_cast<const char*>(&c) + kPrefetchBytes + o, _MM_HINT_T0);
    const __m512i w0 = _mm512_loadu_si512(c.scales[0]), w1 = _mm512_loadu_si512(c.scales[1]), w2 = _mm512_loadu_si512(c.scales[2]);
    const __m512i sc[2] = {
        _mm512_and_si512(w0, low6),
        _mm512_or_si512(_mm512_and_si512(w2, low4), _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(w0, 6), low2), 4))};
    const __m512i mn[2] = {
        _mm512_and_si512(w1, low6),
        _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(w2, 4), low4), _mm512_slli_epi32(_mm512_and_si512(_mm512_srli_epi32(w1, 6), low2), 4))};
    __m512i mn16[4];
    x16::min_pairs(mn, mn16);
    __m512i isum[T];
    for (int n = 0; n < T; ++n) isum[n] = _mm512_setzero_si512();
    // Unrolled (as the loops below): with i constant, the scale's byte is an immediate.
#pragma GCC unroll 8
    for (int i = 0; i < 8; ++i) {
      // Sub-block i: units 0..2 as q, 3..7 as 8q (packed_q5_kx16.h).
      __m512i v[5];
      for (int m = 0; m < 5; ++m) v[m] = _mm512_loadu_si512(c.q[5 * i + m]);
      const __m512i low2 = _mm512_ternarylogic_epi32(_mm512_slli_epi16(v[3], 2), _mm512_slli_epi16(v[4], 1), m10, 0xE4);
      const __m512i u[8] = {_mm512_and_si512(v[0], m1F),
                            _mm512_and_si512(v[1], m1F),
                            _mm512_and_si512(v[2], m1F),
                            _mm512_and_si512(v[3], mF8),
                            _mm512_and_si512(v[4], mF8),
                            _mm512_and_si512(_mm512_ternarylogic_epi32(v[0], _mm512_slli_epi16(v[3], 3), mE0, 0xE4), mF8),
                            _mm512_and_si512(_mm512_ternarylogic_epi32(v[1], _mm512_slli_epi16(v[4], 3), mE0, 0xE4), mF8),
                            _mm512_and_si512(_mm512_ternarylogic_epi32(v[2], low2, mE0, 0xE4), mF8)};
      const __m512i scale = lane_byte(sc[i / 4], i % 4);
      for (int n = 0; n < T; ++n) {
        const int8_t* x = xrow[n][b].qs + 32 * i;
        __m512i dot1 = _mm512_setzero_si512(), dot8 = _mm512_setzero_si512();
        for (int k = 0; k < 3; ++k) dot1 = dpbusd_x(dot1, u[k], x + 4 * k);
        for (int k = 3; k < 8; ++k) dot8 = dpbusd_x(dot8, u[k], x + 4 * k);
        // dot8 is 8 times an exact int32 dot (at most 32 * 31 * 128 * 8 < 2^21).
        const __m512i dot = _mm512_add_epi32(dot1, _mm512_srai_epi32(dot8, 3));
        isum[n] = _mm512_add_epi32(isum[n], _mm512_mullo_epi32(dot, scale));
      }
    }
    const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(c.d)));
    const __m512 dmin = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(c.dmin)));
    for (int n = 0; n < T; ++n) {
      const __m512i imin = x16::min_term(_mm512_setzero_si512(), mn16, sums.pairs_at(k0 + n, nb, b));
      const __m512 dx = _mm512_set1_ps(xrow[n][b].d);
      acc[n] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[n]), _mm512_mul_ps(dw, dx), acc[n]);
      accm[n] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(imin), _mm512_mul_ps(dmin, dx), accm[n]);
    }
  }
  for (int n = 0; n < T; ++n) _mm512_storeu_ps(t.y + (k0 + n) * t.ldy + row0, _mm512_sub_ps(acc[n], accm[n]));
}

// One GGUF row, every token: a lane of group_tokens, step for step.
void row_in_order(const DotTile& t, int64_t r, int64_t nb, const SubSums& sums) {
  const BlockQ5_K* w = reinterpret_cast<const BlockQ5_K*>(t.w + r * t.row_bytes);
  for (int k = 0; k < t.n_tokens; ++k) {
    const BlockQ8_K* x = reinterpret_cast<const BlockQ8_K*>(t.act + k * t.act_stride);
    float acc = 0.f, accm = 0.f;
    for (int64_t b = 0; b < nb; ++b) {
      const int32_t* S = sums.s.data() + (size_t(k) * nb + b) * 8;
      int32_t isum = 0, imin = 0;
      for (int i = 0; i < 8; ++i) {
        int sc, mn;
        scale_min(i, w[b].scales, &sc, &mn);
        const int j = i / 2, h = i % 2;
        int32_t dot = 0;
        for (int l = 0; l < 32; ++l) {
          const int q = ((w[b].qs[32 * j + l] >> (4 * h)) & 0xF) | (((w[b].qh[l] >> i) & 1) << 4);
          dot += q * x[b].qs[32 * i + l];
        }
        isum += sc * dot;
        imin += mn * S[i];
      }
      acc = std::fmaf(float(isum), half(w[b].d) * x[b].d, acc);
      accm = std::fmaf(float(imin), half(w[b].dmin) * x[b].d, accm);
    }
    t.y[k * t.ldy + r] = acc - accm;
  }
}

}  // namespace

void matmul_q5_kx16(const DotTile& t, int64_t r0, int64_t r1) {
  const int64_t nb = t.cols / QK_K;
  thread_local SubSums sums;
  sums.build(t, nb);
  x16::groups_and_rows<q5_kx16::kRows>(
      r0, r1,
      [&](int64_t g0, int64_t g1) {
        x16::token_tiles<4>(g0, g1, t.n_tokens, [&](auto tokens, int64_t g, int k0) {
          group_tokens<decltype(tokens)::value>(q5_kx16::group(t.packed, t.row_bytes, g), nb, t, k0, g * q5_kx16::kRows, sums);
        });
      },
      [&](int64_t r) { row_in_order(t, r, nb, sums); });
}

}  // namespace tessera::cpu::avx512vnni
