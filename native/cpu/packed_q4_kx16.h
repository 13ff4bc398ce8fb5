// WeightLayout::Q4_Kx16: the copy of a Q4_K weight's rows [0, rows / 16 * 16) that
// pack_weight builds for the AVX-512 VNNI kernel in matmul_q4_kx16_avx512vnni.cpp, where
// that is the active ISA at load (Q4_Kx8, packed_q4_kx8.h, for AVX2).
//
// As Q4_Kx8 with 16 rows, so that lane r of a 512-bit vector is row r: a group is its
// super-block columns in order, each a Column holding the 16 rows' 144-byte GGUF blocks
// regrouped by field (row r in bytes 4r..4r+3 of each vector):
//   d, dmin: 16 fp16 each, in row order;
//   scales:  the 12 packed scale/min bytes of each row as three 32-bit words, word-major;
//   quants:  32 vectors of 64 bytes; vector 8j+m holds GGUF bytes 32j+4m..32j+4m+3 of every
//            row, whose low nibbles are values 4m..4m+3 of sub-block 2j and high nibbles the
//            same values of sub-block 2j+1.
// One vpdpbusd of 4 broadcast activation bytes then feeds 16 rows, each row's int32 in its
// own lane, exactly the sums the AVX2 kernels form (so all layouts give the same bits).
//
// A column takes exactly the bytes of its 16 GGUF blocks, so group g starts at
// g * 16 * row_bytes (the MoE path finds an expert's groups at the expert's GGUF offset).
#pragma once
#include <cstdint>
#include <cstring>

#include "core/ggml_types.h"

namespace tessera::cpu::q4_kx16 {

constexpr int kRows = 16;

struct Column {
  uint16_t d[kRows];
  uint16_t dmin[kRows];
  uint32_t scales[3][kRows];
  uint8_t quants[32][4 * kRows];
};
static_assert(sizeof(Column) == kRows * sizeof(BlockQ4_K), "a column holds exactly its 16 GGUF blocks");

static inline const Column* group(const uint8_t* packed, size_t row_bytes, int64_t g) {
  return reinterpret_cast<const Column*>(packed + size_t(g) * kRows * row_bytes);
}

// Writes one group (16 GGUF rows of nb super-blocks at `rows`) to `out`, row by row (the
// file's bytes read in order).
static inline void pack_group(const uint8_t* rows, size_t row_bytes, int64_t nb, uint8_t* out) {
  Column* columns = reinterpret_cast<Column*>(out);
  for (int r = 0; r < kRows; ++r)
    for (int64_t b = 0; b < nb; ++b) {
      Column& c = columns[b];
      const BlockQ4_K* blk = reinterpret_cast<const BlockQ4_K*>(rows + r * row_bytes) + b;
      c.d[r] = blk->d;
      c.dmin[r] = blk->dmin;
      for (int w = 0; w < 3; ++w) std::memcpy(&c.scales[w][r], blk->scales + 4 * w, 4);
      for (int v = 0; v < 32; ++v) std::memcpy(c.quants[v] + 4 * r, blk->qs + 4 * v, 4);
    }
}

}  // namespace tessera::cpu::q4_kx16
