// WeightLayout::Q3_Kx16: the copy of a Q3_K weight's rows [0, rows / 16 * 16) that
// pack_weight builds, where AVX-512 VNNI is the active ISA at load, for the kernel in
// matmul_q3_kx16_avx512vnni.cpp. A group is its super-block columns, each the 16 rows'
// 110-byte GGUF blocks regrouped by field, row r in bytes 4r..4r+3 of each vector:
//   d:      16 fp16, in row order;
//   scales: the 12 packed 6-bit scale bytes of each row as three 32-bit words, word-major;
//   hmask:  8 vectors; vector m holds GGUF hmask bytes 4m..4m+3 of every row (bit 4n + j of
//           hmask byte l is the high bit of value 128n + 32j + l);
//   qs:     16 vectors; vector v holds GGUF qs bytes 4v..4v+3 of every row (bits 2j..2j+1 of
//           qs byte 32n + l are the low bits of value 128n + 32j + l).
// A column takes exactly the bytes of its 16 GGUF blocks, so group g starts at
// g * 16 * row_bytes.
#pragma once
#include <cstdint>
#include <cstring>

#include "core/ggml_types.h"

namespace tessera::cpu::q3_kx16 {

constexpr int kRows = 16;

struct Column {
  uint16_t d[kRows];
  uint32_t scales[3][kRows];
  uint8_t hmask[8][4 * kRows];
  uint8_t qs[16][4 * kRows];
};
static_assert(sizeof(Column) == kRows * sizeof(BlockQ3_K), "a column holds exactly its 16 GGUF blocks");

static inline const Column* group(const uint8_t* packed, size_t row_bytes, int64_t g) {
  return reinterpret_cast<const Column*>(packed + size_t(g) * kRows * row_bytes);
}

// Writes one group (16 GGUF rows of nb super-blocks at `rows`) to `out`, row by row.
static inline void pack_group(const uint8_t* rows, size_t row_bytes, int64_t nb, uint8_t* out) {
  Column* columns = reinterpret_cast<Column*>(out);
  for (int r = 0; r < kRows; ++r)
    for (int64_t b = 0; b < nb; ++b) {
      Column& c = columns[b];
      const BlockQ3_K* blk = reinterpret_cast<const BlockQ3_K*>(rows + r * row_bytes) + b;
      c.d[r] = blk->d;
      for (int w = 0; w < 3; ++w) std::memcpy(&c.scales[w][r], blk->scales + 4 * w, 4);
      for (int m = 0; m < 8; ++m) std::memcpy(c.hmask[m] + 4 * r, blk->hmask + 4 * m, 4);
      for (int v = 0; v < 16; ++v) std::memcpy(c.qs[v] + 4 * r, blk->qs + 4 * v, 4);
    }
}

}  // namespace tessera::cpu::q3_kx16
