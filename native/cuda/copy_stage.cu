// copy_stage: rows of x [rows][dim] (strided by ldx) staged unchanged, e.g. the attention
// output before the output projection when the attention kernel does not stage it itself.
// Launch: grid (rows, stage_blocks_per_row), block 128; a warp per 32-value chunk.
#include "cuda/device.cuh"
#include "cuda/ops.cuh"
#include "cuda/stage.cuh"

namespace tessera::cuda {

namespace {

constexpr int kWarps = 4;

__global__ void __launch_bounds__(kWarps * 32)
    copy_stage_kernel(const float* x, int64_t ldx, int dim, unsigned formats, StagedAct out, int64_t cols32) {
  begin_kernel();
  const int64_t row = blockIdx.x;
  const float* xr = x + row * ldx;
  stage_row<kWarps>(out, formats, cols32, row, [&](int64_t col) { return col < dim ? xr[col] : 0.f; });
}

}  // namespace

void launch_copy_stage(const float* x, int64_t ldx, int rows, int dim, unsigned formats, const StagedAct& out,
                       cudaStream_t s) {
  const int64_t cols32 = round_up(dim, kChunk);
  launch_kernel(copy_stage_kernel, dim3(rows, stage_blocks_per_row(rows, cols32, kWarps)), dim3(kWarps * 32), s, x,
                ldx, dim, formats, out, cols32);
}

}  // namespace tessera::cuda
