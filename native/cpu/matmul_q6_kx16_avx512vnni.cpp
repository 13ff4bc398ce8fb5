// Q6_Kx16 (repacked Q6_K, packed_q6_kx16.h) x Q8_K activations on AVX-512 VNNI, any number
// of tokens.
//
// Lane r of every vector is row r of a 16-row group. A Q6_K value is q - 32 with q = nibble
// | 2 high bits << 4 (0..63); per 16-value sub-block s and token, 4 vpdpbusd of q (unsigned,
// decoded from the packed layout's three vectors) by 4 broadcast activation bytes, started
// at -32 * S_s (the activation's 16-value sum, Q8_K's bsums), give sum (q - 32) * x exactly.
// Per super-block and row: isum = sum_s scale_s * dot_s in int32, then one fp32 multiply-add
// by d * dx. Not vec_dot_q6_K's order (8 partial lanes per row): on AVX-512 machines Q6_K
// agrees with llama.cpp within the activation-rounding budget rather than to the bit; the
// AVX2 path keeps llama.cpp's order. Rows outside whole groups take the same steps one row
// at a time.
//
// Why: Q6_K holds the output matrix (and attn_v, half of ffn_down) of Q4_K_M, Q5_K_M and
// Q3_K_M files; a batch of 8 tokens ran at 3.7x a one-token step on the AVX2 kernel.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <cmath>
#include <cstring>

#include "cpu/packed_q6_kx16.h"
#include "cpu/x16_common.h"

namespace tessera::cpu::avx512vnni {

namespace {

using x16::dpbusd_x;
using x16::half;

// The dot of every sub-block starts at -32 * bsums[s].
int q6_offset_multiplier(int) { return -32; }
using Q6KOffsets = x16::Q8KOffsets<q6_offset_multiplier>;



// About three columns ahead (~300 ns of a core's stream): 2 KB, less than one column,
// left Q5_K's one-token matvec waiting on DRAM (8192x2048, 2 threads: 0.20 -> 0.175 ms at
// 8 KB; 16 KB was slower again).
constexpr int kPrefetchBytes = 3 * int(sizeof(q6_kx16::Column));

// Tokens k0..k0+T-1 against one whole group (rows row0..row0+15).
template <int T>
void group_tokens(const q6_kx16::Column* columns, int64_t nb, const DotTile& t, int k0, int64_t row0, const Q6KOffsets& offsets) {
  const __m512i m3 = _mm512_set1_epi8(3), m15 = _mm512_set1_epi8(0x0F), m63 = _mm512_set1_epi8(0x3F);
  const BlockQ8_K* xrow[T];
  for (int n = 0; n < T; ++n) xrow[n] = reinterpret_cast<const BlockQ8_K*>(t.act + (k0 + n) * t.act_stride);
  __m512 acc[T];
  for (int n = 0; n < T; ++n) acc[n] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const q6_kx16::Column& c = columns[b];
    for (int o = 0; o < int(sizeof(c)); o += 64) _mm_prefetch(reinterpret_cast<const char*>(&c) + kPrefetchBytes + o, _MM_HINT_T0);
    const int32_t* off[T];
    for (int n = 0; n < T; ++n) off[n] = offsets.at(k0 + n, nb, b);
    __m512i isum[T];
    for (int n = 0; n < T; ++n) isum[n] = _mm512_setzero_si512();
    // Unrolled so that the shifts' counts are immediates.
#pragma GCC unroll 16
    for (int s = 0; s < 16; ++s) {
      const __m512i b0 = _mm512_loadu_si512(c.q[3 * s]), b1 = _mm512_loadu_si512(c.q[3 * s + 1]), b2 = _mm512_loadu_si512(c.q[3 * s + 2]);
      // u3's bits 0..1, 2..3, 4..5 from the top of b0, b1, b2 (bit selects, 0xE4: mask ? a : b).
      const __m512i u3 = _mm512_ternarylogic_epi32(
          _mm512_ternarylogic_epi32(_mm512_srli_epi16(b0, 6), _mm512_srli_epi16(b1, 4), m3, 0xE4), _mm512_srli_epi16(b2, 2), m15, 0xE4);
      const __m512i v[4] = {_mm512_and_si512(b0, m63), _mm512_and_si512(b1, m63), _mm512_and_si512(b2, m63), _mm512_and_si512(u3, m63)};
      const __m512i scale = _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(c.scales[s])));
      for (int n = 0; n < T; ++n) {
        const int8_t* x = xrow[n][b].qs + 16 * s;
        __m512i dot = _mm512_set1_epi32(off[n][s]);
        for (int k = 0; k < 4; ++k) dot = dpbusd_x(dot, v[k], x + 4 * k);
        isum[n] = _mm512_add_epi32(isum[n], _mm512_mullo_epi32(dot, scale));
      }
    }
    x16::scale_super_block(acc, isum, c.d, xrow, b);
  }
  for (int n = 0; n < T; ++n) _mm512_storeu_ps(t.y + (k0 + n) * t.ldy + row0, acc[n]);
}

// One GGUF row, every token: a lane of group_tokens, step for step.
void row_in_order(const DotTile& t, int64_t r, int64_t nb) {
  const BlockQ6_K* w = reinterpret_cast<const BlockQ6_K*>(t.w + r * t.row_bytes);
  for (int k = 0; k < t.n_tokens; ++k) {
    const BlockQ8_K* x = reinterpret_cast<const BlockQ8_K*>(t.act + k * t.act_stride);
    float acc = 0.f;
    for (int64_t b = 0; b < nb; ++b) {
      int32_t isum = 0;
      for (int s = 0; s < 16; ++s) {
        int32_t dot = -32 * int32_t(x[b].bsums[s]);
        for (int l = 16 * s; l < 16 * s + 16; ++l) dot += q6_kx16::value6(w[b], l) * x[b].qs[l];
        isum += int32_t(w[b].scales[s]) * dot;
      }
      acc = std::fmaf(float(isum), half(w[b].d) * x[b].d, acc);
    }
    t.y[k * t.ldy + r] = acc;
  }
}

}  // namespace

void matmul_q6_kx16(const DotTile& t, int64_t r0, int64_t r1) {
  const int64_t nb = t.cols / QK_K;
  x16::groups_and_rows<q6_kx16::kRows>(
      r0, r1,
      [&](int64_t g0, int64_t g1) {
        thread_local Q6KOffsets offsets;
        offsets.build(t, nb);
        // A plain reference for the loop: it must not look up the thread_local again.
        const Q6KOffsets& o = offsets;
        x16::token_tiles<4>(g0, g1, t.n_tokens, [&](auto tokens, int64_t g, int k0) {
          group_tokens<decltype(tokens)::value>(q6_kx16::group(t.packed, t.row_bytes, g), nb, t, k0, g * q6_kx16::kRows, o);
        });
      },
      [&](int64_t r) { row_in_order(t, r, nb); });
}

}  // namespace tessera::cpu::avx512vnni
