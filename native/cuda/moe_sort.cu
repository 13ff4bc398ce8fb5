// moe_sort: groups the (token, choice) pairs of a prefill batch by expert for the grouped
// GEMM. A stable counting sort: count per expert, exclusive prefix sum, then each expert's
// pairs in pair order (so the result is deterministic); the slots are then cut into tiles of
// at most 64 slots of one expert, (expert, first slot, count), which index the GEMM's grid.
// Layout: experts [pairs] -> order [pairs] (slot -> pair), tiles [<= moe_max_tiles], n_tiles.
// Launch: one block of 256 threads (thread e % 256 owns expert e); the prefix sum and the
// tile list are serial in thread 0 (n_expert <= kMaxExperts steps).
// Invariants: expert ids are in [0, n_expert).
#include <algorithm>

#include "cuda/device.cuh"
#include "cuda/ops.cuh"

namespace tessera::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int kTileSlots = 64;  // the GEMM's token tile (moe_gemm.cu kSlots)

__global__ void __launch_bounds__(kThreads)
    moe_sort_kernel(const int32_t* experts, int pairs, int n_expert, int32_t* order, int4* tiles, int32_t* n_tiles) {
  begin_kernel();
  __shared__ int32_t count[kMaxExperts];
  __shared__ int32_t start[kMaxExperts];
  for (int e = threadIdx.x; e < n_expert; e += kThreads) {
    int c = 0;
    for (int p = 0; p < pairs; ++p) c += experts[p] == e;
    count[e] = c;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    int slot = 0, tile = 0;
    for (int e = 0; e < n_expert; ++e) {
      start[e] = slot;
      for (int first = 0; first < count[e]; first += kTileSlots)
        tiles[tile++] = make_int4(e, slot + first, min(kTileSlots, count[e] - first), 0);
      slot += count[e];
    }
    *n_tiles = tile;
  }
  __syncthreads();
  for (int e = threadIdx.x; e < n_expert; e += kThreads) {
    int at = start[e];
    for (int p = 0; p < pairs; ++p)
      if (experts[p] == e) order[at++] = p;
  }
}

}  // namespace

int moe_max_tiles(int pairs, int n_expert) { return (pairs + kTileSlots - 1) / kTileSlots + std::min(pairs, n_expert); }

void launch_moe_sort(const int32_t* experts, int pairs, int n_expert, const MoeGroups& g, cudaStream_t s) {
  launch_kernel(moe_sort_kernel, dim3(1), dim3(kThreads), s, experts, pairs, n_expert, g.order, g.tiles, g.n_tiles);
}

}  // namespace tessera::cuda
