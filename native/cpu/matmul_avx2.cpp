// AVX2 dot-product tiles (compiled with -mavx2 -mfma -mf16c; only called after run-time
// detection). See dot_kernels.h for the tile contract.
//
// Layout: GGUF row-major blocks, read in place. Each weight row is loaded once per tile of
// up to 4 or 8 activation rows (tokens), so decode (one token) streams the weights exactly
// once and prefill reuses every loaded block for the whole tile from registers, and each
// L2-sized chunk of rows for all token tiles.
// Integer blocks (Q8_0/Q4_0 x Q8_0, K-quants x Q8_K) multiply with maddubs: |w| times
// sign(w)*x keeps the unsigned-by-signed product exact in int16, then pairs sum to int32.
// Accumulation is per 8-lane fp32 vector with one horizontal sum per output.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

#include "cpu/dot_kernels.h"
#include "cpu/hsum_avx2.h"
#include "cpu/side_by_side.h"

namespace tessera::cpu::avx2 {

namespace {

// F16C conversion of a block scale (the portable bit-twiddling one is far slower).
inline float half(uint16_t h) { return _cvtsh_ss(h); }

// 8 int32 lane sums of w[i] * x[i] over 32 int8 pairs, given |w| precomputed.
inline __m256i dot_i8(__m256i w, __m256i abs_w, __m256i x) {
  const __m256i p16 = _mm256_maddubs_epi16(abs_w, _mm256_sign_epi8(x, w));
  return _mm256_madd_epi16(p16, _mm256_set1_epi16(1));
}

// The 32 weights of a Q4_0 block as unsigned nibbles 0..15, elements in order; the -8
// offset is applied through the activation block sums instead (saves the sign tricks).
inline __m256i unpack_q4_0(const uint8_t* qs) {
  const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m256i both = _mm256_inserti128_si256(_mm256_castsi128_si256(packed), _mm_srli_epi16(packed, 4), 1);
  return _mm256_and_si256(both, _mm256_set1_epi8(0xF));
}

// Q8_0 x Q8_0, one row x N tokens at a time (N up to 8). Per output: 8 fp32 lanes, lane l accumulating,
// block by block, (dw * dx) * (the exact integer dot of values 4l..4l+3), then one hsum8 —
// the order of llama.cpp's AVX2 vec_dot and tinyBLAS, so both engines round alike.
// The N scale products of a block come from one vector multiply, stored and re-read as
// broadcasts (loads, which leave the vector pipes to the integer dots). The tile's
// activations come token-interleaved (Q8_0Tiles), so the loop addresses them from one
// pointer instead of keeping N row pointers on the stack.
struct alignas(32) Quants32 {
  int8_t q[32];
};

// The activations of every token tile, rearranged once per thread and matmul_shared call
// (DotTile::act_key; else once per matmul_tile call): the row chunks of a range each visit
// every tile, and rearranging per visit made the kernel 4% slower at 2048 columns and 10-15%
// at 8192 (one thread); rearranging per claimed row range (a handful per thread and product)
// cost ~2% of a 135M-parameter prefill.
// Tile i (tokens 8i..8i+N-1) holds [nb][lanes(N)] block scales, token-contiguous and zero
// past N, and [nb][N] block quants.
struct Q8_0Tiles {
  std::vector<float> dx;
  std::vector<Quants32> xq;

  static constexpr int lanes(int n) { return n > 4 ? 8 : 4; }

  // Builds the tiles of t's activations unless they are the ones built last (same act_key).
  void build(const DotTile& t, int64_t nb) {
    if (built_from_.reuse(t)) return;
    const size_t per_tile = size_t(nb) * 8;
    const size_t n_tiles = (size_t(t.n_tokens) + 7) / 8;
    dx.assign(n_tiles * per_tile, 0.f);
    xq.resize(n_tiles * per_tile);
    for (int k0 = 0; k0 < t.n_tokens; k0 += 8) {
      const int n_in_tile = std::min(8, t.n_tokens - k0);
      const int stride = lanes(n_in_tile);
      float* d = dx.data() + size_t(k0 / 8) * per_tile;
      Quants32* q = xq.data() + size_t(k0 / 8) * per_tile;
      for (int n = 0; n < n_in_tile; ++n) {
        const BlockQ8_0* xrow = reinterpret_cast<const BlockQ8_0*>(t.act + (k0 + n) * t.act_stride);
        for (int64_t b = 0; b < nb; ++b) {
          d[b * stride + n] = half(xrow[b].d);
          std::memcpy(q[b * n_in_tile + n].q, xrow[b].qs, sizeof(Quants32));
        }
      }
    }
  }
  // Plain pointers for the loop: it must not look up a thread_local again (in a shared
  // library that is a call), and one base pointer leaves the general registers free.
  const float* scales(int k0, int64_t nb) const { return dx.data() + size_t(k0 / 8) * size_t(nb) * 8; }
  const Quants32* quants(int k0, int64_t nb) const { return xq.data() + size_t(k0 / 8) * size_t(nb) * 8; }

 private:
  ActMemo built_from_;
};

template <int N>
void rows_q8_0(const DotTile& t, int64_t r0, int64_t r1, int k0, const Q8_0Tiles& tiles) {
  const int64_t nb = t.cols / QK8_0;
  constexpr int kLanes = Q8_0Tiles::lanes(N);
  const float* const dx = tiles.scales(k0, nb);
  const Quants32* const xq = tiles.quants(k0, nb);
  for (int64_t r = r0; r < r1; ++r) {
    const BlockQ8_0* wrow = reinterpret_cast<const BlockQ8_0*>(t.w + r * t.row_bytes);
    __m256 acc[N];
    for (int n = 0; n < N; ++n) acc[n] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
      _mm_prefetch(reinterpret_cast<const char*>(wrow + b) + 1024, _MM_HINT_T0);
      const __m256i wq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wrow[b].qs));
      const __m256i abs_w = _mm256_sign_epi8(wq, wq);
      alignas(32) float d[kLanes];
      if constexpr (kLanes == 8)
        _mm256_store_ps(d, _mm256_mul_ps(_mm256_set1_ps(half(wrow[b].d)), _mm256_loadu_ps(dx + b * kLanes)));
      else
        _mm_store_ps(d, _mm_mul_ps(_mm_set1_ps(half(wrow[b].d)), _mm_loadu_ps(dx + b * kLanes)));
      const Quants32* x = xq + b * N;
      for (int n = 0; n < N; ++n) {
        const __m256i xn = _mm256_load_si256(reinterpret_cast<const __m256i*>(x[n].q));
        acc[n] = _mm256_fmadd_ps(_mm256_broadcast_ss(d + n), _mm256_cvtepi32_ps(dot_i8(wq, abs_w, xn)), acc[n]);
      }
    }
    for (int n = 0; n < N; ++n) t.y[(k0 + n) * t.ldy + r] = hsum8(acc[n]);
  }
}

// Q8_0 x Q8_0 for one token (decode), reading the activation blocks in place: the same lanes,
// products and order as rows_q8_0<1> (so the same bits), without its rearranged activation
// tiles (Q8_0Tiles) or its store-and-broadcast of the scale products. One row's blocks form a chain of
// dependent multiply-adds, so R rows run at once for the latency to overlap, taken side by
// side from separate stretches of the row range (side_by_side.h).
template <int R>
void matvec_q8_0_rows(const DotTile& t, const int64_t (&row)[R], int64_t nb) {
  const BlockQ8_0* x = reinterpret_cast<const BlockQ8_0*>(t.act);
  const BlockQ8_0* w[R];
  __m256 acc[R];
  for (int i = 0; i < R; ++i) {
    w[i] = reinterpret_cast<const BlockQ8_0*>(t.w + row[i] * t.row_bytes);
    acc[i] = _mm256_setzero_ps();
  }
  for (int64_t b = 0; b < nb; ++b) {
    const __m256i xq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[b].qs));
    const float dx = half(x[b].d);
    for (int i = 0; i < R; ++i) {
      _mm_prefetch(reinterpret_cast<const char*>(w[i] + b) + 1024, _MM_HINT_T0);
      const __m256i wq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[i][b].qs));
      const __m256 dot = _mm256_cvtepi32_ps(dot_i8(wq, _mm256_sign_epi8(wq, wq), xq));
      acc[i] = _mm256_fmadd_ps(_mm256_set1_ps(half(w[i][b].d) * dx), dot, acc[i]);
    }
  }
  for (int i = 0; i < R; ++i) t.y[row[i]] = hsum8(acc[i]);
}

void matvec_q8_0(const DotTile& t, int64_t r0, int64_t r1) {
  const int64_t nb = t.cols / QK8_0;
  r0 = side_by_side<kSideBySideStreams>(r0, r1, [&](const int64_t (&rows)[kSideBySideStreams]) { matvec_q8_0_rows(t, rows, nb); });
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t rows[1] = {r};
    matvec_q8_0_rows(t, rows, nb);
  }
}

// Per activation block: its scale, and its scale times the sum of its int8 values (the
// term the Q4_0 offset of 8 multiplies). Computed once per tile, shared by every row.
struct Q8Scales {
  std::vector<float> d, dsum;
  void compute(const DotTile& t, int k0, int n, int64_t nb) {
    d.resize(size_t(n) * nb);
    dsum.resize(size_t(n) * nb);
    const __m256i ones = _mm256_set1_epi8(1);
    for (int k = 0; k < n; ++k) {
      const BlockQ8_0* xb = reinterpret_cast<const BlockQ8_0*>(t.act + (k0 + k) * t.act_stride);
      for (int64_t b = 0; b < nb; ++b) {
        const __m256i xq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb[b].qs));
        const int sum = hsum_i32(_mm256_madd_epi16(_mm256_maddubs_epi16(ones, xq), _mm256_set1_epi16(1)));
        d[k * nb + b] = half(xb[b].d);
        dsum[k * nb + b] = d[k * nb + b] * float(sum);
      }
    }
  }
};

template <int N>
void rows_q4_0(const DotTile& t, int64_t r0, int64_t r1, int k0) {
  const int64_t nb = t.cols / QK4_0;
  thread_local Q8Scales xs;
  xs.compute(t, k0, N, nb);
  // Plain pointers: the loop must not look up the thread_local again (in a shared library
  // that is a call).
  const float* const xd = xs.d.data();
  const float* const xdsum = xs.dsum.data();
  const __m256i ones16 = _mm256_set1_epi16(1);
  for (int64_t r = r0; r < r1; ++r) {
    const BlockQ4_0* wrow = reinterpret_cast<const BlockQ4_0*>(t.w + r * t.row_bytes);
    __m256 acc[N];
    float offset[N] = {};
    for (int k = 0; k < N; ++k) acc[k] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
      _mm_prefetch(reinterpret_cast<const char*>(wrow + b) + 1024, _MM_HINT_T0);
      const __m256i wq = unpack_q4_0(wrow[b].qs);
      const float dw = half(wrow[b].d);
      for (int k = 0; k < N; ++k) {
        const BlockQ8_0* xb = reinterpret_cast<const BlockQ8_0*>(t.act + (k0 + k) * t.act_stride) + b;
        const __m256i xq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb->qs));
        const __m256i dot = _mm256_madd_epi16(_mm256_maddubs_epi16(wq, xq), ones16);
        acc[k] = _mm256_fmadd_ps(_mm256_set1_ps(dw * xd[k * nb + b]), _mm256_cvtepi32_ps(dot), acc[k]);
        offset[k] += dw * xdsum[k * nb + b];
      }
    }
    for (int k = 0; k < N; ++k) t.y[(k0 + k) * t.ldy + r] = hsum8(acc[k]) - 8.0f * offset[k];
  }
}

// Element access for the float weight types: eight values to a vector, one to a float.
struct F32Elements {
  using T = float;
  static __m256 load8(const float* p) { return _mm256_loadu_ps(p); }
  static float load1(float v) { return v; }
};
struct F16Elements {
  using T = uint16_t;
  static __m256 load8(const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
  static float load1(uint16_t h) { return _cvtsh_ss(h); }
};
// BF16: the same with a shift instead of F16C.
struct BF16Elements {
  using T = uint16_t;
  static __m256 load8(const uint16_t* p) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }
  static float load1(uint16_t h) { return bf16_to_fp32(h); }
};

// The element pointers of weight rows [r, r + R) and activation rows [k0, k0 + N) of a tile.
template <typename T, int R, int N>
struct RowGroup {
  const T* w[R];
  const T* x[N];
  RowGroup(const DotTile& t, int64_t r, int k0) {
    for (int i = 0; i < R; ++i) w[i] = reinterpret_cast<const T*>(t.w + (r + i) * t.row_bytes);
    for (int n = 0; n < N; ++n) x[n] = reinterpret_cast<const T*>(t.act + (k0 + n) * t.act_stride);
  }
};

// Float weights x activations of the same type (F32, F16, BF16), rows [r, r + R) for N
// tokens. Per output, one 8-lane accumulator takes one multiply-add per 8 columns and a
// horizontal sum at the end: the order of llama.cpp's tinyBLAS kernel (llamafile sgemm),
// which it runs for these types on every batch of 2 or more tokens when rows % 4 == 0 and
// cols % 8 == 0 (matmul.cpp sends other shapes to vec_dot below, as llama.cpp does, so
// cols is a multiple of 8 here), and the two engines round alike. One chain per output would leave the core waiting on
// multiply-add latency, so R rows run side by side, giving R * N independent chains.
template <int R, int N, typename E>
void float_row_group(const DotTile& t, int64_t r, int k0) {
  const auto& [w, x] = RowGroup<typename E::T, R, N>(t, r, k0);
  __m256 acc[R][N];
  for (int i = 0; i < R; ++i)
    for (int n = 0; n < N; ++n) acc[i][n] = _mm256_setzero_ps();
  for (int64_t c = 0; c < t.cols; c += 8) {
    // The same columns of the next R rows: the R streams then move through memory as the
    // one sequential stream they form together, prefetched a whole block ahead.
    if (c % 16 == 0)
      for (int i = 0; i < R; ++i) _mm_prefetch(reinterpret_cast<const char*>(w[i] + c) + R * t.row_bytes, _MM_HINT_T0);
    __m256 xv[N];
    for (int n = 0; n < N; ++n) xv[n] = E::load8(x[n] + c);
    for (int i = 0; i < R; ++i) {
      const __m256 wv = E::load8(w[i] + c);
      for (int n = 0; n < N; ++n) acc[i][n] = _mm256_fmadd_ps(wv, xv[n], acc[i][n]);
    }
  }
  for (int i = 0; i < R; ++i)
    for (int n = 0; n < N; ++n) t.y[(k0 + n) * t.ldy + r + i] = hsum8(acc[i][n]);
}

// The other order for float weights: that of llama.cpp's one-row kernels (ggml_vec_dot_f32,
// _f16, _bf16), which its mul_mat_id runs for every routed token and its mul_mat for the
// shapes tinyBLAS refuses. Four 8-lane accumulators take the 8-column groups of each
// 32-column step in turn and fold as (a0 + a2) + (a1 + a3); the 8 lanes then sum, and the
// columns after the last whole step are added one by one. As in llama.cpp's AVX2 build: the
// lane sum is (l0 + l1) + (l2 + l3) of the folded 128-bit halves (two hadds) for F32 and
// F16, hsum8's for BF16; the tail accumulates in fp32 for F32 (each product rounded before
// it is added), in double for F16 and BF16. (Its BF16 steps multiply, then add, which equals
// a multiply-add here: a product of two bf16 values is exact in fp32.)
inline float lanes_hadd(__m256 v) {
  const __m128 h = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 p = _mm_hadd_ps(h, h);
  return _mm_cvtss_f32(_mm_hadd_ps(p, p));
}

// The fold, lane sum and tail of one output, after its whole 32-column steps [0, c).
template <typename E>
float vec_dot_finish(const __m256 (&acc)[4], const typename E::T* w, const typename E::T* x, int64_t c, int64_t n) {
  const __m256 folded = _mm256_add_ps(_mm256_add_ps(acc[0], acc[2]), _mm256_add_ps(acc[1], acc[3]));
  if constexpr (std::is_same_v<E, F32Elements>) {
    float sum = lanes_hadd(folded);
    for (; c < n; ++c) {
      float product = w[c] * x[c];
      __asm__("" : "+x"(product));  // no fused multiply-add: the product rounds first
      sum += product;
    }
    return sum;
  } else {
    double sum = std::is_same_v<E, BF16Elements> ? hsum8(folded) : lanes_hadd(folded);
    for (; c < n; ++c) sum += double(E::load1(w[c]) * E::load1(x[c]));
    return float(sum);
  }
}

// Rows [r, r + R) for N tokens in that order; several outputs side by side, as in float_row_group,
// and the same prefetch.
template <int R, int N, typename E>
void vec_dot_row_group(const DotTile& t, int64_t r, int k0) {
  using T = typename E::T;
  const auto& [w, x] = RowGroup<T, R, N>(t, r, k0);
  __m256 acc[R][N][4];
  for (int i = 0; i < R; ++i)
    for (int n = 0; n < N; ++n)
      for (int j = 0; j < 4; ++j) acc[i][n][j] = _mm256_setzero_ps();
  int64_t c = 0;
  for (; c + 32 <= t.cols; c += 32) {
    for (int i = 0; i < R; ++i)
      for (int o = 0; o < int(32 * sizeof(T)); o += 64)
        _mm_prefetch(reinterpret_cast<const char*>(w[i] + c) + R * t.row_bytes + o, _MM_HINT_T0);
    for (int j = 0; j < 4; ++j) {
      __m256 wv[R];
      for (int i = 0; i < R; ++i) wv[i] = E::load8(w[i] + c + 8 * j);
      for (int n = 0; n < N; ++n) {
        const __m256 xv = E::load8(x[n] + c + 8 * j);
        for (int i = 0; i < R; ++i) acc[i][n][j] = _mm256_fmadd_ps(wv[i], xv, acc[i][n][j]);
      }
    }
  }
  for (int i = 0; i < R; ++i)
    for (int n = 0; n < N; ++n) t.y[(k0 + n) * t.ldy + r + i] = vec_dot_finish<E>(acc[i][n], w[i], x[n], c, t.cols);
}

template <int N, typename E>
void rows_float(const DotTile& t, int64_t r0, int64_t r1, int k0) {
  if (t.order == DotOrder::Gemv) {
    // 8 accumulators at a time: tokens in pairs, a last single token two rows at a time.
    int n = 0;
    for (; n + 2 <= N; n += 2)
      for (int64_t r = r0; r < r1; ++r) vec_dot_row_group<1, 2, E>(t, r, k0 + n);
    if (n < N) {
      int64_t r = r0;
      for (; r + 2 <= r1; r += 2) vec_dot_row_group<2, 1, E>(t, r, k0 + n);
      if (r < r1) vec_dot_row_group<1, 1, E>(t, r, k0 + n);
    }
    return;
  }
  // Up to 12 accumulators, plus the N activation vectors, within the 16 registers.
  constexpr int R = N == 1 ? 4 : N == 2 ? 4 : N == 3 ? 3 : 2;
  int64_t r = r0;
  for (; r + R <= r1; r += R) float_row_group<R, N, E>(t, r, k0);
  for (; r < r1; ++r) float_row_group<1, N, E>(t, r, k0);
}

// Shuffle controls that broadcast int16 lane i (of each 128-bit half) to all 8 lanes of it.
// A constant table, not vectors built at start-up: static initializers of this file would
// run AVX2 code on every CPU.
struct LaneBroadcast {
  alignas(32) uint8_t bytes[8][32];
  constexpr LaneBroadcast() : bytes{} {
    for (int i = 0; i < 8; ++i)
      for (int j = 0; j < 32; ++j) bytes[i][j] = uint8_t(2 * i + (j & 1));
  }
};
constexpr LaneBroadcast kLane{};
inline __m256i lane_broadcast(int i) { return _mm256_load_si256(reinterpret_cast<const __m256i*>(kLane.bytes[i])); }

// Q4_K x Q8_K, per super-block: the 6-bit scales/mins are unpacked with 32-bit word masks,
// each 32-value sub-block's maddubs sums are weighted by its scale (madd with the scale
// broadcast to all lanes), and the mins fold in through the activation's 16-value sums
// (madd with each min duplicated over its two sums). Both reduce to one exact integer per
// pair of sub-blocks (64 values) in DotOrder::Gemm, per super-block in DotOrder::Gemv,
// accumulated in fp32 in that order (scale part times d, min part times dmin) and subtracted
// at the end: the orders of llama.cpp's repacked Q4_K GEMM and GEMV (see DotOrder), so the
// two engines round alike.
template <int N, DotOrder kOrder>
void rows_q4_k(const DotTile& t, int64_t r0, int64_t r1, int k0) {
  const int64_t nb = t.cols / QK_K;
  const __m256i m4 = _mm256_set1_epi8(0xF);
  for (int64_t r = r0; r < r1; ++r) {
    const BlockQ4_K* wrow = reinterpret_cast<const BlockQ4_K*>(t.w + r * t.row_bytes);
    float acc[N], acc_min[N];
    for (int k = 0; k < N; ++k) acc[k] = acc_min[k] = 0.f;
    for (int64_t b = 0; b < nb; ++b) {
      const BlockQ4_K& wb = wrow[b];
      _mm_prefetch(reinterpret_cast<const char*>(&wb) + 1024, _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(&wb) + 1024 + 64, _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(&wb) + 1024 + 128, _MM_HINT_T0);
      // Bytes 0..3: low 6 bits of scales 0..3; 4..7: of mins 0..3; 8..11: low 4 bits of
      // scale (low nibble) and min (high nibble) 4..7, whose top 2 bits are bits 6..7 of
      // bytes 0..3 (scales) and 4..7 (mins).
      uint32_t w[3];
      __builtin_memcpy(w, wb.scales, 12);
      const uint32_t sc_lo = w[0] & 0x3f3f3f3f, mn_lo = w[1] & 0x3f3f3f3f;
      const uint32_t sc_hi = (w[2] & 0x0f0f0f0f) | (((w[0] >> 6) & 0x03030303) << 4);
      const uint32_t mn_hi = ((w[2] >> 4) & 0x0f0f0f0f) | (((w[1] >> 6) & 0x03030303) << 4);
      const __m128i sc8 = _mm_set_epi32(0, 0, int(sc_hi), int(sc_lo));
      const __m128i mn8 = _mm_set_epi32(0, 0, int(mn_hi), int(mn_lo));
      const __m256i sc16 = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(sc8));     // sc0..7 in both halves
      const __m256i mn_pairs = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(mn8, mn8));   // m0,m0,m1,m1,..
      const __m128 dd = _mm_cvtph_ps(_mm_cvtsi32_si128(int(uint32_t(wb.d) | (uint32_t(wb.dmin) << 16))));
      __m256i wq[8];
      for (int j = 0; j < 4; ++j) {
        const __m256i packed = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wb.qs + 32 * j));
        wq[2 * j] = _mm256_and_si256(packed, m4);
        wq[2 * j + 1] = _mm256_and_si256(_mm256_srli_epi16(packed, 4), m4);
      }
      for (int k = 0; k < N; ++k) {
        const BlockQ8_K* xb = reinterpret_cast<const BlockQ8_K*>(t.act + (k0 + k) * t.act_stride) + b;
        alignas(32) int32_t mins[8];  // min of sub-block j times the sum of its activations
        _mm256_store_si256(reinterpret_cast<__m256i*>(mins),
                           _mm256_madd_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb->bsums)), mn_pairs));
        const float d = _mm_cvtss_f32(dd) * xb->d, dmin = _mm_cvtss_f32(_mm_movehdup_ps(dd)) * xb->d;
        int32_t block_sum = 0, block_min = 0;  // GEMV order: the super-block's parts
        for (int pair = 0; pair < 4; ++pair) {
          __m256i sum = _mm256_setzero_si256();
          for (int j = 2 * pair; j < 2 * pair + 2; ++j) {
            const __m256i xq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb->qs + 32 * j));
            // Weights are unsigned 0..15: maddubs takes them directly.
            const __m256i p = _mm256_maddubs_epi16(wq[j], xq);
            sum = _mm256_add_epi32(sum, _mm256_madd_epi16(p, _mm256_shuffle_epi8(sc16, lane_broadcast(j))));
          }
          if constexpr (kOrder == DotOrder::Gemm) {
            acc[k] = std::fma(float(hsum_i32(sum)), d, acc[k]);
            acc_min[k] = std::fma(float(mins[2 * pair] + mins[2 * pair + 1]), dmin, acc_min[k]);
          } else {
            block_sum += hsum_i32(sum);
            block_min += mins[2 * pair] + mins[2 * pair + 1];
          }
        }
        if constexpr (kOrder == DotOrder::Gemv) {
          acc[k] = std::fma(float(block_sum), d, acc[k]);
          acc_min[k] = std::fma(float(block_min), dmin, acc_min[k]);
        }
      }
    }
    for (int k = 0; k < N; ++k) t.y[(k0 + k) * t.ldy + r] = acc[k] - acc_min[k];
  }
}

// Per 128-bit half, the int16 scale of a Q6_K 32-value group's two 16-value sub-blocks:
// kQ6Scale[i] broadcasts int16 lane i of the scales to the low half and lane i+1 to the
// high half (madd then weights each half by its own sub-block's scale).
struct Q6ScaleShuffle {
  alignas(32) uint8_t bytes[8][32];
  constexpr Q6ScaleShuffle() : bytes{} {
    for (int i = 0; i < 8; ++i)
      for (int j = 0; j < 32; ++j) bytes[i][j] = uint8_t(2 * (i + j / 16) % 16 + (j & 1));
  }
};
constexpr Q6ScaleShuffle kQ6Scale{};

// Q6_K x Q8_K, one row x N tokens (N up to 8): 6-bit values rebuilt from ql/qh as unsigned
// 0..63, so maddubs takes them; each 32-value group spans two 16-value sub-blocks, weighted
// by a vector holding one scale per 128-bit half. Groups are the outer loop, so each
// rebuilt group and its scales serve all N tokens from registers. The -32 offset folds in
// through the activation's 16-value sums (madd with the 16 scales). Per output: one int32
// vector per super-block, one fp32 multiply-add of it into 8 lanes, one horizontal sum at
// the end: the lanes and order of llama.cpp's AVX2 vec_dot_q6_K, which it runs for Q6_K at
// every batch size.
template <int N>
void rows_q6_k(const DotTile& t, int64_t r0, int64_t r1, int k0) {
  const int64_t nb = t.cols / QK_K;
  const __m256i m4 = _mm256_set1_epi8(0xF), m2 = _mm256_set1_epi8(3);
  const BlockQ8_K* xrow[N];
  for (int n = 0; n < N; ++n) xrow[n] = reinterpret_cast<const BlockQ8_K*>(t.act + (k0 + n) * t.act_stride);
  for (int64_t r = r0; r < r1; ++r) {
    const BlockQ6_K* wrow = reinterpret_cast<const BlockQ6_K*>(t.w + r * t.row_bytes);
    __m256 acc[N];
    for (int n = 0; n < N; ++n) acc[n] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
      const BlockQ6_K& wb = wrow[b];
      for (int o = 0; o < 256; o += 64) _mm_prefetch(reinterpret_cast<const char*>(&wb) + 1536 + o, _MM_HINT_T0);
      // sc16: the 16 sub-block scales as int16; lo/hi: scales 0..7 / 8..15 in both halves.
      const __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(wb.scales)));
      const __m256i scales[2] = {_mm256_permute4x64_epi64(sc16, 0x44), _mm256_permute4x64_epi64(sc16, 0xEE)};
      __m256i sum[N];
      for (int n = 0; n < N; ++n) sum[n] = _mm256_setzero_si256();
      for (int half = 0; half < 2; ++half) {
        const __m256i ql0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wb.ql + 64 * half));
        const __m256i ql1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wb.ql + 64 * half + 32));
        const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wb.qh + 32 * half));
        for (int q = 0; q < 4; ++q) {
          // Group g = 4 half + q: values 32g..32g+31 of the super-block, as uint8 0..63.
          const __m256i ql = q % 2 ? ql1 : ql0;
          const __m256i low = q < 2 ? _mm256_and_si256(ql, m4) : _mm256_and_si256(_mm256_srli_epi16(ql, 4), m4);
          const __m256i high = _mm256_and_si256(q == 0 ? qh : _mm256_srli_epi16(qh, 2 * q), m2);
          const __m256i wq = _mm256_or_si256(low, _mm256_slli_epi16(high, 4));
          const __m256i scale =
              _mm256_shuffle_epi8(scales[half], _mm256_load_si256(reinterpret_cast<const __m256i*>(kQ6Scale.bytes[2 * q])));
          for (int n = 0; n < N; ++n) {
            const __m256i xq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xrow[n][b].qs + 32 * (4 * half + q)));
            sum[n] = _mm256_add_epi32(sum[n], _mm256_madd_epi16(_mm256_maddubs_epi16(wq, xq), scale));
          }
        }
      }
      const float d = half(wb.d);
      for (int n = 0; n < N; ++n) {
        const __m256i offset = _mm256_madd_epi16(sc16, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xrow[n][b].bsums)));
        const __m256i s = _mm256_sub_epi32(sum[n], _mm256_slli_epi32(offset, 5));
        acc[n] = _mm256_fmadd_ps(_mm256_set1_ps(d * xrow[n][b].d), _mm256_cvtepi32_ps(s), acc[n]);
      }
    }
    for (int n = 0; n < N; ++n) t.y[(k0 + n) * t.ldy + r] = hsum8(acc[n]);
  }
}

// ---- issue 28 K-quants (Q5_K, Q3_K, Q2_K, IQ4_XS) x Q8_K. Each in llama.cpp's AVX2
// vec_dot lanes and order (it runs vec_dot for these types at every batch size on AVX2):
// per super-block one exact int32 vector, converted and multiply-added into 8 fp32 lanes by
// d_w * d_x, one horizontal sum per output. As rows_q6_k, each decoded 32-value group and
// its scales serve the tile's N tokens from registers.

// The 6-bit scales and mins of a Q4_K/Q5_K super-block: scales 0..7 as int16 in both 128-bit
// halves (for lane_broadcast), mins 0..7 as int16.
struct K4Scales {
  __m256i sc16;
  __m128i mn16;
};
inline K4Scales k4_scales(const uint8_t* packed) {
  uint32_t w[3];
  __builtin_memcpy(w, packed, 12);
  const uint32_t sc_lo = w[0] & 0x3f3f3f3f, mn_lo = w[1] & 0x3f3f3f3f;
  const uint32_t sc_hi = (w[2] & 0x0f0f0f0f) | (((w[0] >> 6) & 0x03030303) << 4);
  const uint32_t mn_hi = ((w[2] >> 4) & 0x0f0f0f0f) | (((w[1] >> 6) & 0x03030303) << 4);
  return {_mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(_mm_set_epi32(0, 0, int(sc_hi), int(sc_lo)))),
          _mm_cvtepu8_epi16(_mm_set_epi32(0, 0, int(mn_hi), int(mn_lo)))};
}

// sum over sub-blocks j of min_j times the sum of its 32 activations (bsums 2j, 2j+1).
inline int k4_min_sum(__m128i mn16, const BlockQ8_K& x) {
  const __m256i bs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.bsums));
  const __m128i pairs = _mm_hadd_epi16(_mm256_castsi256_si128(bs), _mm256_extracti128_si256(bs, 1));
  __m128i p = _mm_madd_epi16(mn16, pairs);
  p = _mm_add_epi32(p, _mm_shuffle_epi32(p, 0x4E));
  p = _mm_add_epi32(p, _mm_shuffle_epi32(p, 0xB1));
  return _mm_cvtsi128_si32(p);
}

// Bit k of each byte of v, moved to bit 4 (the 5th bit of a Q5_K value).
inline __m256i bit_to_16(__m256i v, int k) {
  const __m256i m16 = _mm256_set1_epi8(0x10);
  if (k <= 4) return _mm256_and_si256(_mm256_slli_epi16(v, 4 - k), m16);
  return _mm256_and_si256(_mm256_srli_epi16(v, k - 4), m16);
}

// Q5_K x Q8_K, one row x N tokens: the 5-bit values rebuilt as uint8 0..31 (maddubs takes
// them), each 32-value sub-block weighted by its 6-bit scale (madd with the scale
// broadcast); the mins fold in through the activation's 16-value sums as one integer per
// super-block, accumulated apart in fp32 (-d_x * dmin times it, a fused multiply-add, as
// llama.cpp's compiler contracts it) and added after the lane sum, as vec_dot_q5_K does.
template <int N>
void rows_q5_k(const DotTile& t, int64_t r0, int64_t r1, int k0) {
  const int64_t nb = t.cols / QK_K;
  const __m256i m4 = _mm256_set1_epi8(0xF);
  const BlockQ8_K* xrow[N];
  for (int n = 0; n < N; ++n) xrow[n] = reinterpret_cast<const BlockQ8_K*>(t.act + (k0 + n) * t.act_stride);
  for (int64_t r = r0; r < r1; ++r) {
    const BlockQ5_K* wrow = reinterpret_cast<const BlockQ5_K*>(t.w + r * t.row_bytes);
    __m256 acc[N];
    float summs[N];
    for (int n = 0; n < N; ++n) {
      acc[n] = _mm256_setzero_ps();
      summs[n] = 0.f;
    }
    for (int64_t b = 0; b < nb; ++b) {
      const BlockQ5_K& wb = wrow[b];
      for (int o = 0; o < 192; o += 64) _mm_prefetch(reinterpret_cast<const char*>(&wb) + 1408 + o, _MM_HINT_T0);
      const K4Scales ks = k4_scales(wb.scales);
      const __m256i hbits = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wb.qh));
      __m256i sum[N];
      for (int n = 0; n < N; ++n) sum[n] = _mm256_setzero_si256();
      for (int j = 0; j < 4; ++j) {
        const __m256i packed = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wb.qs + 32 * j));
        const __m256i q0 = _mm256_or_si256(_mm256_and_si256(packed, m4), bit_to_16(hbits, 2 * j));
        const __m256i q1 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(packed, 4), m4), bit_to_16(hbits, 2 * j + 1));
        const __m256i s0 = _mm256_shuffle_epi8(ks.sc16, lane_broadcast(2 * j));
        const __m256i s1 = _mm256_shuffle_epi8(ks.sc16, lane_broadcast(2 * j + 1));
        for (int n = 0; n < N; ++n) {
          const __m256i x0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xrow[n][b].qs + 64 * j));
          const __m256i x1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xrow[n][b].qs + 64 * j + 32));
          const __m256i p0 = _mm256_madd_epi16(_mm256_maddubs_epi16(q0, x0), s0);
          const __m256i p1 = _mm256_madd_epi16(_mm256_maddubs_epi16(q1, x1), s1);
          sum[n] = _mm256_add_epi32(sum[n], _mm256_add_epi32(p0, p1));
        }
      }
      const float dw = half(wb.d), dmin = half(wb.dmin);
      for (int n = 0; n < N; ++n) {
        const float xd = xrow[n][b].d;
        summs[n] = std::fma(-xd * dmin, float(k4_min_sum(ks.mn16, xrow[n][b])), summs[n]);
        acc[n] = _mm256_fmadd_ps(_mm256_set1_ps(xd * dw), _mm256_cvtepi32_ps(sum[n]), acc[n]);
      }
    }
    for (int n = 0; n < N; ++n) t.y[(k0 + n) * t.ldy + r] = hsum8(acc[n]) + summs[n];
  }
}

// Q3_K x Q8_K, one row x N tokens: the 3-bit values rebuilt as int8 q - 4 in -4..3 and
// multiplied with the sign trick (dot_i8's maddubs of |w| by sign(w) * x), each 16-value
// sub-block weighted by its scale (Q6_K's per-half scale shuffle), so every int32 lane holds
// the exact sum llama.cpp's vec_dot_q3_K has in it; per super-block one fp32 multiply-add of
// the lanes by d_w * d_x, one horizontal sum per output.
template <int N>
void rows_q3_k(const DotTile& t, int64_t r0, int64_t r1, int k0) {
  const int64_t nb = t.cols / QK_K;
  const __m256i m3 = _mm256_set1_epi8(3), m4 = _mm256_set1_epi8(4);
  const BlockQ8_K* xrow[N];
  for (int n = 0; n < N; ++n) xrow[n] = reinterpret_cast<const BlockQ8_K*>(t.act + (k0 + n) * t.act_stride);
  for (int64_t r = r0; r < r1; ++r) {
    const BlockQ3_K* wrow = reinterpret_cast<const BlockQ3_K*>(t.w + r * t.row_bytes);
    __m256 acc[N];
    for (int n = 0; n < N; ++n) acc[n] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
      const BlockQ3_K& wb = wrow[b];
      for (int o = 0; o < 128; o += 64) _mm_prefetch(reinterpret_cast<const char*>(&wb) + 880 + o, _MM_HINT_T0);
      // Scales 0..15 as int16 (sc - 32): low 4 bits from bytes 0..7, high 2 from bytes 8..11.
      uint32_t a[3];
      __builtin_memcpy(a, wb.scales, 12);
      const __m128i sc8 = _mm_sub_epi8(
          _mm_set_epi32(int(((a[1] >> 4) & 0x0f0f0f0f) | (((a[2] >> 6) & 0x03030303) << 4)),
                        int(((a[0] >> 4) & 0x0f0f0f0f) | (((a[2] >> 4) & 0x03030303) << 4)),
                        int((a[1] & 0x0f0f0f0f) | (((a[2] >> 2) & 0x03030303) << 4)),
                        int((a[0] & 0x0f0f0f0f) | ((a[2] & 0x03030303) << 4))),
          _mm_set1_epi8(32));
      const __m256i sc16 = _mm256_cvtepi8_epi16(sc8);
      const __m256i scales[2] = {_mm256_permute4x64_epi64(sc16, 0x44), _mm256_permute4x64_epi64(sc16, 0xEE)};
      const __m256i hbits = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wb.hmask));
      __m256i sum[N];
      for (int n = 0; n < N; ++n) sum[n] = _mm256_setzero_si256();
      for (int half = 0; half < 2; ++half) {
        const __m256i q3 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wb.qs + 32 * half));
        for (int q = 0; q < 4; ++q) {
          // Group g = 4 half + q: low bits at 2q of q3, high bit at bit g of hbits.
          const int g = 4 * half + q;
          const __m256i low = _mm256_and_si256(q == 0 ? q3 : _mm256_srli_epi16(q3, 2 * q), m3);
          const __m256i high = _mm256_and_si256(g <= 2 ? _mm256_slli_epi16(hbits, 2 - g) : _mm256_srli_epi16(hbits, g - 2), m4);
          const __m256i wq = _mm256_sub_epi8(_mm256_or_si256(low, high), m4);
          const __m256i abs_w = _mm256_sign_epi8(wq, wq);
          const __m256i scale =
              _mm256_shuffle_epi8(scales[half], _mm256_load_si256(reinterpret_cast<const __m256i*>(kQ6Scale.bytes[2 * q])));
          for (int n = 0; n < N; ++n) {
            const __m256i xq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xrow[n][b].qs + 32 * g));
            const __m256i p16 = _mm256_maddubs_epi16(abs_w, _mm256_sign_epi8(xq, wq));
            sum[n] = _mm256_add_epi32(sum[n], _mm256_madd_epi16(p16, scale));
          }
        }
      }
      const float d = half(wb.d);
      for (int n = 0; n < N; ++n) acc[n] = _mm256_fmadd_ps(_mm256_set1_ps(xrow[n][b].d * d), _mm256_cvtepi32_ps(sum[n]), acc[n]);
    }
    for (int n = 0; n < N; ++n) t.y[(k0 + n) * t.ldy + r] = hsum8(acc[n]);
  }
}

// Q2_K x Q8_K, one row x N tokens: 2-bit values as uint8 0..3 (maddubs takes them), each
// 16-value sub-block weighted by its 4-bit scale (Q6_K's per-half scale shuffle); the 4-bit
// mins times the activation's 16-value sums as 8 int32 lanes. Per super-block two fp32
// multiply-adds into the 8 lanes, the mins' (by -d_x * dmin) first, then the values' (by
// d_x * d), one horizontal sum per output: llama.cpp's vec_dot_q2_K order.
template <int N>
void rows_q2_k(const DotTile& t, int64_t r0, int64_t r1, int k0) {
  const int64_t nb = t.cols / QK_K;
  const __m256i m3 = _mm256_set1_epi8(3);
  const BlockQ8_K* xrow[N];
  for (int n = 0; n < N; ++n) xrow[n] = reinterpret_cast<const BlockQ8_K*>(t.act + (k0 + n) * t.act_stride);
  for (int64_t r = r0; r < r1; ++r) {
    const BlockQ2_K* wrow = reinterpret_cast<const BlockQ2_K*>(t.w + r * t.row_bytes);
    __m256 acc[N];
    for (int n = 0; n < N; ++n) acc[n] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
      const BlockQ2_K& wb = wrow[b];
      for (int o = 0; o < 128; o += 64) _mm_prefetch(reinterpret_cast<const char*>(&wb) + 672 + o, _MM_HINT_T0);
      const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(wb.scales));
      const __m256i sc16 = _mm256_cvtepu8_epi16(_mm_and_si128(packed, _mm_set1_epi8(0xF)));
      const __m256i mn16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(packed, 4), _mm_set1_epi8(0xF)));
      const __m256i scales[2] = {_mm256_permute4x64_epi64(sc16, 0x44), _mm256_permute4x64_epi64(sc16, 0xEE)};
      __m256i sum[N];
      for (int n = 0; n < N; ++n) sum[n] = _mm256_setzero_si256();
      for (int half = 0; half < 2; ++half) {
        const __m256i q2 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wb.qs + 32 * half));
        for (int q = 0; q < 4; ++q) {
          const __m256i wq = _mm256_and_si256(q == 0 ? q2 : _mm256_srli_epi16(q2, 2 * q), m3);
          const __m256i scale =
              _mm256_shuffle_epi8(scales[half], _mm256_load_si256(reinterpret_cast<const __m256i*>(kQ6Scale.bytes[2 * q])));
          for (int n = 0; n < N; ++n) {
            const __m256i xq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xrow[n][b].qs + 32 * (4 * half + q)));
            sum[n] = _mm256_add_epi32(sum[n], _mm256_madd_epi16(_mm256_maddubs_epi16(wq, xq), scale));
          }
        }
      }
      const float d = half(wb.d), dmin = half(wb.dmin);
      for (int n = 0; n < N; ++n) {
        const float xd = xrow[n][b].d;
        const __m256i mins = _mm256_madd_epi16(mn16, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xrow[n][b].bsums)));
        acc[n] = _mm256_fmadd_ps(_mm256_set1_ps(-xd * dmin), _mm256_cvtepi32_ps(mins), acc[n]);
        acc[n] = _mm256_fmadd_ps(_mm256_set1_ps(xd * d), _mm256_cvtepi32_ps(sum[n]), acc[n]);
      }
    }
    for (int n = 0; n < N; ++n) t.y[(k0 + n) * t.ldy + r] = hsum8(acc[n]);
  }
}

// IQ4_XS x Q8_K, one row x N tokens: each 32-value sub-block's indexes looked up in the
// grid (a byte shuffle), multiplied with the sign trick and weighted by the sub-block's
// 6-bit scale; per super-block one fp32 multiply-add of the exact int32 lanes by d_w * d_x,
// one horizontal sum per output: llama.cpp's vec_dot_iq4_xs lanes and order.
template <int N>
void rows_iq4_xs(const DotTile& t, int64_t r0, int64_t r1, int k0) {
  const int64_t nb = t.cols / QK_K;
  const __m128i grid = _mm_loadu_si128(reinterpret_cast<const __m128i*>(kIq4nlValues));
  const __m128i m4 = _mm_set1_epi8(0xF);
  const BlockQ8_K* xrow[N];
  for (int n = 0; n < N; ++n) xrow[n] = reinterpret_cast<const BlockQ8_K*>(t.act + (k0 + n) * t.act_stride);
  for (int64_t r = r0; r < r1; ++r) {
    const BlockIQ4_XS* wrow = reinterpret_cast<const BlockIQ4_XS*>(t.w + r * t.row_bytes);
    __m256 acc[N];
    for (int n = 0; n < N; ++n) acc[n] = _mm256_setzero_ps();
    for (int64_t b = 0; b < nb; ++b) {
      const BlockIQ4_XS& wb = wrow[b];
      for (int o = 0; o < 192; o += 64) _mm_prefetch(reinterpret_cast<const char*>(&wb) + 1088 + o, _MM_HINT_T0);
      __m256i sum[N];
      for (int n = 0; n < N; ++n) sum[n] = _mm256_setzero_si256();
      for (int j = 0; j < QK_K / 32; ++j) {
        const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(wb.qs + 16 * j));
        const __m256i wq = _mm256_set_m128i(_mm_shuffle_epi8(grid, _mm_and_si128(_mm_srli_epi16(packed, 4), m4)),
                                            _mm_shuffle_epi8(grid, _mm_and_si128(packed, m4)));
        const __m256i abs_w = _mm256_sign_epi8(wq, wq);
        const __m256i scale = _mm256_set1_epi16(int16_t(iq4xs_scale(wb, j)));
        for (int n = 0; n < N; ++n) {
          const __m256i xq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xrow[n][b].qs + 32 * j));
          sum[n] = _mm256_add_epi32(sum[n], _mm256_madd_epi16(_mm256_maddubs_epi16(abs_w, _mm256_sign_epi8(xq, wq)), scale));
        }
      }
      const float d = half(wb.d);
      for (int n = 0; n < N; ++n) acc[n] = _mm256_fmadd_ps(_mm256_set1_ps(d * xrow[n][b].d), _mm256_cvtepi32_ps(sum[n]), acc[n]);
    }
    for (int n = 0; n < N; ++n) t.y[(k0 + n) * t.ldy + r] = hsum8(acc[n]);
  }
}

// Calls rows(std::integral_constant<int, N>, k0) for the token tiles [k0, k0 + N) covering
// n_tokens: tiles of kMax, then one of the remainder.
template <int N, typename Rows>
void remainder_tile(int left, int k0, Rows& rows) {
  if constexpr (N > 0) {
    if (left == N)
      rows(std::integral_constant<int, N>{}, k0);
    else
      remainder_tile<N - 1>(left, k0, rows);
  }
}
template <int kMax, typename Rows>
void token_tiles(int n_tokens, Rows&& rows) {
  int k0 = 0;
  for (; k0 + kMax <= n_tokens; k0 += kMax) rows(std::integral_constant<int, kMax>{}, k0);
  remainder_tile<kMax - 1>(n_tokens - k0, k0, rows);
}

// ---- Blocks of 32 weights (issue 28): Q5_0 (and the types after it), one traits struct per
// type and one kernel for all. Per output, block by block, the 8 int32 lane sums of values
// 4l..4l+3 (exact) are multiplied into 8 fp32 lanes with one fused multiply-add by
// (d_w * d_x), then one hsum8: the lanes and order of llama.cpp's AVX2 vec_dot for these
// types (and of its tinyBLAS for Q5_0, which sums alike), so both engines round alike.
// Traits: Block, Act (the activation block), kSigned (values are int8; else unsigned levels
// whose minimum folds in through the Q8_1 sums), kPairs (llama.cpp keeps two accumulators,
// even and odd blocks, added before the lane sum, and an odd last block added in fp32),
// values(block) and scale(block).

// 0xFF in byte j where bit j of the 32 bits at qh is set, else 0 (ggml's bytes_from_bits_32).
inline __m256i bytes_from_bits(const uint8_t* qh) {
  uint32_t bits;
  std::memcpy(&bits, qh, 4);
  const __m256i spread = _mm256_shuffle_epi8(_mm256_set1_epi32(int(bits)),
                                             _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0));
  return _mm256_cmpeq_epi8(_mm256_or_si256(spread, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe)), _mm256_set1_epi64x(-1));
}

struct Q5_0Traits {
  using Block = BlockQ5_0;
  using Act = BlockQ8_0;
  static constexpr bool kSigned = true, kPairs = false;
  // q - 16 as int8: where the fifth bit is clear, the nibble with 0xF0 set is nibble - 16.
  static __m256i values(const Block& b) {
    return _mm256_or_si256(unpack_q4_0(b.qs), _mm256_andnot_si256(bytes_from_bits(b.qh), _mm256_set1_epi8(char(0xF0))));
  }
  static float scale(const Block& b) { return half(b.d); }
};

struct Q4_1Traits {
  using Block = BlockQ4_1;
  using Act = BlockQ8_1;
  static constexpr bool kSigned = false, kPairs = false;
  static __m256i values(const Block& b) { return unpack_q4_0(b.qs); }
  static float scale(const Block& b) { return half(b.d); }
};

struct Q5_1Traits {
  using Block = BlockQ5_1;
  using Act = BlockQ8_1;
  static constexpr bool kSigned = false, kPairs = false;
  static __m256i values(const Block& b) {
    return _mm256_or_si256(unpack_q4_0(b.qs), _mm256_and_si256(bytes_from_bits(b.qh), _mm256_set1_epi8(0x10)));
  }
  static float scale(const Block& b) { return half(b.d); }
};

// The 32 values of a block of 4-bit indices into a 16-entry int8 table, elements in order.
inline __m256i lookup_nibbles(const uint8_t* qs, const int8_t (&table)[16]) {
  const __m128i values = _mm_loadu_si128(reinterpret_cast<const __m128i*>(table));
  const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m128i m4 = _mm_set1_epi8(0xF);
  const __m128i lo = _mm_shuffle_epi8(values, _mm_and_si128(packed, m4));
  const __m128i hi = _mm_shuffle_epi8(values, _mm_and_si128(_mm_srli_epi16(packed, 4), m4));
  return _mm256_inserti128_si256(_mm256_castsi128_si256(lo), hi, 1);
}

struct IQ4_NLTraits {
  using Block = BlockIQ4_NL;
  using Act = BlockQ8_0;
  static constexpr bool kSigned = true, kPairs = true;
  static __m256i values(const Block& b) { return lookup_nibbles(b.qs, kIq4nlValues); }
  static float scale(const Block& b) { return half(b.d); }
};

struct MXFP4Traits {
  using Block = BlockMXFP4;
  using Act = BlockQ8_0;
  static constexpr bool kSigned = true, kPairs = true;
  static __m256i values(const Block& b) { return lookup_nibbles(b.qs, kMxfp4Values); }
  static float scale(const Block& b) { return e8m0_to_fp32_half(b.e); }
};

// Rows row[0..R) x tokens [k0, k0 + N) of a blocks-of-32 type.
template <typename T, int R, int N>
void b32_tile(const DotTile& t, const int64_t (&row)[R], int k0) {
  using W = typename T::Block;
  using A = typename T::Act;
  constexpr int P = T::kPairs ? 2 : 1;
  const int64_t nb = t.cols / 32, nb_main = nb / P * P;
  const W* w[R];
  const A* x[N];
  for (int i = 0; i < R; ++i) w[i] = reinterpret_cast<const W*>(t.w + row[i] * t.row_bytes);
  for (int n = 0; n < N; ++n) x[n] = reinterpret_cast<const A*>(t.act + (k0 + n) * t.act_stride);
  __m256 acc[R][N][P];
  float mins[R][N];
  for (int i = 0; i < R; ++i)
    for (int n = 0; n < N; ++n) {
      mins[i][n] = 0.f;
      for (int p = 0; p < P; ++p) acc[i][n][p] = _mm256_setzero_ps();
    }
  const __m256i ones16 = _mm256_set1_epi16(1);
  // The 8 int32 lane sums of one weight block's values times one activation block's.
  auto lanes = [&](__m256i wq, __m256i abs_w, const A& xb) {
    const __m256i xq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb.qs));
    if constexpr (T::kSigned) return dot_i8(wq, abs_w, xq);
    else return _mm256_madd_epi16(_mm256_maddubs_epi16(wq, xq), ones16);
  };
  for (int64_t b = 0; b < nb_main; b += P) {
    for (int p = 0; p < P; ++p) {
      for (int i = 0; i < R; ++i) {
        _mm_prefetch(reinterpret_cast<const char*>(w[i] + b + p) + 1024, _MM_HINT_T0);
        const W& wb = w[i][b + p];
        const __m256i wq = T::values(wb);
        const __m256i abs_w = T::kSigned ? _mm256_sign_epi8(wq, wq) : wq;
        const float dw = T::scale(wb);
        for (int n = 0; n < N; ++n) {
          const A& xb = x[n][b + p];
          acc[i][n][p] = _mm256_fmadd_ps(_mm256_set1_ps(dw * half(xb.d)), _mm256_cvtepi32_ps(lanes(wq, abs_w, xb)), acc[i][n][p]);
          if constexpr (!T::kSigned) mins[i][n] = std::fma(half(wb.m), half(xb.s), mins[i][n]);
        }
      }
    }
  }
  for (int i = 0; i < R; ++i)
    for (int n = 0; n < N; ++n) {
      float sum = hsum8(P == 2 ? _mm256_add_ps(acc[i][n][0], acc[i][n][P - 1]) : acc[i][n][0]);
      if (nb_main < nb) {  // kPairs: the odd last block
        const W& wb = w[i][nb - 1];
        const __m256i wq = T::values(wb);
        const int sumi = hsum_i32(lanes(wq, _mm256_sign_epi8(wq, wq), x[n][nb - 1]));
        sum = std::fma(half(x[n][nb - 1].d) * T::scale(wb), float(sumi), sum);
      }
      if constexpr (!T::kSigned) sum += mins[i][n];
      t.y[(k0 + n) * t.ldy + row[i]] = sum;
    }
}

// Decode: kSideBySideStreams rows at a time (independent multiply-add chains, and separate
// stretches of the rows, as matvec_q8_0); prefill: one row x up to 4 tokens, in L2 chunks.
template <typename T>
void b32_rows(const DotTile& t, int64_t r0, int64_t r1) {
  if (t.n_tokens == 1) {
    r0 = side_by_side<kSideBySideStreams>(r0, r1, [&](const int64_t (&rows)[kSideBySideStreams]) { b32_tile<T, kSideBySideStreams, 1>(t, rows, 0); });
    for (int64_t r = r0; r < r1; ++r) b32_tile<T, 1, 1>(t, {r}, 0);
    return;
  }
  const int64_t chunk = l2_chunk_rows(t.row_bytes);
  for (int64_t c0 = r0; c0 < r1; c0 += chunk) {
    const int64_t c1 = std::min(r1, c0 + chunk);
    token_tiles<4>(t.n_tokens, [&](auto n, int k0) {
      for (int64_t r = c0; r < c1; ++r) b32_tile<T, 1, decltype(n)::value>(t, {r}, k0);
    });
  }
}

// The type's kernel; false when the type is not one of these.
bool b32_matmul(GgmlType type, const DotTile& t, int64_t r0, int64_t r1) {
  switch (type) {
    case GgmlType::Q5_0: b32_rows<Q5_0Traits>(t, r0, r1); return true;
    case GgmlType::Q4_1: b32_rows<Q4_1Traits>(t, r0, r1); return true;
    case GgmlType::Q5_1: b32_rows<Q5_1Traits>(t, r0, r1); return true;
    case GgmlType::IQ4_NL: b32_rows<IQ4_NLTraits>(t, r0, r1); return true;
    case GgmlType::MXFP4: b32_rows<MXFP4Traits>(t, r0, r1); return true;
    default: return false;
  }
}

}  // namespace

bool matmul_tile(GgmlType type, WeightLayout layout, const DotTile& t, int64_t r0, int64_t r1) {
  // Q8_0x16 is an AVX-512 layout: with a lower active ISA the GGUF rows serve.
  if ((layout == WeightLayout::Q4_0x8 || layout == WeightLayout::Q4_Kx8) && t.packed) {
    // Whole 8-row groups from the repacked copy; any rows around them from the GGUF rows.
    const int64_t g0 = (r0 + 7) / 8, g1 = r1 / 8;
    if (g0 < g1) {
      if (layout == WeightLayout::Q4_0x8)
        matmul_q4_0x8_groups(t, g0, g1, type == GgmlType::IQ4_NL ? kIq4nlValues : nullptr);
      else
        matmul_q4_kx8_groups(t, g0, g1);
      if (r0 < g0 * 8) matmul_tile(type, WeightLayout::Gguf, t, r0, g0 * 8);
      if (g1 * 8 < r1) matmul_tile(type, WeightLayout::Gguf, t, g1 * 8, r1);
      return true;
    }
  }
  if (b32_matmul(type, t, r0, r1)) return true;
  if (type == GgmlType::Q8_0 && t.n_tokens == 1) {
    matvec_q8_0(t, r0, r1);
    return true;
  }
  // Prefill: rows in L2-sized chunks, each visited by every token tile.
  const int64_t chunk = l2_chunk_rows(t.row_bytes);
  thread_local Q8_0Tiles q8_0_tiles;
  if (type == GgmlType::Q8_0) q8_0_tiles.build(t, t.cols / QK8_0);
  for (int64_t c0 = r0; c0 < r1; c0 += chunk) {
    const int64_t c1 = std::min(r1, c0 + chunk);
    // Token tiles of 8 where the integer dots leave registers for 8 accumulators, else 4.
    switch (type) {
      case GgmlType::Q8_0: token_tiles<8>(t.n_tokens, [&](auto n, int k0) { rows_q8_0<n>(t, c0, c1, k0, q8_0_tiles); }); break;
      case GgmlType::Q6_K: token_tiles<8>(t.n_tokens, [&](auto n, int k0) { rows_q6_k<n>(t, c0, c1, k0); }); break;
      case GgmlType::Q4_0: token_tiles<4>(t.n_tokens, [&](auto n, int k0) { rows_q4_0<n>(t, c0, c1, k0); }); break;
      case GgmlType::Q4_K:
        if (t.order == DotOrder::Gemv)
          token_tiles<4>(t.n_tokens, [&](auto n, int k0) { rows_q4_k<n, DotOrder::Gemv>(t, c0, c1, k0); });
        else
          token_tiles<4>(t.n_tokens, [&](auto n, int k0) { rows_q4_k<n, DotOrder::Gemm>(t, c0, c1, k0); });
        break;
      case GgmlType::Q5_K: token_tiles<8>(t.n_tokens, [&](auto n, int k0) { rows_q5_k<n>(t, c0, c1, k0); }); break;
      case GgmlType::Q3_K: token_tiles<8>(t.n_tokens, [&](auto n, int k0) { rows_q3_k<n>(t, c0, c1, k0); }); break;
      case GgmlType::Q2_K: token_tiles<8>(t.n_tokens, [&](auto n, int k0) { rows_q2_k<n>(t, c0, c1, k0); }); break;
      case GgmlType::IQ4_XS: token_tiles<8>(t.n_tokens, [&](auto n, int k0) { rows_iq4_xs<n>(t, c0, c1, k0); }); break;
      case GgmlType::F32: token_tiles<4>(t.n_tokens, [&](auto n, int k0) { rows_float<n, F32Elements>(t, c0, c1, k0); }); break;
      case GgmlType::F16: token_tiles<4>(t.n_tokens, [&](auto n, int k0) { rows_float<n, F16Elements>(t, c0, c1, k0); }); break;
      case GgmlType::BF16: token_tiles<4>(t.n_tokens, [&](auto n, int k0) { rows_float<n, BF16Elements>(t, c0, c1, k0); }); break;
      default: return false;
    }
  }
  return true;
}

}  // namespace tessera::cpu::avx2
