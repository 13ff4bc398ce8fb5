// Device-side reads of a repacked weight matrix (layout in matrix_layout.h): decoding to
// floats (embedding rows, GEMM tiles) and the per-chunk integer dot products of the GEMV
// against q8 activations. Decoding performs the same float operations in the same order as
// the CPU's dequantize_row, so both produce identical values.
#pragma once
#include "cuda/device.cuh"
#include "cuda/matrix_layout.h"

namespace tessera::cuda {

// The q8 encoding of activation rows the quantized GEMV consumes: per 32-value chunk,
// int8 q[32] and (d, d * sum(q)) so that sum_i x_i ~= d * q_i and sum_i x_i ~= d * sum(q).
struct ActQ8 {
  const int8_t* q = nullptr;   // [n_tokens][cols32]
  const float2* ds = nullptr;  // [n_tokens][cols32 / 32]
};

__device__ __forceinline__ void unpack_words(uint4 v, uint32_t w[4]) {
  w[0] = v.x;
  w[1] = v.y;
  w[2] = v.z;
  w[3] = v.w;
}

// Values [16h, 16h + 16) of chunk c (values [32c, 32c + 32)) of row r.
__device__ __forceinline__ void decode_half_chunk(const DeviceMatrix& m, int64_t r, int64_t c, int h, float v[16]) {
  switch (m.type) {
    case GgmlType::F32: {
      const float* p = reinterpret_cast<const float*>(m.q + r * m.q_row) + 32 * c + 16 * h;
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const float4 f = reinterpret_cast<const float4*>(p)[i];
        v[4 * i] = f.x;
        v[4 * i + 1] = f.y;
        v[4 * i + 2] = f.z;
        v[4 * i + 3] = f.w;
      }
      return;
    }
    case GgmlType::F16:
    case GgmlType::BF16: {
      const uint8_t* p = m.q + r * m.q_row + 2 * (32 * c + 16 * h);
      uint32_t w[8];
      unpack_words(load16(p), w);
      unpack_words(load16(p + 16), w + 4);
#pragma unroll
      for (int i = 0; i < 8; ++i) {
        const uint16_t lo = uint16_t(w[i] & 0xFFFF), hi = uint16_t(w[i] >> 16);
        v[2 * i] = m.type == GgmlType::F16 ? half_to_float(lo) : bf16_to_float(lo);
        v[2 * i + 1] = m.type == GgmlType::F16 ? half_to_float(hi) : bf16_to_float(hi);
      }
      return;
    }
    case GgmlType::Q8_0: {
      const float d = half_to_float(reinterpret_cast<const uint16_t*>(m.s + r * m.s_row)[c]);
      uint32_t w[4];
      unpack_words(load16(m.q + r * m.q_row + 32 * c + 16 * h), w);
#pragma unroll
      for (int i = 0; i < 16; ++i) v[i] = d * float(int8_t(w[i / 4] >> (8 * (i % 4))));
      return;
    }
    case GgmlType::Q4_0: {
      const float d = half_to_float(reinterpret_cast<const uint16_t*>(m.s + r * m.s_row)[c]);
      uint32_t w[4];
      unpack_words(load16(m.q + r * m.q_row + 16 * c), w);
#pragma unroll
      for (int i = 0; i < 16; ++i) v[i] = d * float(int((w[i / 4] >> (8 * (i % 4) + 4 * h)) & 0xF) - 8);
      return;
    }
    case GgmlType::Q4_K: {
      const uint16_t sm = reinterpret_cast<const uint16_t*>(m.s + r * m.s_row)[c];
      const uint16_t* dm = reinterpret_cast<const uint16_t*>(m.sb + r * m.sb_row) + 2 * (c / 8);
      const float d = half_to_float(dm[0]) * float(sm & 0xFF), dmin = half_to_float(dm[1]) * float(sm >> 8);
      uint32_t w[4];
      unpack_words(load16(m.q + r * m.q_row + 16 * c), w);
#pragma unroll
      for (int i = 0; i < 16; ++i) v[i] = d * float((w[i / 4] >> (8 * (i % 4) + 4 * h)) & 0xF) - dmin;
      return;
    }
    case GgmlType::Q6_K: {
      const float d = half_to_float(reinterpret_cast<const uint16_t*>(m.sb + r * m.sb_row)[c / 8]);
      const float sc = float(reinterpret_cast<const int8_t*>(m.s + r * m.s_row)[2 * c + h]);
      uint32_t w[4];
      unpack_words(load16(m.q + r * m.q_row + 16 * c), w);
      const uint2 hb = load8(m.qh + r * m.qh_row + 8 * c);
      const uint32_t high = h ? hb.y : hb.x;
#pragma unroll
      for (int i = 0; i < 16; ++i) {
        const int lo = int((w[i / 4] >> (8 * (i % 4) + 4 * h)) & 0xF);
        const int hi = int((high >> (8 * (i % 4) + 2 * (i / 4))) & 3);
        v[i] = d * sc * float((lo | (hi << 4)) - 32);
      }
      return;
    }
    default:
#pragma unroll
      for (int i = 0; i < 16; ++i) v[i] = 0.f;
  }
}

__device__ __forceinline__ void decode_chunk(const DeviceMatrix& m, int64_t r, int64_t c, float v[32]) {
  decode_half_chunk(m, r, c, 0, v);
  decode_half_chunk(m, r, c, 1, v + 16);
}

// ---- GEMV integer dot products. `a` holds a q8 activation chunk as 8 int8x4 words.

__device__ __forceinline__ void load_act_chunk(const int8_t* q, int64_t c, int a[8]) {
  const uint4 lo = load16(q + 32 * c), hi = load16(q + 32 * c + 16);
  a[0] = int(lo.x);
  a[1] = int(lo.y);
  a[2] = int(lo.z);
  a[3] = int(lo.w);
  a[4] = int(hi.x);
  a[5] = int(hi.y);
  a[6] = int(hi.z);
  a[7] = int(hi.w);
}

// sum_i nibble_i * a_i over a 32-value chunk of 4-bit values (Q4_0 / Q4_K order).
__device__ __forceinline__ int dot_nibbles(uint4 packed, const int a[8]) {
  uint32_t w[4];
  unpack_words(packed, w);
  int s = 0;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    s = dot_i8x4(int(w[i] & 0x0F0F0F0Fu), a[i], s);
    s = dot_i8x4(int((w[i] >> 4) & 0x0F0F0F0Fu), a[i + 4], s);
  }
  return s;
}

// Q6_K chunk: sums of (q - 32) * a over values 0..15 (s0) and 16..31 (s1), which carry
// different scales.
__device__ __forceinline__ void dot_q6(uint4 low, uint2 high, const int a[8], int* s0, int* s1) {
  uint32_t w[4];
  unpack_words(low, w);
  int lo_sum = 0, hi_sum = 0;
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    const uint32_t nib = i < 4 ? (w[i] & 0x0F0F0F0Fu) : ((w[i - 4] >> 4) & 0x0F0F0F0Fu);
    const uint32_t hb = (((i < 4 ? high.x : high.y) >> (2 * (i % 4))) & 0x03030303u) << 4;
    // Bytes are 0..63: (b + 128 - 32) ^ 128 is b - 32 as int8 with no borrow between bytes.
    const uint32_t q = (((nib | hb) | 0x80808080u) - 0x20202020u) ^ 0x80808080u;
    if (i < 4) lo_sum = dot_i8x4(int(q), a[i], lo_sum);
    else hi_sum = dot_i8x4(int(q), a[i], hi_sum);
  }
  *s0 = lo_sum;
  *s1 = hi_sum;
}

}  // namespace tessera::cuda
