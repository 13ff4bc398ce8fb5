// rms_norm: y[t] = x[t] / sqrt(mean(x[t]^2) + eps) * weight, rows split across threads.
// Squares are rounded to fp32 and summed in double (as ggml does, so both round alike);
// in place (y == x) is allowed. The AVX2 twin (rms_norm_avx2.cpp) vectorizes both loops.
#include <cmath>

#include "core/cpu_features.h"
#include "core/thread_pool.h"
#include "cpu/ops.h"
#include "cpu/rms_norm_kernels.h"

namespace tessera::cpu {

void rms_norm(const float* x, const float* weight, float* y, int n_rows, int dim, float eps, int ith, int nth) {
  int64_t r0, r1;
  split_range(n_rows, ith, nth, &r0, &r1);
  const bool avx2 = active_cpu_isa() >= CpuIsa::Avx2;
  for (int64_t r = r0; r < r1; ++r) {
    const float* xr = x + r * dim;
    float* yr = y + r * dim;
    double sum = 0;
    if (avx2) {
      sum = avx2::sum_squares(xr, dim);
    } else {
      for (int i = 0; i < dim; ++i) sum += double(xr[i] * xr[i]);
    }
    const float scale = 1.0f / std::sqrt(static_cast<float>(sum / dim) + eps);
    if (avx2)
      avx2::scale_row(xr, weight, scale, yr, dim);
    else if (weight)
      for (int i = 0; i < dim; ++i) yr[i] = xr[i] * scale * weight[i];
    else
      for (int i = 0; i < dim; ++i) yr[i] = xr[i] * scale;
  }
}

}  // namespace tessera::cpu
