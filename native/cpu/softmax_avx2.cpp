// AVX2 exponentiation pass of softmax (compiled with -mavx2 -mfma; called only after run-time
// detection). See softmax_kernels.h for the summation order and why it is fixed.
#include <immintrin.h>

#include <cmath>

#include "cpu/exp_avx2.h"
#include "cpu/hsum_avx2.h"
#include "cpu/softmax_kernels.h"

namespace tessera::cpu::avx2 {

double exp_sum_row(const float* x, float max, float* y, int n) {
  const __m256 m = _mm256_set1_ps(max);
  double sum = 0;
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), m));
    _mm256_storeu_ps(y + i, v);
    sum += double(hsum8(v));
  }
  for (; i < n; ++i) {
    y[i] = std::exp(x[i] - max);
    sum += double(y[i]);
  }
  return sum;
}

}  // namespace tessera::cpu::avx2
