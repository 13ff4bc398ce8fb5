// AVX2 RMSNorm of one row (compiled with -mavx2 -mfma; called only after run-time
// detection): each square is rounded to fp32 and accumulated in double, as in the scalar path
// and in llama.cpp (each 8 squares widened to two 4-double vectors; the double sum's order
// moves the fp32 mean by far less than its rounding), then y = x * scale (* weight) in fp32.
#include <immintrin.h>

#include "cpu/rms_norm_kernels.h"

namespace tessera::cpu::avx2 {

double sum_squares(const float* x, int dim) {
  __m256d acc0 = _mm256_setzero_pd(), acc1 = _mm256_setzero_pd();
  int i = 0;
  for (; i + 8 <= dim; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    const __m256 sq = _mm256_mul_ps(v, v);
    acc0 = _mm256_add_pd(acc0, _mm256_cvtps_pd(_mm256_castps256_ps128(sq)));
    acc1 = _mm256_add_pd(acc1, _mm256_cvtps_pd(_mm256_extractf128_ps(sq, 1)));
  }
  alignas(32) double lanes[4];
  _mm256_store_pd(lanes, _mm256_add_pd(acc0, acc1));
  double sum = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
  for (; i < dim; ++i) sum += double(x[i] * x[i]);
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
