// Tensor element types and block layouts of the GGUF/ggml file format, plus scalar
// half-precision conversions. Every helper here is `static inline` on purpose: this header
// is included by the AVX2 translation units too, and internal linkage keeps the linker from
// merging an AVX2-compiled copy into scalar code (which would fault on pre-AVX2 CPUs).
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace tessera {

enum class GgmlType : int32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  IQ4_XS = 23,  // issue 28
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  BF16 = 30,
  IQ4_NL = 20,
  MXFP4 = 39,
};

constexpr int QK4_0 = 32;
constexpr int QK8_0 = 32;
constexpr int QK_K = 256;
constexpr int K_SCALE_SIZE = 12;

// One block of 32 weights: w = d * (q - 8), q in [0, 16); low nibbles hold elements 0..15,
// high nibbles 16..31.
struct BlockQ4_0 {
  uint16_t d;  // fp16 scale
  uint8_t qs[QK4_0 / 2];
};
static_assert(sizeof(BlockQ4_0) == 18, "Q4_0 block is 18 bytes");

// One block of 32 weights: w = d * q.
struct BlockQ8_0 {
  uint16_t d;  // fp16 scale
  int8_t qs[QK8_0];
};
static_assert(sizeof(BlockQ8_0) == 34, "Q8_0 block is 34 bytes");

// Super-block of 256 weights in 8 sub-blocks of 32: w = d * sc * q - dmin * m, with 6-bit
// sc/m packed in `scales`, 4-bit q.
struct BlockQ4_K {
  uint16_t d;     // fp16 super-block scale for sub-block scales
  uint16_t dmin;  // fp16 super-block scale for sub-block mins
  uint8_t scales[K_SCALE_SIZE];
  uint8_t qs[QK_K / 2];
};
static_assert(sizeof(BlockQ4_K) == 144, "Q4_K block is 144 bytes");

// Super-block of 256 weights in 16 sub-blocks of 16: w = d * scale * (q - 32), 6-bit q
// split into 4 low bits (ql) and 2 high bits (qh).
struct BlockQ6_K {
  uint8_t ql[QK_K / 2];
  uint8_t qh[QK_K / 4];
  int8_t scales[QK_K / 16];
  uint16_t d;  // fp16
};
static_assert(sizeof(BlockQ6_K) == 210, "Q6_K block is 210 bytes");

// Activation format for the K-quant dot products: 256 int8 values, fp32 scale, and the sums
// of each group of 16 (to fold the weights' minimums in without touching the values again).
struct BlockQ8_K {
  float d;
  int8_t qs[QK_K];
  int16_t bsums[QK_K / 16];
};
static_assert(sizeof(BlockQ8_K) == 292, "Q8_K block is 292 bytes");

// ---- Types with blocks of 32 (issue 28): Q5_0, Q4_1, Q5_1, IQ4_NL, MXFP4.

// One block of 32 weights: w = d * (q - 16), q in [0, 32): the low 4 bits as in Q4_0 (low
// nibbles elements 0..15, high nibbles 16..31), bit 4 of element j in bit j of qh.
struct BlockQ5_0 {
  uint16_t d;  // fp16 scale
  uint8_t qh[4];
  uint8_t qs[32 / 2];
};
static_assert(sizeof(BlockQ5_0) == 22, "Q5_0 block is 22 bytes");

// The 32 fifth bits of a Q5_0/Q5_1 block, bit j for element j (qh is little-endian).
static inline uint32_t q5_high_bits(const uint8_t qh[4]) {
  return uint32_t(qh[0]) | (uint32_t(qh[1]) << 8) | (uint32_t(qh[2]) << 16) | (uint32_t(qh[3]) << 24);
}

// One block of 32 weights: w = d * q + m, q in [0, 16), nibbles as Q4_0.
struct BlockQ4_1 {
  uint16_t d;  // fp16 scale
  uint16_t m;  // fp16 minimum
  uint8_t qs[32 / 2];
};
static_assert(sizeof(BlockQ4_1) == 20, "Q4_1 block is 20 bytes");

// One block of 32 weights: w = d * q + m, q in [0, 32), stored as Q5_0's.
struct BlockQ5_1 {
  uint16_t d;  // fp16 scale
  uint16_t m;  // fp16 minimum
  uint8_t qh[4];
  uint8_t qs[32 / 2];
};
static_assert(sizeof(BlockQ5_1) == 24, "Q5_1 block is 24 bytes");

// One block of 32 weights: w = d * kIq4nlValues[q], q in [0, 16), nibbles as Q4_0.
struct BlockIQ4_NL {
  uint16_t d;  // fp16 scale
  uint8_t qs[32 / 2];
};
static_assert(sizeof(BlockIQ4_NL) == 18, "IQ4_NL block is 18 bytes");
// The 16 non-uniform levels of IQ4_NL and IQ4_XS (ggml's kvalues_iq4nl, one grid for both).
constexpr int8_t kIq4nlValues[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

// One block of 32 weights (OCP microscaling FP4): w = 2^(e - 127) * e2m1(q), stored as
// e8m0_to_fp32_half(e) * kMxfp4Values[q] (the E2M1 values doubled, as ggml), nibbles as Q4_0.
struct BlockMXFP4 {
  uint8_t e;  // E8M0 shared exponent
  uint8_t qs[32 / 2];
};
static_assert(sizeof(BlockMXFP4) == 17, "MXFP4 block is 17 bytes");
constexpr int8_t kMxfp4Values[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

// Activation format of the Q4_1/Q5_1 dot products: Q8_0's 32 int8 values and fp16 scale d,
// plus s = d * sum(q) in fp16 (rounded from fp32 d, as llama.cpp), which the weights' minimum
// multiplies.
struct BlockQ8_1 {
  uint16_t d;
  uint16_t s;
  int8_t qs[32];
};
static_assert(sizeof(BlockQ8_1) == 36, "Q8_1 block is 36 bytes");

// The 5-bit level (0..31) of element j of a Q5_0/Q5_1 block: its nibble (low nibbles hold
// elements 0..15, high ones 16..31) and bit j of the fifth bits.
static inline int q5_level(const uint8_t qs[16], uint32_t qh, int j) {
  const int nibble = j < 16 ? (qs[j] & 0xF) : (qs[j - 16] >> 4);
  return nibble | int((qh >> j) & 1u) << 4;
}

// ---- K-quants added for issue 28 (Q5_K, Q3_K, Q2_K, IQ4_XS).

// Super-block of 256 weights in 8 sub-blocks of 32: w = d * sc * q - dmin * m as Q4_K
// (same 6-bit scale/min packing), with a 5th bit per value: element 64j + l (j = 0..3,
// l < 32) takes its low 4 bits from qs[32j + l] (low nibble) and its 5th from bit 2j of
// qh[l]; element 64j + 32 + l the high nibble and bit 2j + 1.
struct BlockQ5_K {
  uint16_t d;     // fp16 super-block scale for sub-block scales
  uint16_t dmin;  // fp16 super-block scale for sub-block mins
  uint8_t scales[K_SCALE_SIZE];
  uint8_t qh[QK_K / 8];
  uint8_t qs[QK_K / 2];
};
static_assert(sizeof(BlockQ5_K) == 176, "Q5_K block is 176 bytes");

// Super-block of 256 weights in 16 sub-blocks of 16: w = d * (sc - 32) * (q - 4), 3-bit q
// with its low 2 bits in qs (element 128h + 32s + l: bits 2s..2s+1 of qs[32h + l]) and its
// high bit in hmask (element 32g + l: bit g of hmask[l]); 6-bit sc packed in `scales` (low
// 4 bits of sub-block j in the low (j < 8) or high nibble of byte j % 8, high 2 bits at bit
// 2 (j / 4) of byte 8 + j % 4).
struct BlockQ3_K {
  uint8_t hmask[QK_K / 8];
  uint8_t qs[QK_K / 4];
  uint8_t scales[12];
  uint16_t d;  // fp16
};
static_assert(sizeof(BlockQ3_K) == 110, "Q3_K block is 110 bytes");

// Super-block of 256 weights in 16 sub-blocks of 16: w = d * sc * q - dmin * m, 2-bit q
// (element 128h + 32s + l: bits 2s..2s+1 of qs[32h + l]), 4-bit sc (low nibble) and m
// (high nibble) of sub-block j in scales[j].
struct BlockQ2_K {
  uint8_t scales[QK_K / 16];
  uint8_t qs[QK_K / 4];
  uint16_t d;     // fp16 super-block scale for sub-block scales
  uint16_t dmin;  // fp16 super-block scale for sub-block mins
};
static_assert(sizeof(BlockQ2_K) == 84, "Q2_K block is 84 bytes");

// Super-block of 256 weights in 8 sub-blocks of 32: w = d * (ls - 32) * kIq4nlValues[q], 4-bit
// indexes q (per sub-block as Q4_0: low nibbles elements 0..15, high 16..31), 6-bit ls of
// sub-block j: low 4 bits in nibble j % 2 of scales_l[j / 2], high 2 at bit 2j of scales_h.
struct BlockIQ4_XS {
  uint16_t d;  // fp16
  uint16_t scales_h;
  uint8_t scales_l[QK_K / 64];
  uint8_t qs[QK_K / 2];
};
static_assert(sizeof(BlockIQ4_XS) == 136, "IQ4_XS block is 136 bytes");

// The 6-bit scale of sub-block j of an IQ4_XS super-block, minus 32.
static inline int iq4xs_scale(const BlockIQ4_XS& b, int j) {
  return (((b.scales_l[j / 2] >> (4 * (j % 2))) & 0xF) | (((b.scales_h >> (2 * j)) & 3) << 4)) - 32;
}

// The 16 scales of a Q3_K super-block, sc - 32 in -32..31.
static inline void q3k_scales(const uint8_t* packed, int8_t out[16]) {
  for (int j = 0; j < 16; ++j) {
    const int lo = j < 8 ? packed[j] & 0xF : packed[j - 8] >> 4;
    const int hi = (packed[8 + j % 4] >> (2 * (j / 4))) & 3;
    out[j] = static_cast<int8_t>((lo | (hi << 4)) - 32);
  }
}

// Where the fp16 scales of one block of a weight type sit: the load-time non-finite check
// (core/tensor_check.cpp) reads them, since one NaN scale makes its whole block NaN. count 0:
// none (float types, and types no kernel computes with). Beside the block structs, so a new
// type's struct and its scales are one edit; core/weight_types.h asserts every quantized
// weight type has an entry.
struct BlockScales {
  size_t offset[2];
  int count = 0;
  // The scale is one E8M0 byte (MXFP4), not fp16: non-finite only as 0xFF, NaN in the OCP
  // MX format (ggml reads it as 2^127, which times the largest level overflows to infinity).
  bool e8m0 = false;
};

static constexpr BlockScales ggml_block_scales(GgmlType type) {
  switch (type) {
    case GgmlType::Q4_0: return {{offsetof(BlockQ4_0, d), 0}, 1};
    case GgmlType::Q8_0: return {{offsetof(BlockQ8_0, d), 0}, 1};
    case GgmlType::Q4_K: return {{offsetof(BlockQ4_K, d), offsetof(BlockQ4_K, dmin)}, 2};
    case GgmlType::Q6_K: return {{offsetof(BlockQ6_K, d), 0}, 1};
    case GgmlType::Q5_0: return {{offsetof(BlockQ5_0, d), 0}, 1};
    case GgmlType::Q4_1: return {{offsetof(BlockQ4_1, d), offsetof(BlockQ4_1, m)}, 2};
    case GgmlType::Q5_1: return {{offsetof(BlockQ5_1, d), offsetof(BlockQ5_1, m)}, 2};
    case GgmlType::IQ4_NL: return {{offsetof(BlockIQ4_NL, d), 0}, 1};
    case GgmlType::MXFP4: return {{offsetof(BlockMXFP4, e), 0}, 1, true};
    case GgmlType::Q5_K: return {{offsetof(BlockQ5_K, d), offsetof(BlockQ5_K, dmin)}, 2};
    case GgmlType::Q3_K: return {{offsetof(BlockQ3_K, d), 0}, 1};
    case GgmlType::Q2_K: return {{offsetof(BlockQ2_K, d), offsetof(BlockQ2_K, dmin)}, 2};
    case GgmlType::IQ4_XS: return {{offsetof(BlockIQ4_XS, d), 0}, 1};
    default: return {{0, 0}, 0};
  }
}

struct GgmlTypeTraits {
  const char* name;
  int block_size;   // elements per block
  int type_size;    // bytes per block
};

static constexpr GgmlTypeTraits ggml_type_traits(GgmlType t) {
  switch (t) {
    case GgmlType::F32: return {"F32", 1, 4};
    case GgmlType::F16: return {"F16", 1, 2};
    case GgmlType::BF16: return {"BF16", 1, 2};
    case GgmlType::Q4_0: return {"Q4_0", 32, 18};
    case GgmlType::Q4_1: return {"Q4_1", 32, 20};
    case GgmlType::Q5_0: return {"Q5_0", 32, 22};
    case GgmlType::Q5_1: return {"Q5_1", 32, 24};
    case GgmlType::Q8_0: return {"Q8_0", 32, 34};
    case GgmlType::Q8_1: return {"Q8_1", 32, 36};
    case GgmlType::Q2_K: return {"Q2_K", 256, 84};
    case GgmlType::Q3_K: return {"Q3_K", 256, 110};
    case GgmlType::Q4_K: return {"Q4_K", 256, 144};
    case GgmlType::Q5_K: return {"Q5_K", 256, 176};
    case GgmlType::Q6_K: return {"Q6_K", 256, 210};
    case GgmlType::Q8_K: return {"Q8_K", 256, 292};
    case GgmlType::IQ4_XS: return {"IQ4_XS", 256, 136};
    case GgmlType::I8: return {"I8", 1, 1};
    case GgmlType::I16: return {"I16", 1, 2};
    case GgmlType::I32: return {"I32", 1, 4};
    case GgmlType::I64: return {"I64", 1, 8};
    case GgmlType::F64: return {"F64", 1, 8};
    case GgmlType::IQ4_NL: return {"IQ4_NL", 32, 18};
    case GgmlType::MXFP4: return {"MXFP4", 32, 17};
  }
  return {"unknown", 0, 0};
}

// Bytes of one row of n elements; 0 when n is not a whole number of blocks.
static inline size_t ggml_row_bytes(GgmlType t, int64_t n) {
  GgmlTypeTraits tr = ggml_type_traits(t);
  if (tr.block_size <= 0 || n % tr.block_size != 0) return 0;
  return static_cast<size_t>(n / tr.block_size) * static_cast<size_t>(tr.type_size);
}

static inline float fp32_from_bits(uint32_t w) {
  float f;
  std::memcpy(&f, &w, sizeof f);
  return f;
}

static inline uint32_t fp32_to_bits(float f) {
  uint32_t w;
  std::memcpy(&w, &f, sizeof w);
  return w;
}

// 2^(e - 128), half the E8M0 scale (ggml's GGML_E8M0_TO_FP32_HALF): e 0 and 1 are the fp32
// subnormals 2^-128 and 2^-127; e 255, NaN in the MX format, reads as 2^127 (ggml's
// reading; the load-time check refuses it, see ggml_block_scales).
static inline float e8m0_to_fp32_half(uint8_t e) {
  return fp32_from_bits(e < 2 ? 0x00200000u << e : uint32_t(e - 1) << 23);
}

// IEEE half -> float, exact for every input including subnormals, inf and NaN.
static inline float fp16_to_fp32(uint16_t h) {
  const uint32_t w = static_cast<uint32_t>(h) << 16;
  const uint32_t sign = w & 0x80000000u;
  const uint32_t two_w = w + w;
  const uint32_t exp_offset = 0xE0u << 23;
  const float exp_scale = fp32_from_bits(0x7800000u);  // 2^-112
  const float normalized = fp32_from_bits((two_w >> 4) + exp_offset) * exp_scale;
  const uint32_t magic_mask = 126u << 23;
  const float magic_bias = 0.5f;
  const float denormalized = fp32_from_bits((two_w >> 17) | magic_mask) - magic_bias;
  const uint32_t denormalized_cutoff = 1u << 27;
  const uint32_t result =
      sign | (two_w < denormalized_cutoff ? fp32_to_bits(denormalized) : fp32_to_bits(normalized));
  return fp32_from_bits(result);
}

// float -> IEEE half with round-to-nearest-even (the rounding F16C hardware uses).
static inline uint16_t fp32_to_fp16(float f) {
  const float scale_to_inf = fp32_from_bits(0x77800000u);   // 2^112
  const float scale_to_zero = fp32_from_bits(0x08800000u);  // 2^-110
  float base = (f < 0 ? -f : f) * scale_to_inf * scale_to_zero;
  const uint32_t w = fp32_to_bits(f);
  const uint32_t shl1_w = w + w;
  const uint32_t sign = w & 0x80000000u;
  uint32_t bias = shl1_w & 0xFF000000u;
  if (bias < 0x71000000u) bias = 0x71000000u;
  base = fp32_from_bits((bias >> 1) + 0x07800000u) + base;
  const uint32_t bits = fp32_to_bits(base);
  const uint32_t exp_bits = (bits >> 13) & 0x00007C00u;
  const uint32_t mantissa_bits = bits & 0x00000FFFu;
  const uint32_t nonsign = exp_bits + mantissa_bits;
  return static_cast<uint16_t>((sign >> 16) | (shl1_w > 0xFF000000u ? 0x7E00u : nonsign));
}

static inline float bf16_to_fp32(uint16_t h) { return fp32_from_bits(static_cast<uint32_t>(h) << 16); }

// float -> bfloat16 with round-to-nearest-even; NaN stays a (quiet) NaN.
static inline uint16_t fp32_to_bf16(float f) {
  const uint32_t w = fp32_to_bits(f);
  if ((w & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((w >> 16) | 64);
  return static_cast<uint16_t>((w + (0x7fffu + ((w >> 16) & 1))) >> 16);
}

// Rounds to the nearest integer, ties to even (what the vector kernels' rounding mode does),
// for |x| < 2^22.
static inline int nearest_int(float x) {
  const float shifted = x + 12582912.f;  // 1.5 * 2^23 puts the integer in the low mantissa bits
  int32_t bits;
  std::memcpy(&bits, &shifted, sizeof bits);
  return (bits & 0x007fffff) - 0x00400000;
}

// The 6-bit scale and min of sub-block j (0..7) of a Q4_K super-block.
static inline void q4k_scale_min(int j, const uint8_t* q, uint8_t* scale, uint8_t* min) {
  if (j < 4) {
    *scale = q[j] & 63;
    *min = q[j + 4] & 63;
  } else {
    *scale = static_cast<uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    *min = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

// Weights stored as plain floats, multiplied without block scales (tinyBLAS's types in llama.cpp).
static inline bool is_float_type(GgmlType type) {
  return type == GgmlType::F32 || type == GgmlType::F16 || type == GgmlType::BF16;
}

}  // namespace tessera
