// Memory read-bandwidth probe (see read_probe.cpp).
#pragma once
#include <cstdint>

namespace tessera::cpu {

// How a probe pass reads. The bench takes the fastest: the probe stands for the memory's read
// ceiling, and one access pattern that a machine happens to serve badly would understate it
// (on a Zen 5 VM the kernels' own pattern read 30 GB/s while a decode moved 34).
enum class ReadMethod : int {
  Plain = 0,        // each thread one contiguous stream, no software prefetch
  Prefetched = 1,   // each thread four stretches side by side, prefetched 2 KiB ahead (the kernels' pattern)
  NonTemporal = 2,  // each thread one stream of non-temporal loads with prefetchnta
  Interleaved = 3,  // threads take 64 KiB blocks in turn, each block one prefetched stream
};
constexpr int kReadMethods = 4;
const char* read_method_name(ReadMethod m);

// Sums this thread's share of data[0, n) (n a multiple of 16384, data 64-byte aligned); the
// result only defeats dead-code elimination.
float read_probe(const float* data, int64_t n, int ith, int nth, ReadMethod method);
namespace avx2 {
float read_probe(const float* data, int64_t n, ReadMethod method);
}
}  // namespace tessera::cpu
