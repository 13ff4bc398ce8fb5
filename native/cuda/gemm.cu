// gemm: Y[t][r] = W[r] . X[t] for many tokens (prefill) on the tensor cores: weights are
// decoded from the repacked layout into fp16 tiles in shared memory, activations come
// staged as fp16, products accumulate in fp32 through mma.sync.m16n8k16.
// Tiles: a block computes 128 weight rows x 64 tokens, stepping K by 32. 8 warps in a 4 x 2
// grid own 32 x 32 outputs each (2 x 4 mma tiles). Shared memory is double-buffered: while
// the warps multiply tile k, every thread decodes its half-chunk (16 values of one row) and
// copies its 16 bytes of activations for tile k + 1, so one barrier per step suffices.
// Rows are padded by 8 halves, which makes the fragment loads bank-conflict free.
// Launch: grid (ceil(rows / 128), ceil(tokens / 64)), block 256.
// Invariants: activation rows are cols32 halves, zero-padded like the weight rows.
#include "cuda/device.cuh"
#include "cuda/matmul_out.cuh"
#include "cuda/matrix.cuh"
#include "cuda/ops.cuh"

namespace tessera::cuda {

namespace {

constexpr int kBM = 128, kBN = 64, kBK = 32, kPad = 8, kLd = kBK + kPad;
constexpr int kThreads = 256;

struct GemmTiles {
  uint16_t a[2][kBM][kLd];  // weights [row][k]
  uint16_t b[2][kBN][kLd];  // activations [token][k]
};

__device__ __forceinline__ uint32_t smem_pair(const uint16_t* p) { return *reinterpret_cast<const uint32_t*>(p); }

__device__ __forceinline__ void load_tiles(GemmTiles& s, int buf, const DeviceMatrix& m, const uint16_t* x, int n_tokens,
                                           int64_t r0, int t0, int64_t kt) {
  // Weights: thread -> (row, half chunk).
  {
    const int row = threadIdx.x >> 1, half = threadIdx.x & 1;
    float v[16];
    if (r0 + row < m.rows) {
      decode_half_chunk(m, r0 + row, kt, half, v);
    } else {
#pragma unroll
      for (int i = 0; i < 16; ++i) v[i] = 0.f;
    }
    uint4* dst = reinterpret_cast<uint4*>(&s.a[buf][row][16 * half]);
    dst[0] = make_uint4(pack_half2(v[0], v[1]), pack_half2(v[2], v[3]), pack_half2(v[4], v[5]), pack_half2(v[6], v[7]));
    dst[1] = make_uint4(pack_half2(v[8], v[9]), pack_half2(v[10], v[11]), pack_half2(v[12], v[13]),
                        pack_half2(v[14], v[15]));
  }
  // Activations: thread -> (token, 8 halves).
  {
    const int tok = threadIdx.x >> 2, part = threadIdx.x & 3;
    uint4 v = make_uint4(0, 0, 0, 0);
    if (t0 + tok < n_tokens) v = load16(x + (int64_t(t0) + tok) * m.cols32 + kt * kBK + 8 * part);
    *reinterpret_cast<uint4*>(&s.b[buf][tok][8 * part]) = v;
  }
}

__global__ void __launch_bounds__(kThreads) gemm_kernel(DeviceMatrix m, const uint16_t* x, int n_tokens, MatmulOut out) {
  begin_kernel();
  __shared__ __align__(16) GemmTiles s;
  const int64_t r0 = int64_t(blockIdx.x) * kBM;
  const int t0 = blockIdx.y * kBN;
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

  const int64_t k_tiles = m.cols32 / kBK;
  load_tiles(s, 0, m, x, n_tokens, r0, t0, 0);
  __syncthreads();
  for (int64_t kt = 0; kt < k_tiles; ++kt) {
    const int buf = int(kt & 1);
    if (kt + 1 < k_tiles) load_tiles(s, buf ^ 1, m, x, n_tokens, r0, t0, kt + 1);
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
      for (int e = 0; e < 4; ++e) {
        const int64_t row = r0 + wm + 16 * i + g + (e >= 2 ? 8 : 0);
        const int64_t tok = t0 + wn + 8 * j + 2 * tg + (e & 1);
        if (row < m.rows && tok < n_tokens) store_matmul_out(out, row, tok, acc[i][j][e]);
      }
}

}  // namespace

void launch_gemm(const DeviceMatrix& w, const uint16_t* act_f16, int n_tokens, const MatmulOut& out, cudaStream_t s) {
  const dim3 grid(unsigned((w.rows + kBM - 1) / kBM), unsigned((n_tokens + kBN - 1) / kBN));
  launch_kernel(gemm_kernel, grid, dim3(kThreads), s, w, act_f16, n_tokens, out);
}

}  // namespace tessera::cuda
