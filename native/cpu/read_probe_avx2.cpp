// AVX2 twin of read_probe: eight independent 256-bit accumulators over 64-float strides.
#include <immintrin.h>

#include "cpu/read_probe.h"

namespace tessera::cpu::avx2 {

float read_probe(const float* data, int64_t n) {
  __m256 acc[8];
  for (auto& a : acc) a = _mm256_setzero_ps();
  for (int64_t i = 0; i < n; i += 64)
    for (int k = 0; k < 8; ++k) acc[k] = _mm256_add_ps(acc[k], _mm256_loadu_ps(data + i + 8 * k));
  __m256 s = acc[0];
  for (int k = 1; k < 8; ++k) s = _mm256_add_ps(s, acc[k]);
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, s);
  float total = 0;
  for (float x : lanes) total += x;
  return total;
}

}  // namespace tessera::cpu::avx2
