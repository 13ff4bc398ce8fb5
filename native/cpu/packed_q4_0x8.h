// WeightLayout::Q4_0x8: the copy of a Q4_0 weight's rows [0, rows / 8 * 8) that pack_weight
// builds for the AVX2 kernel in matmul_q4_0x8_avx2.cpp (PackedWeight::packed).
//
// Rows are taken in groups of 8. For group g and block column b (32 values per row):
//   scales: 8 fp16, the 8 rows' block scales d, in row order                 (16 bytes)
//   quants: 4 vectors of 32 bytes; in vector k, bytes 4r..4r+3 hold values 4k..4k+3 (low
//           nibbles) and 16+4k..16+4k+3 (high nibbles) of row r, unsigned 0..15 (128 bytes)
// A group is all its scales (nb x 16 bytes) followed by all its quants, so both streams are
// sequential (and 16-byte aligned in a 64-byte aligned buffer). One broadcast of 4
// activation bytes then feeds 8 rows at once and the 8 per-row int32 sums land in the 8
// lanes of one vector: no horizontal sums, one vector of scales per block.
//
// A group takes exactly the bytes of its 8 GGUF rows, so group g starts at g * 8 * row_bytes
// (the MoE path finds an expert's groups at the expert's GGUF offset). Q8_0 is not repacked:
// its GGUF kernel already streams at memory speed, and it sums in llama.cpp's order, which
// keeps MoE expert choices identical to the reference's.
#pragma once
#include <cstdint>
#include <cstring>

#include "core/ggml_types.h"

namespace tessera::cpu::q4_0x8 {

constexpr int kRows = 8;

// Bytes of the 8 rows' quants for one block column.
constexpr size_t kQuantBytes = 128;

struct Group {
  const uint16_t* scales;  // [nb][8]
  const uint8_t* quants;   // [nb][kQuantBytes]
};

static inline Group group(const uint8_t* packed, size_t row_bytes, int64_t nb, int64_t g) {
  const uint8_t* base = packed + size_t(g) * kRows * row_bytes;
  return {reinterpret_cast<const uint16_t*>(base), base + size_t(nb) * kRows * sizeof(uint16_t)};
}

// Byte of the group's block-b quants holding value j (0..31) of row r (the high nibble for
// j >= 16).
static inline size_t quant_byte(int r, int j) { return size_t((j % 16) / 4) * 32 + r * 4 + j % 4; }

// Writes one group (8 GGUF rows of nb blocks at `rows`) to `out`.
static inline void pack_group(const uint8_t* rows, size_t row_bytes, int64_t nb, uint8_t* out) {
  uint16_t* scales = reinterpret_cast<uint16_t*>(out);
  uint8_t* quants = out + size_t(nb) * kRows * sizeof(uint16_t);
  for (int64_t b = 0; b < nb; ++b)
    for (int r = 0; r < kRows; ++r) {
      const BlockQ4_0* blk = reinterpret_cast<const BlockQ4_0*>(rows + r * row_bytes) + b;
      scales[b * kRows + r] = blk->d;
      // GGUF byte i holds values i (low nibble) and 16 + i (high): the pairing used here, so
      // the bytes move 4 at a time unchanged.
      for (int k = 0; k < 4; ++k) std::memcpy(quants + size_t(b) * kQuantBytes + quant_byte(r, 4 * k), blk->qs + 4 * k, 4);
    }
}

}  // namespace tessera::cpu::q4_0x8
