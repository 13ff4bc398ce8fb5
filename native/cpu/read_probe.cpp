// read_probe: streams a buffer and sums it, the STREAM-like read-bandwidth measurement the
// benchmarks compare kernels against. Threads read disjoint halves; the AVX2 twin uses
// 256-bit loads so the probe is limited by memory, not by the core.
#include "core/cpu_features.h"
#include "core/thread_pool.h"
#include "cpu/read_probe.h"

namespace tessera::cpu {

float read_probe(const float* data, int64_t n, int ith, int nth) {
  int64_t b, e;
  split_range(n / 64, ith, nth, &b, &e);
  if (active_cpu_isa() == CpuIsa::Avx2) return avx2::read_probe(data + b * 64, (e - b) * 64);
  float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  for (int64_t i = b * 64; i < e * 64; i += 4) {
    s0 += data[i];
    s1 += data[i + 1];
    s2 += data[i + 2];
    s3 += data[i + 3];
  }
  return s0 + s1 + s2 + s3;
}

}  // namespace tessera::cpu
