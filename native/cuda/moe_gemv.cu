// moe_gemv: the grouped GEMV of a mixture-of-experts block for decode (up to 8 tokens): for
// each (token, choice) pair p, y[p][i * rows + r] = W_i[experts[p]][r] . x[p / in_div], so
// only the selected experts' rows are read (expert ids come from device memory: one launch
// serves every routing, inside the decode graph). One warp per (output row, pair), its dot
// product as the dense GEMV's (gemv_row.cuh), q8 activations for quantized weights, fp32
// for float ones.
// Launch: grid (ceil(parts * rows / 4), pairs), block 128 (4 warps).
// Invariants: both parts share a type and width; activation rows are cols32 long,
// zero-padded; experts[p] < n_expert.
#include "cuda/device.cuh"
#include "cuda/gemv_row.cuh"
#include "cuda/matmul_out.cuh"
#include "cuda/ops.cuh"

namespace tessera::cuda {

namespace {

constexpr int kWarps = 4;

template <GgmlType T>
__global__ void __launch_bounds__(kWarps * 32)
    moe_gemv_kernel(ExpertWeights w, const int32_t* experts, int in_div, ActQ8 aq, const float* af, MatmulOut out) {
  begin_kernel();
  const int64_t col = int64_t(blockIdx.x) * kWarps + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  if (col >= w.parts * w.rows) return;  // whole warp
  const int p = blockIdx.y;
  const int part = int(col / w.rows);
  const DeviceMatrix& m = w.part[part];
  const int64_t row = int64_t(experts[p]) * w.rows + col % w.rows;
  const int64_t in = p / in_div;
  const ActQ8 a{aq.q + in * m.cols32, aq.ds + in * (m.cols32 / 32)};
  float acc[1];
  gemv_row_partials<T, 1>(m, row, a, af + in * m.cols32, 1, lane, acc);
  const float s = warp_sum(acc[0]);
  if (lane == 0) store_matmul_out(out, col, p, s + expert_bias(out, experts[p], col));
}

template <GgmlType T>
void launch_for_type(const ExpertWeights& w, const int32_t* experts, int pairs, int in_div, const StagedAct& act,
                     const MatmulOut& out, cudaStream_t s) {
  const dim3 grid(unsigned((w.parts * w.rows + kWarps - 1) / kWarps), unsigned(pairs)), block(kWarps * 32);
  launch_kernel(moe_gemv_kernel<T>, grid, block, s, w, experts, in_div, ActQ8{act.q8, act.ds}, act.f32, out);
}

}  // namespace

void launch_moe_gemv(const ExpertWeights& w, const int32_t* experts, int pairs, int in_div, const StagedAct& act,
                     const MatmulOut& out, cudaStream_t s) {
  // The backend only builds matrices of the types with_weight_type knows.
  with_weight_type(w.part[0].type, [&](auto type) {
    launch_for_type<decltype(type)::value>(w, experts, pairs, in_div, act, out, s);
  });
}

}  // namespace tessera::cuda
