// AVX2 twin of read_probe: eight independent 256-bit accumulators over 64-float units,
// read as the decode kernels read their weights, several stretches side by side
// (side_by_side.h): a probe that reads slower than the kernels would flatter them.
#include <immintrin.h>

#include "cpu/read_probe.h"
#include "cpu/side_by_side.h"

namespace tessera::cpu::avx2 {

constexpr int kPrefetchBytes = 2048;

float read_probe(const float* data, int64_t n) {
  __m256 acc[8];
  for (auto& a : acc) a = _mm256_setzero_ps();
  auto add_unit = [&](int64_t u) {
    const float* p = data + u * 64;
    // Software prefetch of each line, as the matmul kernels do.
    for (int k = 0; k < 4; ++k) _mm_prefetch(reinterpret_cast<const char*>(p + 16 * k) + kPrefetchBytes, _MM_HINT_T0);
    for (int k = 0; k < 8; ++k) acc[k] = _mm256_add_ps(acc[k], _mm256_loadu_ps(p + 8 * k));
  };
  const int64_t tail = side_by_side<kSideBySideStreams>(0, n / 64, [&](const int64_t (&u)[kSideBySideStreams]) {
    for (int64_t unit : u) add_unit(unit);
  });
  for (int64_t u = tail; u < n / 64; ++u) add_unit(u);
  __m256 s = acc[0];
  for (int k = 1; k < 8; ++k) s = _mm256_add_ps(s, acc[k]);
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, s);
  float total = 0;
  for (float x : lanes) total += x;
  return total;
}

}  // namespace tessera::cpu::avx2
