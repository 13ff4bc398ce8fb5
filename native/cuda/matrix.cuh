// Device-side reads of a repacked weight matrix (each type's streams in repack.cpp): decoding to
// floats (embedding rows) or packed fp16 (GEMM tiles), and the per-chunk integer dot
// products of the GEMV against q8 activations. Decoding performs the same float operations
// in the same order as the CPU's dequantize_row, so both produce identical values.
#pragma once
#include <type_traits>

#include "cuda/device.cuh"
#include "cuda/matrix_layout.h"
#include "core/weight_types.h"

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

// Calls f(std::integral_constant<GgmlType, T>{}) for T = t, the weight type as a template
// argument (kernels are instantiated per type), and says whether t is one the CUDA kernels
// read; for any other type it calls nothing. Host code passes host lambdas (kernel launches),
// device code device ones, hence the pragma: nvcc would warn on every host instantiation.
#ifdef __CUDACC__
#pragma nv_exec_check_disable
#endif
template <class F>
__host__ __device__ __forceinline__ bool with_weight_type(GgmlType t, F&& f) {
  switch (t) {
#define TESSERA_CUDA_WEIGHT_CASE(type, act, layout, layout512)      \
  case GgmlType::type:                                              \
    f(std::integral_constant<GgmlType, GgmlType::type>{});          \
    return true;
    TESSERA_WEIGHT_TYPES(TESSERA_CUDA_WEIGHT_CASE)
#undef TESSERA_CUDA_WEIGHT_CASE
    default: return false;
  }
}

// kIq4nlValues[i] (ggml_types.h) from two 64-bit constants: arithmetic only, no table in
// device memory.
__host__ __device__ __forceinline__ int iq4_value(uint32_t i) {
  const uint64_t bytes = i < 8 ? 0xF6EADDCFBFAD9881ull : 0x7159453526190D01ull;
  return int(int8_t(uint8_t(bytes >> (8 * (i & 7)))));
}

// Four IQ4_XS grid values as an int8x4 word, from four index nibbles at bits 0, 8, 16, 24.
__device__ __forceinline__ uint32_t iq4_word(uint32_t idx) {
  uint32_t out = 0;
#pragma unroll
  for (int k = 0; k < 4; ++k) out |= uint32_t(uint8_t(iq4_value((idx >> (8 * k)) & 0xF))) << (8 * k);
  return out;
}

// The stored bits behind values [16h, 16h + 16) of chunk c of a row, as loaded from the
// repacked streams. Loading and decoding are separate steps so that a kernel can have the
// loads of its next tile in flight while it computes on the current one (gemm_tile.cuh).
//   v:  the values' bytes: F32 all four words, F16/BF16 two, Q8_0 one (its half of the
//       chunk), Q4_0/Q4_K/Q6_K one (the whole chunk's low nibbles and high nibbles);
//   s0: Q8_0/Q4_0 the fp16 d; Q4_K the 6-bit scale | min << 8; Q6_K the int8 scale of
//       this half;
//   s1: Q4_K the fp16 (d, dmin) pair of the super-block; Q6_K its fp16 d;
//   hi: Q6_K the high 2 bits of this half (repack.cpp).
struct HalfChunkBits {
  uint4 v[4];
  uint32_t s0, s1, hi;
};

// Word i of a 16-entry int8 table: entries 4i..4i+3, little-endian. Lookups of 4 indices
// 0..15 (one per byte) take the table as these 4 words: two byte permutes pick from entries
// 0..7 and 8..15, bit 3 of each index chooses between them.
constexpr uint32_t table_word(const int8_t (&t)[16], int i) {
  return uint32_t(uint8_t(t[4 * i])) | uint32_t(uint8_t(t[4 * i + 1])) << 8 | uint32_t(uint8_t(t[4 * i + 2])) << 16 |
         uint32_t(uint8_t(t[4 * i + 3])) << 24;
}
constexpr uint32_t kIq4nlW0 = table_word(kIq4nlValues, 0), kIq4nlW1 = table_word(kIq4nlValues, 1),
                   kIq4nlW2 = table_word(kIq4nlValues, 2), kIq4nlW3 = table_word(kIq4nlValues, 3);

__device__ __forceinline__ uint32_t lookup_nibbles4(uint32_t idx, uint32_t w0, uint32_t w1, uint32_t w2, uint32_t w3) {
  const uint32_t sel = (idx & 0x7u) | ((idx >> 4) & 0x70u) | ((idx >> 8) & 0x700u) | ((idx >> 12) & 0x7000u);
  const uint32_t lo = __byte_perm(w0, w1, sel), hi = __byte_perm(w2, w3, sel);
  const uint32_t upper = ((idx >> 3) & 0x01010101u) * 0xFFu;  // 0xFF in the bytes whose index is >= 8
  return (lo & ~upper) | (hi & upper);
}
constexpr uint32_t kMxfp4W0 = table_word(kMxfp4Values, 0), kMxfp4W1 = table_word(kMxfp4Values, 1),
                   kMxfp4W2 = table_word(kMxfp4Values, 2), kMxfp4W3 = table_word(kMxfp4Values, 3);
__device__ __forceinline__ uint32_t mxfp4_levels4(uint32_t idx) { return lookup_nibbles4(idx, kMxfp4W0, kMxfp4W1, kMxfp4W2, kMxfp4W3); }
// 2^(e - 128) (core/ggml_types.h e8m0_to_fp32_half).
__device__ __forceinline__ float e8m0_half(uint32_t e) { return __uint_as_float(e < 2 ? 0x00200000u << e : (e - 1) << 23); }

__device__ __forceinline__ uint32_t iq4nl_levels4(uint32_t idx) { return lookup_nibbles4(idx, kIq4nlW0, kIq4nlW1, kIq4nlW2, kIq4nlW3); }

template <GgmlType T>
__device__ __forceinline__ HalfChunkBits load_half_chunk(const DeviceMatrix& m, int64_t r, int64_t c, int h) {
  HalfChunkBits b = {};
  const uint8_t* q = m.q + r * m.q_row;
  if constexpr (T == GgmlType::F32) {
#pragma unroll
    for (int i = 0; i < 4; ++i) b.v[i] = load16(q + 4 * (32 * c + 16 * h) + 16 * i);
  } else if constexpr (T == GgmlType::F16 || T == GgmlType::BF16) {
    b.v[0] = load16(q + 2 * (32 * c + 16 * h));
    b.v[1] = load16(q + 2 * (32 * c + 16 * h) + 16);
  } else if constexpr (T == GgmlType::Q8_0) {
    b.v[0] = load16(q + 32 * c + 16 * h);
    b.s0 = reinterpret_cast<const uint16_t*>(m.s + r * m.s_row)[c];
  } else if constexpr (T == GgmlType::Q4_0) {
    b.v[0] = load16(q + 16 * c);
    b.s0 = reinterpret_cast<const uint16_t*>(m.s + r * m.s_row)[c];
  } else if constexpr (T == GgmlType::Q4_K) {
    b.v[0] = load16(q + 16 * c);
    b.s0 = reinterpret_cast<const uint16_t*>(m.s + r * m.s_row)[c];
    b.s1 = reinterpret_cast<const uint32_t*>(m.sb + r * m.sb_row)[c / 8];
  } else if constexpr (T == GgmlType::Q6_K) {
    b.v[0] = load16(q + 16 * c);
    b.s0 = uint32_t(reinterpret_cast<const int8_t*>(m.s + r * m.s_row)[2 * c + h]);
    b.s1 = reinterpret_cast<const uint16_t*>(m.sb + r * m.sb_row)[c / 8];
    b.hi = reinterpret_cast<const uint32_t*>(m.qh + r * m.qh_row + 8 * c)[h];
  } else if constexpr (T == GgmlType::Q4_1) {
    b.v[0] = load16(q + 16 * c);
    b.s0 = reinterpret_cast<const uint32_t*>(m.s + r * m.s_row)[c];
  } else if constexpr (T == GgmlType::Q5_1) {
    b.v[0] = load16(q + 16 * c);
    b.s0 = reinterpret_cast<const uint32_t*>(m.s + r * m.s_row)[c];
    b.hi = reinterpret_cast<const uint32_t*>(m.qh + r * m.qh_row)[c];
  } else if constexpr (T == GgmlType::IQ4_NL) {
    b.v[0] = load16(q + 16 * c);
    b.s0 = reinterpret_cast<const uint16_t*>(m.s + r * m.s_row)[c];
  } else if constexpr (T == GgmlType::MXFP4) {
    b.v[0] = load16(q + 16 * c);
    b.s0 = (m.s + r * m.s_row)[c];
  } else if constexpr (T == GgmlType::Q5_0) {
    b.v[0] = load16(q + 16 * c);
    b.s0 = reinterpret_cast<const uint16_t*>(m.s + r * m.s_row)[c];
    b.hi = reinterpret_cast<const uint32_t*>(m.qh + r * m.qh_row)[c];
  } else if constexpr (T == GgmlType::Q5_K) {  // issue 28
    b.v[0] = load16(q + 16 * c);
    b.s0 = reinterpret_cast<const uint16_t*>(m.s + r * m.s_row)[c];
    b.s1 = reinterpret_cast<const uint32_t*>(m.sb + r * m.sb_row)[c / 8];
    b.hi = reinterpret_cast<const uint32_t*>(m.qh + r * m.qh_row)[c];
  } else if constexpr (T == GgmlType::Q3_K) {
    b.v[0] = load16(q + 16 * c);
    b.s0 = uint32_t(reinterpret_cast<const int8_t*>(m.s + r * m.s_row)[2 * c + h]);
    b.s1 = reinterpret_cast<const uint16_t*>(m.sb + r * m.sb_row)[c / 8];
  } else if constexpr (T == GgmlType::Q2_K) {
    b.v[0].x = reinterpret_cast<const uint32_t*>(q + 8 * c)[h];
    b.s0 = m.s[r * m.s_row + 2 * c + h];
    b.s1 = reinterpret_cast<const uint32_t*>(m.sb + r * m.sb_row)[c / 8];
  } else if constexpr (T == GgmlType::IQ4_XS) {
    b.v[0] = load16(q + 16 * c);
    b.s0 = uint32_t(reinterpret_cast<const int8_t*>(m.s + r * m.s_row)[c]);
    b.s1 = reinterpret_cast<const uint16_t*>(m.sb + r * m.sb_row)[c / 8];
  }
  return b;
}

template <GgmlType T>
__device__ __forceinline__ void decode_half_chunk_bits(const HalfChunkBits& b, int h, float v[16]) {
  if constexpr (T == GgmlType::F32) {
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      v[4 * i] = __uint_as_float(b.v[i].x);
      v[4 * i + 1] = __uint_as_float(b.v[i].y);
      v[4 * i + 2] = __uint_as_float(b.v[i].z);
      v[4 * i + 3] = __uint_as_float(b.v[i].w);
    }
  } else if constexpr (T == GgmlType::F16 || T == GgmlType::BF16) {
    uint32_t w[8];
    unpack_words(b.v[0], w);
    unpack_words(b.v[1], w + 4);
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const uint16_t lo = uint16_t(w[i] & 0xFFFF), hi = uint16_t(w[i] >> 16);
      v[2 * i] = T == GgmlType::F16 ? half_to_float(lo) : bf16_to_float(lo);
      v[2 * i + 1] = T == GgmlType::F16 ? half_to_float(hi) : bf16_to_float(hi);
    }
  } else if constexpr (T == GgmlType::Q8_0) {
    const float d = half_to_float(uint16_t(b.s0));
    uint32_t w[4];
    unpack_words(b.v[0], w);
#pragma unroll
    for (int i = 0; i < 16; ++i) v[i] = d * small_uint_to_float(((w[i / 4] >> (8 * (i % 4))) & 0xFF) ^ 0x80, 128.f);
  } else if constexpr (T == GgmlType::Q4_0) {
    const float d = half_to_float(uint16_t(b.s0));
    uint32_t w[4];
    unpack_words(b.v[0], w);
#pragma unroll
    for (int i = 0; i < 16; ++i) v[i] = d * small_uint_to_float((w[i / 4] >> (8 * (i % 4) + 4 * h)) & 0xF, 8.f);
  } else if constexpr (T == GgmlType::Q4_K) {
    const float d = half_to_float(uint16_t(b.s1 & 0xFFFF)) * float(b.s0 & 0xFF);
    const float dmin = half_to_float(uint16_t(b.s1 >> 16)) * float((b.s0 >> 8) & 0xFF);
    uint32_t w[4];
    unpack_words(b.v[0], w);
#pragma unroll
    for (int i = 0; i < 16; ++i) v[i] = d * small_uint_to_float((w[i / 4] >> (8 * (i % 4) + 4 * h)) & 0xF) - dmin;
  } else if constexpr (T == GgmlType::Q6_K) {
    const float d = half_to_float(uint16_t(b.s1));
    const float sc = float(int8_t(b.s0));
    uint32_t w[4];
    unpack_words(b.v[0], w);
#pragma unroll
    for (int i = 0; i < 16; ++i) {
      const uint32_t lo = (w[i / 4] >> (8 * (i % 4) + 4 * h)) & 0xF;
      const uint32_t hi = (b.hi >> (8 * (i % 4) + 2 * (i / 4))) & 3;
      v[i] = d * sc * small_uint_to_float(lo | (hi << 4), 32.f);
    }
  } else if constexpr (T == GgmlType::Q4_1) {
    // q * d + m, rounded after the product as the CPU's dequantize_row (no fused multiply-add).
    const float d = half_to_float(uint16_t(b.s0 & 0xFFFF)), mn = half_to_float(uint16_t(b.s0 >> 16));
    uint32_t w[4];
    unpack_words(b.v[0], w);
#pragma unroll
    for (int i = 0; i < 16; ++i) v[i] = __fadd_rn(__fmul_rn(small_uint_to_float((w[i / 4] >> (8 * (i % 4) + 4 * h)) & 0xF), d), mn);
  } else if constexpr (T == GgmlType::Q5_1) {
    const float d = half_to_float(uint16_t(b.s0 & 0xFFFF)), mn = half_to_float(uint16_t(b.s0 >> 16));
    uint32_t w[4];
    unpack_words(b.v[0], w);
#pragma unroll
    for (int i = 0; i < 16; ++i) {
      const uint32_t lo = (w[i / 4] >> (8 * (i % 4) + 4 * h)) & 0xF;
      const uint32_t hi = (b.hi >> (16 * h + i)) & 1;
      v[i] = __fadd_rn(__fmul_rn(small_uint_to_float(lo | (hi << 4)), d), mn);
    }
  } else if constexpr (T == GgmlType::IQ4_NL) {
    const float d = half_to_float(uint16_t(b.s0));
    uint32_t w[4];
    unpack_words(b.v[0], w);
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const uint32_t vals = iq4nl_levels4((w[j] >> (4 * h)) & 0x0F0F0F0Fu);
#pragma unroll
      for (int k = 0; k < 4; ++k) v[4 * j + k] = d * float(int8_t((vals >> (8 * k)) & 0xFF));
    }
  } else if constexpr (T == GgmlType::MXFP4) {
    const float d = e8m0_half(b.s0);
    uint32_t w[4];
    unpack_words(b.v[0], w);
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const uint32_t vals = mxfp4_levels4((w[j] >> (4 * h)) & 0x0F0F0F0Fu);
#pragma unroll
      for (int k = 0; k < 4; ++k) v[4 * j + k] = d * float(int8_t((vals >> (8 * k)) & 0xFF));
    }
  } else if constexpr (T == GgmlType::Q5_0) {
    const float d = half_to_float(uint16_t(b.s0));
    uint32_t w[4];
    unpack_words(b.v[0], w);
#pragma unroll
    for (int i = 0; i < 16; ++i) {
      const uint32_t lo = (w[i / 4] >> (8 * (i % 4) + 4 * h)) & 0xF;
      const uint32_t hi = (b.hi >> (16 * h + i)) & 1;
      v[i] = d * small_uint_to_float(lo | (hi << 4), 16.f);
    }
  } else if constexpr (T == GgmlType::Q5_K) {  // issue 28
    const float d = half_to_float(uint16_t(b.s1 & 0xFFFF)) * float(b.s0 & 0xFF);
    const float dmin = half_to_float(uint16_t(b.s1 >> 16)) * float((b.s0 >> 8) & 0xFF);
    uint32_t w[4];
    unpack_words(b.v[0], w);
#pragma unroll
    for (int i = 0; i < 16; ++i) {
      const uint32_t lo = (w[i / 4] >> (8 * (i % 4) + 4 * h)) & 0xF;
      const uint32_t hi = (b.hi >> (8 * (i % 4) + 4 * h + i / 4)) & 1;
      v[i] = d * small_uint_to_float(lo | (hi << 4)) - dmin;
    }
  } else if constexpr (T == GgmlType::Q3_K) {
    const float d = half_to_float(uint16_t(b.s1));
    const float sc = float(int8_t(b.s0));
    uint32_t w[4];
    unpack_words(b.v[0], w);
#pragma unroll
    for (int i = 0; i < 16; ++i) v[i] = d * sc * small_uint_to_float((w[i / 4] >> (8 * (i % 4) + 4 * h)) & 0xF, 4.f);
  } else if constexpr (T == GgmlType::Q2_K) {
    const float d = half_to_float(uint16_t(b.s1 & 0xFFFF)) * float(b.s0 & 0xF);
    const float dmin = half_to_float(uint16_t(b.s1 >> 16)) * float((b.s0 >> 4) & 0xF);
#pragma unroll
    for (int i = 0; i < 16; ++i) v[i] = d * small_uint_to_float((b.v[0].x >> (8 * (i % 4) + 2 * (i / 4))) & 3) - dmin;
  } else if constexpr (T == GgmlType::IQ4_XS) {
    const float dl = half_to_float(uint16_t(b.s1)) * float(int8_t(b.s0));
    uint32_t w[4];
    unpack_words(b.v[0], w);
#pragma unroll
    for (int i = 0; i < 16; ++i) v[i] = dl * float(iq4_value((w[i / 4] >> (8 * (i % 4) + 4 * h)) & 0xF));
  }
}

// The same values as decode_half_chunk_bits, rounded to fp16 (saturating) and packed in
// pairs: out[i] = v[2i] | v[2i + 1] << 16, what the GEMM's shared tiles hold. F16 values are
// already pairs; Q8_0 and Q4_0 values go from bytes to fp16 through bytes_plus_1024 and
// half2 arithmetic (the subtraction is exact, the product rounds once, as the float
// product's conversion does), so they skip the float round trip.
template <GgmlType T>
__device__ __forceinline__ void decode_half_chunk_packed(const HalfChunkBits& b, int h, uint32_t out[8]) {
  if constexpr (T == GgmlType::F16) {
    unpack_words(b.v[0], out);
    unpack_words(b.v[1], out + 4);
  } else if constexpr (T == GgmlType::Q8_0 || T == GgmlType::Q4_0) {
    const uint32_t d_bits = b.s0 & 0xFFFF;
    const uint32_t d_pair = d_bits | (d_bits << 16);
    const __half2 d = *reinterpret_cast<const __half2*>(&d_pair);
    // Q8_0: 1024 + (q + 128) for the int8 q; Q4_0: 1024 + n for the nibble n, w = d (n - 8).
    const __half2 offset = __float2half2_rn(T == GgmlType::Q8_0 ? 1152.f : 1032.f);
    uint32_t w[4];
    unpack_words(b.v[0], w);
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const uint32_t bytes = T == GgmlType::Q8_0 ? w[j] ^ 0x80808080u : (w[j] >> (4 * h)) & 0x0F0F0F0Fu;
#pragma unroll
      for (int p = 0; p < 2; ++p) {
        const __half2 v = __hmul2(__hsub2(bytes_plus_1024(bytes, p == 1), offset), d);
        out[2 * j + p] = *reinterpret_cast<const uint32_t*>(&v);
      }
    }
  } else {
    float v[16];
    decode_half_chunk_bits<T>(b, h, v);
#pragma unroll
    for (int i = 0; i < 8; ++i) out[i] = pack_half2(v[2 * i], v[2 * i + 1]);
  }
}

// Values [16h, 16h + 16) of chunk c (values [32c, 32c + 32)) of row r, for a type known only
// at run time (zeros for a type no kernel reads).
__device__ __forceinline__ void decode_half_chunk(const DeviceMatrix& m, int64_t r, int64_t c, int h, float v[16]) {
  const bool known = with_weight_type(m.type, [&](auto type) {
    constexpr GgmlType T = decltype(type)::value;
    decode_half_chunk_bits<T>(load_half_chunk<T>(m, r, c, h), h, v);
  });
  if (!known) {
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

// ---- Blocks of 32 (issue 28).

// Bits 0..3 of h moved to bit 4 of bytes 0..3: the fifth bits of 4 consecutive values.
__device__ __forceinline__ uint32_t spread_fifth_bits(uint32_t h) {
  return ((h & 1u) << 4) | ((h & 2u) << 11) | ((h & 4u) << 18) | ((h & 8u) << 25);
}

// sum_i q_i * a_i over a 32-value chunk of 5-bit levels q (0..31): nibbles as Q4_0, fifth
// bits in qh (bit i for value i).
__device__ __forceinline__ int dot_q5(uint4 packed, uint32_t qh, const int a[8]) {
  uint32_t w[4];
  unpack_words(packed, w);
  int s = 0;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    s = dot_i8x4(int((w[i] & 0x0F0F0F0Fu) | spread_fifth_bits(qh >> (4 * i))), a[i], s);
    s = dot_i8x4(int(((w[i] >> 4) & 0x0F0F0F0Fu) | spread_fifth_bits(qh >> (16 + 4 * i))), a[i + 4], s);
  }
  return s;
}

// ---- issue 28 K-quants.

// Q5_K chunk: sum_i q_i * a_i over 32 5-bit values, the nibbles in Q4_0 order and the 5th
// bits in one word (repack.cpp).
__device__ __forceinline__ int dot_q5k(uint4 low, uint32_t high, const int a[8]) {
  uint32_t w[4];
  unpack_words(low, w);
  int s = 0;
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    const uint32_t nib = i < 4 ? (w[i] & 0x0F0F0F0Fu) : ((w[i - 4] >> 4) & 0x0F0F0F0Fu);
    const uint32_t hb = ((high >> i) & 0x01010101u) << 4;
    s = dot_i8x4(int(nib | hb), a[i], s);
  }
  return s;
}

// Q3_K chunk: sums of (q - 4) * a over values 0..15 (s0) and 16..31 (s1), which carry
// different scales; q the nibbles (0..7) in Q4_0 order.
__device__ __forceinline__ void dot_q3(uint4 low, const int a[8], int* s0, int* s1) {
  uint32_t w[4];
  unpack_words(low, w);
  int lo_sum = 0, hi_sum = 0;
#pragma unroll
  for (int i = 0; i < 8; ++i) {
    const uint32_t nib = i < 4 ? (w[i] & 0x0F0F0F0Fu) : ((w[i - 4] >> 4) & 0x0F0F0F0Fu);
    // Bytes are 0..7: (b + 128 - 4) ^ 128 is b - 4 as int8 with no borrow between bytes.
    const uint32_t q = ((nib | 0x80808080u) - 0x04040404u) ^ 0x80808080u;
    if (i < 4) lo_sum = dot_i8x4(int(q), a[i], lo_sum);
    else hi_sum = dot_i8x4(int(q), a[i], hi_sum);
  }
  *s0 = lo_sum;
  *s1 = hi_sum;
}

// IQ4_XS chunk: sum_i kIq4nlValues[q_i] * a_i over 32 values, the indexes in Q4_0 order.
__device__ __forceinline__ int dot_iq4(uint4 packed, const int a[8]) {
  uint32_t w[4];
  unpack_words(packed, w);
  int s = 0;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    s = dot_i8x4(int(iq4_word(w[i] & 0x0F0F0F0Fu)), a[i], s);
    s = dot_i8x4(int(iq4_word((w[i] >> 4) & 0x0F0F0F0Fu)), a[i + 4], s);
  }
  return s;
}

// ---- GEMV: one 32-value chunk of a row against each token's q8 activation chunk.
// load_gemv_chunk reads what a lane holds for the chunk across tokens (its weight bits and
// scales, unpacked once); gemv_chunk_dot is the chunk's term of W[row] . x[t] for one token
// (a: the token's chunk as 8 int8x4 words; ds: its (d, d * sum q)), in the same float order
// for every token. Q8_0 and the float types are read in other units (gemv_row.cuh).
struct GemvChunkBits {
  uint4 w;          // the chunk's value bits: 16 bytes (Q2_K: 8, in w.x and w.y)
  uint32_t lv[8];   // IQ4_NL, MXFP4: the 32 values as int8x4 words
  uint2 hb;         // Q6_K: the high 2 bits; Q5_K, Q5_0, Q5_1: the fifth bits in hb.x
  float d, m;       // scale and minimum (per type below)
  float s0, s1;     // Q6_K, Q3_K: the two half-chunk scales; Q2_K: d * scale per half
  float m0, m1;     // Q2_K: dmin * min per half
};

template <GgmlType T>
__device__ __forceinline__ GemvChunkBits load_gemv_chunk(const DeviceMatrix& m, int64_t row, int64_t c) {
  GemvChunkBits b = {};
  const uint8_t* q = m.q + row * m.q_row;
  const uint8_t* s = m.s + row * m.s_row;
  // The super-block stream, read only by the types that have one.
  const auto sb = [&] { return m.sb + row * m.sb_row; };
  if constexpr (T == GgmlType::Q2_K) {  // 8 bytes of 2-bit values per chunk
    const uint2 w = load8(q + 8 * c);
    b.w.x = w.x;
    b.w.y = w.y;
  } else {
    b.w = load16(q + 16 * c);
  }
  if constexpr (T == GgmlType::Q5_0 || T == GgmlType::Q5_1) b.hb.x = reinterpret_cast<const uint32_t*>(m.qh + row * m.qh_row)[c];
  if constexpr (T == GgmlType::Q4_0 || T == GgmlType::IQ4_NL || T == GgmlType::Q5_0) {
    b.d = half_to_float(reinterpret_cast<const uint16_t*>(s)[c]);
  } else if constexpr (T == GgmlType::Q4_K || T == GgmlType::Q5_K) {
    const uint16_t sm = reinterpret_cast<const uint16_t*>(s)[c];
    const uint16_t* dm = reinterpret_cast<const uint16_t*>(sb()) + 2 * (c / 8);
    b.d = half_to_float(dm[0]) * float(sm & 0xFF);
    b.m = half_to_float(dm[1]) * float(sm >> 8);
  } else if constexpr (T == GgmlType::Q6_K || T == GgmlType::Q3_K) {
    b.d = half_to_float(reinterpret_cast<const uint16_t*>(sb())[c / 8]);
    const int8_t* sc = reinterpret_cast<const int8_t*>(s) + 2 * c;
    b.s0 = float(sc[0]);
    b.s1 = float(sc[1]);
  } else if constexpr (T == GgmlType::IQ4_XS) {
    b.d = half_to_float(reinterpret_cast<const uint16_t*>(sb())[c / 8]) * float(reinterpret_cast<const int8_t*>(s)[c]);
  } else if constexpr (T == GgmlType::Q4_1 || T == GgmlType::Q5_1) {
    const uint32_t dm = reinterpret_cast<const uint32_t*>(s)[c];
    b.d = half_to_float(uint16_t(dm & 0xFFFF));
    b.m = half_to_float(uint16_t(dm >> 16));
  } else if constexpr (T == GgmlType::MXFP4) {
    b.d = e8m0_half(s[c]);
  } else if constexpr (T == GgmlType::Q2_K) {
    const uint8_t* sm = s + 2 * c;
    const uint16_t* dm = reinterpret_cast<const uint16_t*>(sb()) + 2 * (c / 8);
    const float d = half_to_float(dm[0]), dmin = half_to_float(dm[1]);
    b.s0 = d * float(sm[0] & 0xF);
    b.s1 = d * float(sm[1] & 0xF);
    b.m0 = dmin * float(sm[0] >> 4);
    b.m1 = dmin * float(sm[1] >> 4);
  }
  if constexpr (T == GgmlType::Q6_K) b.hb = load8(m.qh + row * m.qh_row + 8 * c);
  if constexpr (T == GgmlType::Q5_K) b.hb.x = reinterpret_cast<const uint32_t*>(m.qh + row * m.qh_row)[c];
  if constexpr (T == GgmlType::MXFP4 || T == GgmlType::IQ4_NL) {
    // Each index looked up into its int8 level once, for every token.
    uint32_t w[4];
    unpack_words(b.w, w);
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      b.lv[i] = T == GgmlType::MXFP4 ? mxfp4_levels4(w[i] & 0x0F0F0F0Fu) : iq4nl_levels4(w[i] & 0x0F0F0F0Fu);
      b.lv[i + 4] = T == GgmlType::MXFP4 ? mxfp4_levels4((w[i] >> 4) & 0x0F0F0F0Fu) : iq4nl_levels4((w[i] >> 4) & 0x0F0F0F0Fu);
    }
  }
  return b;
}

template <GgmlType T>
__device__ __forceinline__ float gemv_chunk_dot(const GemvChunkBits& b, const int a[8], float2 ds) {
  if constexpr (T == GgmlType::Q4_0) {
    return b.d * (ds.x * float(dot_nibbles(b.w, a)) - 8.f * ds.y);
  } else if constexpr (T == GgmlType::Q4_K) {
    return b.d * ds.x * float(dot_nibbles(b.w, a)) - b.m * ds.y;
  } else if constexpr (T == GgmlType::Q5_K) {
    return b.d * ds.x * float(dot_q5k(b.w, b.hb.x, a)) - b.m * ds.y;
  } else if constexpr (T == GgmlType::Q6_K) {
    int s0, s1;
    dot_q6(b.w, b.hb, a, &s0, &s1);
    return b.d * ds.x * (b.s0 * float(s0) + b.s1 * float(s1));
  } else if constexpr (T == GgmlType::Q3_K) {
    int s0, s1;
    dot_q3(b.w, a, &s0, &s1);
    return b.d * ds.x * (b.s0 * float(s0) + b.s1 * float(s1));
  } else if constexpr (T == GgmlType::IQ4_XS) {
    return b.d * ds.x * float(dot_iq4(b.w, a));
  } else if constexpr (T == GgmlType::Q4_1) {
    // The minimum folds in through the activation chunk's sum.
    return b.d * ds.x * float(dot_nibbles(b.w, a)) + b.m * ds.y;
  } else if constexpr (T == GgmlType::Q5_1) {
    return b.d * ds.x * float(dot_q5(b.w, b.hb.x, a)) + b.m * ds.y;
  } else if constexpr (T == GgmlType::Q5_0) {
    // The -16 offset folds in through the activation chunk's sum.
    return b.d * (ds.x * float(dot_q5(b.w, b.hb.x, a)) - 16.f * ds.y);
  } else if constexpr (T == GgmlType::MXFP4 || T == GgmlType::IQ4_NL) {
    int s = 0;
#pragma unroll
    for (int i = 0; i < 8; ++i) s = dot_i8x4(int(b.lv[i]), a[i], s);
    return b.d * ds.x * float(s);
  } else if constexpr (T == GgmlType::Q2_K) {
    int s0 = 0, s1 = 0, x0 = 0, x1 = 0;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      s0 = dot_i8x4(int((b.w.x >> (2 * i)) & 0x03030303u), a[i], s0);
      s1 = dot_i8x4(int((b.w.y >> (2 * i)) & 0x03030303u), a[i + 4], s1);
      x0 = dot_i8x4(0x01010101, a[i], x0);
      x1 = dot_i8x4(0x01010101, a[i + 4], x1);
    }
    return ds.x * (b.s0 * float(s0) + b.s1 * float(s1) - b.m0 * float(x0) - b.m1 * float(x1));
  } else {
    static_assert(T == GgmlType::Q4_0, "gemv_chunk_dot: a weight type without its chunk dot product");
    return 0.f;
  }
}

}  // namespace tessera::cuda
