// Q8_0x16 (repacked Q8_0, packed_q8_0x16.h) x Q8_0 activations on AVX-512 VNNI, for one
// token (decode) and many (a draft verification, batched decode of many sequences, prefill).
//
// Lane r of every vector is row r of a 16-row group. Per block column and token: 8 vpdpbusd
// of the group's 8 quant vectors with 4 activation bytes broadcast from memory (a load, no
// shuffle), starting from -128 * (the activation block's sum), give the 16 exact int32 block
// dots; then one convert, one product of the scales and one multiply-add for all 16 rows.
// The group's quants stay in 8 registers while up to 8 tokens use them. A token's fp32
// steps are the same in every batch and for every row split, so its bits are too: rows
// outside whole groups take the same steps one row at a time (row_in_order).
// Measured on the dev machine's Zen 4 (2 threads, 8192x2048): see bench "matmul m=8 Q8_0".
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "cpu/packed_q8_0x16.h"
#include "cpu/x16_common.h"
#include "cpu/side_by_side.h"

namespace tessera::cpu::avx512vnni {

namespace {

using x16::half;

// Per token and block: the start of each block dot (-128 * the sum of the activation's 32
// quants, the bias of the weights' unsigned storage) and the block scale as fp32.
struct Q8Sums {
  std::vector<int32_t> start;  // [n_tokens][nb]
  std::vector<float> dx;       // [n_tokens][nb]

  void build(const DotTile& t, int64_t nb) {
    if (built_from_.reuse(t)) return;
    start.resize(size_t(t.n_tokens) * nb);
    dx.resize(size_t(t.n_tokens) * nb);
    const __m256i ones = _mm256_set1_epi8(1);
    for (int k = 0; k < t.n_tokens; ++k) {
      const BlockQ8_0* x = reinterpret_cast<const BlockQ8_0*>(t.act + k * t.act_stride);
      for (int64_t b = 0; b < nb; ++b) {
        // sum of 32 signed bytes: dpbusd of ones (unsigned) by the quants (signed), exact.
        const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[b].qs));
        const __m256i s8 = _mm256_dpbusd_epi32(_mm256_setzero_si256(), ones, q);
        const __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s8), _mm256_extracti128_si256(s8, 1));
        const __m128i s2 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4E));
        const int32_t sum = _mm_cvtsi128_si32(_mm_add_epi32(s2, _mm_shuffle_epi32(s2, 0xB1)));
        start[size_t(k) * nb + b] = -128 * sum;
        dx[size_t(k) * nb + b] = half(x[b].d);
      }
    }
  }

 private:
  ActMemo built_from_;
};

// Tokens k0..k0+T-1 against one whole group; y rows row0..row0+15.
template <int T>
void group_tokens(const q8_0x16::Group& g, int64_t nb, const DotTile& t, int k0, const Q8Sums& s, int64_t row0) {
  __m512 acc[T];
  for (int n = 0; n < T; ++n) acc[n] = _mm512_setzero_ps();
  const BlockQ8_0* x[T];
  for (int n = 0; n < T; ++n) x[n] = reinterpret_cast<const BlockQ8_0*>(t.act + (k0 + n) * t.act_stride);
  const int32_t* start = s.start.data() + size_t(k0) * nb;
  const float* dx = s.dx.data() + size_t(k0) * nb;
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* q = g.quants(b);
    // The group's stream, a few blocks ahead (one token: DRAM latency; more: L2).
    for (int o = 0; o < int(q8_0x16::kQuantBytes); o += 64) _mm_prefetch(reinterpret_cast<const char*>(q) + 2048 + o, _MM_HINT_T0);
    __m512i w[8];
    for (int j = 0; j < 8; ++j) w[j] = _mm512_loadu_si512(q + 64 * j);
    const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(g.scales(b))));
    // Unrolled so the T accumulators stay in registers (rolled, gcc kept them on the stack and
    // ran a store-forwarded multiply-add per token and block: 8 tokens ~10% slower).
#pragma GCC unroll 8
    for (int n = 0; n < T; ++n) {
      const int8_t* xq = x[n][b].qs;
      __m512i dot = _mm512_set1_epi32(start[n * nb + b]);
#pragma GCC unroll 8
      for (int j = 0; j < 8; ++j) dot = _mm512_dpbusd_epi32(dot, w[j], _mm512_broadcastd_epi32(_mm_loadu_si32(xq + 4 * j)));
      acc[n] = _mm512_fmadd_ps(_mm512_mul_ps(dw, _mm512_set1_ps(dx[n * nb + b])), _mm512_cvtepi32_ps(dot), acc[n]);
    }
  }
  for (int n = 0; n < T; ++n) _mm512_storeu_ps(t.y + (k0 + n) * t.ldy + row0, acc[n]);
}

// One token, S groups side by side (side_by_side.h): one stream of a single group per
// thread left DRAM idle between requests when other processes ran, the matvec then 25%
// slower than the GGUF kernel's four streams. Each lane's steps are group_tokens<1>'s.
template <int S>
void groups_one_token(const q8_0x16::Group (&g)[S], int64_t nb, const DotTile& t, const Q8Sums& s, const int64_t (&row0)[S]) {
  __m512 acc[S];
  for (int i = 0; i < S; ++i) acc[i] = _mm512_setzero_ps();
  const BlockQ8_0* x = reinterpret_cast<const BlockQ8_0*>(t.act);
  for (int64_t b = 0; b < nb; ++b) {
    __m512i xb[8];
    for (int j = 0; j < 8; ++j) xb[j] = _mm512_broadcastd_epi32(_mm_loadu_si32(x[b].qs + 4 * j));
    const __m512i start = _mm512_set1_epi32(s.start[b]);
    const __m512 dx = _mm512_set1_ps(s.dx[b]);
    for (int i = 0; i < S; ++i) {
      const uint8_t* q = g[i].quants(b);
      for (int o = 0; o < int(q8_0x16::kQuantBytes); o += 64) _mm_prefetch(reinterpret_cast<const char*>(q) + 1024 + o, _MM_HINT_T0);
      __m512i dot = start;
      for (int j = 0; j < 8; ++j) dot = _mm512_dpbusd_epi32(dot, _mm512_loadu_si512(q + 64 * j), xb[j]);
      const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(g[i].scales(b))));
      acc[i] = _mm512_fmadd_ps(_mm512_mul_ps(dw, dx), _mm512_cvtepi32_ps(dot), acc[i]);
    }
  }
  for (int i = 0; i < S; ++i) _mm512_storeu_ps(t.y + row0[i], acc[i]);
}

template <int S>
void one_token_side_by_side(const DotTile& t, int64_t nb, const Q8Sums& sums, const int64_t (&gs)[S]) {
  q8_0x16::Group grp[S];
  int64_t row0[S];
  for (int i = 0; i < S; ++i) {
    grp[i] = q8_0x16::group(t.packed, t.row_bytes, nb, gs[i]);
    row0[i] = gs[i] * q8_0x16::kRows;
  }
  groups_one_token(grp, nb, t, sums, row0);
}

// Token tiles of at most 8, as even as possible (9 tokens: 5 + 4, not 8 + 1).
void group_all_tokens(const q8_0x16::Group& g, int64_t nb, const DotTile& t, const Q8Sums& s, int64_t row0) {
  const int tiles = (t.n_tokens + 7) / 8;
  int k0 = 0;
  for (int i = 0; i < tiles; ++i) {
    const int n = (t.n_tokens - k0) / (tiles - i);
    switch (n) {
      case 1: group_tokens<1>(g, nb, t, k0, s, row0); break;
      case 2: group_tokens<2>(g, nb, t, k0, s, row0); break;
      case 3: group_tokens<3>(g, nb, t, k0, s, row0); break;
      case 4: group_tokens<4>(g, nb, t, k0, s, row0); break;
      case 5: group_tokens<5>(g, nb, t, k0, s, row0); break;
      case 6: group_tokens<6>(g, nb, t, k0, s, row0); break;
      case 7: group_tokens<7>(g, nb, t, k0, s, row0); break;
      default: group_tokens<8>(g, nb, t, k0, s, row0); break;
    }
    k0 += n;
  }
}

inline int32_t hsum_epi32(__m256i v) {
  const __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  const __m128i s2 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, 0x4E));
  return _mm_cvtsi128_si32(_mm_add_epi32(s2, _mm_shuffle_epi32(s2, 0xB1)));
}

// One GGUF row, every token: a lane of group_tokens, step for step.
void row_in_order(const DotTile& t, int64_t r, int64_t nb, const Q8Sums& s) {
  const BlockQ8_0* w = reinterpret_cast<const BlockQ8_0*>(t.w + r * t.row_bytes);
  const __m256i bias = _mm256_set1_epi8(char(0x80));
  for (int k = 0; k < t.n_tokens; ++k) {
    const BlockQ8_0* x = reinterpret_cast<const BlockQ8_0*>(t.act + k * t.act_stride);
    float acc = 0.f;
    for (int64_t b = 0; b < nb; ++b) {
      const __m256i wq = _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[b].qs)), bias);
      const __m256i xq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[b].qs));
      const int32_t dot = s.start[size_t(k) * nb + b] + hsum_epi32(_mm256_dpbusd_epi32(_mm256_setzero_si256(), wq, xq));
      acc = std::fmaf(half(w[b].d) * s.dx[size_t(k) * nb + b], float(dot), acc);
    }
    t.y[k * t.ldy + r] = acc;
  }
}

}  // namespace

void matmul_q8_0x16(const DotTile& t, int64_t r0, int64_t r1) {
  const int64_t nb = t.cols / QK8_0;
  thread_local Q8Sums sums;
  sums.build(t, nb);
  const int64_t g0 = (r0 + q8_0x16::kRows - 1) / q8_0x16::kRows, g1 = r1 / q8_0x16::kRows;
  if (g0 >= g1) {
    for (int64_t r = r0; r < r1; ++r) row_in_order(t, r, nb, sums);
    return;
  }
  for (int64_t r = r0; r < g0 * q8_0x16::kRows; ++r) row_in_order(t, r, nb, sums);
  int64_t g = g0;
  if (t.n_tokens == 1) {
    // Four streams, then two for what is left (a claim near the end of a matmul is a few
    // groups; one at a time they took 9% of a SmolLM2-135M decode step).
    g = side_by_side<kSideBySideStreams>(g, g1, [&](const int64_t (&gs)[kSideBySideStreams]) { one_token_side_by_side(t, nb, sums, gs); });
    g = side_by_side<2>(g, g1, [&](const int64_t (&gs)[2]) { one_token_side_by_side(t, nb, sums, gs); });
  }
  for (; g < g1; ++g)
    group_all_tokens(q8_0x16::group(t.packed, t.row_bytes, nb, g), nb, t, sums, g * q8_0x16::kRows);
  for (int64_t r = g1 * q8_0x16::kRows; r < r1; ++r) row_in_order(t, r, nb, sums);
}

void pack_q8_0x16_group(const uint8_t* rows, size_t row_bytes, int64_t nb, uint8_t* out) {
  // The group's 16 GGUF rows are contiguous: copied in order into a cached staging buffer
  // first (the file's pages stream from DRAM at copy speed), then dword j of the 16 rows'
  // block b is gathered from there, biased and stored as the group's vector j, whole 64-byte
  // lines in order. (The portable pack_group, 4-byte stores across 16 rows read straight
  // from the mapping, ran at ~0.4 GB/s: a 145 MB Q8_0 model loaded 2x slower.)
  thread_local std::vector<uint8_t> staging;
  const size_t group_bytes = q8_0x16::kRows * row_bytes;
  if (staging.size() < group_bytes) staging.resize(group_bytes);
  std::memcpy(staging.data(), rows, group_bytes);
  const q8_0x16::Group g{out, nb};
  const __m512i offsets = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                             _mm512_set1_epi32(int32_t(row_bytes)));
  const __m512i bias = _mm512_set1_epi8(char(0x80));
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* block = staging.data() + b * sizeof(BlockQ8_0);
    uint16_t scales[q8_0x16::kRows];
    for (int r = 0; r < q8_0x16::kRows; ++r) std::memcpy(&scales[r], block + r * row_bytes, 2);
    std::memcpy(const_cast<uint16_t*>(g.scales(b)), scales, sizeof scales);
    uint8_t* quants = const_cast<uint8_t*>(g.quants(b));
    for (int j = 0; j < QK8_0 / 4; ++j) {
      const __m512i v = _mm512_i32gather_epi32(offsets, block + 2 + 4 * j, 1);
      _mm512_storeu_si512(quants + 64 * j, _mm512_xor_si512(v, bias));
    }
  }
}

}  // namespace tessera::cpu::avx512vnni
