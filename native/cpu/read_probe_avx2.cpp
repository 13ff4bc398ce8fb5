// AVX2 twin of read_probe: eight independent 256-bit accumulators over 64-float strides,
// reading kStreams separate stretches of the thread's range side by side. One sequential
// stream per core left DRAM requests too few in flight: on a Zen 3 VM one core read 13 GB/s
// that way and 17-18 with four streams, as fast as the kernels (matvec Q8_0 reads four
// stretches of rows at once). A probe that reads slower than the kernels would flatter them.
#include <immintrin.h>

#include "cpu/read_probe.h"

namespace tessera::cpu::avx2 {

constexpr int kPrefetchBytes = 2048;
constexpr int kStreams = 4;

float read_probe(const float* data, int64_t n) {
  __m256 acc[8];
  for (auto& a : acc) a = _mm256_setzero_ps();
  const int64_t stretch = n / 64 / kStreams * 64;
  for (int64_t i = 0; i < stretch; i += 64)
    for (int s = 0; s < kStreams; ++s) {
      const float* p = data + s * stretch + i;
      // Software prefetch of each line, as the matmul kernels do.
      for (int k = 0; k < 4; ++k) _mm_prefetch(reinterpret_cast<const char*>(p + 16 * k) + kPrefetchBytes, _MM_HINT_T0);
      for (int k = 0; k < 8; ++k) acc[k] = _mm256_add_ps(acc[k], _mm256_loadu_ps(p + 8 * k));
    }
  // The tail that does not divide into the streams.
  for (int64_t i = kStreams * stretch; i < n; i += 64)
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
