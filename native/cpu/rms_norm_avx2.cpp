// AVX2 RMSNorm of one row (compiled with -mavx2 -mfma; called only after run-time
// detection): the sum of squares accumulates in double as in the scalar path (each 8 floats
// widened to two 4-double vectors), then y = x * scale (* weight) in fp32.
#include <immintrin.h>

#include "cpu/rms_norm_kernels.h"

namespace tessera::cpu::avx2 {

double sum_squares(const float* x, int dim) {
  __m256d acc0 = _mm256_setzero_pd(), acc1 = _mm256_setzero_pd();
  int i = 0;
  for (; i + 8 <= dim; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    const __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(v)), hi = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
    acc0 = _mm256_fmadd_pd(lo, lo, acc0);
    acc1 = _mm256_fmadd_pd(hi, hi, acc1);
  }
  alignas(32) double lanes[4];
  _mm256_store_pd(lanes, _mm256_add_pd(acc0, acc1));
  double sum = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
  for (; i < dim; ++i) sum += double(x[i]) * x[i];
  return sum;
}

void scale_row(const float* x, const float* weight, float scale, float* y, int dim) {
  const __m256 s = _mm256_set1_ps(scale);
  int i = 0;
  for (; i + 8 <= dim; i += 8) {
    __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + i), s);
    if (weight) v = _mm256_mul_ps(v, _mm256_loadu_ps(weight + i));
    _mm256_storeu_ps(y + i, v);
  }
  for (; i < dim; ++i) y[i] = weight ? x[i] * scale * weight[i] : x[i] * scale;
}

}  // namespace tessera::cpu::avx2
