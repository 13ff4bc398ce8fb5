// gemm: Y[t][r] = W[r] . X[t] for many tokens (prefill) on the tensor cores, one
// gemm_block_tile (gemm_tile.cuh: fp16 tiles decoded from the repacked weights, fp16 staged
// activations, fp32 accumulation through mma.sync) per 128 weight rows x 64 tokens.
// Launch: grid (ceil(rows / 128), ceil(tokens / 64)), block 256.
// Invariants: activation rows are cols32 halves, zero-padded like the weight rows.
#include "cuda/device.cuh"
#include "cuda/gemm_tile.cuh"
#include "cuda/matmul_out.cuh"
#include "cuda/matrix.cuh"
#include "cuda/ops.cuh"

namespace tessera::cuda {

namespace {

using gemm_tile::kBM;
using gemm_tile::kBN;
using gemm_tile::kBK;

struct WeightRows {
  const DeviceMatrix& m;
  int64_t r0;
  __device__ void decode(int i, int64_t kt, int half, float v[16]) const {
    if (r0 + i < m.rows) {
      decode_half_chunk(m, r0 + i, kt, half, v);
    } else {
#pragma unroll
      for (int k = 0; k < 16; ++k) v[k] = 0.f;
    }
  }
};

struct TokenRows {
  const uint16_t* x;
  int64_t cols32;
  int t0, n_tokens;
  __device__ uint4 load(int j, int64_t kt, int part) const {
    if (t0 + j >= n_tokens) return make_uint4(0, 0, 0, 0);
    return load16(x + (int64_t(t0) + j) * cols32 + kt * kBK + 8 * part);
  }
};

__global__ void __launch_bounds__(gemm_tile::kThreads)
    gemm_kernel(DeviceMatrix m, const uint16_t* x, int n_tokens, MatmulOut out) {
  begin_kernel();
  __shared__ __align__(16) gemm_tile::Tiles s;
  const int64_t r0 = int64_t(blockIdx.x) * kBM;
  const int t0 = blockIdx.y * kBN;
  const WeightRows weights{m, r0};
  const TokenRows acts{x, m.cols32, t0, n_tokens};
  gemm_block_tile(s, weights, acts, m.cols32 / kBK, [&](int i, int j, float v) {
    if (r0 + i < m.rows && t0 + j < n_tokens) store_matmul_out(out, r0 + i, t0 + j, v);
  });
}

}  // namespace

void launch_gemm(const DeviceMatrix& w, const uint16_t* act_f16, int n_tokens, const MatmulOut& out, cudaStream_t s) {
  const dim3 grid(unsigned((w.rows + kBM - 1) / kBM), unsigned((n_tokens + kBN - 1) / kBN));
  launch_kernel(gemm_kernel, grid, dim3(gemm_tile::kThreads), s, w, act_f16, n_tokens, out);
}

}  // namespace tessera::cuda
