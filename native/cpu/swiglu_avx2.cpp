// AVX2 swiglu (compiled with -mavx2 -mfma; called only after run-time detection):
// out = act(gate) * up for one contiguous run of a row. Both gates are written as
// g * sigmoid(z) = g / (1 + e^-z): SiLU with z = g, and the tanh-approximated GELU with
// z = 2 sqrt(2/pi) (g + 0.044715 g^3), since 0.5 (1 + tanh(y)) = sigmoid(2y) exactly; this
// form has no cancellation for large negative inputs.
#include <immintrin.h>

#include "cpu/swiglu_kernels.h"

namespace tessera::cpu::avx2 {

namespace {

// e^x for x clamped to [-87, 88] (outside it the gate is 0 or g to fp32 precision anyway):
// x = n ln2 + r with |r| <= ln2/2 (ln2 split in two for an exact product), e^r by its
// degree-6 Taylor polynomial (truncation < 2^-23 relative), scaled by 2^n through the
// exponent bits. About 2 ulp.
inline __m256 exp_ps(__m256 x) {
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.0f)), _mm256_set1_ps(88.0f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.0f / 720);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  const __m256i scale = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(scale));
}

template <bool kGelu>
inline __m256 gate(__m256 g) {
  __m256 z = g;
  if constexpr (kGelu) {
    const __m256 g3 = _mm256_mul_ps(_mm256_mul_ps(g, g), g);
    z = _mm256_mul_ps(_mm256_set1_ps(2 * 0.79788456080286535588f), _mm256_fmadd_ps(_mm256_set1_ps(0.044715f), g3, g));
  }
  const __m256 e = exp_ps(_mm256_sub_ps(_mm256_setzero_ps(), z));
  return _mm256_div_ps(g, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}

template <bool kGelu>
void run(const float* gate_in, const float* up, float* out, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(out + i, _mm256_mul_ps(gate<kGelu>(_mm256_loadu_ps(gate_in + i)), _mm256_loadu_ps(up + i)));
  if (i < n) {
    // Tail through the same vector code on a padded copy, so every element sees one formula.
    alignas(32) float g[8] = {}, u[8] = {}, o[8];
    for (int64_t k = i; k < n; ++k) g[k - i] = gate_in[k], u[k - i] = up[k];
    _mm256_store_ps(o, _mm256_mul_ps(gate<kGelu>(_mm256_load_ps(g)), _mm256_load_ps(u)));
    for (int64_t k = i; k < n; ++k) out[k] = o[k - i];
  }
}

}  // namespace

void swiglu_run(const float* gate_in, const float* up, float* out, int64_t n, GateActivation act) {
  if (act == GateActivation::Gelu) run<true>(gate_in, up, out, n);
  else run<false>(gate_in, up, out, n);
}

}  // namespace tessera::cpu::avx2
