// softmax: x <- exp(x - max) / sum, one row, in place; max-subtraction keeps exp finite.
#include <cmath>

#include "cpu/ops.h"

namespace tessera::cpu {

void softmax(float* x, int n) {
  float max = -INFINITY;
  for (int i = 0; i < n; ++i) max = x[i] > max ? x[i] : max;
  double sum = 0;
  for (int i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - max);
    sum += x[i];
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int i = 0; i < n; ++i) x[i] *= inv;
}

}  // namespace tessera::cpu
