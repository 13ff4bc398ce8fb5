// moe_gemm: the grouped tensor-core GEMM of a mixture-of-experts block for prefill: for each
// tile of up to 64 slots of one expert (moe_sort.cu), y[p][i * rows + r] =
// W_i[expert][r] . x[p / in_div] for the tile's pairs p, as the dense GEMM computes a block
// (gemm_tile.cuh: fp16 tiles, fp32 accumulation through mma.sync); activation rows are
// gathered and outputs scattered through order[], so nothing is permuted in memory.
// Launch: grid (ceil(parts * rows / 128), moe_max_tiles(pairs, n_expert)), block 256; blocks
// past the device-side tile count return at once (the grid is fixed, the routing is not).
// Invariants: both parts share a type and width; activation rows are cols32 halves,
// zero-padded.
#include "cuda/device.cuh"
#include "cuda/gemm_tile.cuh"
#include "cuda/matmul_out.cuh"
#include "cuda/matrix.cuh"
#include "cuda/ops.cuh"

namespace tessera::cuda {

namespace {

using gemm_tile::kBK;
using gemm_tile::kBM;

constexpr int kSlots = 64;  // a tile's slots (moe_sort.cu kTileSlots)

template <GgmlType T>
struct ExpertRows {
  const ExpertWeights& w;
  int64_t expert, r0;
  __device__ HalfChunkBits load(int i, int64_t kt, int half) const {
    const int64_t col = min(r0 + i, w.parts * w.rows - 1);
    const int part = int(col / w.rows);
    return load_half_chunk<T>(w.part[part], expert * w.rows + col % w.rows, kt, half);
  }
};

struct SlotRows {
  const uint16_t* x;
  int64_t cols32;
  const int32_t* pairs;  // the tile's slots of order[]
  int count, in_div;
  __device__ uint4 load(int j, int64_t kt, int part) const {
    return load16(x + int64_t(pairs[min(j, count - 1)] / in_div) * cols32 + kt * kBK + 8 * part);
  }
};

template <GgmlType T>
__global__ void __launch_bounds__(gemm_tile::kThreads)
    moe_gemm_kernel(ExpertWeights w, const int32_t* order, const int4* tiles, const int32_t* n_tiles, int in_div,
                    const uint16_t* x, MatmulOut out) {
  begin_kernel();
  __shared__ __align__(16) gemm_tile::Tiles<kSlots> s;
  if (int(blockIdx.y) >= *n_tiles) return;  // whole block, before any barrier
  const int4 tile = tiles[blockIdx.y];
  const int64_t r0 = int64_t(blockIdx.x) * kBM;
  const int32_t* pairs = order + tile.y;
  const ExpertRows<T> weights{w, tile.x, r0};
  const SlotRows acts{x, w.part[0].cols32, pairs, tile.z, in_div};
  const int64_t cols = w.parts * w.rows;
  gemm_block_tile<T>(s, weights, acts, w.part[0].cols32 / kBK, [&](int i, int j, float v) {
    if (r0 + i < cols && j < tile.z) store_matmul_out(out, r0 + i, pairs[j], v + expert_bias(out, tile.x, r0 + i));
  });
}

template <GgmlType T>
void launch_for_type(const ExpertWeights& w, const MoeGroups& g, int max_tiles, int in_div, const uint16_t* act_f16,
                     const MatmulOut& out, cudaStream_t s) {
  const dim3 grid(unsigned((w.parts * w.rows + kBM - 1) / kBM), unsigned(max_tiles));
  launch_kernel(moe_gemm_kernel<T>, grid, dim3(gemm_tile::kThreads), s, w, g.order, g.tiles, g.n_tiles, in_div, act_f16,
                out);
}

}  // namespace

void launch_moe_gemm(const ExpertWeights& w, const MoeGroups& g, int max_tiles, int in_div, const uint16_t* act_f16,
                     const MatmulOut& out, cudaStream_t s) {
  // The backend only builds matrices of the types with_weight_type knows.
  with_weight_type(w.part[0].type, [&](auto type) {
    launch_for_type<decltype(type)::value>(w, g, max_tiles, in_div, act_f16, out, s);
  });
}

}  // namespace tessera::cuda
