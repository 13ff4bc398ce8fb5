// What the 16-row AVX-512 VNNI kernels (matmul_*x16_avx512vnni.cpp) share: lane r of every
// vector is row r of a 16-row group of a repacked weight (packed_*x16.h). Included only by
// those files, which are compiled for AVX-512.
#pragma once
#include <immintrin.h>

#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "cpu/dot_kernels.h"

namespace tessera::cpu::avx512vnni::x16 {

inline float half(uint16_t h) { return _cvtsh_ss(h); }

// acc + the 16 lanes' unsigned bytes times the 4 signed activation bytes at x, broadcast.
inline __m512i dpbusd_x(__m512i acc, __m512i w, const int8_t* x) {
  int32_t v;
  std::memcpy(&v, x, 4);
  return _mm512_dpbusd_epi32(acc, w, _mm512_set1_epi32(v));
}

// Byte i (0..3) of each 32-bit lane, as int32.
inline __m512i lane_byte(__m512i v, int i) { return _mm512_and_si512(_mm512_srli_epi32(v, 8 * i), _mm512_set1_epi32(0xFF)); }

// The 8 sub-block sums of every token's Q8_K activation super-blocks, S_i = bsums[2i] +
// bsums[2i+1] (the minimum terms of Q4_K and Q5_K), built once per thread and activations.
struct Q8KSubSums {
  std::vector<int32_t> s;  // [n_tokens][nb][8]
  // The same sums as int16 pairs for vpdpwssd against the mins' even and odd bytes:
  // (S0, S2), (S1, S3), (S4, S6), (S5, S7), low half first (|S_i| <= 32 * 128 fits).
  std::vector<int32_t> pairs;  // [n_tokens][nb][4]

  void build(const DotTile& t, int64_t nb) {
    if (built_from_.reuse(t)) return;
    s.resize(size_t(t.n_tokens) * nb * 8);
    pairs.resize(size_t(t.n_tokens) * nb * 4);
    for (int k = 0; k < t.n_tokens; ++k) {
      const BlockQ8_K* x = reinterpret_cast<const BlockQ8_K*>(t.act + k * t.act_stride);
      for (int64_t b = 0; b < nb; ++b) {
        int32_t* S = &s[(size_t(k) * nb + b) * 8];
        for (int i = 0; i < 8; ++i) S[i] = int32_t(x[b].bsums[2 * i]) + x[b].bsums[2 * i + 1];
        for (int p = 0; p < 4; ++p) {
          const int lo = 4 * (p / 2) + p % 2;
          pairs[(size_t(k) * nb + b) * 4 + p] = int32_t(uint32_t(uint16_t(S[lo])) | uint32_t(uint16_t(S[lo + 2])) << 16);
        }
      }
    }
  }

  const int32_t* at(int k, int64_t nb, int64_t b) const { return s.data() + (size_t(k) * nb + b) * 8; }
  const int32_t* pairs_at(int k, int64_t nb, int64_t b) const { return pairs.data() + (size_t(k) * nb + b) * 4; }

 private:
  ActMemo built_from_;
};

// Q4_K and Q5_K: the 8 mins of each row (bytes 0..3 of mn[0], then of mn[1], 6-bit) as the
// int16 pairs Q8KSubSums::pairs matches: bytes 0 and 2, then 1 and 3, of each word.
inline void min_pairs(const __m512i (&mn)[2], __m512i (&out)[4]) {
  const __m512i even = _mm512_set1_epi32(0x00FF00FF);
  for (int w = 0; w < 2; ++w) {
    out[2 * w] = _mm512_and_si512(mn[w], even);
    out[2 * w + 1] = _mm512_srli_epi16(mn[w], 8);
  }
}

// acc + sum_i min_i * S_i per row: four vpdpwssd of the mins' pairs (min_pairs) by one token's
// pairs of activation sums (Q8KSubSums::pairs_at), the same integer as eight multiply-adds.
inline __m512i min_term(__m512i acc, const __m512i (&mn16)[4], const int32_t* pairs) {
  for (int p = 0; p < 4; ++p) acc = _mm512_dpwssd_epi32(acc, mn16[p], _mm512_set1_epi32(pairs[p]));
  return acc;
}

// Every token's 16 sub-block offsets per super-block, kMultiplier(s) * bsums[s] (where the
// dot of a 16-value sub-block of unsigned stored values starts, so that it ends as the dot of
// the signed values), built once per thread and activations: read with one broadcast load,
// where computing it per sub-block took a sign extension, a shift, a negation and a broadcast
// from a general register.
template <int (*kMultiplier)(int s)>
struct Q8KOffsets {
  std::vector<int32_t> v;  // [n_tokens][nb][16]

  void build(const DotTile& t, int64_t nb) {
    if (built_from_.reuse(t)) return;
    v.resize(size_t(t.n_tokens) * nb * 16);
    for (int k = 0; k < t.n_tokens; ++k) {
      const BlockQ8_K* x = reinterpret_cast<const BlockQ8_K*>(t.act + k * t.act_stride);
      for (int64_t b = 0; b < nb; ++b)
        for (int s = 0; s < 16; ++s) v[(size_t(k) * nb + b) * 16 + s] = kMultiplier(s) * int32_t(x[b].bsums[s]);
    }
  }

  const int32_t* at(int k, int64_t nb, int64_t b) const { return v.data() + (size_t(k) * nb + b) * 16; }

 private:
  ActMemo built_from_;
};

// The super-block's one fp32 step per token (Q3_K, Q6_K): acc[n] += isum[n] * (d * dx).
template <int T>
inline void scale_super_block(__m512 (&acc)[T], const __m512i (&isum)[T], const uint16_t* d, const BlockQ8_K* const (&xrow)[T], int64_t b) {
  const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(d)));
  for (int n = 0; n < T; ++n) acc[n] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isum[n]), _mm512_mul_ps(dw, _mm512_set1_ps(xrow[n][b].d)), acc[n]);
}

// Groups [g0, g1) against every token in tiles of kTokens, then one tile of the rest:
// tile(std::integral_constant<int, T>, g, k0) runs tokens k0..k0+T-1 against group g.
template <int kTokens, typename Tile>
inline void token_tiles(int64_t g0, int64_t g1, int n_tokens, Tile&& tile) {
  static_assert(kTokens == 4, "the remainder tiles below are 3, 2 and 1 tokens");
  for (int64_t g = g0; g < g1; ++g) {
    int k0 = 0;
    for (; k0 + kTokens <= n_tokens; k0 += kTokens) tile(std::integral_constant<int, kTokens>{}, g, k0);
    switch (n_tokens - k0) {
      case 3: tile(std::integral_constant<int, 3>{}, g, k0); break;
      case 2: tile(std::integral_constant<int, 2>{}, g, k0); break;
      case 1: tile(std::integral_constant<int, 1>{}, g, k0); break;
      default: break;
    }
  }
}

// Rows [r0, r1) of a 16-row layout: groups(g0, g1) for the whole groups inside, row(r) for
// each row around them (or for all of them when no whole group is inside). The kernels'
// row(r) takes a group lane's steps one row at a time, so the split does not change a bit.
template <int kRows, typename Groups, typename Row>
inline void groups_and_rows(int64_t r0, int64_t r1, Groups&& groups, Row&& row) {
  const int64_t g0 = (r0 + kRows - 1) / kRows, g1 = r1 / kRows;
  if (g0 >= g1) {
    for (int64_t r = r0; r < r1; ++r) row(r);
    return;
  }
  for (int64_t r = r0; r < g0 * kRows; ++r) row(r);
  groups(g0, g1);
  for (int64_t r = g1 * kRows; r < r1; ++r) row(r);
}

}  // namespace tessera::cpu::avx512vnni::x16
