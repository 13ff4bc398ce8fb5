// WeightLayout::Q5_Kx16: the copy of a Q5_K weight's rows [0, rows / 16 * 16) that
// pack_weight builds, where AVX-512 VNNI is the active ISA at load, for the kernel in
// matmul_q5_kx16_avx512vnni.cpp. A group is its super-block columns, each the 16 rows'
// 176-byte GGUF blocks with the value bits rearranged so that the kernel decodes them with
// few vector operations, row r in bytes 4r..4r+3 of each vector:
//   d, dmin: 16 fp16 each; scales: the 12 packed scale/min bytes as three words, word-major;
//   q:       40 vectors, five per 32-value sub-block i. Byte 4r + i' of vectors 5i + m (V0..V4)
//            holds the 5-bit values q = nibble | fifth bit << 4 (0..31) of units k = 0..7,
//            unit k being values 32i + 4k + i' of row r:
//              V0 = q0 | (q5 >> 2) << 5     V3 = (q5 & 3) | ((q7 >> 1) & 1) << 2 | q3 << 3
//              V1 = q1 | (q6 >> 2) << 5     V4 = (q6 & 3) | (q7 & 1) << 2 | q4 << 3
//              V2 = q2 | (q7 >> 2) << 5
//            so units 0..2 come out with one AND (as q), 3 and 4 with one AND (as 8q), 5 and 6
//            with a shift, a bit select and an AND (as 8q: bits 5..7 in place, bits 0..1 of V3
//            or V4 moved to 3..4), and 7 with two shifts, two selects and an AND.
// Why not the GGUF fields (qs nibbles, qh bits) side by side: each value then took a shift
// and an AND for its fifth bit, a bit select, and for a high nibble another shift, and one
// thread decoded no faster than 59 GB/s from cache.
// A column takes exactly the bytes of its 16 GGUF blocks, so group g starts at
// g * 16 * row_bytes.
#pragma once
#include <cstdint>
#include <cstring>

#include "core/ggml_types.h"

namespace tessera::cpu::q5_kx16 {

constexpr int kRows = 16;

struct Column {
  uint16_t d[kRows];
  uint16_t dmin[kRows];
  uint32_t scales[3][kRows];
  uint8_t q[40][4 * kRows];
};
static_assert(sizeof(Column) == kRows * sizeof(BlockQ5_K), "a column holds exactly its 16 GGUF blocks");

static inline const Column* group(const uint8_t* packed, size_t row_bytes, int64_t g) {
  return reinterpret_cast<const Column*>(packed + size_t(g) * kRows * row_bytes);
}

// Value l (0..255) of a GGUF Q5_K block, 0..31.
static inline int value5(const BlockQ5_K& b, int l) {
  const int i = l / 32, j = i / 2, h = i % 2, m = l % 32;
  return ((b.qs[32 * j + m] >> (4 * h)) & 0xF) | (((b.qh[m] >> i) & 1) << 4);
}

// Writes one group (16 GGUF rows of nb super-blocks at `rows`) to `out`, row by row.
static inline void pack_group(const uint8_t* rows, size_t row_bytes, int64_t nb, uint8_t* out) {
  Column* columns = reinterpret_cast<Column*>(out);
  for (int r = 0; r < kRows; ++r)
    for (int64_t b = 0; b < nb; ++b) {
      Column& c = columns[b];
      const BlockQ5_K& blk = reinterpret_cast<const BlockQ5_K*>(rows + r * row_bytes)[b];
      c.d[r] = blk.d;
      c.dmin[r] = blk.dmin;
      for (int w = 0; w < 3; ++w) std::memcpy(&c.scales[w][r], blk.scales + 4 * w, 4);
      for (int i = 0; i < 8; ++i)
        for (int e = 0; e < 4; ++e) {
          int q[8];
          for (int k = 0; k < 8; ++k) q[k] = value5(blk, 32 * i + 4 * k + e);
          uint8_t* v[5];
          for (int m = 0; m < 5; ++m) v[m] = c.q[5 * i + m] + 4 * r + e;
          *v[0] = uint8_t(q[0] | (q[5] >> 2) << 5);
          *v[1] = uint8_t(q[1] | (q[6] >> 2) << 5);
          *v[2] = uint8_t(q[2] | (q[7] >> 2) << 5);
          *v[3] = uint8_t((q[5] & 3) | ((q[7] >> 1) & 1) << 2 | q[3] << 3);
          *v[4] = uint8_t((q[6] & 3) | (q[7] & 1) << 2 | q[4] << 3);
        }
    }
}

}  // namespace tessera::cpu::q5_kx16
