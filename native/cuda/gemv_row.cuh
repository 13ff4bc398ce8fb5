// One warp's share of a GEMV row (gemv.cu, moe_gemv.cu): lane partial sums of
// W[row] . x[t] for t < n (N >= n), W in the repacked layout (matrix_layout.h). Quantized
// weights take q8 activations and multiply with 4-way int8 dot products (dp4a), scaling per
// 32-chunk in fp32: the units are whole chunks (load_gemv_chunk and gemv_chunk_dot in
// matrix.cuh, one pair per type), Q8_0 units half chunks. F32/F16/BF16 weights take fp32
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
  if constexpr (T != GgmlType::Q8_0 && T != GgmlType::F32 && T != GgmlType::F16 && T != GgmlType::BF16) {
    // Whole chunks, each type's reads and dot product from matrix.cuh. Unrolled so each lane
    // has several weight loads in flight before the first use: one at a time leaves a
    // decode GEMV latency-bound far below the memory bandwidth.
#pragma unroll 4
    for (int64_t c = lane; c < nch; c += 32) {
      const GemvChunkBits b = load_gemv_chunk<T>(m, row, c);
#pragma unroll
      for (int t = 0; t < N; ++t) {
        if (t < n) {
          int a[8];
          load_act_chunk(aq.q + t * m.cols32, c, a);
          acc[t] += gemv_chunk_dot<T>(b, a, aq.ds[t * nch + c]);
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
