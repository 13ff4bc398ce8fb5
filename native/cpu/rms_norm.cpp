// rms_norm: y[t] = x[t] / sqrt(mean(x[t]^2) + eps) * weight, rows split across threads.
// Squares are rounded to fp32 and summed in double (as ggml does, so both round alike);
// in place (y == x) is allowed. The AVX2 twin (rms_norm_avx2.cpp) vectorizes both loops.
#include <algorithm>
#include <cmath>

#include "core/cpu_features.h"
#include "core/thread_pool.h"
#include "cpu/ops.h"
#include "cpu/rms_norm_kernels.h"

namespace tessera::cpu {

namespace {

// Columns [c0, c1) of one normalized row: the sum always over the whole row, in one order,
// so that each y element is x * scale (* weight) whichever stretch computes it.
void norm_row_span(const float* xr, const float* weight, float* yr, int dim, float eps, int64_t c0, int64_t c1, bool avx2) {
  double sum = 0;
  if (avx2) {
    sum = avx2::sum_squares(xr, dim);
  } else {
    for (int i = 0; i < dim; ++i) sum += double(xr[i] * xr[i]);
  }
  const float scale = 1.0f / std::sqrt(static_cast<float>(sum / dim) + eps);
  if (avx2)
    avx2::scale_row(xr + c0, weight ? weight + c0 : nullptr, scale, yr + c0, int(c1 - c0));
  else if (weight)
    for (int64_t i = c0; i < c1; ++i) yr[i] = xr[i] * scale * weight[i];
  else
    for (int64_t i = c0; i < c1; ++i) yr[i] = xr[i] * scale;
}

}  // namespace

void rms_norm(const float* x, const float* weight, float* y, int n_rows, int dim, float eps, int ith, int nth) {
  // Fewer rows than threads (a decode step's one token): every thread sums each row itself,
  // in the same order, and scales its own stretch of columns, rather than one thread doing
  // the row while the others wait. Not in place: a thread's writes would race the others'
  // sums.
  const bool by_columns = n_rows < nth && x != y;
  int64_t r0 = 0, r1 = n_rows, c0 = 0, c1 = dim;
  if (by_columns) {
    split_range((dim + 15) / 16, ith, nth, &c0, &c1);  // 16-float stretches keep the vector loop
    c0 = std::min<int64_t>(dim, c0 * 16);
    c1 = std::min<int64_t>(dim, c1 * 16);
  } else {
    split_range(n_rows, ith, nth, &r0, &r1);
  }
  const bool avx2 = active_cpu_isa() >= CpuIsa::Avx2;
  for (int64_t r = r0; r < r1; ++r) norm_row_span(x + r * dim, weight, y + r * dim, dim, eps, c0, c1, avx2);
}

void rms_norm_span(const float* x, const float* weight, float* y, int dim, float eps, int64_t begin, int64_t end) {
  const bool avx2 = active_cpu_isa() >= CpuIsa::Avx2;
  while (begin < end) {
    const int64_t r = begin / dim, c0 = begin % dim, c1 = std::min<int64_t>(dim, c0 + (end - begin));
    norm_row_span(x + r * dim, weight, y + r * dim, dim, eps, c0, c1, avx2);
    begin += c1 - c0;
  }
}

}  // namespace tessera::cpu
