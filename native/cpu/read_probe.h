// Memory read-bandwidth probe (see read_probe.cpp).
#pragma once
#include <cstdint>

namespace tessera::cpu {
// Sums this thread's share of data[0, n) (n a multiple of 64); the result only defeats dead-code elimination.
float read_probe(const float* data, int64_t n, int ith, int nth);
namespace avx2 {
float read_probe(const float* data, int64_t n);
}
}  // namespace tessera::cpu
