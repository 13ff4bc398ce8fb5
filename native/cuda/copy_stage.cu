// copy_stage: rows of x [rows][dim] (strided by ldx) staged unchanged, e.g. the attention
// output before the output projection. Launch: grid = rows, block 128; each thread stages
// whole 32-value chunks.
#include "cuda/device.cuh"
#include "cuda/ops.cuh"
#include "cuda/stage.cuh"

namespace tessera::cuda {

namespace {

constexpr int kThreads = 128;

__global__ void __launch_bounds__(kThreads)
    copy_stage_kernel(const float* x, int64_t ldx, int dim, unsigned formats, StagedAct out, int64_t cols32) {
  begin_kernel();
  const int64_t row = blockIdx.x;
  const float* xr = x + row * ldx;
  for (int64_t c = threadIdx.x; c < cols32 / 32; c += kThreads) {
    float v[32];
#pragma unroll
    for (int i = 0; i < 32; ++i) v[i] = 32 * c + i < dim ? xr[32 * c + i] : 0.f;
    stage_chunk(out, formats, cols32, row, c, v);
  }
}

}  // namespace

void launch_copy_stage(const float* x, int64_t ldx, int rows, int dim, unsigned formats, const StagedAct& out,
                       cudaStream_t s) {
  launch_kernel(copy_stage_kernel, dim3(rows), dim3(kThreads), s, x, ldx, dim, formats, out, round_up(dim, kChunk));
}

}  // namespace tessera::cuda
