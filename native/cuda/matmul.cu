// matmul: y[t][r] = W[r] . x[t] with W in its GGUF type on the device, x fp32.
//
// Decode (n_tokens <= 8): GEMV, one warp per weight row; lanes stride over the row's
// 32-value chunks, dequantize a chunk in registers and dot it with every token's x chunk,
// so the weights stream from HBM exactly once. Launch: grid ceil(rows / 4), block 128.
//
// Prefill (n_tokens > 8): tensor-core GEMM (WMMA m16n16k16, fp16 inputs, fp32 accumulate).
// A block computes a 64-row x 64-token tile; per 32-column step it dequantizes the weight
// tile and converts the activation tile to fp16 in shared memory. Launch: grid
// (ceil(rows / 64), ceil(tokens / 64)), block 128 (4 warps, 32x32 outputs each).
// Invariant: cols is a multiple of 32 (every supported type's rows are whole chunks).
#include <mma.h>

#include <algorithm>

#include "cuda/common.cuh"
#include "cuda/ops.cuh"

namespace tessera::cuda {

namespace {

template <int N>
__global__ void gemv_kernel(GgmlType type, const uint8_t* w, size_t row_bytes, int64_t rows, int64_t cols, const float* x,
                            float* y, int64_t ldy) {
  const int64_t r = int64_t(blockIdx.x) * 4 + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  if (r >= rows) return;
  const uint8_t* row = w + r * row_bytes;
  float acc[N] = {};
  for (int64_t c = lane; c * 32 < cols; c += 32) {
    float wv[32];
    dequant_chunk(type, row, c, wv);
#pragma unroll
    for (int k = 0; k < N; ++k) {
      const float4* xv = reinterpret_cast<const float4*>(x + k * cols + c * 32);
      float s = 0.f;
#pragma unroll
      for (int i = 0; i < 8; ++i) {
        const float4 v = xv[i];
        s += wv[4 * i] * v.x + wv[4 * i + 1] * v.y + wv[4 * i + 2] * v.z + wv[4 * i + 3] * v.w;
      }
      acc[k] += s;
    }
  }
#pragma unroll
  for (int k = 0; k < N; ++k) {
    const float s = warp_sum(acc[k]);
    if (lane == 0) y[k * ldy + r] = s;
  }
}

// Rows whose length is not a whole number of 32-value chunks (small fp models): one lane
// per element, any N up to 8.
template <int N>
__global__ void gemv_plain_kernel(GgmlType type, const uint8_t* w, size_t row_bytes, int64_t rows, int64_t cols,
                                  const float* x, float* y, int64_t ldy) {
  const int64_t r = int64_t(blockIdx.x) * 4 + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  if (r >= rows) return;
  const uint8_t* row = w + r * row_bytes;
  float acc[N] = {};
  for (int64_t c = lane; c < cols; c += 32) {
    const float wv = type == GgmlType::F32 ? reinterpret_cast<const float*>(row)[c]
                     : type == GgmlType::F16 ? half_bits(reinterpret_cast<const uint16_t*>(row)[c])
                                             : bf16_bits(reinterpret_cast<const uint16_t*>(row)[c]);
#pragma unroll
    for (int k = 0; k < N; ++k) acc[k] += wv * x[k * cols + c];
  }
#pragma unroll
  for (int k = 0; k < N; ++k) {
    const float s = warp_sum(acc[k]);
    if (lane == 0) y[k * ldy + r] = s;
  }
}

constexpr int kTile = 64, kStep = 32;

__global__ void gemm_kernel(GgmlType type, const uint8_t* w, size_t row_bytes, int64_t rows, int64_t cols, const float* x,
                            int n_tokens, float* y, int64_t ldy) {
  using namespace nvcuda;
  __shared__ __align__(32) half ws[kTile][kStep + 8];  // weights [row][k]
  __shared__ __align__(32) half xs[kTile][kStep + 8];  // activations [token][k]
  __shared__ __align__(32) float out[4][16][16];
  const int64_t r0 = int64_t(blockIdx.x) * kTile;
  const int t0 = blockIdx.y * kTile;
  const int warp = threadIdx.x >> 5;
  const int wr = (warp >> 1) * 32, wt = (warp & 1) * 32;  // this warp's 32x32 sub-tile
  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2][2];
  for (auto& a : acc)
    for (auto& f : a) wmma::fill_fragment(f, 0.f);

  for (int64_t k0 = 0; k0 < cols; k0 += kStep) {
    // 64 weight rows x one 32-value chunk: threads 0..63 dequantize a row each.
    if (threadIdx.x < kTile) {
      float v[32];
      const int64_t r = r0 + threadIdx.x;
      if (r < rows) dequant_chunk(type, w + r * row_bytes, k0 / 32, v);
      else
        for (int i = 0; i < 32; ++i) v[i] = 0.f;
      for (int i = 0; i < 32; ++i) ws[threadIdx.x][i] = __float2half(v[i]);
    } else {
      const int t = threadIdx.x - kTile;
      const bool valid = t0 + t < n_tokens;
      const float* xr = x + int64_t(t0 + t) * cols + k0;
      for (int i = 0; i < 32; ++i) xs[t][i] = __float2half(valid ? xr[i] : 0.f);
    }
    __syncthreads();
    for (int kk = 0; kk < kStep; kk += 16) {
      wmma::fragment<wmma::matrix_a, 16, 16, 16, half, wmma::row_major> a[2];
      wmma::fragment<wmma::matrix_b, 16, 16, 16, half, wmma::col_major> b[2];
      for (int i = 0; i < 2; ++i) wmma::load_matrix_sync(a[i], &ws[wr + 16 * i][kk], kStep + 8);
      for (int j = 0; j < 2; ++j) wmma::load_matrix_sync(b[j], &xs[wt + 16 * j][kk], kStep + 8);
      for (int i = 0; i < 2; ++i)
        for (int j = 0; j < 2; ++j) wmma::mma_sync(acc[i][j], a[i], b[j], acc[i][j]);
    }
    __syncthreads();
  }
  // acc[i][j] holds rows wr+16i.., tokens wt+16j..: stage through smem to write y[t][r].
  const int lane = threadIdx.x & 31;
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 2; ++j) {
      wmma::store_matrix_sync(&out[warp][0][0], acc[i][j], 16, wmma::mem_row_major);
      __syncwarp();
      for (int e = lane; e < 256; e += 32) {
        const int rr = e / 16, tt = e % 16;
        const int64_t r = r0 + wr + 16 * i + rr;
        const int t = t0 + wt + 16 * j + tt;
        if (r < rows && t < n_tokens) y[int64_t(t) * ldy + r] = out[warp][rr][tt];
      }
      __syncwarp();
    }
}

}  // namespace

void launch_matmul(const DeviceWeight& w, const float* x, int n_tokens, float* y, int64_t ldy, cudaStream_t s) {
  const unsigned blocks = unsigned((w.rows + 3) / 4);
  if (w.cols % 32 != 0) {
    for (int t = 0; t < n_tokens; t += 8) {
      const int n = std::min(8, n_tokens - t);
      const float* xt = x + int64_t(t) * w.cols;
      float* yt = y + int64_t(t) * ldy;
      if (n == 8) gemv_plain_kernel<8><<<blocks, 128, 0, s>>>(w.type, w.data, w.row_bytes, w.rows, w.cols, xt, yt, ldy);
      else
        for (int k = 0; k < n; ++k)
          gemv_plain_kernel<1><<<blocks, 128, 0, s>>>(w.type, w.data, w.row_bytes, w.rows, w.cols, xt + k * w.cols, yt + k * ldy, ldy);
    }
    return;
  }
  if (n_tokens > 8) {
    dim3 grid(unsigned((w.rows + kTile - 1) / kTile), unsigned((n_tokens + kTile - 1) / kTile));
    gemm_kernel<<<grid, 128, 0, s>>>(w.type, w.data, w.row_bytes, w.rows, w.cols, x, n_tokens, y, ldy);
    return;
  }
#define TESSERA_GEMV(N) gemv_kernel<N><<<blocks, 128, 0, s>>>(w.type, w.data, w.row_bytes, w.rows, w.cols, x, y, ldy)
  switch (n_tokens) {
    case 1: TESSERA_GEMV(1); break;
    case 2: TESSERA_GEMV(2); break;
    case 3: TESSERA_GEMV(3); break;
    case 4: TESSERA_GEMV(4); break;
    case 5: TESSERA_GEMV(5); break;
    case 6: TESSERA_GEMV(6); break;
    case 7: TESSERA_GEMV(7); break;
    default: TESSERA_GEMV(8); break;
  }
#undef TESSERA_GEMV
}

}  // namespace tessera::cuda
