// AVX2 twin of rope.cpp's row rotation, same rounding: x0' = fma(x0, c, -(x1 * s)) and
// x1' = fma(x0, s, x1 * c) per pair, with the products rounded as in the scalar code.
// Neox pairs (i, i + n_dims/2) take 8 pairs per vector from the two halves; normal pairs
// (2i, 2i+1) take 4 per vector, the partner of each lane one swap away.
#include <immintrin.h>

#include <cmath>

#include "cpu/rope_kernels.h"

namespace tessera::cpu::avx2 {

namespace {

inline void rotate_pair(float& x0, float& x1, float c, float s) {
  const float a = x0, b = x1;
  x0 = std::fma(a, c, -(b * s));
  x1 = std::fma(a, s, b * c);
}

}  // namespace

void rope_rotate(float* v, const float* cos_i, const float* sin_i, int n_dims, bool neox) {
  const int half = n_dims / 2;
  int i = 0;
  if (neox) {
    for (; i + 8 <= half; i += 8) {
      const __m256 a = _mm256_loadu_ps(v + i), b = _mm256_loadu_ps(v + half + i);
      const __m256 c = _mm256_loadu_ps(cos_i + i), s = _mm256_loadu_ps(sin_i + i);
      _mm256_storeu_ps(v + i, _mm256_fmsub_ps(a, c, _mm256_mul_ps(b, s)));
      _mm256_storeu_ps(v + half + i, _mm256_fmadd_ps(a, s, _mm256_mul_ps(b, c)));
    }
    for (; i < half; ++i) rotate_pair(v[i], v[half + i], cos_i[i], sin_i[i]);
    return;
  }
  const __m256i duplicate = _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3);
  for (; i + 4 <= half; i += 4) {
    const __m256 x = _mm256_loadu_ps(v + 2 * i);  // x0, x1 of 4 pairs
    const __m256 partner = _mm256_permute_ps(x, _MM_SHUFFLE(2, 3, 0, 1));
    const __m256 c = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(_mm_loadu_ps(cos_i + i)), duplicate);
    const __m256 s = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(_mm_loadu_ps(sin_i + i)), duplicate);
    const __m256 first = _mm256_fmsub_ps(x, c, _mm256_mul_ps(partner, s));   // even lanes: x0 c - x1 s
    const __m256 second = _mm256_fmadd_ps(partner, s, _mm256_mul_ps(x, c));  // odd lanes: x0 s + x1 c
    _mm256_storeu_ps(v + 2 * i, _mm256_blend_ps(first, second, 0xAA));
  }
  for (; i < half; ++i) rotate_pair(v[2 * i], v[2 * i + 1], cos_i[i], sin_i[i]);
}

}  // namespace tessera::cpu::avx2
