// AVX2 scoring for vector_topk (compiled with -mavx2 -mfma; called only after run-time
// detection): four rows at a time against one query, so each query load feeds four FMAs,
// two accumulators per row to hide the FMA latency. Bandwidth-bound at 384-d: a row is
// 1.5 KiB streamed once.
#include <immintrin.h>

#include "cpu/hsum_avx2.h"
#include "cpu/vector_topk_kernels.h"

namespace tessera::cpu::avx2 {

namespace {

template <bool kL2>
inline __m256 term(__m256 acc, __m256 x, __m256 q) {
  if constexpr (kL2) {
    const __m256 d = _mm256_sub_ps(x, q);
    return _mm256_fmadd_ps(d, d, acc);
  } else {
    return _mm256_fmadd_ps(x, q, acc);
  }
}

template <bool kL2>
float tail(const float* x, const float* q, int from, int dim) {
  float s = 0;
  for (int i = from; i < dim; ++i) s += kL2 ? (x[i] - q[i]) * (x[i] - q[i]) : x[i] * q[i];
  return s;
}

template <bool kL2>
void scores(const float* data, int64_t n, int dim, const float* q, float* out) {
  const int d8 = dim / 8 * 8;
  int64_t r = 0;
  for (; r + 4 <= n; r += 4) {
    const float* x0 = data + r * dim;
    const float* x1 = x0 + dim;
    const float* x2 = x1 + dim;
    const float* x3 = x2 + dim;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (int i = 0; i < d8; i += 8) {
      const __m256 qv = _mm256_loadu_ps(q + i);
      a0 = term<kL2>(a0, _mm256_loadu_ps(x0 + i), qv);
      a1 = term<kL2>(a1, _mm256_loadu_ps(x1 + i), qv);
      a2 = term<kL2>(a2, _mm256_loadu_ps(x2 + i), qv);
      a3 = term<kL2>(a3, _mm256_loadu_ps(x3 + i), qv);
    }
    const float s0 = hsum8(a0) + tail<kL2>(x0, q, d8, dim), s1 = hsum8(a1) + tail<kL2>(x1, q, d8, dim);
    const float s2 = hsum8(a2) + tail<kL2>(x2, q, d8, dim), s3 = hsum8(a3) + tail<kL2>(x3, q, d8, dim);
    out[r] = kL2 ? -s0 : s0;
    out[r + 1] = kL2 ? -s1 : s1;
    out[r + 2] = kL2 ? -s2 : s2;
    out[r + 3] = kL2 ? -s3 : s3;
  }
  for (; r < n; ++r) {
    const float* x = data + r * dim;
    __m256 a = _mm256_setzero_ps();
    for (int i = 0; i < d8; i += 8) a = term<kL2>(a, _mm256_loadu_ps(x + i), _mm256_loadu_ps(q + i));
    const float s = hsum8(a) + tail<kL2>(x, q, d8, dim);
    out[r] = kL2 ? -s : s;
  }
}

}  // namespace

void vector_scores(const float* data, int64_t n, int dim, const float* q, bool l2, float* out) {
  if (l2)
    scores<true>(data, n, dim, q, out);
  else
    scores<false>(data, n, dim, q, out);
}

}  // namespace tessera::cpu::avx2
