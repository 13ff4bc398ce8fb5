// gather_rows: out[i] = x[rows[i]] for the rows of a step whose logits are wanted (they need
// not be contiguous: one sequence's last row each), so the final norm and the LM head run
// only over them. Launch: grid (n), block 128.
#include "cuda/device.cuh"
#include "cuda/ops.cuh"

namespace tessera::cuda {

namespace {

__global__ void __launch_bounds__(128) gather_rows_kernel(const float* x, int64_t ldx, const int32_t* rows, int dim, float* out) {
  begin_kernel();
  const float* src = x + int64_t(rows[blockIdx.x]) * ldx;
  float* dst = out + int64_t(blockIdx.x) * dim;
  for (int i = threadIdx.x; i < dim; i += 128) dst[i] = src[i];
}

}  // namespace

void launch_gather_rows(const float* x, int64_t ldx, const int32_t* rows, int n, int dim, float* out, cudaStream_t s) {
  launch_kernel(gather_rows_kernel, dim3(n), dim3(128), s, x, ldx, rows, dim, out);
}

}  // namespace tessera::cuda
