// gemv: y[t] = W x[t] for up to 8 tokens (decode), W in the repacked layout, fp32 results.
// One warp per weight row (its dot products: gemv_row.cuh), so the weights stream from
// memory exactly once for all tokens. More tokens (the MoE router in prefill, which wants
// the GEMV's fp32 / q8 precision) run in groups of 8 over grid.y, each reading W again.
// Each warp asks L2 for its row before waiting on the kernel that stages the activations
// (programmatic launch, device.cuh), so the weights' transfer overlaps that kernel's tail.
// Launch: grid (ceil(rows / 4), ceil(n_tokens / 8)), block 128 (4 warps). Template N >=
// the tokens of a group (1, 2, 4, 8).
// Invariants: activation rows are cols32 long and zero-padded like the weight rows.
#include "cuda/device.cuh"
#include "cuda/gemv_row.cuh"
#include "cuda/matmul_out.cuh"
#include "cuda/ops.cuh"

namespace tessera::cuda {

namespace {

constexpr int kWarps = 4;

template <GgmlType T, int N>
__global__ void __launch_bounds__(kWarps * 32)
    gemv_kernel(DeviceMatrix m, ActQ8 aq, const float* af, int n, MatmulOut out) {
  allow_dependents();
  const int64_t row = int64_t(blockIdx.x) * kWarps + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  // The weights never depend on the kernels before: they stream while those finish.
  if (row < m.rows) prefetch_gemv_row(m, row, lane);
  wait_for_inputs();
  if (row >= m.rows) return;  // whole warp: no collective is skipped by part of it
  const int64_t t0 = int64_t(blockIdx.y) * N;
  const int group = min(N, n - int(t0));
  const ActQ8 a{aq.q + t0 * m.cols32, aq.ds + t0 * (m.cols32 / 32)};
  float acc[N];
  gemv_row_partials<T, N>(m, row, a, af + t0 * m.cols32, group, lane, acc);

#pragma unroll
  for (int t = 0; t < N; ++t) {
    const float s = warp_sum(acc[t]);
    if (lane == 0 && t < group) store_matmul_out(out, row, t0 + t, s);
  }
}

template <GgmlType T>
void launch_for_type(const DeviceMatrix& w, const StagedAct& act, int n, const MatmulOut& out, cudaStream_t s) {
  const dim3 grid(unsigned((w.rows + kWarps - 1) / kWarps), unsigned((n + 7) / 8)), block(kWarps * 32);
  const ActQ8 aq{act.q8, act.ds};
  if (n <= 1) launch_kernel(gemv_kernel<T, 1>, grid, block, s, w, aq, act.f32, n, out);
  else if (n <= 2) launch_kernel(gemv_kernel<T, 2>, grid, block, s, w, aq, act.f32, n, out);
  else if (n <= 4) launch_kernel(gemv_kernel<T, 4>, grid, block, s, w, aq, act.f32, n, out);
  else launch_kernel(gemv_kernel<T, 8>, grid, block, s, w, aq, act.f32, n, out);
}

}  // namespace

void launch_gemv(const DeviceMatrix& w, const StagedAct& act, int n_tokens, const MatmulOut& out, cudaStream_t s) {
  // The backend only builds matrices of the types with_weight_type knows.
  with_weight_type(w.type, [&](auto type) {
    launch_for_type<decltype(type)::value>(w, act, n_tokens, out, s);
  });
}

}  // namespace tessera::cuda
