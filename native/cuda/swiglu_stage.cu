// swiglu_stage: h = act(gate) * up per element, act = SiLU (g / (1 + e^-g)) or GELU (tanh
// approximation), or gpt-oss's clamped SwiGLU (its own function of gate and up), for rows of gate_up [rows][2 * ff] (gate columns first, then up), written
// straight into the staged formats the down projection reads.
// Launch: grid (rows, stage_blocks_per_row), block 128; a warp per 32-value chunk.
#include "cuda/device.cuh"
#include "cuda/ops.cuh"
#include "cuda/stage.cuh"

namespace tessera::cuda {

namespace {

constexpr int kWarps = 4;

__device__ __forceinline__ float gated(float g, float u, GateActivation act) {
  if (act == GateActivation::Gelu) return 0.5f * g * (1.0f + tanhf(0.7978845608028654f * g * (1.0f + 0.044715f * g * g))) * u;
  if (act == GateActivation::SwigluOai) {
    // As the CPU's swiglu_oai: alpha 1.702, limit 7.
    const float x = fminf(g, 7.0f), y = fminf(fmaxf(u, -7.0f), 7.0f);
    return x / (1.0f + expf(1.702f * -x)) * (y + 1.0f);
  }
  return g / (1.0f + expf(-g)) * u;
}

__global__ void __launch_bounds__(kWarps * 32)
    swiglu_stage_kernel(const float* gate_up, int ff, GateActivation act, unsigned formats, StagedAct out, int64_t cols32) {
  begin_kernel();
  const int64_t row = blockIdx.x;
  const float* gate = gate_up + row * 2 * int64_t(ff);
  const float* up = gate + ff;
  stage_row<kWarps>(out, formats, cols32, row, [&](int64_t col) { return col < ff ? gated(gate[col], up[col], act) : 0.f; });
}

}  // namespace

void launch_swiglu_stage(const float* gate_up, int rows, int ff, GateActivation act, unsigned formats,
                         const StagedAct& out, cudaStream_t s) {
  const int64_t cols32 = round_up(ff, kChunk);
  launch_kernel(swiglu_stage_kernel, dim3(rows, stage_blocks_per_row(rows, cols32, kWarps)), dim3(kWarps * 32), s,
                gate_up, ff, act, formats, out, cols32);
}

}  // namespace tessera::cuda
