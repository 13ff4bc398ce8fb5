// AVX2 twin of read_probe: eight independent 256-bit accumulators over 64-float units. The
// Prefetched method reads as the decode kernels read their weights, several stretches side by
// side (side_by_side.h); the others are there because a probe that reads slower than some
// pattern the hardware serves better would flatter every kernel measured against it.
#include <immintrin.h>

#include "cpu/read_probe.h"
#include "cpu/side_by_side.h"

namespace tessera::cpu::avx2 {

namespace {

constexpr int kPrefetchBytes = 2048;

struct Acc {
  __m256 v[8];
  Acc() {
    for (auto& a : v) a = _mm256_setzero_ps();
  }
  void add(const float* p) {
    for (int k = 0; k < 8; ++k) v[k] = _mm256_add_ps(v[k], _mm256_loadu_ps(p + 8 * k));
  }
  void add_nt(const float* p) {
    // VMOVNTDQA: a non-temporal hint on write-back memory, which some cores honour by
    // filling fewer cache levels.
    for (int k = 0; k < 8; ++k)
      v[k] = _mm256_add_ps(v[k], _mm256_castsi256_ps(_mm256_stream_load_si256(reinterpret_cast<const __m256i*>(p + 8 * k))));
  }
  float total() const {
    __m256 s = v[0];
    for (int k = 1; k < 8; ++k) s = _mm256_add_ps(s, v[k]);
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, s);
    float t = 0;
    for (float x : lanes) t += x;
    return t;
  }
};

inline void prefetch_unit(const float* p, int hint_nta) {
  for (int k = 0; k < 4; ++k) {
    const char* line = reinterpret_cast<const char*>(p + 16 * k) + kPrefetchBytes;
    if (hint_nta) _mm_prefetch(line, _MM_HINT_NTA);
    else _mm_prefetch(line, _MM_HINT_T0);
  }
}

}  // namespace

float read_probe(const float* data, int64_t n, ReadMethod method) {
  Acc acc;
  const int64_t units = n / 64;
  switch (method) {
    case ReadMethod::Plain:
      for (int64_t u = 0; u < units; ++u) acc.add(data + u * 64);
      break;
    case ReadMethod::NonTemporal:
      for (int64_t u = 0; u < units; ++u) {
        prefetch_unit(data + u * 64, 1);
        acc.add_nt(data + u * 64);
      }
      break;
    case ReadMethod::Interleaved:  // one block of a thread's turn: a prefetched stream
      for (int64_t u = 0; u < units; ++u) {
        prefetch_unit(data + u * 64, 0);
        acc.add(data + u * 64);
      }
      break;
    case ReadMethod::Prefetched: {
      auto add_unit = [&](int64_t u) {
        prefetch_unit(data + u * 64, 0);
        acc.add(data + u * 64);
      };
      const int64_t tail = side_by_side<kSideBySideStreams>(0, units, [&](const int64_t (&u)[kSideBySideStreams]) {
        for (int64_t unit : u) add_unit(unit);
      });
      for (int64_t u = tail; u < units; ++u) add_unit(u);
      break;
    }
  }
  return acc.total();
}

}  // namespace tessera::cpu::avx2
