// head_matmul: one weight matrix per attention head (MLA's wk_b and wv_b) applied to the
// (token, head) rows: y[p][r] = W[head_ids[p]][r] . x[p], row p = t * n_head + h. The heads
// are the grouped GEMV's experts under a fixed routing (head_ids[p] = p % n_head), so this is
// moe_gemv (moe_gemv.cu) with pair rows as inputs, launched in slices of at most kSlice rows
// because a launch's grid.y (its pairs) stops at 65535.
// Invariants: act holds gemv_formats_for(w.part[0]) of the rows, cols32 apart.
#include <algorithm>

#include "cuda/ops.cuh"

namespace tessera::cuda {

namespace {

constexpr int kSlice = 32768;

}  // namespace

void launch_head_matmul(const ExpertWeights& w, const int32_t* head_ids, int rows, const StagedAct& act,
                        const MatmulOut& out, cudaStream_t s) {
  const int64_t cols32 = w.part[0].cols32;
  for (int p0 = 0; p0 < rows; p0 += kSlice) {
    StagedAct a = act;
    if (a.q8) a.q8 += p0 * cols32;
    if (a.ds) a.ds += p0 * (cols32 / 32);
    if (a.f32) a.f32 += p0 * cols32;
    MatmulOut o = out;
    o.y += p0 * out.ldy;
    launch_moe_gemv(w, head_ids + p0, std::min(kSlice, rows - p0), 1, a, o, s);
  }
}

}  // namespace tessera::cuda
