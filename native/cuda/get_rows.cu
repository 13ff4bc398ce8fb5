// get_rows: embedding lookup, out[t] = dequantized row tokens[t] of table [n_vocab][n_embd].
// Launch: grid n tokens x ceil(chunks / 128), block 128; thread = one 32-value chunk.
// Invariants: token ids validated on the host; n_embd a multiple of 32.
#include "cuda/common.cuh"
#include "cuda/ops.cuh"

namespace tessera::cuda {

namespace {

__global__ void get_rows_kernel(GgmlType type, const uint8_t* table, size_t row_bytes, int64_t cols, const int32_t* tokens,
                                float* out) {
  const int t = blockIdx.x;
  const int64_t c = int64_t(blockIdx.y) * blockDim.x + threadIdx.x;
  if (c * 32 >= cols) return;
  float v[32];
  dequant_chunk(type, table + size_t(tokens[t]) * row_bytes, c, v);
  float* o = out + int64_t(t) * cols + c * 32;
#pragma unroll
  for (int i = 0; i < 32; ++i) o[i] = v[i];
}

}  // namespace

void launch_get_rows(const DeviceWeight& table, const int32_t* tokens, int n, float* out, cudaStream_t s) {
  const int64_t chunks = table.cols / 32;
  dim3 grid(n, unsigned((chunks + 127) / 128));
  get_rows_kernel<<<grid, 128, 0, s>>>(table.type, table.data, table.row_bytes, table.cols, tokens, out);
}

}  // namespace tessera::cuda
