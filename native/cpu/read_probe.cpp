// read_probe: streams a buffer and sums it, the STREAM-like read-bandwidth measurement the
// benchmarks compare kernels against. Each method splits the buffer among threads its own
// way (read_probe.h); the AVX2 twin uses 256-bit loads so the probe is limited by memory, not
// by the core.
#include "core/cpu_features.h"
#include "core/thread_pool.h"
#include "cpu/read_probe.h"

namespace tessera::cpu {

namespace {

constexpr int64_t kBlockFloats = 16384;  // 64 KiB, the Interleaved method's unit

float scalar_sum(const float* data, int64_t n) {
  float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  for (int64_t i = 0; i < n; i += 4) {
    s0 += data[i];
    s1 += data[i + 1];
    s2 += data[i + 2];
    s3 += data[i + 3];
  }
  return s0 + s1 + s2 + s3;
}

float sum_range(const float* data, int64_t n, ReadMethod method) {
  return active_cpu_isa() >= CpuIsa::Avx2 ? avx2::read_probe(data, n, method) : scalar_sum(data, n);
}

}  // namespace

const char* read_method_name(ReadMethod m) {
  switch (m) {
    case ReadMethod::Plain: return "plain";
    case ReadMethod::Prefetched: return "prefetched";
    case ReadMethod::NonTemporal: return "non-temporal";
    case ReadMethod::Interleaved: return "interleaved";
  }
  return "?";
}

float read_probe(const float* data, int64_t n, int ith, int nth, ReadMethod method) {
  if (method == ReadMethod::Interleaved) {
    // Threads walk the buffer together, block by block, so they share DRAM pages instead of
    // each opening its own far away.
    float s = 0;
    for (int64_t blk = ith; blk * kBlockFloats < n; blk += nth) s += sum_range(data + blk * kBlockFloats, kBlockFloats, method);
    return s;
  }
  int64_t b, e;
  split_range(n / 64, ith, nth, &b, &e);
  return sum_range(data + b * 64, (e - b) * 64, method);
}

}  // namespace tessera::cpu
