// e^x on 8 lanes for the AVX2 kernels (include only from *_avx2.cpp files). Internal to
// native/cpu.
//
// The method of Arm's optimized-routines single-precision exp: n = round(x log2 e) through
// the 1.5·2^23 shifter, reduced argument b = x − n ln2 with ln2 in two parts, e^b − 1 as a
// degree-5 minimax polynomial in b evaluated as (c4 b + c3) b² + (c2 b + c1)) b² + c0 b,
// scaled by 2^n built in the exponent bits. Max error about 1.95 ulp. llama.cpp's AVX2
// kernels (SiLU, softmax) compute e^x this way, so using the same method and coefficients
// makes both engines round identically there; a correctly rounded exp would disagree in the
// last bit often enough to flip downstream int8 activation quanta.
#pragma once
#include <immintrin.h>

namespace tessera::cpu::avx2 {

inline __m256 exp8(__m256 x) {
  const __m256 shifter = _mm256_set1_ps(0x1.8p23f);
  const __m256 z = _mm256_fmadd_ps(x, _mm256_set1_ps(0x1.715476p+0f), shifter);
  const __m256 n = _mm256_sub_ps(z, shifter);
  const __m256 b = _mm256_fnmadd_ps(n, _mm256_set1_ps(0x1.7f7d1cp-20f), _mm256_fnmadd_ps(n, _mm256_set1_ps(0x1.62e4p-1f), x));
  const __m256i e = _mm256_slli_epi32(_mm256_castps_si256(z), 23);
  const __m256 scale = _mm256_castsi256_ps(_mm256_add_epi32(e, _mm256_castps_si256(_mm256_set1_ps(1.0f))));
  const __m256 b2 = _mm256_mul_ps(b, b);
  const __m256 poly = _mm256_fmadd_ps(
      _mm256_fmadd_ps(_mm256_fmadd_ps(_mm256_set1_ps(0x1.0e4020p-7f), b, _mm256_set1_ps(0x1.573e2ep-5f)), b2,
                      _mm256_fmadd_ps(_mm256_set1_ps(0x1.555e66p-3f), b, _mm256_set1_ps(0x1.fffdb6p-2f))),
      b2, _mm256_mul_ps(_mm256_set1_ps(0x1.ffffecp-1f), b));
  const __m256 abs_n = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), n);
  const __m256 big = _mm256_cmp_ps(abs_n, _mm256_set1_ps(126.0f), _CMP_GT_OQ);
  if (!_mm256_movemask_ps(big)) return _mm256_fmadd_ps(poly, scale, scale);
  // |n| > 126: 2^n does not fit one exponent field, so it is applied as two factors
  // s1·s2; beyond |n| > 192 the result is 0 or inf whatever the polynomial says.
  const __m256i neg = _mm256_and_si256(_mm256_castps_si256(_mm256_cmp_ps(n, _mm256_setzero_ps(), _CMP_LE_OQ)),
                                       _mm256_set1_epi32(int(0x82000000u)));
  const __m256 s1 = _mm256_castsi256_ps(_mm256_add_epi32(neg, _mm256_set1_epi32(0x7f000000)));
  const __m256 s2 = _mm256_castsi256_ps(_mm256_sub_epi32(e, neg));
  const __m256 huge = _mm256_cmp_ps(abs_n, _mm256_set1_ps(192.0f), _CMP_GT_OQ);
  const __m256 split = _mm256_mul_ps(_mm256_fmadd_ps(s2, poly, s2), s1);
  const __m256 normal = _mm256_fmadd_ps(poly, scale, scale);
  return _mm256_blendv_ps(_mm256_blendv_ps(normal, split, big), _mm256_mul_ps(s1, s1), huge);
}

}  // namespace tessera::cpu::avx2
