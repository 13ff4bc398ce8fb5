// kv_store's fp16 conversions with F16C: the cache's key and value tiles are written with a
// stride (keys in 8-position groups, values transposed), one fp16 per 16 or 64 bytes, and
// the software rounding (core/ggml_types.h fp32_to_fp16) took ~8% of a 9-row draft
// verification of a SmolLM2-135M-shaped model. vcvtps2ph with round-to-nearest-even gives
// the same bits for every finite value and infinity (a NaN stays a NaN).
#include <immintrin.h>

#include "cpu/kv_store_kernels.h"

namespace tessera::cpu::avx2 {

void store_f16_strided(const float* x, int n, uint16_t* dst, int64_t stride) {
  int i = 0;
  alignas(16) uint16_t h[8];
  for (; i + 8 <= n; i += 8) {
    _mm_store_si128(reinterpret_cast<__m128i*>(h), _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
    for (int j = 0; j < 8; ++j) dst[(i + j) * stride] = h[j];
  }
  for (; i < n; ++i) dst[i * stride] = uint16_t(_mm_extract_epi16(_mm_cvtps_ph(_mm_set_ss(x[i]), _MM_FROUND_TO_NEAREST_INT), 0));
}

}  // namespace tessera::cpu::avx2
