// Q3_Kx16 (repacked Q3_K, packed_q3_kx16.h) x Q8_K activations on AVX-512 VNNI, any number
// of tokens.
//
// Lane r of every vector is row r of a 16-row group. A Q3_K value is q - 4 with q = low 2
// bits | high bit << 2 (0..7). Per 16-value sub-block s and token, 4 vpdpbusd of the decoded
// values (q, 8q or 32q by the sub-block's class, unsigned) by 4 broadcast activation bytes,
// started at -4 * 2^shift * S_s (S_s: the activation's 16-value sum, Q8_K's bsums), give
// 2^shift * sum (q - 4) * x exactly; that fits int16 after the shift back (|.| <= 16 * 4 * 128),
// so two sub-blocks' dots go into the halves of one int32 lane and one vpdpwssd by their
// pair of scales adds isum += (scale_s - 32) * dot_s for both. Per super-block and row, isum
// is then sum_s (scale_s - 32) * (dot_s - 4 * S_s) in int32, as before the layout changed,
// and one fp32 multiply-add by d * dx follows. That is not vec_dot_q3_K's order (8 partial
// lanes per row), so on AVX-512 machines Q3_K agrees with llama.cpp within the
// activation-rounding budget rather than to the bit; the AVX2 path keeps llama.cpp's order.
// Rows outside whole groups take the same steps one row at a time (row_in_order).
//
// Why: the AVX2 kernel decodes the 3-bit values with ~12 vector operations per 32 values
// and row, and reached 34% of the read bandwidth on decode (8192x2048: 0.34 ms). This layout
// and its decode (packed_q3_kx16.h) replaced one that decoded value by value with a shift
// and a mask, scaled each sub-block with two shifts and a vpmulld, and was bound by those
// operations: 256x2048 on one thread from L2 went from 39 to 44 GB/s, and 8192x2048 on two
// threads from DRAM from 52-60 to 62-68 GB/s (Zen 5 dev VM, alternating builds).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <cmath>
#include <cstring>
#include <vector>

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

// The dot of sub-block s starts at -4 * 2^class_shift(s) * bsums[s].
int q3_offset_multiplier(int s) { return -(4 << q3_kx16::class_shift(s)); }
using Q3KOffsets = x16::Q8KOffsets<q3_offset_multiplier>;

// N sub-blocks' dots per token, side by side: sub-block s[i]'s 4 vpdpbusd of the decoded units
// u[i] against the token's activation bytes 16s..16s+15, from the token's offset.
template <int N, int T>
inline void sub_blocks(__m512i (&dot)[N][T], const __m512i (&u)[N][4], const BlockQ8_K* const (&xrow)[T], const int32_t* const (&off)[T],
                       int64_t b, const int (&s)[N]) {
  for (int i = 0; i < N; ++i)
    for (int n = 0; n < T; ++n) dot[i][n] = _mm512_set1_epi32(off[n][s[i]]);
  for (int k = 0; k < 4; ++k)
    for (int i = 0; i < N; ++i)
      for (int n = 0; n < T; ++n) dot[i][n] = dpbusd_x(dot[i][n], u[i][k], xrow[n][b].qs + 16 * s[i] + 4 * k);
}

// isum += lo * scale_lo + hi * scale_hi per lane, lo and hi each a sub-block's dot scaled by
// 2^lo_shift, 2^hi_shift: lo's low half and hi's low half (moved up) make one int16 pair.
template <int T, int kLoShift, int kHiShift>
inline void add_pair(__m512i (&isum)[T], const __m512i (&lo)[T], const __m512i (&hi)[T], __m512i scales) {
  for (int n = 0; n < T; ++n) {
    const __m512i l = kLoShift ? _mm512_srai_epi32(lo[n], kLoShift) : lo[n];
    const __m512i pair = _mm512_mask_blend_epi16(__mmask32(0xAAAAAAAAu), l, _mm512_slli_epi32(hi[n], 16 - kHiShift));
    isum[n] = _mm512_dpwssd_epi32(isum[n], pair, scales);
  }
}

// Tokens k0..k0+T-1 against one whole group (rows row0..row0+15).
template <int T>
void group_tokens(const q3_kx16::Column* columns, int64_t nb, const DotTile& t, int k0, int64_t row0, const Q3KOffsets& offsets) {
  const __m512i m7 = _mm512_set1_epi8(7), m38 = _mm512_set1_epi8(0x38), mC0 = _mm512_set1_epi8(char(0xC0)),
                mE0 = _mm512_set1_epi8(char(0xE0)), mF000 = _mm512_set1_epi16(short(0xF000));
  const BlockQ8_K* xrow[T];
  for (int n = 0; n < T; ++n) xrow[n] = reinterpret_cast<const BlockQ8_K*>(t.act + (k0 + n) * t.act_stride);
  __m512 acc[T];
  for (int n = 0; n < T; ++n) acc[n] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const q3_kx16::Column& c = columns[b];
    for (int o = 0; o < int(sizeof(c)); o += 64) _mm_prefetch(reinterpret_cast<const char*>(&c) + kPrefetchBytes + o, _MM_HINT_T0);
    const int32_t* off[T];
    for (int n = 0; n < T; ++n) off[n] = offsets.at(k0 + n, nb, b);
    // The 8 scale pairs as int16 (low, high) per lane (packed_q3_kx16.h).
    const __m512i w0 = _mm512_loadu_si512(c.scales[0]), w1 = _mm512_loadu_si512(c.scales[1]), w2 = _mm512_loadu_si512(c.scales[2]);
    const __m512i scales[8] = {
        _mm512_srai_epi16(w0, 10), _mm512_srai_epi16(_mm512_slli_epi16(w0, 6), 10),
        _mm512_srai_epi16(w1, 10), _mm512_srai_epi16(_mm512_slli_epi16(w1, 6), 10),
        _mm512_srai_epi16(w2, 10), _mm512_srai_epi16(_mm512_slli_epi16(w2, 6), 10),
        _mm512_srai_epi16(_mm512_ternarylogic_epi32(_mm512_slli_epi16(w0, 12), _mm512_slli_epi16(w2, 10), mF000, 0xE4), 10),
        _mm512_srai_epi16(_mm512_ternarylogic_epi32(_mm512_slli_epi16(w1, 12), _mm512_slli_epi16(w2, 8), mF000, 0xE4), 10)};
    __m512i isum[T];
    for (int n = 0; n < T; ++n) isum[n] = _mm512_setzero_si512();
    // Vectors 4a..4a+3 hold sub-blocks a (q, at bits 0..2) and 6 + a (8q, at bits 3..5), and
    // for a < 4 the top bits of C sub-block 12 + a (32q): C unit cu's bits 6..7 are in vector
    // cu, its low bit (bit 6 + cu % 2 of vector 16 + cu / 2) is shifted to bit 5.
    __m512i dc_even[T];
#pragma GCC unroll 6
    for (int a = 0; a < 6; ++a) {
      __m512i v[4], ua[4], ub[4];
      for (int k = 0; k < 4; ++k) {
        v[k] = _mm512_loadu_si512(c.q[4 * a + k]);
        ua[k] = _mm512_and_si512(v[k], m7);
        ub[k] = _mm512_and_si512(v[k], m38);
      }
      if (a < 4) {
        const __m512i h0 = _mm512_loadu_si512(c.q[16 + 2 * a]), h1 = _mm512_loadu_si512(c.q[17 + 2 * a]);
        const __m512i u[3][4] = {
            {ua[0], ua[1], ua[2], ua[3]},
            {ub[0], ub[1], ub[2], ub[3]},
            {_mm512_and_si512(_mm512_ternarylogic_epi32(v[0], _mm512_srli_epi16(h0, 1), mC0, 0xE4), mE0),
             _mm512_and_si512(_mm512_ternarylogic_epi32(v[1], _mm512_srli_epi16(h0, 2), mC0, 0xE4), mE0),
             _mm512_and_si512(_mm512_ternarylogic_epi32(v[2], _mm512_srli_epi16(h1, 1), mC0, 0xE4), mE0),
             _mm512_and_si512(_mm512_ternarylogic_epi32(v[3], _mm512_srli_epi16(h1, 2), mC0, 0xE4), mE0)}};
        __m512i d[3][T];
        sub_blocks<3, T>(d, u, xrow, off, b, {a, 6 + a, 12 + a});
        add_pair<T, 0, 3>(isum, d[0], d[1], scales[a]);
        if (a % 2 == 0) {
          for (int n = 0; n < T; ++n) dc_even[n] = d[2][n];
        } else {
          add_pair<T, 5, 5>(isum, dc_even, d[2], scales[6 + a / 2]);
        }
      } else {
        const __m512i u[2][4] = {{ua[0], ua[1], ua[2], ua[3]}, {ub[0], ub[1], ub[2], ub[3]}};
        __m512i d[2][T];
        sub_blocks<2, T>(d, u, xrow, off, b, {a, 6 + a});
        add_pair<T, 0, 3>(isum, d[0], d[1], scales[a]);
      }
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
        thread_local Q3KOffsets offsets;
        offsets.build(t, nb);
        // A plain reference for the loop: it must not look up the thread_local again.
        const Q3KOffsets& o = offsets;
        x16::token_tiles<4>(g0, g1, t.n_tokens, [&](auto tokens, int64_t g, int k0) {
          group_tokens<decltype(tokens)::value>(q3_kx16::group(t.packed, t.row_bytes, g), nb, t, k0, g * q3_kx16::kRows, o);
        });
      },
      [&](int64_t r) { row_in_order(t, r, nb); });
}

}  // namespace tessera::cpu::avx512vnni
