// The AVX2 twin of vector_topk's scoring loop (vector_topk_avx2.cpp). Internal to native/cpu.
#pragma once
#include <cstdint>

namespace tessera::cpu::avx2 {

// out[r] = dot(data[r], q) (l2 false) or -|data[r] - q|^2 (l2 true) for r < n; rows of dim.
void vector_scores(const float* data, int64_t n, int dim, const float* q, bool l2, float* out);

}  // namespace tessera::cpu::avx2
