// AVX2 swiglu (compiled with -mavx2 -mfma; called only after run-time detection):
// out = act(gate) * up for one contiguous run of a row. Both gates are written as
// g * sigmoid(z) = g / (1 + e^-z): SiLU with z = g, and the tanh-approximated GELU with
// z = 2 sqrt(2/pi) (g + 0.044715 g^3), since 0.5 (1 + tanh(y)) = sigmoid(2y) exactly; this
// form has no cancellation for large negative inputs. SiLU is g / (1 + exp8(0 - g)) in that
// order, as llama.cpp's AVX2 kernel computes it, so the two engines round alike.
#include <immintrin.h>

#include "cpu/exp_avx2.h"
#include "cpu/swiglu_kernels.h"

namespace tessera::cpu::avx2 {

namespace {

template <bool kGelu>
inline __m256 gate(__m256 g) {
  __m256 z = g;
  if constexpr (kGelu) {
    const __m256 g3 = _mm256_mul_ps(_mm256_mul_ps(g, g), g);
    z = _mm256_mul_ps(_mm256_set1_ps(2 * 0.79788456080286535588f), _mm256_fmadd_ps(_mm256_set1_ps(0.044715f), g3, g));
  }
  const __m256 e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), z));
  return _mm256_div_ps(g, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}

// up == nullptr: the activation alone (multiplied by exact ones).
template <bool kGelu>
void run(const float* gate_in, const float* up, float* out, int64_t n) {
  int64_t i = 0;
  const __m256 ones = _mm256_set1_ps(1.0f);
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(out + i, _mm256_mul_ps(gate<kGelu>(_mm256_loadu_ps(gate_in + i)), up ? _mm256_loadu_ps(up + i) : ones));
  if (i < n) {
    // Tail through the same vector code on a padded copy, so every element sees one formula.
    alignas(32) float g[8] = {}, u[8] = {}, o[8];
    for (int64_t k = i; k < n; ++k) g[k - i] = gate_in[k], u[k - i] = up ? up[k] : 1.0f;
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
