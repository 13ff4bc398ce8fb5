// WeightLayout::Q6_Kx16: the copy of a Q6_K weight's rows [0, rows / 16 * 16) that
// pack_weight builds, where AVX-512 VNNI is the active ISA at load, for the kernel in
// matmul_q6_kx16_avx512vnni.cpp. A group is its super-block columns, each the 16 rows'
// 210-byte GGUF blocks regrouped by field, row r in bytes 4r..4r+3 of each vector:
//   d:      16 fp16, in row order;
//   scales: the 16 int8 sub-block scales of each row as four 32-bit words, word-major;
//   ql:     32 vectors; vector v holds GGUF ql bytes 4v..4v+3 of every row;
//   qh:     16 vectors; vector v holds GGUF qh bytes 4v..4v+3 of every row.
// (Value 128n + 32c + l: the low nibble (c < 2) or high nibble of ql byte 64n + 32(c % 2) + l,
// and bits 2c..2c+1 of qh byte 32n + l; scale 8n + 2c + l / 16.)
// A column takes exactly the bytes of its 16 GGUF blocks, so group g starts at
// g * 16 * row_bytes.
#pragma once
#include <cstdint>
#include <cstring>

#include "core/ggml_types.h"

namespace tessera::cpu::q6_kx16 {

constexpr int kRows = 16;

struct Column {
  uint16_t d[kRows];
  uint32_t scales[4][kRows];
  uint8_t ql[32][4 * kRows];
  uint8_t qh[16][4 * kRows];
};
static_assert(sizeof(Column) == kRows * sizeof(BlockQ6_K), "a column holds exactly its 16 GGUF blocks");

static inline const Column* group(const uint8_t* packed, size_t row_bytes, int64_t g) {
  return reinterpret_cast<const Column*>(packed + size_t(g) * kRows * row_bytes);
}

// Writes one group (16 GGUF rows of nb super-blocks at `rows`) to `out`, row by row.
static inline void pack_group(const uint8_t* rows, size_t row_bytes, int64_t nb, uint8_t* out) {
  Column* columns = reinterpret_cast<Column*>(out);
  for (int r = 0; r < kRows; ++r)
    for (int64_t b = 0; b < nb; ++b) {
      Column& c = columns[b];
      const BlockQ6_K* blk = reinterpret_cast<const BlockQ6_K*>(rows + r * row_bytes) + b;
      c.d[r] = blk->d;
      for (int w = 0; w < 4; ++w) std::memcpy(&c.scales[w][r], blk->scales + 4 * w, 4);
      for (int v = 0; v < 32; ++v) std::memcpy(c.ql[v] + 4 * r, blk->ql + 4 * v, 4);
      for (int v = 0; v < 16; ++v) std::memcpy(c.qh[v] + 4 * r, blk->qh + 4 * v, 4);
    }
}

}  // namespace tessera::cpu::q6_kx16
