// softmax: x <- exp(x - max) / sum, one row, in place; max-subtraction keeps exp finite.
// The sum is fp64; the AVX2 twin (softmax_avx2.cpp) fixes the exponential and summation
// order to llama.cpp's so router probabilities round alike in both engines.
#include <cmath>

#include "core/cpu_features.h"
#include "cpu/ops.h"
#include "cpu/softmax_kernels.h"

namespace tessera::cpu {

void softmax(float* x, int n) {
  float max = -INFINITY;
  for (int i = 0; i < n; ++i) max = x[i] > max ? x[i] : max;
  double sum = 0;
  if (active_cpu_isa() >= CpuIsa::Avx2) {
    sum = avx2::exp_sum_row(x, max, x, n);
  } else {
    for (int i = 0; i < n; ++i) {
      x[i] = std::exp(x[i] - max);
      sum += x[i];
    }
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int i = 0; i < n; ++i) x[i] *= inv;
}

}  // namespace tessera::cpu
