// gemm: Y[t][r] = W[r] . X[t] for many tokens (prefill) on the tensor cores, one
// gemm_block_tile (gemm_tile.cuh: fp16 tiles decoded from the repacked weights, fp16 staged
// activations, fp32 accumulation through mma.sync, next tile's loads in flight) per 128
// weight rows x 128 tokens, or x 64 tokens when 128-token tiles would leave SMs short of
// blocks.
// Launch: grid (ceil(rows / 128), ceil(tokens / BN)), block 256; one kernel per weight type.
// Invariants: activation rows are cols32 halves, zero-padded like the weight rows.
#include "cuda/device.cuh"
#include "cuda/gemm_tile.cuh"
#include "cuda/matmul_out.cuh"
#include "cuda/matrix.cuh"
#include "cuda/ops.cuh"

namespace tessera::cuda {

namespace {

using gemm_tile::kBK;
using gemm_tile::kBM;

template <GgmlType T>
struct WeightRows {
  const DeviceMatrix& m;
  int64_t r0;
  __device__ HalfChunkBits load(int i, int64_t kt, int half) const {
    return load_half_chunk<T>(m, min(r0 + i, m.rows - 1), kt, half);
  }
};

struct TokenRows {
  const uint16_t* x;
  int64_t cols32;
  int t0, n_tokens;
  __device__ uint4 load(int j, int64_t kt, int part) const {
    return load16(x + int64_t(min(t0 + j, n_tokens - 1)) * cols32 + kt * kBK + 8 * part);
  }
};

template <GgmlType T, int BN>
__global__ void __launch_bounds__(gemm_tile::kThreads)
    gemm_kernel(DeviceMatrix m, const uint16_t* x, int n_tokens, MatmulOut out) {
  begin_kernel();
  __shared__ __align__(16) gemm_tile::Tiles<BN> s;
  const int64_t r0 = int64_t(blockIdx.x) * kBM;
  const int t0 = blockIdx.y * BN;
  const WeightRows<T> weights{m, r0};
  const TokenRows acts{x, m.cols32, t0, n_tokens};
  gemm_block_tile<T>(s, weights, acts, m.cols32 / kBK, [&](int i, int j, float v) {
    if (r0 + i < m.rows && t0 + j < n_tokens) store_matmul_out(out, r0 + i, t0 + j, v);
  });
}

template <GgmlType T>
void launch_for_type(const DeviceMatrix& w, const uint16_t* act_f16, int n_tokens, const MatmulOut& out,
                     cudaStream_t s) {
  const unsigned row_blocks = unsigned((w.rows + kBM - 1) / kBM);
  const unsigned wide_blocks = row_blocks * unsigned((n_tokens + 127) / 128);
  const dim3 block(gemm_tile::kThreads);
  // 128-token tiles decode each weight tile half as often as 64-token ones, but only pay
  // when they still give every SM two blocks: with fewer, the SMs idle on memory latency.
  if (wide_blocks >= 2u * unsigned(device_sm_count()))
    launch_kernel(gemm_kernel<T, 128>, dim3(row_blocks, unsigned((n_tokens + 127) / 128)), block, s, w, act_f16,
                  n_tokens, out);
  else launch_kernel(gemm_kernel<T, 64>, dim3(row_blocks, unsigned((n_tokens + 63) / 64)), block, s, w, act_f16,
                     n_tokens, out);
}

}  // namespace

void launch_gemm(const DeviceMatrix& w, const uint16_t* act_f16, int n_tokens, const MatmulOut& out, cudaStream_t s) {
  // The backend only builds matrices of the types with_weight_type knows.
  with_weight_type(w.type, [&](auto type) {
    launch_for_type<decltype(type)::value>(w, act_f16, n_tokens, out, s);
  });
}

}  // namespace tessera::cuda
