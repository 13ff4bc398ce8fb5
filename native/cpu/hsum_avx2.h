// Horizontal sums of 8 lanes for the AVX2 kernels (include only from *_avx2.cpp files).
// Internal to native/cpu.
#pragma once
#include <immintrin.h>

namespace tessera::cpu::avx2 {

// ((x0+x4)+(x2+x6)) + ((x1+x5)+(x3+x7)): the order llama.cpp's AVX2 reductions use, which
// the kernels keep so that both engines round alike.
inline float hsum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline int hsum_i32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_unpackhi_epi64(s, s));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 1));
  return _mm_cvtsi128_si32(s);
}

}  // namespace tessera::cpu::avx2
