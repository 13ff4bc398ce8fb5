// One warp's share of a GEMV row (gemv.cu, moe_gemv.cu): lane partial sums of
// W[row] . x[t] for t < n (N >= n), W in the repacked layout (matrix_layout.h). Quantized
// weights take q8 activations and multiply with 4-way int8 dot products (dp4a), scaling per
// 32-chunk in fp32: Q4_0/Q4_K/Q6_K units are whole chunks (16 bytes of 4-bit values, + 8
// bytes of high bits for Q6_K), Q8_0 units half chunks. F32/F16/BF16 weights take fp32
// activations, 4 or 8 values per unit. Lanes stride over the row in 16-byte units, so a
// warp's loads cover consecutive bytes. The caller reduces acc over the warp (warp_sum).
// Invariants: activation rows (token t at t * cols32) are zero-padded like the weight rows.
#pragma once
#include "cuda/device.cuh"
#include "cuda/matrix.cuh"

namespace tessera::cuda {

// Every stream's bytes of one row, asked of L2 by one warp (prefetch_l2).
__device__ __forceinline__ void prefetch_gemv_row(const DeviceMatrix& m, int64_t row, int lane) {
  prefetch_l2(m.q + row * m.q_row, m.q_row, lane);
  if (m.qh) prefetch_l2(m.qh + row * m.qh_row, m.qh_row, lane);
  if (m.s) prefetch_l2(m.s + row * m.s_row, m.s_row, lane);
  if (m.sb) prefetch_l2(m.sb + row * m.sb_row, m.sb_row, lane);
}

template <GgmlType T, int N>
__device__ __forceinline__ void gemv_row_partials(const DeviceMatrix& m, int64_t row, const ActQ8& aq, const float* af,
                                                  int n, int lane, float acc[N]) {
  const int64_t nch = m.cols32 / 32;
#pragma unroll
  for (int t = 0; t < N; ++t) acc[t] = 0.f;

  const uint8_t* q = m.q + row * m.q_row;
  if constexpr (T == GgmlType::Q4_0 || T == GgmlType::Q4_K || T == GgmlType::Q6_K || T == GgmlType::Q5_K ||
                T == GgmlType::Q3_K || T == GgmlType::IQ4_XS) {
    // Unrolled so each lane has several 16-byte weight loads in flight before the first use:
    // one at a time leaves a decode GEMV latency-bound far below the memory bandwidth.
#pragma unroll 4
    for (int64_t c = lane; c < nch; c += 32) {
      const uint4 w = load16(q + 16 * c);
      float dw = 0.f, mw = 0.f, sc0 = 0.f, sc1 = 0.f;
      uint2 hb = make_uint2(0, 0);
      if constexpr (T == GgmlType::Q5_K) {  // issue 28: Q4_K's scales, one word of 5th bits
        const uint16_t sm = reinterpret_cast<const uint16_t*>(m.s + row * m.s_row)[c];
        const uint16_t* dm = reinterpret_cast<const uint16_t*>(m.sb + row * m.sb_row) + 2 * (c / 8);
        dw = half_to_float(dm[0]) * float(sm & 0xFF);
        mw = half_to_float(dm[1]) * float(sm >> 8);
        hb.x = reinterpret_cast<const uint32_t*>(m.qh + row * m.qh_row)[c];
      } else if constexpr (T == GgmlType::Q3_K) {  // issue 28: Q6_K's scales, no high bits
        dw = half_to_float(reinterpret_cast<const uint16_t*>(m.sb + row * m.sb_row)[c / 8]);
        const int8_t* sc = reinterpret_cast<const int8_t*>(m.s + row * m.s_row) + 2 * c;
        sc0 = float(sc[0]);
        sc1 = float(sc[1]);
      } else if constexpr (T == GgmlType::IQ4_XS) {  // issue 28: one int8 scale per chunk
        dw = half_to_float(reinterpret_cast<const uint16_t*>(m.sb + row * m.sb_row)[c / 8]) *
             float(reinterpret_cast<const int8_t*>(m.s + row * m.s_row)[c]);
      } else if constexpr (T == GgmlType::Q4_0) {
        dw = half_to_float(reinterpret_cast<const uint16_t*>(m.s + row * m.s_row)[c]);
      } else if constexpr (T == GgmlType::Q4_K) {
        const uint16_t sm = reinterpret_cast<const uint16_t*>(m.s + row * m.s_row)[c];
        const uint16_t* dm = reinterpret_cast<const uint16_t*>(m.sb + row * m.sb_row) + 2 * (c / 8);
        dw = half_to_float(dm[0]) * float(sm & 0xFF);
        mw = half_to_float(dm[1]) * float(sm >> 8);
      } else {
        dw = half_to_float(reinterpret_cast<const uint16_t*>(m.sb + row * m.sb_row)[c / 8]);
        const int8_t* sc = reinterpret_cast<const int8_t*>(m.s + row * m.s_row) + 2 * c;
        sc0 = float(sc[0]);
        sc1 = float(sc[1]);
        hb = load8(m.qh + row * m.qh_row + 8 * c);
      }
#pragma unroll
      for (int t = 0; t < N; ++t) {
        if (t < n) {
          int a[8];
          load_act_chunk(aq.q + t * m.cols32, c, a);
          const float2 ds = aq.ds[t * nch + c];
          if constexpr (T == GgmlType::Q5_K) {
            acc[t] += dw * ds.x * float(dot_q5k(w, hb.x, a)) - mw * ds.y;
          } else if constexpr (T == GgmlType::IQ4_XS) {
            acc[t] += dw * ds.x * float(dot_iq4(w, a));
          } else if constexpr (T == GgmlType::Q3_K) {
            int s0, s1;
            dot_q3(w, a, &s0, &s1);
            acc[t] += dw * ds.x * (sc0 * float(s0) + sc1 * float(s1));
          } else if constexpr (T == GgmlType::Q4_0) {
            acc[t] += dw * (ds.x * float(dot_nibbles(w, a)) - 8.f * ds.y);
          } else if constexpr (T == GgmlType::Q4_K) {
            acc[t] += dw * ds.x * float(dot_nibbles(w, a)) - mw * ds.y;
          } else {
            int s0, s1;
            dot_q6(w, hb, a, &s0, &s1);
            acc[t] += dw * ds.x * (sc0 * float(s0) + sc1 * float(s1));
          }
        }
      }
    }
  } else if constexpr (T == GgmlType::Q4_1) {
    // Whole chunks as Q4_0's; the minimum folds in through the activation chunk's sum.
#pragma unroll 4
    for (int64_t c = lane; c < nch; c += 32) {
      const uint4 w = load16(q + 16 * c);
      const uint32_t dm = reinterpret_cast<const uint32_t*>(m.s + row * m.s_row)[c];
      const float dw = half_to_float(uint16_t(dm & 0xFFFF)), mw = half_to_float(uint16_t(dm >> 16));
#pragma unroll
      for (int t = 0; t < N; ++t) {
        if (t < n) {
          int a[8];
          load_act_chunk(aq.q + t * m.cols32, c, a);
          const float2 ds = aq.ds[t * nch + c];
          acc[t] += dw * ds.x * float(dot_nibbles(w, a)) + mw * ds.y;
        }
      }
    }
  } else if constexpr (T == GgmlType::Q5_1) {
    // As Q5_0's chunks, the minimum folded in as Q4_1's.
#pragma unroll 4
    for (int64_t c = lane; c < nch; c += 32) {
      const uint4 w = load16(q + 16 * c);
      const uint32_t qh = reinterpret_cast<const uint32_t*>(m.qh + row * m.qh_row)[c];
      const uint32_t dm = reinterpret_cast<const uint32_t*>(m.s + row * m.s_row)[c];
      const float dw = half_to_float(uint16_t(dm & 0xFFFF)), mw = half_to_float(uint16_t(dm >> 16));
#pragma unroll
      for (int t = 0; t < N; ++t) {
        if (t < n) {
          int a[8];
          load_act_chunk(aq.q + t * m.cols32, c, a);
          const float2 ds = aq.ds[t * nch + c];
          acc[t] += dw * ds.x * float(dot_q5(w, qh, a)) + mw * ds.y;
        }
      }
    }
  } else if constexpr (T == GgmlType::MXFP4) {
    // As IQ4_NL's chunks, with the E2M1 levels and the E8M0 scale.
#pragma unroll 4
    for (int64_t c = lane; c < nch; c += 32) {
      uint32_t w[4];
      unpack_words(load16(q + 16 * c), w);
      const float dw = e8m0_half((m.s + row * m.s_row)[c]);
      uint32_t lv[8];
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        lv[i] = mxfp4_levels4(w[i] & 0x0F0F0F0Fu);
        lv[i + 4] = mxfp4_levels4((w[i] >> 4) & 0x0F0F0F0Fu);
      }
#pragma unroll
      for (int t = 0; t < N; ++t) {
        if (t < n) {
          int a[8];
          load_act_chunk(aq.q + t * m.cols32, c, a);
          int s = 0;
#pragma unroll
          for (int i = 0; i < 8; ++i) s = dot_i8x4(int(lv[i]), a[i], s);
          acc[t] += dw * aq.ds[t * nch + c].x * float(s);
        }
      }
    }
  } else if constexpr (T == GgmlType::IQ4_NL) {
    // Whole chunks as Q4_0's, each index looked up into its int8 level.
#pragma unroll 4
    for (int64_t c = lane; c < nch; c += 32) {
      uint32_t w[4];
      unpack_words(load16(q + 16 * c), w);
      const float dw = half_to_float(reinterpret_cast<const uint16_t*>(m.s + row * m.s_row)[c]);
      uint32_t lv[8];
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        lv[i] = iq4nl_levels4(w[i] & 0x0F0F0F0Fu);
        lv[i + 4] = iq4nl_levels4((w[i] >> 4) & 0x0F0F0F0Fu);
      }
#pragma unroll
      for (int t = 0; t < N; ++t) {
        if (t < n) {
          int a[8];
          load_act_chunk(aq.q + t * m.cols32, c, a);
          int s = 0;
#pragma unroll
          for (int i = 0; i < 8; ++i) s = dot_i8x4(int(lv[i]), a[i], s);
          acc[t] += dw * aq.ds[t * nch + c].x * float(s);
        }
      }
    }
  } else if constexpr (T == GgmlType::Q5_0) {
    // Whole chunks as Q4_0's, the fifth bits one uint32 per chunk; the -16 offset folds in
    // through the activation chunk's sum.
#pragma unroll 4
    for (int64_t c = lane; c < nch; c += 32) {
      const uint4 w = load16(q + 16 * c);
      const uint32_t qh = reinterpret_cast<const uint32_t*>(m.qh + row * m.qh_row)[c];
      const float dw = half_to_float(reinterpret_cast<const uint16_t*>(m.s + row * m.s_row)[c]);
#pragma unroll
      for (int t = 0; t < N; ++t) {
        if (t < n) {
          int a[8];
          load_act_chunk(aq.q + t * m.cols32, c, a);
          const float2 ds = aq.ds[t * nch + c];
          acc[t] += dw * (ds.x * float(dot_q5(w, qh, a)) - 16.f * ds.y);
        }
      }
    }
  } else if constexpr (T == GgmlType::Q2_K) {  // issue 28: 8 bytes of 2-bit values per chunk
#pragma unroll 4
    for (int64_t c = lane; c < nch; c += 32) {
      const uint2 w = load8(q + 8 * c);
      const uint8_t* sm = m.s + row * m.s_row + 2 * c;
      const uint16_t* dm = reinterpret_cast<const uint16_t*>(m.sb + row * m.sb_row) + 2 * (c / 8);
      const float d = half_to_float(dm[0]), dmin = half_to_float(dm[1]);
      const float d0 = d * float(sm[0] & 0xF), d1 = d * float(sm[1] & 0xF);
      const float m0 = dmin * float(sm[0] >> 4), m1 = dmin * float(sm[1] >> 4);
#pragma unroll
      for (int t = 0; t < N; ++t) {
        if (t < n) {
          int a[8];
          load_act_chunk(aq.q + t * m.cols32, c, a);
          int s0 = 0, s1 = 0, x0 = 0, x1 = 0;
#pragma unroll
          for (int i = 0; i < 4; ++i) {
            s0 = dot_i8x4(int((w.x >> (2 * i)) & 0x03030303u), a[i], s0);
            s1 = dot_i8x4(int((w.y >> (2 * i)) & 0x03030303u), a[i + 4], s1);
            x0 = dot_i8x4(0x01010101, a[i], x0);
            x1 = dot_i8x4(0x01010101, a[i + 4], x1);
          }
          acc[t] += aq.ds[t * nch + c].x * (d0 * float(s0) + d1 * float(s1) - m0 * float(x0) - m1 * float(x1));
        }
      }
    }
  } else if constexpr (T == GgmlType::Q8_0) {
#pragma unroll 4
    for (int64_t u = lane; u < 2 * nch; u += 32) {
      const int64_t c = u / 2;
      uint32_t w[4];
      unpack_words(load16(q + 16 * u), w);
      const float dw = half_to_float(reinterpret_cast<const uint16_t*>(m.s + row * m.s_row)[c]);
#pragma unroll
      for (int t = 0; t < N; ++t) {
        if (t < n) {
          uint32_t a[4];
          unpack_words(load16(aq.q + t * m.cols32 + 16 * u), a);
          int s = 0;
#pragma unroll
          for (int i = 0; i < 4; ++i) s = dot_i8x4(int(w[i]), int(a[i]), s);
          acc[t] += dw * aq.ds[t * nch + c].x * float(s);
        }
      }
    }
  } else {
    // Float weights: F32 units are 4 values, F16/BF16 units 8 values.
    constexpr int kVals = T == GgmlType::F32 ? 4 : 8;
    const int64_t units = m.cols32 / kVals;
#pragma unroll 4
    for (int64_t u = lane; u < units; u += 32) {
      float w[kVals];
      const uint4 raw = load16(q + 16 * u);
      if constexpr (T == GgmlType::F32) {
        w[0] = __uint_as_float(raw.x);
        w[1] = __uint_as_float(raw.y);
        w[2] = __uint_as_float(raw.z);
        w[3] = __uint_as_float(raw.w);
      } else {
        uint32_t r[4];
        unpack_words(raw, r);
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          const uint16_t lo = uint16_t(r[i] & 0xFFFF), hi = uint16_t(r[i] >> 16);
          w[2 * i] = T == GgmlType::F16 ? half_to_float(lo) : bf16_to_float(lo);
          w[2 * i + 1] = T == GgmlType::F16 ? half_to_float(hi) : bf16_to_float(hi);
        }
      }
#pragma unroll
      for (int t = 0; t < N; ++t) {
        if (t < n) {
          const float4* x = reinterpret_cast<const float4*>(af + t * m.cols32 + kVals * u);
          float s = 0.f;
#pragma unroll
          for (int i = 0; i < kVals / 4; ++i) {
            const float4 v = x[i];
            s += w[4 * i] * v.x + w[4 * i + 1] * v.y + w[4 * i + 2] * v.z + w[4 * i + 3] * v.w;
          }
          acc[t] += s;
        }
      }
    }
  }
}

}  // namespace tessera::cuda
