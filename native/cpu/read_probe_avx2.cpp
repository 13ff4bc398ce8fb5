// AVX2 twin of read_probe: eight independent 256-bit accumulators over 64-float strides.
#include <immintrin.h>

#include "cpu/read_probe.h"

namespace tessera::cpu::avx2 {

constexpr int kPrefetchBytes = 4096;

float read_probe(const float* data, int64_t n) {
  __m256 acc[8];
  for (auto& a : acc) a = _mm256_setzero_ps();
  for (int64_t i = 0; i < n; i += 64) {
    // Software prefetch of each line, as the matmul kernels do: without it a single core
    // waits on DRAM and the probe would understate what a kernel can stream.
    for (int k = 0; k < 4; ++k) _mm_prefetch(reinterpret_cast<const char*>(data + i + 16 * k) + kPrefetchBytes, _MM_HINT_T0);
    for (int k = 0; k < 8; ++k) acc[k] = _mm256_add_ps(acc[k], _mm256_loadu_ps(data + i + 8 * k));
  }
  __m256 s = acc[0];
  for (int k = 1; k < 8; ++k) s = _mm256_add_ps(s, acc[k]);
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, s);
  float total = 0;
  for (float x : lanes) total += x;
  return total;
}

}  // namespace tessera::cpu::avx2
