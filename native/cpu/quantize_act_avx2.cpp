// AVX2 activation encoders (compiled with -mavx2 -mfma -mf16c; called only after run-time
// detection), byte-identical to the scalar ones in quantize_act.cpp: the same fp32
// operations in the same order per value, rounding to nearest-even with _mm256_round_ps
// (what nearest_int computes), F16C conversion with round-to-nearest-even (what
// fp32_to_fp16 computes). Block maxima are order-independent; Q8_K's signed maximum is the
// first value of largest magnitude, as in the scalar scan.
#include <immintrin.h>

#include <cstring>

#include "cpu/quantize_act_kernels.h"

namespace tessera::cpu::avx2 {

namespace {

inline __m256 abs_ps(__m256 v) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v); }

inline float hmax(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}

inline __m256i round_to_int(__m256 v) {
  return _mm256_cvtps_epi32(_mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}

// Four vectors of 8 int32 (each in int8 range) -> 32 int8 in order.
inline __m256i pack_i8(__m256i a, __m256i b, __m256i c, __m256i d) {
  const __m256i ab = _mm256_packs_epi32(a, b), cd = _mm256_packs_epi32(c, d);
  const __m256i abcd = _mm256_packs_epi16(ab, cd);
  // packs interleave 128-bit lanes: restore element order.
  return _mm256_permutevar8x32_epi32(abcd, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

}  // namespace

void q8_0_blocks(const float* x, BlockQ8_0* y, int64_t n_blocks) {
  for (int64_t b = 0; b < n_blocks; ++b) {
    const float* xb = x + b * QK8_0;
    __m256 v[4];
    for (int k = 0; k < 4; ++k) v[k] = _mm256_loadu_ps(xb + 8 * k);
    const float amax = hmax(_mm256_max_ps(_mm256_max_ps(abs_ps(v[0]), abs_ps(v[1])), _mm256_max_ps(abs_ps(v[2]), abs_ps(v[3]))));
    const float id = amax != 0.f ? 127.f / amax : 0.f;
    y[b].d = _cvtss_sh(amax / 127.f, _MM_FROUND_TO_NEAREST_INT);
    const __m256 mul = _mm256_set1_ps(id);
    __m256i q[4];
    for (int k = 0; k < 4; ++k) q[k] = round_to_int(_mm256_mul_ps(v[k], mul));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y[b].qs), pack_i8(q[0], q[1], q[2], q[3]));
  }
}

void q8_1_blocks(const float* x, BlockQ8_1* y, int64_t n_blocks) {
  for (int64_t b = 0; b < n_blocks; ++b) {
    const float* xb = x + b * 32;
    BlockQ8_0 q;
    q8_0_blocks(xb, &q, 1);
    __m256 v[4];
    for (int k = 0; k < 4; ++k) v[k] = _mm256_loadu_ps(xb + 8 * k);
    const float amax = hmax(_mm256_max_ps(_mm256_max_ps(abs_ps(v[0]), abs_ps(v[1])), _mm256_max_ps(abs_ps(v[2]), abs_ps(v[3]))));
    int sum = 0;
    for (int i = 0; i < 32; ++i) sum += q.qs[i];
    y[b].d = q.d;
    y[b].s = _cvtss_sh(amax / 127.f * float(sum), _MM_FROUND_TO_NEAREST_INT);
    std::memcpy(y[b].qs, q.qs, 32);
  }
}

void q8_k_blocks(const float* x, BlockQ8_K* y, int64_t n_blocks) {
  const __m256i ones8 = _mm256_set1_epi8(1), ones16 = _mm256_set1_epi16(1), top = _mm256_set1_epi32(127);
  for (int64_t b = 0; b < n_blocks; ++b) {
    const float* xb = x + b * QK_K;
    __m256 m = _mm256_setzero_ps();
    for (int i = 0; i < QK_K; i += 8) m = _mm256_max_ps(m, abs_ps(_mm256_loadu_ps(xb + i)));
    const float amax = hmax(m);
    BlockQ8_K& out = y[b];
    if (amax == 0.f) {
      out = BlockQ8_K{};
      continue;
    }
    float max = 0.f;
    const __m256 target = _mm256_set1_ps(amax);
    for (int i = 0; i < QK_K; i += 8) {
      const int hits = _mm256_movemask_ps(_mm256_cmp_ps(abs_ps(_mm256_loadu_ps(xb + i)), target, _CMP_EQ_OQ));
      if (hits) {
        max = xb[i + __builtin_ctz(unsigned(hits))];
        break;
      }
    }
    const float iscale = -127.f / max;
    const __m256 mul = _mm256_set1_ps(iscale);
    for (int g = 0; g < QK_K / 32; ++g) {
      __m256i q[4];
      for (int k = 0; k < 4; ++k) q[k] = _mm256_min_epi32(round_to_int(_mm256_mul_ps(_mm256_loadu_ps(xb + 32 * g + 8 * k), mul)), top);
      const __m256i packed = pack_i8(q[0], q[1], q[2], q[3]);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out.qs + 32 * g), packed);
      // Sums of 4 values per int32 lane; lanes 0..3 make bsums[2g], lanes 4..7 bsums[2g+1].
      const __m256i s4 = _mm256_madd_epi16(_mm256_maddubs_epi16(ones8, packed), ones16);
      const __m256i s8 = _mm256_hadd_epi32(s4, s4);
      const __m256i s16 = _mm256_hadd_epi32(s8, s8);
      out.bsums[2 * g] = static_cast<int16_t>(_mm256_extract_epi32(s16, 0));
      out.bsums[2 * g + 1] = static_cast<int16_t>(_mm256_extract_epi32(s16, 4));
    }
    out.d = 1.f / iscale;
  }
}

void f16_values(const float* x, uint16_t* y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i), _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
  for (; i < n; ++i) y[i] = _cvtss_sh(x[i], _MM_FROUND_TO_NEAREST_INT);
}

void bf16_values(const float* x, uint16_t* y, int64_t n) {
  const __m256i abs_mask = _mm256_set1_epi32(0x7fffffff), inf = _mm256_set1_epi32(0x7f800000);
  const __m256i bias = _mm256_set1_epi32(0x7fff), one = _mm256_set1_epi32(1), quiet = _mm256_set1_epi32(64);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256i w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i));
    const __m256i rounded = _mm256_srli_epi32(_mm256_add_epi32(w, _mm256_add_epi32(bias, _mm256_and_si256(_mm256_srli_epi32(w, 16), one))), 16);
    const __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(w, abs_mask), inf);
    const __m256i h = _mm256_blendv_epi8(rounded, _mm256_or_si256(_mm256_srli_epi32(w, 16), quiet), nan);
    // 8 int32 holding 16-bit values -> 8 uint16 in order.
    const __m256i packed = _mm256_packus_epi32(h, h);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i), _mm256_castsi256_si128(_mm256_permute4x64_epi64(packed, 0x08)));
  }
  for (; i < n; ++i) y[i] = fp32_to_bf16(x[i]);
}

}  // namespace tessera::cpu::avx2
