// get_rows: embedding lookup, out[t] = scale * row tokens[t] of table [n_vocab][cols]
// (scale 0 means none), decoded from the repacked weight layout.
// Launch: grid (n, ceil(chunks / 128)), block 128; a thread decodes one 32-value chunk.
// Invariants: token ids were validated on the host; out is [n][cols], dense.
#include "cuda/device.cuh"
#include "cuda/matrix.cuh"
#include "cuda/ops.cuh"

namespace tessera::cuda {

namespace {

constexpr int kThreads = 128;

__global__ void __launch_bounds__(kThreads)
    get_rows_kernel(DeviceMatrix table, const int32_t* tokens, float scale, float* out) {
  begin_kernel();
  const int64_t t = blockIdx.x;
  const int64_t c = int64_t(blockIdx.y) * kThreads + threadIdx.x;
  if (c >= table.cols32 / 32) return;
  float v[32];
  decode_chunk(table, tokens[t], c, v);
  float* o = out + t * table.cols;
#pragma unroll
  for (int i = 0; i < 32; ++i) {
    const int64_t col = 32 * c + i;
    if (col < table.cols) o[col] = scale != 0.f ? v[i] * scale : v[i];
  }
}

}  // namespace

void launch_get_rows(const DeviceMatrix& table, const int32_t* tokens, int n, float scale, float* out, cudaStream_t s) {
  const int64_t chunks = table.cols32 / 32;
  launch_kernel(get_rows_kernel, dim3(n, unsigned((chunks + kThreads - 1) / kThreads)), dim3(kThreads), s, table, tokens,
                scale, out);
}

}  // namespace tessera::cuda
