// Scalar dot-product tiles for every weight type (the reference path, and the fallback on
// CPUs without AVX2). One weight row at a time against every token, fp32 accumulation per
// block as in the ggml block formats: Q8_0/Q4_0 blocks of 32 multiply int8 activations and
// scale by d_w * d_x; K-quants work per 256-value super-block with 6-bit sub-block scales.
#include "cpu/dot_kernels.h"

namespace tessera::cpu::scalar {

namespace {

float dot_f32(const float* w, const float* x, int64_t n) {
  float sum = 0.f;
  for (int64_t i = 0; i < n; ++i) sum += w[i] * x[i];
  return sum;
}

float dot_f16(const uint16_t* w, const uint16_t* x, int64_t n) {
  float sum = 0.f;
  for (int64_t i = 0; i < n; ++i) sum += fp16_to_fp32(w[i]) * fp16_to_fp32(x[i]);
  return sum;
}

float dot_bf16(const uint16_t* w, const uint16_t* x, int64_t n) {
  float sum = 0.f;
  for (int64_t i = 0; i < n; ++i) sum += bf16_to_fp32(w[i]) * bf16_to_fp32(x[i]);
  return sum;
}

float dot_q8_0(const BlockQ8_0* w, const BlockQ8_0* x, int64_t nb) {
  float sum = 0.f;
  for (int64_t b = 0; b < nb; ++b) {
    int sumi = 0;
    for (int i = 0; i < QK8_0; ++i) sumi += w[b].qs[i] * x[b].qs[i];
    sum += fp16_to_fp32(w[b].d) * fp16_to_fp32(x[b].d) * static_cast<float>(sumi);
  }
  return sum;
}

float dot_q4_0(const BlockQ4_0* w, const BlockQ8_0* x, int64_t nb) {
  float sum = 0.f;
  for (int64_t b = 0; b < nb; ++b) {
    int sumi = 0;
    for (int i = 0; i < QK4_0 / 2; ++i) {
      sumi += ((w[b].qs[i] & 0xF) - 8) * x[b].qs[i];
      sumi += ((w[b].qs[i] >> 4) - 8) * x[b].qs[i + QK4_0 / 2];
    }
    sum += fp16_to_fp32(w[b].d) * fp16_to_fp32(x[b].d) * static_cast<float>(sumi);
  }
  return sum;
}

float dot_q4_k(const BlockQ4_K* w, const BlockQ8_K* x, int64_t nb) {
  float sum = 0.f;
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* q = w[b].qs;
    const int8_t* a = x[b].qs;
    int sumi = 0, summ = 0;
    for (int j = 0; j < QK_K / 64; ++j) {
      uint8_t sc_lo, m_lo, sc_hi, m_hi;
      q4k_scale_min(2 * j, w[b].scales, &sc_lo, &m_lo);
      q4k_scale_min(2 * j + 1, w[b].scales, &sc_hi, &m_hi);
      int lo = 0, hi = 0;
      for (int l = 0; l < 32; ++l) {
        lo += (q[l] & 0xF) * a[l];
        hi += (q[l] >> 4) * a[l + 32];
      }
      sumi += sc_lo * lo + sc_hi * hi;
      summ += m_lo * (x[b].bsums[4 * j] + x[b].bsums[4 * j + 1]) + m_hi * (x[b].bsums[4 * j + 2] + x[b].bsums[4 * j + 3]);
      q += 32;
      a += 64;
    }
    sum += x[b].d * (fp16_to_fp32(w[b].d) * static_cast<float>(sumi) - fp16_to_fp32(w[b].dmin) * static_cast<float>(summ));
  }
  return sum;
}

float dot_q6_k(const BlockQ6_K* w, const BlockQ8_K* x, int64_t nb) {
  float sum = 0.f;
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* ql = w[b].ql;
    const uint8_t* qh = w[b].qh;
    const int8_t* sc = w[b].scales;
    const int8_t* a = x[b].qs;
    int sumi = 0;
    for (int half = 0; half < 2; ++half) {
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        sumi += sc[is] * q1 * a[l] + sc[is + 2] * q2 * a[l + 32] + sc[is + 4] * q3 * a[l + 64] + sc[is + 6] * q4 * a[l + 96];
      }
      ql += 64;
      qh += 32;
      sc += 8;
      a += 128;
    }
    sum += fp16_to_fp32(w[b].d) * x[b].d * static_cast<float>(sumi);
  }
  return sum;
}

// ---- Blocks of 32 (issue 28). Per block an exact integer sum of level times activation,
// then fp32: sum += (d_w * d_x) * sumi, and for the types with a minimum (Q8_1
// activations) the minimum times the activation block's stored sum s.

float dot_q5_0(const BlockQ5_0* w, const BlockQ8_0* x, int64_t nb) {
  float sum = 0.f;
  for (int64_t b = 0; b < nb; ++b) {
    const uint32_t qh = q5_high_bits(w[b].qh);
    int sumi = 0;
    for (int i = 0; i < 32; ++i) sumi += (q5_level(w[b].qs, qh, i) - 16) * x[b].qs[i];
    sum += fp16_to_fp32(w[b].d) * fp16_to_fp32(x[b].d) * static_cast<float>(sumi);
  }
  return sum;
}

float dot_q4_1(const BlockQ4_1* w, const BlockQ8_1* x, int64_t nb) {
  float sum = 0.f;
  for (int64_t b = 0; b < nb; ++b) {
    int sumi = 0;
    for (int i = 0; i < 16; ++i) sumi += (w[b].qs[i] & 0xF) * x[b].qs[i] + (w[b].qs[i] >> 4) * x[b].qs[i + 16];
    sum += fp16_to_fp32(w[b].d) * fp16_to_fp32(x[b].d) * static_cast<float>(sumi) + fp16_to_fp32(w[b].m) * fp16_to_fp32(x[b].s);
  }
  return sum;
}

float dot_q5_1(const BlockQ5_1* w, const BlockQ8_1* x, int64_t nb) {
  float sum = 0.f;
  for (int64_t b = 0; b < nb; ++b) {
    const uint32_t qh = q5_high_bits(w[b].qh);
    int sumi = 0;
    for (int i = 0; i < 32; ++i) sumi += q5_level(w[b].qs, qh, i) * x[b].qs[i];
    sum += fp16_to_fp32(w[b].d) * fp16_to_fp32(x[b].d) * static_cast<float>(sumi) + fp16_to_fp32(w[b].m) * fp16_to_fp32(x[b].s);
  }
  return sum;
}

float dot_iq4_nl(const BlockIQ4_NL* w, const BlockQ8_0* x, int64_t nb) {
  float sum = 0.f;
  for (int64_t b = 0; b < nb; ++b) {
    int sumi = 0;
    for (int i = 0; i < 16; ++i)
      sumi += kIq4nlValues[w[b].qs[i] & 0xF] * x[b].qs[i] + kIq4nlValues[w[b].qs[i] >> 4] * x[b].qs[i + 16];
    sum += fp16_to_fp32(x[b].d) * fp16_to_fp32(w[b].d) * static_cast<float>(sumi);
  }
  return sum;
}

float dot_mxfp4(const BlockMXFP4* w, const BlockQ8_0* x, int64_t nb) {
  float sum = 0.f;
  for (int64_t b = 0; b < nb; ++b) {
    int sumi = 0;
    for (int i = 0; i < 16; ++i)
      sumi += kMxfp4Values[w[b].qs[i] & 0xF] * x[b].qs[i] + kMxfp4Values[w[b].qs[i] >> 4] * x[b].qs[i + 16];
    sum += fp16_to_fp32(x[b].d) * e8m0_to_fp32_half(w[b].e) * static_cast<float>(sumi);
  }
  return sum;
}

// ---- issue 28 K-quants (Q5_K, Q3_K, Q2_K, IQ4_XS) x Q8_K.

// Q5_K: as Q4_K with 5-bit values (the 5th bit from qh).
float dot_q5_k(const BlockQ5_K* w, const BlockQ8_K* x, int64_t nb) {
  float sum = 0.f;
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* q = w[b].qs;
    const uint8_t* qh = w[b].qh;
    const int8_t* a = x[b].qs;
    int sumi = 0, summ = 0;
    for (int j = 0; j < QK_K / 64; ++j) {
      uint8_t sc_lo, m_lo, sc_hi, m_hi;
      q4k_scale_min(2 * j, w[b].scales, &sc_lo, &m_lo);
      q4k_scale_min(2 * j + 1, w[b].scales, &sc_hi, &m_hi);
      int lo = 0, hi = 0;
      for (int l = 0; l < 32; ++l) {
        lo += ((q[l] & 0xF) | (((qh[l] >> (2 * j)) & 1) << 4)) * a[l];
        hi += ((q[l] >> 4) | (((qh[l] >> (2 * j + 1)) & 1) << 4)) * a[l + 32];
      }
      sumi += sc_lo * lo + sc_hi * hi;
      summ += m_lo * (x[b].bsums[4 * j] + x[b].bsums[4 * j + 1]) + m_hi * (x[b].bsums[4 * j + 2] + x[b].bsums[4 * j + 3]);
      q += 32;
      a += 64;
    }
    sum += x[b].d * (fp16_to_fp32(w[b].d) * static_cast<float>(sumi) - fp16_to_fp32(w[b].dmin) * static_cast<float>(summ));
  }
  return sum;
}

// Q3_K: signed 3-bit values (q - 4) times int16 sub-block scales, one integer per super-block.
float dot_q3_k(const BlockQ3_K* w, const BlockQ8_K* x, int64_t nb) {
  float sum = 0.f;
  for (int64_t b = 0; b < nb; ++b) {
    int8_t sc[16];
    q3k_scales(w[b].scales, sc);
    int sumi = 0;
    for (int j = 0; j < 16; ++j) {
      int part = 0;
      for (int e = 16 * j; e < 16 * j + 16; ++e) {
        const int h = e / 128, s = (e / 32) % 4, l = e % 32;
        const int q = ((w[b].qs[32 * h + l] >> (2 * s)) & 3) - ((w[b].hmask[l] >> (e / 32)) & 1 ? 0 : 4);
        part += q * x[b].qs[e];
      }
      sumi += sc[j] * part;
    }
    sum += fp16_to_fp32(w[b].d) * x[b].d * static_cast<float>(sumi);
  }
  return sum;
}

// Q2_K: unsigned 2-bit values times 4-bit scales, the 4-bit mins through the 16-value sums.
float dot_q2_k(const BlockQ2_K* w, const BlockQ8_K* x, int64_t nb) {
  float sum = 0.f;
  for (int64_t b = 0; b < nb; ++b) {
    int sumi = 0, summ = 0;
    for (int j = 0; j < 16; ++j) {
      int part = 0;
      for (int e = 16 * j; e < 16 * j + 16; ++e) part += ((w[b].qs[32 * (e / 128) + e % 32] >> (2 * ((e / 32) % 4))) & 3) * x[b].qs[e];
      sumi += (w[b].scales[j] & 0xF) * part;
      summ += (w[b].scales[j] >> 4) * x[b].bsums[j];
    }
    sum += x[b].d * (fp16_to_fp32(w[b].d) * static_cast<float>(sumi) - fp16_to_fp32(w[b].dmin) * static_cast<float>(summ));
  }
  return sum;
}

// IQ4_XS: grid values times 6-bit sub-block scales, one integer per super-block.
float dot_iq4_xs(const BlockIQ4_XS* w, const BlockQ8_K* x, int64_t nb) {
  float sum = 0.f;
  for (int64_t b = 0; b < nb; ++b) {
    int sumi = 0;
    for (int j = 0; j < QK_K / 32; ++j) {
      const uint8_t* qs = w[b].qs + 16 * j;
      const int8_t* a = x[b].qs + 32 * j;
      int part = 0;
      for (int l = 0; l < 16; ++l) part += kIq4nlValues[qs[l] & 0xF] * a[l] + kIq4nlValues[qs[l] >> 4] * a[l + 16];
      sumi += iq4xs_scale(w[b], j) * part;
    }
    sum += fp16_to_fp32(w[b].d) * x[b].d * static_cast<float>(sumi);
  }
  return sum;
}

float dot_row(GgmlType type, const uint8_t* w, const uint8_t* x, int64_t cols) {
  switch (type) {
    case GgmlType::F32: return dot_f32(reinterpret_cast<const float*>(w), reinterpret_cast<const float*>(x), cols);
    case GgmlType::F16: return dot_f16(reinterpret_cast<const uint16_t*>(w), reinterpret_cast<const uint16_t*>(x), cols);
    case GgmlType::BF16: return dot_bf16(reinterpret_cast<const uint16_t*>(w), reinterpret_cast<const uint16_t*>(x), cols);
    case GgmlType::Q8_0:
      return dot_q8_0(reinterpret_cast<const BlockQ8_0*>(w), reinterpret_cast<const BlockQ8_0*>(x), cols / QK8_0);
    case GgmlType::Q4_0:
      return dot_q4_0(reinterpret_cast<const BlockQ4_0*>(w), reinterpret_cast<const BlockQ8_0*>(x), cols / QK4_0);
    case GgmlType::Q4_K:
      return dot_q4_k(reinterpret_cast<const BlockQ4_K*>(w), reinterpret_cast<const BlockQ8_K*>(x), cols / QK_K);
    case GgmlType::Q6_K:
      return dot_q6_k(reinterpret_cast<const BlockQ6_K*>(w), reinterpret_cast<const BlockQ8_K*>(x), cols / QK_K);
    case GgmlType::Q5_0:
      return dot_q5_0(reinterpret_cast<const BlockQ5_0*>(w), reinterpret_cast<const BlockQ8_0*>(x), cols / 32);
    case GgmlType::Q4_1:
      return dot_q4_1(reinterpret_cast<const BlockQ4_1*>(w), reinterpret_cast<const BlockQ8_1*>(x), cols / 32);
    case GgmlType::Q5_1:
      return dot_q5_1(reinterpret_cast<const BlockQ5_1*>(w), reinterpret_cast<const BlockQ8_1*>(x), cols / 32);
    case GgmlType::IQ4_NL:
      return dot_iq4_nl(reinterpret_cast<const BlockIQ4_NL*>(w), reinterpret_cast<const BlockQ8_0*>(x), cols / 32);
    case GgmlType::MXFP4:
      return dot_mxfp4(reinterpret_cast<const BlockMXFP4*>(w), reinterpret_cast<const BlockQ8_0*>(x), cols / 32);
    case GgmlType::Q5_K:
      return dot_q5_k(reinterpret_cast<const BlockQ5_K*>(w), reinterpret_cast<const BlockQ8_K*>(x), cols / QK_K);
    case GgmlType::Q3_K:
      return dot_q3_k(reinterpret_cast<const BlockQ3_K*>(w), reinterpret_cast<const BlockQ8_K*>(x), cols / QK_K);
    case GgmlType::Q2_K:
      return dot_q2_k(reinterpret_cast<const BlockQ2_K*>(w), reinterpret_cast<const BlockQ8_K*>(x), cols / QK_K);
    case GgmlType::IQ4_XS:
      return dot_iq4_xs(reinterpret_cast<const BlockIQ4_XS*>(w), reinterpret_cast<const BlockQ8_K*>(x), cols / QK_K);
    default: return 0.f;  // pack_weight rejects every other type before a kernel runs
  }
}

}  // namespace

void matmul_tile(GgmlType type, const DotTile& t, int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* w = t.w + r * t.row_bytes;
    for (int k = 0; k < t.n_tokens; ++k) t.y[k * t.ldy + r] = dot_row(type, w, t.act + k * t.act_stride, t.cols);
  }
}

}  // namespace tessera::cpu::scalar
