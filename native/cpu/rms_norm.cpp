// rms_norm: y[t] = x[t] / sqrt(mean(x[t]^2) + eps) * weight, rows split across threads.
// The sum of squares accumulates in double (as ggml does) so long rows lose no precision;
// in place (y == x) is allowed.
#include <cmath>

#include "core/thread_pool.h"
#include "cpu/ops.h"

namespace tessera::cpu {

void rms_norm(const float* x, const float* weight, float* y, int n_rows, int dim, float eps, int ith, int nth) {
  int64_t r0, r1;
  split_range(n_rows, ith, nth, &r0, &r1);
  for (int64_t r = r0; r < r1; ++r) {
    const float* xr = x + r * dim;
    float* yr = y + r * dim;
    double sum = 0;
    for (int i = 0; i < dim; ++i) sum += double(xr[i]) * xr[i];
    const float scale = 1.0f / std::sqrt(static_cast<float>(sum / dim) + eps);
    if (weight)
      for (int i = 0; i < dim; ++i) yr[i] = xr[i] * scale * weight[i];
    else
      for (int i = 0; i < dim; ++i) yr[i] = xr[i] * scale;
  }
}

}  // namespace tessera::cpu
