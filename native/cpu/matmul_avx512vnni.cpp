// Q8_0 x Q8_0 dot products, and Q4_0x8 (repacked Q4_0) x Q8_0 for several tokens, on 512-bit
// AVX-512 VNNI (compiled with -mavx512{f,bw,dq,vl,vnni}; only called when the CPU and OS have
// them and the active ISA is CpuIsa::Avx512Vnni). The Q4_0x8 tiles are at the end.
//
// Why: with several tokens per weight row (the batched decode of many sequences, prefill)
// the AVX2 tile is bound by instruction throughput, not memory: per 32-value block and
// token it spends sign, maddubs, madd, convert and multiply-add on 256-bit vectors. Here
// one 512-bit vpdpbusd does the integer dot of two blocks, so a block pair costs a load,
// the dot, a convert, the scale product and a multiply-add per token. Measured on the dev
// machine's Zen 4 (L1-resident, 8 tokens): 3.8 ns per block against the AVX2 tile's 7.5.
//
// vpdpbusd multiplies unsigned by signed bytes, so one operand is biased by +128 and the
// dot starts from -128 times the sums of the other's 4-value groups (exact in int32):
//   - token tiles store the activations as x ^ 0x80 (= x + 128) and start each block
//     pair from -128 * (weight group sums), computed once for all tokens of the tile;
//   - the one-token matvec biases the weights (w ^ 0x80) and starts from -128 * (the
//     activation's group sums), computed once per block pair for all rows in flight.
// Either way lane l of the int32 result is the exact dot of values 4l..4l+3 of its block.
//
// Lanes 0..7 accumulate the even blocks of a row, lanes 8..15 the odd ones; the result is
// hsum8(low half + high half). The batched tiles and the matvec keep this one order, so a
// token gives the same bits alone and in any batch (concurrent sequences then decode
// exactly as they do solo). It is not the AVX2 kernel's order (one 8-lane accumulator over
// all blocks): the two ISAs agree to fp32 rounding, checked against float64 in test/kernels.
// GCC 12's own 512-bit intrinsics (their _mm512_undefined_* operands) trip this warning.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "cpu/dot_kernels.h"
#include "cpu/hsum_avx2.h"
#include "cpu/packed_q4_0x8.h"
#include "cpu/side_by_side.h"

namespace tessera::cpu::avx512vnni {

namespace {

inline float half(uint16_t h) { return _cvtsh_ss(h); }

// Blocks b and b + 1 of a Q8_0 row as one vector (the second half zero past the row's end:
// its dot is then 0 and adds +0 to the odd lanes, in the tiles and the matvec alike).
inline __m512i block_pair(const BlockQ8_0* row, int64_t b, int64_t nb) {
  const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row[b].qs));
  const __m256i hi = b + 1 < nb ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row[b + 1].qs)) : _mm256_setzero_si256();
  return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

// The two block scales in lanes 0..7 and 8..15 (0 past the row's end).
inline __m512 scale_pair(const BlockQ8_0* row, int64_t b, int64_t nb) {
  const float hi = b + 1 < nb ? half(row[b + 1].d) : 0.f;
  return _mm512_insertf32x8(_mm512_set1_ps(half(row[b].d)), _mm256_set1_ps(hi), 1);
}

// 16 lanes of -128 * (sum of 4 consecutive int8 values of v).
inline __m512i minus_128_group_sums(__m512i v) {
  const __m512i sums = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8(char(0x80)), v);
  return _mm512_sub_epi32(_mm512_setzero_si512(), sums);
}

inline float reduce(__m512 acc) {
  return avx2::hsum8(_mm256_add_ps(_mm512_castps512_ps256(acc), _mm512_extractf32x8_ps(acc, 1)));
}

// The activations of every 8-token tile, rearranged once per thread and matmul_shared call
// (DotTile::act_key), as the AVX2 kernel's Q8_0Tiles: tile i (tokens 8i..8i+n-1) holds
// [pairs][n] block-pair scales (16 floats: the even block's scale in lanes 0..7, the odd
// one's in 8..15) and [pairs][n] block-pair quants (64 bytes, biased by +128).
struct Tiles {
  std::vector<float> dx;
  std::vector<uint8_t> xq;

  void build(const DotTile& t, int64_t nb) {
    if (built_from_.reuse(t)) return;
    const int64_t pairs = (nb + 1) / 2;
    const size_t per_tile = size_t(pairs) * 8;  // token-pairs slots per tile
    const size_t n_tiles = (size_t(t.n_tokens) + 7) / 8;
    dx.assign(n_tiles * per_tile * 16, 0.f);
    xq.assign(n_tiles * per_tile * 64, 0x80);  // a missing odd block: zero quants, biased
    for (int k0 = 0; k0 < t.n_tokens; k0 += 8) {
      const int n_in_tile = std::min(8, t.n_tokens - k0);
      float* d = dx.data() + size_t(k0 / 8) * per_tile * 16;
      uint8_t* q = xq.data() + size_t(k0 / 8) * per_tile * 64;
      for (int n = 0; n < n_in_tile; ++n) {
        const BlockQ8_0* xrow = reinterpret_cast<const BlockQ8_0*>(t.act + (k0 + n) * t.act_stride);
        for (int64_t b = 0; b < nb; ++b) {
          const size_t slot = size_t(b / 2) * n_in_tile + n;
          std::fill_n(d + slot * 16 + (b % 2) * 8, 8, half(xrow[b].d));
          uint8_t* dst = q + slot * 64 + (b % 2) * 32;
          for (int i = 0; i < 32; ++i) dst[i] = uint8_t(xrow[b].qs[i]) ^ 0x80;
        }
      }
    }
  }
  const float* scales(int k0, int64_t nb) const { return dx.data() + size_t(k0 / 8) * size_t((nb + 1) / 2) * 8 * 16; }
  const uint8_t* quants(int k0, int64_t nb) const { return xq.data() + size_t(k0 / 8) * size_t((nb + 1) / 2) * 8 * 64; }

 private:
  ActMemo built_from_;
};

template <int N>
void rows(const DotTile& t, int64_t r0, int64_t r1, int k0, const float* dx, const uint8_t* xq) {
  const int64_t nb = t.cols / QK8_0;
  for (int64_t r = r0; r < r1; ++r) {
    const BlockQ8_0* wrow = reinterpret_cast<const BlockQ8_0*>(t.w + r * t.row_bytes);
    __m512 acc[N];
    for (int n = 0; n < N; ++n) acc[n] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b += 2) {
      _mm_prefetch(reinterpret_cast<const char*>(wrow + b) + 1024, _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(wrow + b) + 1024 + 64, _MM_HINT_T0);
      const __m512i wq = block_pair(wrow, b, nb);
      const __m512i start = minus_128_group_sums(wq);
      const __m512 dw = scale_pair(wrow, b, nb);
      const float* d = dx + (b / 2) * N * 16;
      const uint8_t* x = xq + (b / 2) * N * 64;
      for (int n = 0; n < N; ++n) {
        const __m512i dot = _mm512_dpbusd_epi32(start, _mm512_loadu_si512(x + n * 64), wq);
        acc[n] = _mm512_fmadd_ps(_mm512_mul_ps(dw, _mm512_loadu_ps(d + n * 16)), _mm512_cvtepi32_ps(dot), acc[n]);
      }
    }
    for (int n = 0; n < N; ++n) t.y[(k0 + n) * t.ldy + r] = reduce(acc[n]);
  }
}

void rows_n(const DotTile& t, int64_t r0, int64_t r1, int k0, int n, const Tiles& tiles) {
  const int64_t nb = t.cols / QK8_0;
  const float* dx = tiles.scales(k0, nb);
  const uint8_t* xq = tiles.quants(k0, nb);
  switch (n) {
    case 1: rows<1>(t, r0, r1, k0, dx, xq); break;
    case 2: rows<2>(t, r0, r1, k0, dx, xq); break;
    case 3: rows<3>(t, r0, r1, k0, dx, xq); break;
    case 4: rows<4>(t, r0, r1, k0, dx, xq); break;
    case 5: rows<5>(t, r0, r1, k0, dx, xq); break;
    case 6: rows<6>(t, r0, r1, k0, dx, xq); break;
    case 7: rows<7>(t, r0, r1, k0, dx, xq); break;
    default: rows<8>(t, r0, r1, k0, dx, xq); break;
  }
}

// One token, activations read in place; R rows side by side (side_by_side.h) so that
// enough DRAM reads are in flight and the multiply-add chains overlap.
template <int R>
void matvec_rows(const DotTile& t, const int64_t (&row)[R], int64_t nb) {
  const BlockQ8_0* x = reinterpret_cast<const BlockQ8_0*>(t.act);
  const BlockQ8_0* w[R];
  __m512 acc[R];
  for (int i = 0; i < R; ++i) {
    w[i] = reinterpret_cast<const BlockQ8_0*>(t.w + row[i] * t.row_bytes);
    acc[i] = _mm512_setzero_ps();
  }
  const __m512i bias = _mm512_set1_epi8(char(0x80));
  for (int64_t b = 0; b < nb; b += 2) {
    const __m512i xq = block_pair(x, b, nb);
    const __m512i start = minus_128_group_sums(xq);
    const __m512 dx = scale_pair(x, b, nb);
    for (int i = 0; i < R; ++i) {
      _mm_prefetch(reinterpret_cast<const char*>(w[i] + b) + 1024, _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(w[i] + b) + 1024 + 64, _MM_HINT_T0);
      // A missing odd weight block loads as 0 and biases to 0x80 ... times x = 0 there.
      const __m512i wq = _mm512_xor_si512(block_pair(w[i], b, nb), bias);
      const __m512i dot = _mm512_dpbusd_epi32(start, wq, xq);
      acc[i] = _mm512_fmadd_ps(_mm512_mul_ps(scale_pair(w[i], b, nb), dx), _mm512_cvtepi32_ps(dot), acc[i]);
    }
  }
  for (int i = 0; i < R; ++i) t.y[row[i]] = reduce(acc[i]);
}

// ---- Q4_0x8 (packed_q4_0x8.h) x Q8_0, two tokens per 512-bit vector ----
//
// The AVX2 kernel (matmul_q4_0x8_avx2.cpp) multiplies a group's 8 rows by one token with
// 8 maddubs of the unsigned nibbles and 4-byte activation broadcasts, 7 int16 adds and a
// madd per block. Here lanes 0..7 hold the group's 8 rows for token n and lanes 8..15 the
// same rows for token n + 1: each nibble vector is loaded into both halves, the two
// tokens' activation blocks sit side by side in one vector, and dword j of each is spread
// over its half by one permute; vpdpbusd accumulates the 8 products straight into int32,
// starting from -8 * (the activation block's sum) (the nibbles' offset). The integer sums
// are exact and each lane's fp32 steps are the AVX2 kernel's (one multiply of the scales,
// one multiply-add per block, blocks in order), so the outputs are bit-identical to it,
// to its decode kernel (which one-token calls still use) and to llama.cpp's repacked
// Q4_0 order. Measured on the dev machine (L1-resident, 8 rows x 4 tokens): 14.0 ns per
// block against 19.0 for AVX2.

// Per pair of tokens (2p, 2p + 1) and block: both activation blocks (64 bytes), the start
// of each dot (16 int32: -8 * block sum, 8 lanes per token) and the scales (16 floats).
struct Q4Pairs {
  std::vector<int8_t> xq;     // [pairs][nb][64]
  std::vector<int32_t> start;  // [pairs][nb][16]
  std::vector<float> dx;       // [pairs][nb][16]

  void build(const DotTile& t, int64_t nb) {
    if (built_from_.reuse(t)) return;
    const int64_t pairs = (t.n_tokens + 1) / 2;
    xq.assign(size_t(pairs * nb) * 64, 0);  // a missing odd token: zero activations, scale 0
    start.assign(size_t(pairs * nb) * 16, 0);
    dx.assign(size_t(pairs * nb) * 16, 0.f);
    for (int k = 0; k < t.n_tokens; ++k) {
      const BlockQ8_0* xb = reinterpret_cast<const BlockQ8_0*>(t.act + k * t.act_stride);
      const int64_t p = k / 2, half_lane = (k % 2) * 8;
      for (int64_t b = 0; b < nb; ++b) {
        const size_t slot = size_t(p * nb + b);
        std::memcpy(xq.data() + slot * 64 + (k % 2) * 32, xb[b].qs, 32);
        int32_t sum = 0;
        for (int i = 0; i < 32; ++i) sum += xb[b].qs[i];
        std::fill_n(start.data() + slot * 16 + half_lane, 8, -8 * sum);
        std::fill_n(dx.data() + slot * 16 + half_lane, 8, half(xb[b].d));
      }
    }
  }

 private:
  ActMemo built_from_;
};

// acc[p] lanes: rows of the group x tokens k0 + 2p (0..7) and k0 + 2p + 1 (8..15).
template <int P>
void q4_group(const q4_0x8::Group& g, int64_t nb, int64_t pair0, const Q4Pairs& xs, __m512 (&acc)[P]) {
  const __m512i m4 = _mm512_set1_epi8(0xF);
  __m512i spread[8];  // dword j of each half over that half
  for (int j = 0; j < 8; ++j) spread[j] = _mm512_setr_epi32(j, j, j, j, j, j, j, j, 8 + j, 8 + j, 8 + j, 8 + j, 8 + j, 8 + j, 8 + j, 8 + j);
  for (int p = 0; p < P; ++p) acc[p] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* q = g.quants + b * q4_0x8::kQuantBytes;
    for (int o = 0; o < int(q4_0x8::kQuantBytes); o += 64) _mm_prefetch(reinterpret_cast<const char*>(q) + 1024 + o, _MM_HINT_T0);
    __m512i v[8];
    for (int k = 0; k < 4; ++k) {
      const __m512i packed = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + 32 * k)));
      v[k] = _mm512_and_si512(packed, m4);
      v[k + 4] = _mm512_and_si512(_mm512_srli_epi16(packed, 4), m4);
    }
    const __m256 dw8 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(g.scales + b * q4_0x8::kRows)));
    const __m512 dw = _mm512_insertf32x8(_mm512_castps256_ps512(dw8), dw8, 1);
    for (int p = 0; p < P; ++p) {
      const size_t slot = size_t((pair0 + p) * nb + b);
      const __m512i x = _mm512_loadu_si512(xs.xq.data() + slot * 64);
      __m512i dot = _mm512_loadu_si512(xs.start.data() + slot * 16);
      for (int j = 0; j < 8; ++j) dot = _mm512_dpbusd_epi32(dot, v[j], _mm512_permutexvar_epi32(spread[j], x));
      acc[p] = _mm512_fmadd_ps(_mm512_mul_ps(dw, _mm512_loadu_ps(xs.dx.data() + slot * 16)), _mm512_cvtepi32_ps(dot), acc[p]);
    }
  }
}

template <int P>
void q4_group_tile(const q4_0x8::Group& g, int64_t nb, const DotTile& t, int k0, const Q4Pairs& xs, int64_t row0) {
  __m512 acc[P];
  q4_group<P>(g, nb, k0 / 2, xs, acc);
  for (int p = 0; p < P; ++p) {
    const int k = k0 + 2 * p;
    _mm256_storeu_ps(t.y + k * t.ldy + row0, _mm512_castps512_ps256(acc[p]));
    if (k + 1 < t.n_tokens) _mm256_storeu_ps(t.y + (k + 1) * t.ldy + row0, _mm512_extractf32x8_ps(acc[p], 1));
  }
}

// Whole groups [g0, g1) for t.n_tokens >= 2: tokens in tiles of up to 4 pairs.
void q4_0x8_groups(const DotTile& t, int64_t g0, int64_t g1) {
  const int64_t nb = t.cols / QK4_0;
  thread_local Q4Pairs xs;
  xs.build(t, nb);
  const int pairs = (t.n_tokens + 1) / 2;
  for (int64_t g = g0; g < g1; ++g) {
    const int64_t row0 = g * q4_0x8::kRows;
    const q4_0x8::Group grp = q4_0x8::group(t.packed, t.row_bytes, nb, g);
    int p = 0;
    for (; p + 4 <= pairs; p += 4) q4_group_tile<4>(grp, nb, t, 2 * p, xs, row0);
    switch (pairs - p) {
      case 3: q4_group_tile<3>(grp, nb, t, 2 * p, xs, row0); break;
      case 2: q4_group_tile<2>(grp, nb, t, 2 * p, xs, row0); break;
      case 1: q4_group_tile<1>(grp, nb, t, 2 * p, xs, row0); break;
      default: break;
    }
  }
}

}  // namespace

bool matmul_tile(GgmlType type, WeightLayout layout, const DotTile& t, int64_t r0, int64_t r1) {
  if (layout == WeightLayout::Q8_0x16 && t.packed) {
    matmul_q8_0x16(t, r0, r1);
    return true;
  }
  if (layout == WeightLayout::Q4_Kx16 && t.packed) {
    matmul_q4_kx16(t, r0, r1);
    return true;
  }
  if (layout == WeightLayout::Q5_Kx16 && t.packed) {
    matmul_q5_kx16(t, r0, r1);
    return true;
  }
  if (layout == WeightLayout::Q3_Kx16 && t.packed) {
    matmul_q3_kx16(t, r0, r1);
    return true;
  }
  if (layout == WeightLayout::Q6_Kx16 && t.packed) {
    matmul_q6_kx16(t, r0, r1);
    return true;
  }
  if (type == GgmlType::Q4_0 && layout == WeightLayout::Q4_0x8 && t.packed && t.n_tokens >= 2) {
    const int64_t g0 = (r0 + 7) / 8, g1 = r1 / 8;
    if (g0 >= g1) return false;
    q4_0x8_groups(t, g0, g1);
    // Rows around the whole groups: the GGUF rows, as the AVX2 kernel takes them.
    if (r0 < g0 * 8) avx2::matmul_tile(type, WeightLayout::Gguf, t, r0, g0 * 8);
    if (g1 * 8 < r1) avx2::matmul_tile(type, WeightLayout::Gguf, t, g1 * 8, r1);
    return true;
  }
  if (type != GgmlType::Q8_0 || layout != WeightLayout::Gguf) return false;
  const int64_t nb = t.cols / QK8_0;
  if (t.n_tokens == 1) {
    r0 = side_by_side<kSideBySideStreams>(r0, r1, [&](const int64_t (&rs)[kSideBySideStreams]) { matvec_rows(t, rs, nb); });
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t rs[1] = {r};
      matvec_rows(t, rs, nb);
    }
    return true;
  }
  thread_local Tiles tiles;
  tiles.build(t, nb);
  // Rows in L2-sized chunks, each visited by every token tile.
  const int64_t chunk = l2_chunk_rows(t.row_bytes);
  for (int64_t c0 = r0; c0 < r1; c0 += chunk) {
    const int64_t c1 = std::min(r1, c0 + chunk);
    for (int k0 = 0; k0 < t.n_tokens; k0 += 8) rows_n(t, c0, c1, k0, std::min(8, t.n_tokens - k0), tiles);
  }
  return true;
}

}  // namespace tessera::cpu::avx512vnni
