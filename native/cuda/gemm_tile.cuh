// One block of the tensor-core GEMM (gemm.cu, moe_gemm.cu): 128 output rows x 64 tokens of
// Y = W X^T, weights decoded from the repacked layout into fp16 tiles in shared memory,
// activations read as staged fp16, products accumulated in fp32 through mma.sync.m16n8k16.
// 8 warps in a 4 x 2 grid own 32 x 32 outputs each (2 x 4 mma tiles); K steps by 32.
// Shared memory is double-buffered: while the warps multiply tile k, every thread decodes its
// half-chunk (16 values of one row) and copies its 16 bytes of activations for tile k + 1,
// so one barrier per step suffices. Rows are padded by 8 halves, which makes the fragment
// loads bank-conflict free.
// The caller says where rows come from through two sources:
//   weights.decode(i, kt, half, v): values [16 half, +16) of K-tile kt of the block's row i
//     (zeros when the row is past the end);
//   acts.load(j, kt, part): halves [8 part, +8) of K-tile kt of the block's token j (zeros
//     past the end);
// and receives each result through store(i, j, value) (i, j inside the block; it checks
// bounds). Every thread of the 256-thread block must call gemm_block_tile.
#pragma once
#include "cuda/device.cuh"

namespace tessera::cuda {

namespace gemm_tile {

constexpr int kBM = 128, kBN = 64, kBK = 32, kPad = 8, kLd = kBK + kPad;
constexpr int kThreads = 256;

struct Tiles {
  uint16_t a[2][kBM][kLd];  // weights [row][k]
  uint16_t b[2][kBN][kLd];  // activations [token][k]
};

__device__ __forceinline__ uint32_t smem_pair(const uint16_t* p) { return *reinterpret_cast<const uint32_t*>(p); }

template <class Weights, class Acts>
__device__ __forceinline__ void load_tiles(Tiles& s, int buf, const Weights& weights, const Acts& acts, int64_t kt) {
  {
    const int row = threadIdx.x >> 1, half = threadIdx.x & 1;
    float v[16];
    weights.decode(row, kt, half, v);
    uint4* dst = reinterpret_cast<uint4*>(&s.a[buf][row][16 * half]);
    dst[0] = make_uint4(pack_half2(v[0], v[1]), pack_half2(v[2], v[3]), pack_half2(v[4], v[5]), pack_half2(v[6], v[7]));
    dst[1] = make_uint4(pack_half2(v[8], v[9]), pack_half2(v[10], v[11]), pack_half2(v[12], v[13]),
                        pack_half2(v[14], v[15]));
  }
  {
    const int tok = threadIdx.x >> 2, part = threadIdx.x & 3;
    *reinterpret_cast<uint4*>(&s.b[buf][tok][8 * part]) = acts.load(tok, kt, part);
  }
}

}  // namespace gemm_tile

template <class Weights, class Acts, class Store>
__device__ __forceinline__ void gemm_block_tile(gemm_tile::Tiles& s, const Weights& weights, const Acts& acts,
                                                int64_t k_tiles, const Store& store) {
  using namespace gemm_tile;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int wm = (warp & 3) * 32, wn = (warp >> 2) * 32;
  const int g = lane >> 2, tg = lane & 3;

  float acc[2][4][4];
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[i][j][e] = 0.f;

  load_tiles(s, 0, weights, acts, 0);
  __syncthreads();
  for (int64_t kt = 0; kt < k_tiles; ++kt) {
    const int buf = int(kt & 1);
    if (kt + 1 < k_tiles) load_tiles(s, buf ^ 1, weights, acts, kt + 1);
#pragma unroll
    for (int ks = 0; ks < kBK; ks += 16) {
      uint32_t a[2][4], b[4][2];
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        const int r = wm + 16 * i + g;
        a[i][0] = smem_pair(&s.a[buf][r][ks + 2 * tg]);
        a[i][1] = smem_pair(&s.a[buf][r + 8][ks + 2 * tg]);
        a[i][2] = smem_pair(&s.a[buf][r][ks + 8 + 2 * tg]);
        a[i][3] = smem_pair(&s.a[buf][r + 8][ks + 8 + 2 * tg]);
      }
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int t = wn + 8 * j + g;
        b[j][0] = smem_pair(&s.b[buf][t][ks + 2 * tg]);
        b[j][1] = smem_pair(&s.b[buf][t][ks + 8 + 2 * tg]);
      }
#pragma unroll
      for (int i = 0; i < 2; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) mma_16x8x16(acc[i][j], a[i], b[j]);
    }
    __syncthreads();
  }

#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e)
        store(wm + 16 * i + g + (e >= 2 ? 8 : 0), wn + 8 * j + 2 * tg + (e & 1), acc[i][j][e]);
}

}  // namespace tessera::cuda
