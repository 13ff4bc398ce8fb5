// One block of the tensor-core GEMM (gemm.cu, moe_gemm.cu): 128 output rows x BN tokens of
// Y = W X^T (BN = 64 or 128), weights of type T decoded from the repacked layout into fp16
// tiles in shared memory (decode_half_chunk_packed), activations read as staged fp16, products accumulated in fp32
// through mma.sync.m16n8k16 with fragments loaded by ldmatrix.x4.
// 8 warps in a 4 x 2 grid own 32 x BN/2 outputs each (2 x BN/16 mma tiles); K steps by 32.
// Software pipeline, two shared buffers and one barrier per step: each thread issues the
// global loads of tile k + 2 (BN = 64) or k + 1 (BN = 128) into registers (its half-chunk
// of one weight row, and BN/64 16-byte pieces of activations), the warps multiply tile k,
// then each thread decodes and stores tile k + 1, loaded a step earlier or just now, into
// the other buffer. The loads' latency hides behind the MMAs instead of stalling every step. Rows are padded by 8 halves (80 bytes), which makes every
// eight-row ldmatrix phase touch all 32 banks once.
// The caller says where rows come from through two sources:
//   weights.load(i, kt, half): the HalfChunkBits (matrix.cuh) of values [16 half, +16) of
//     K-tile kt of the block's row i; rows past the end may load any row (their outputs are
//     dropped);
//   acts.load(j, kt, part): halves [8 part, +8) of K-tile kt of the block's token j (likewise
//     any token past the end);
// and receives each result through store(i, j, value) (i, j inside the block; it checks
// bounds). Every thread of the 256-thread block must call gemm_block_tile.
#pragma once
#include "cuda/device.cuh"
#include "cuda/matrix.cuh"

namespace tessera::cuda {

namespace gemm_tile {

constexpr int kBM = 128, kBK = 32, kPad = 8, kLd = kBK + kPad;
constexpr int kThreads = 256;

template <int BN>
struct Tiles {
  uint16_t a[2][kBM][kLd];  // weights [row][k]
  uint16_t b[2][BN][kLd];   // activations [token][k]
};

// One thread's loads of one K tile, in flight while the warps multiply the previous tile.
template <int BN>
struct Loaded {
  HalfChunkBits w;      // row threadIdx / 2, half threadIdx % 2
  uint4 x[BN / 64];     // activation piece threadIdx + 256 i: token piece / 4, part piece % 4
};

template <int BN, class Weights, class Acts>
__device__ __forceinline__ Loaded<BN> load_tile(const Weights& weights, const Acts& acts, int64_t kt) {
  Loaded<BN> l;
  l.w = weights.load(threadIdx.x >> 1, kt, threadIdx.x & 1);
#pragma unroll
  for (int i = 0; i < BN / 64; ++i) {
    const int piece = threadIdx.x + kThreads * i;
    l.x[i] = acts.load(piece >> 2, kt, piece & 3);
  }
  return l;
}

template <GgmlType T, int BN>
__device__ __forceinline__ void store_tile(Tiles<BN>& s, int buf, const Loaded<BN>& l) {
  const int row = threadIdx.x >> 1, half = threadIdx.x & 1;
  uint32_t v[8];
  decode_half_chunk_packed<T>(l.w, half, v);
  uint4* dst = reinterpret_cast<uint4*>(&s.a[buf][row][16 * half]);
  dst[0] = make_uint4(v[0], v[1], v[2], v[3]);
  dst[1] = make_uint4(v[4], v[5], v[6], v[7]);
#pragma unroll
  for (int i = 0; i < BN / 64; ++i) {
    const int piece = threadIdx.x + kThreads * i;
    *reinterpret_cast<uint4*>(&s.b[buf][piece >> 2][8 * (piece & 3)]) = l.x[i];
  }
}

}  // namespace gemm_tile

template <GgmlType T, int BN, class Weights, class Acts, class Store>
__device__ __forceinline__ void gemm_block_tile(gemm_tile::Tiles<BN>& s, const Weights& weights, const Acts& acts,
                                                int64_t k_tiles, const Store& store) {
  using namespace gemm_tile;
  static_assert(BN == 64 || BN == 128, "token tile of 64 or 128");
  constexpr int kWarpN = BN / 2, kNTiles = kWarpN / 8;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int wm = (warp & 3) * 32, wn = (warp >> 2) * kWarpN;
  const int g = lane >> 2, tg = lane & 3;
  // The row each lane points ldmatrix at. A's four 8x8 matrices are, in order, rows 0-7 and
  // 8-15 at k 0-7, then the same at k 8-15: a[0..3] of the fragment. B's are tokens 0-7 at
  // k 0-7 and 8-15, then tokens 8-15 likewise: b[0..1] of two consecutive 8-token tiles.
  const int a_row = lane & 15, a_k = (lane >> 4) * 8;
  const int b_tok = (lane & 7) + ((lane >> 4) << 3), b_k = ((lane >> 3) & 1) * 8;

  float acc[2][kNTiles][4];
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int j = 0; j < kNTiles; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[i][j][e] = 0.f;

  // Loads run kAhead tiles ahead of the MMAs. Two for 64-token tiles, whose MMAs per step are
  // half as many (less time to cover a load) and whose registers have room for a second set.
  constexpr int kAhead = BN == 64 ? 2 : 1;
  const int64_t last = k_tiles - 1;
  store_tile<T>(s, 0, load_tile<BN>(weights, acts, 0));
  [[maybe_unused]] Loaded<BN> ahead;  // kAhead == 2: tile kt + 1, loaded during step kt - 1
  if constexpr (kAhead == 2) ahead = load_tile<BN>(weights, acts, last > 0 ? 1 : 0);
  __syncthreads();
  for (int64_t kt = 0; kt < k_tiles; ++kt) {
    const int buf = int(kt & 1);
    // Past the last tile, steps load the last one again rather than branch: the copies go
    // unread.
    const Loaded<BN> loaded = load_tile<BN>(weights, acts, kt + kAhead < last ? kt + kAhead : last);
#pragma unroll
    for (int ks = 0; ks < kBK; ks += 16) {
      uint32_t a[2][4];
#pragma unroll
      for (int i = 0; i < 2; ++i) ldmatrix_x4(a[i], &s.a[buf][wm + 16 * i + a_row][ks + a_k]);
#pragma unroll
      for (int j = 0; j < kNTiles; j += 2) {
        uint32_t b[4];
        ldmatrix_x4(b, &s.b[buf][wn + 8 * j + b_tok][ks + b_k]);
#pragma unroll
        for (int i = 0; i < 2; ++i) {
          mma_16x8x16(acc[i][j], a[i], b);
          mma_16x8x16(acc[i][j + 1], a[i], b + 2);
        }
      }
    }
    if constexpr (kAhead == 2) {
      store_tile<T>(s, buf ^ 1, ahead);
      ahead = loaded;
    } else {
      store_tile<T>(s, buf ^ 1, loaded);
    }
    __syncthreads();
  }

#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int j = 0; j < kNTiles; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e)
        store(wm + 16 * i + g + (e >= 2 ? 8 : 0), wn + 8 * j + 2 * tg + (e & 1), acc[i][j][e]);
}

}  // namespace tessera::cuda
