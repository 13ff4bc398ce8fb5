// layer_norm: y[t] = (x[t] - mean) / sqrt(var + eps) * weight + bias, rows split across
// threads; statistics in double. In place allowed.
#include <cmath>

#include "core/thread_pool.h"
#include "cpu/ops.h"

namespace tessera::cpu {

void layer_norm(const float* x, const float* weight, const float* bias, float* y, int n_rows, int dim, float eps,
                int ith, int nth) {
  int64_t r0, r1;
  split_range(n_rows, ith, nth, &r0, &r1);
  for (int64_t r = r0; r < r1; ++r) {
    const float* xr = x + r * dim;
    float* yr = y + r * dim;
    double mean = 0;
    for (int i = 0; i < dim; ++i) mean += xr[i];
    mean /= dim;
    double var = 0;
    for (int i = 0; i < dim; ++i) var += (xr[i] - mean) * (xr[i] - mean);
    const float scale = 1.0f / std::sqrt(static_cast<float>(var / dim) + eps);
    for (int i = 0; i < dim; ++i) {
      float v = static_cast<float>(xr[i] - mean) * scale;
      if (weight) v *= weight[i];
      if (bias) v += bias[i];
      yr[i] = v;
    }
  }
}

}  // namespace tessera::cpu
