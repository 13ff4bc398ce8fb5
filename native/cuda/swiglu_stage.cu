// swiglu_stage: h = act(gate) * up per element, act = SiLU (g / (1 + e^-g)) or GELU (tanh
// approximation), for rows of gate_up [rows][2 * ff] (gate columns first, then up), written
// straight into the staged formats the down projection reads.
// Launch: grid = rows, block 128; each thread stages whole 32-value chunks.
#include <algorithm>

#include "cuda/device.cuh"
#include "cuda/ops.cuh"
#include "cuda/stage.cuh"

namespace tessera::cuda {

namespace {

constexpr int kThreads = 128;

__device__ __forceinline__ float gate_activation(float g, bool gelu) {
  if (gelu) return 0.5f * g * (1.0f + tanhf(0.7978845608028654f * g * (1.0f + 0.044715f * g * g)));
  return g / (1.0f + expf(-g));
}

__global__ void __launch_bounds__(kThreads)
    swiglu_stage_kernel(const float* gate_up, int ff, bool gelu, unsigned formats, StagedAct out, int64_t cols32) {
  begin_kernel();
  const int64_t row = blockIdx.x;
  const float* gate = gate_up + row * 2 * int64_t(ff);
  const float* up = gate + ff;
  // Chunks are spread over grid.y too: a decode row (one token) would leave one block
  // looping over every chunk of a 10k-wide row.
  for (int64_t c = int64_t(blockIdx.y) * kThreads + threadIdx.x; c < cols32 / 32; c += int64_t(gridDim.y) * kThreads) {
    float v[32];
#pragma unroll
    for (int i = 0; i < 32; ++i) {
      const int64_t col = 32 * c + i;
      v[i] = col < ff ? gate_activation(gate[col], gelu) * up[col] : 0.f;
    }
    stage_chunk(out, formats, cols32, row, c, v);
  }
}

}  // namespace

void launch_swiglu_stage(const float* gate_up, int rows, int ff, GateActivation act, unsigned formats,
                         const StagedAct& out, cudaStream_t s) {
  const int64_t chunks = round_up(ff, kChunk) / kChunk;
  const unsigned chunk_blocks = unsigned(std::min<int64_t>(8, (chunks + kThreads - 1) / kThreads));
  launch_kernel(swiglu_stage_kernel, dim3(rows, chunk_blocks), dim3(kThreads), s, gate_up, ff, act == GateActivation::Gelu, formats,
                out, round_up(ff, kChunk));
}

}  // namespace tessera::cuda
