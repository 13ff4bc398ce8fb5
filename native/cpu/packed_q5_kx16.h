// WeightLayout::Q5_Kx16: the copy of a Q5_K weight's rows [0, rows / 16 * 16) that
// pack_weight builds, where AVX-512 VNNI is the active ISA at load, for the kernel in
// matmul_q5_kx16_avx512vnni.cpp. As Q4_Kx16 (packed_q4_kx16.h) plus the fifth bits: a
// group is its super-block columns, each the 16 rows' 176-byte GGUF blocks regrouped by
// field, row r in bytes 4r..4r+3 of each vector:
//   d, dmin: 16 fp16 each; scales: the 12 packed scale/min bytes as three words, word-major;
//   qh:      8 vectors; vector m holds GGUF qh bytes 4m..4m+3 of every row (bit 2j of qh
//            byte l is the fifth bit of value 64j + l, bit 2j+1 that of value 64j + 32 + l);
//   quants:  32 vectors; vector 8j+m holds GGUF qs bytes 32j+4m..32j+4m+3 of every row
//            (low nibbles: values 64j+4m.., high nibbles: values 64j+32+4m..).
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
  uint8_t qh[8][4 * kRows];
  uint8_t quants[32][4 * kRows];
};
static_assert(sizeof(Column) == kRows * sizeof(BlockQ5_K), "a column holds exactly its 16 GGUF blocks");

static inline const Column* group(const uint8_t* packed, size_t row_bytes, int64_t g) {
  return reinterpret_cast<const Column*>(packed + size_t(g) * kRows * row_bytes);
}

// Writes one group (16 GGUF rows of nb super-blocks at `rows`) to `out`, row by row.
static inline void pack_group(const uint8_t* rows, size_t row_bytes, int64_t nb, uint8_t* out) {
  Column* columns = reinterpret_cast<Column*>(out);
  for (int r = 0; r < kRows; ++r)
    for (int64_t b = 0; b < nb; ++b) {
      Column& c = columns[b];
      const BlockQ5_K* blk = reinterpret_cast<const BlockQ5_K*>(rows + r * row_bytes) + b;
      c.d[r] = blk->d;
      c.dmin[r] = blk->dmin;
      for (int w = 0; w < 3; ++w) std::memcpy(&c.scales[w][r], blk->scales + 4 * w, 4);
      for (int m = 0; m < 8; ++m) std::memcpy(c.qh[m] + 4 * r, blk->qh + 4 * m, 4);
      for (int v = 0; v < 32; ++v) std::memcpy(c.quants[v] + 4 * r, blk->qs + 4 * v, 4);
    }
}

}  // namespace tessera::cpu::q5_kx16
