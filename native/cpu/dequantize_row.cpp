// dequantize_row: one row of n elements of a GGUF type to fp32 (embedding lookups and the
// kernel harness). Block layouts as in core/ggml_types.h.
#include <cstring>

#include "cpu/ops.h"

namespace tessera::cpu {

void dequantize_row(GgmlType type, const void* src, float* dst, int64_t n) {
  switch (type) {
    case GgmlType::F32: std::memcpy(dst, src, size_t(n) * 4); return;
    case GgmlType::F16: {
      const uint16_t* h = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = fp16_to_fp32(h[i]);
      return;
    }
    case GgmlType::BF16: {
      const uint16_t* h = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_fp32(h[i]);
      return;
    }
    case GgmlType::Q8_0: {
      const BlockQ8_0* b = static_cast<const BlockQ8_0*>(src);
      for (int64_t k = 0; k < n / QK8_0; ++k) {
        const float d = fp16_to_fp32(b[k].d);
        for (int i = 0; i < QK8_0; ++i) dst[k * QK8_0 + i] = d * b[k].qs[i];
      }
      return;
    }
    case GgmlType::Q4_0: {
      const BlockQ4_0* b = static_cast<const BlockQ4_0*>(src);
      for (int64_t k = 0; k < n / QK4_0; ++k) {
        const float d = fp16_to_fp32(b[k].d);
        for (int i = 0; i < QK4_0 / 2; ++i) {
          dst[k * QK4_0 + i] = d * ((b[k].qs[i] & 0xF) - 8);
          dst[k * QK4_0 + i + QK4_0 / 2] = d * ((b[k].qs[i] >> 4) - 8);
        }
      }
      return;
    }
    case GgmlType::Q4_K: {
      const BlockQ4_K* b = static_cast<const BlockQ4_K*>(src);
      for (int64_t k = 0; k < n / QK_K; ++k) {
        const float d = fp16_to_fp32(b[k].d), dmin = fp16_to_fp32(b[k].dmin);
        const uint8_t* q = b[k].qs;
        float* y = dst + k * QK_K;
        for (int j = 0; j < QK_K / 64; ++j) {
          uint8_t sc0, m0, sc1, m1;
          q4k_scale_min(2 * j, b[k].scales, &sc0, &m0);
          q4k_scale_min(2 * j + 1, b[k].scales, &sc1, &m1);
          for (int l = 0; l < 32; ++l) y[l] = d * sc0 * (q[l] & 0xF) - dmin * m0;
          for (int l = 0; l < 32; ++l) y[l + 32] = d * sc1 * (q[l] >> 4) - dmin * m1;
          q += 32;
          y += 64;
        }
      }
      return;
    }
    case GgmlType::Q6_K: {
      const BlockQ6_K* b = static_cast<const BlockQ6_K*>(src);
      for (int64_t k = 0; k < n / QK_K; ++k) {
        const float d = fp16_to_fp32(b[k].d);
        const uint8_t* ql = b[k].ql;
        const uint8_t* qh = b[k].qh;
        const int8_t* sc = b[k].scales;
        float* y = dst + k * QK_K;
        for (int half = 0; half < 2; ++half) {
          for (int l = 0; l < 32; ++l) {
            const int is = l / 16;
            y[l] = d * sc[is] * (((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32);
            y[l + 32] = d * sc[is + 2] * (((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
            y[l + 64] = d * sc[is + 4] * (((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
            y[l + 96] = d * sc[is + 6] * (((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
          }
          ql += 64;
          qh += 32;
          sc += 8;
          y += 128;
        }
      }
      return;
    }
    // ---- Blocks of 32 (issue 28), as ggml's dequantize_row_* (fp32 products of d and the
    // integer level; the minimum added after).
    case GgmlType::Q5_0: {
      const BlockQ5_0* b = static_cast<const BlockQ5_0*>(src);
      for (int64_t k = 0; k < n / 32; ++k) {
        const float d = fp16_to_fp32(b[k].d);
        const uint32_t qh = q5_high_bits(b[k].qh);
        for (int i = 0; i < 32; ++i) dst[k * 32 + i] = d * float(q5_level(b[k].qs, qh, i) - 16);
      }
      return;
    }
    case GgmlType::Q4_1: {
      const BlockQ4_1* b = static_cast<const BlockQ4_1*>(src);
      for (int64_t k = 0; k < n / 32; ++k) {
        const float d = fp16_to_fp32(b[k].d), m = fp16_to_fp32(b[k].m);
        for (int i = 0; i < 16; ++i) {
          dst[k * 32 + i] = float(b[k].qs[i] & 0xF) * d + m;
          dst[k * 32 + i + 16] = float(b[k].qs[i] >> 4) * d + m;
        }
      }
      return;
    }
    case GgmlType::Q5_1: {
      const BlockQ5_1* b = static_cast<const BlockQ5_1*>(src);
      for (int64_t k = 0; k < n / 32; ++k) {
        const float d = fp16_to_fp32(b[k].d), m = fp16_to_fp32(b[k].m);
        const uint32_t qh = q5_high_bits(b[k].qh);
        for (int i = 0; i < 32; ++i) dst[k * 32 + i] = float(q5_level(b[k].qs, qh, i)) * d + m;
      }
      return;
    }
    case GgmlType::IQ4_NL: {
      const BlockIQ4_NL* b = static_cast<const BlockIQ4_NL*>(src);
      for (int64_t k = 0; k < n / 32; ++k) {
        const float d = fp16_to_fp32(b[k].d);
        for (int i = 0; i < 16; ++i) {
          dst[k * 32 + i] = d * float(kIq4nlValues[b[k].qs[i] & 0xF]);
          dst[k * 32 + i + 16] = d * float(kIq4nlValues[b[k].qs[i] >> 4]);
        }
      }
      return;
    }
    case GgmlType::MXFP4: {
      const BlockMXFP4* b = static_cast<const BlockMXFP4*>(src);
      for (int64_t k = 0; k < n / 32; ++k) {
        const float d = e8m0_to_fp32_half(b[k].e);
        for (int i = 0; i < 16; ++i) {
          dst[k * 32 + i] = d * float(kMxfp4Values[b[k].qs[i] & 0xF]);
          dst[k * 32 + i + 16] = d * float(kMxfp4Values[b[k].qs[i] >> 4]);
        }
      }
      return;
    }
    // ---- issue 28 K-quants: ggml's dequantize_row_* per type, the same fp32 operations.
    case GgmlType::Q5_K: {
      const BlockQ5_K* b = static_cast<const BlockQ5_K*>(src);
      for (int64_t k = 0; k < n / QK_K; ++k) {
        const float d = fp16_to_fp32(b[k].d), dmin = fp16_to_fp32(b[k].dmin);
        const uint8_t* q = b[k].qs;
        const uint8_t* qh = b[k].qh;
        float* y = dst + k * QK_K;
        for (int j = 0; j < QK_K / 64; ++j) {
          uint8_t sc0, m0, sc1, m1;
          q4k_scale_min(2 * j, b[k].scales, &sc0, &m0);
          q4k_scale_min(2 * j + 1, b[k].scales, &sc1, &m1);
          const float d0 = d * sc0, mn0 = dmin * m0, d1 = d * sc1, mn1 = dmin * m1;
          for (int l = 0; l < 32; ++l) y[l] = d0 * ((q[l] & 0xF) | (((qh[l] >> (2 * j)) & 1) << 4)) - mn0;
          for (int l = 0; l < 32; ++l) y[l + 32] = d1 * ((q[l] >> 4) | (((qh[l] >> (2 * j + 1)) & 1) << 4)) - mn1;
          q += 32;
          y += 64;
        }
      }
      return;
    }
    case GgmlType::Q3_K: {
      const BlockQ3_K* b = static_cast<const BlockQ3_K*>(src);
      for (int64_t k = 0; k < n / QK_K; ++k) {
        const float d = fp16_to_fp32(b[k].d);
        int8_t sc[16];
        q3k_scales(b[k].scales, sc);
        float* y = dst + k * QK_K;
        for (int e = 0; e < QK_K; ++e) {
          const int h = e / 128, s = (e / 32) % 4, l = e % 32;
          const int q = ((b[k].qs[32 * h + l] >> (2 * s)) & 3) - ((b[k].hmask[l] >> (e / 32)) & 1 ? 0 : 4);
          y[e] = (d * sc[e / 16]) * q;
        }
      }
      return;
    }
    case GgmlType::Q2_K: {
      const BlockQ2_K* b = static_cast<const BlockQ2_K*>(src);
      for (int64_t k = 0; k < n / QK_K; ++k) {
        const float d = fp16_to_fp32(b[k].d), dmin = fp16_to_fp32(b[k].dmin);
        float* y = dst + k * QK_K;
        for (int j = 0; j < 16; ++j) {
          const float dl = d * (b[k].scales[j] & 0xF), ml = dmin * (b[k].scales[j] >> 4);
          for (int e = 16 * j; e < 16 * j + 16; ++e) y[e] = dl * ((b[k].qs[32 * (e / 128) + e % 32] >> (2 * ((e / 32) % 4))) & 3) - ml;
        }
      }
      return;
    }
    case GgmlType::IQ4_XS: {
      const BlockIQ4_XS* b = static_cast<const BlockIQ4_XS*>(src);
      for (int64_t k = 0; k < n / QK_K; ++k) {
        const float d = fp16_to_fp32(b[k].d);
        float* y = dst + k * QK_K;
        for (int j = 0; j < QK_K / 32; ++j) {
          const float dl = d * iq4xs_scale(b[k], j);
          const uint8_t* qs = b[k].qs + 16 * j;
          for (int l = 0; l < 16; ++l) {
            y[32 * j + l] = dl * kIq4nlValues[qs[l] & 0xF];
            y[32 * j + l + 16] = dl * kIq4nlValues[qs[l] >> 4];
          }
        }
      }
      return;
    }
    default: std::memset(dst, 0, size_t(n) * 4); return;  // model.cpp rejects other embedding types
  }
}

}  // namespace tessera::cpu
