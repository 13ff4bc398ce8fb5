// Layout 1 of PackedWeight ("8-row interleaved") for Q4_0 weights, built once by pack_weight
// and streamed by the AVX2 kernel in matmul_packed_avx2.cpp.
//
// Rows are taken in groups of 8. For group g and block column b (32 values per row):
//   scales: 8 fp16, the 8 rows' block scales d, in row order                 (16 bytes)
//   quants: 4 vectors of 32 bytes; in vector k, bytes 4r..4r+3 hold values 4k..4k+3 (low
//           nibbles) and 16+4k..16+4k+3 (high nibbles) of row r, unsigned 0..15 (128 bytes)
// A group is all its scales (nb x 16 bytes) followed by all its quants, so both streams are
// sequential (and 16-byte aligned in a 64-byte aligned buffer). One broadcast of 4 activation bytes
// then feeds 8 rows at once and the 8 per-row int32 sums land in the 8 lanes of one vector:
// no horizontal sums, one vector of scales per block.
//
// A group takes exactly the bytes of its 8 GGUF rows, so rows past the last whole group
// (rows % 8) stay in GGUF layout at their usual offset, where the layout-0 kernels read them.
// Q8_0 keeps layout 0: its GGUF kernel already streams at memory speed, and it sums in
// llama.cpp's order, which keeps MoE expert choices identical to the reference's.
#pragma once
#include <cstdint>
#include <cstring>

#include "core/ggml_types.h"

namespace tessera::cpu::packed {

constexpr int kRows = 8;

static inline bool packable(GgmlType t) { return t == GgmlType::Q4_0; }

// Bytes of the 8 rows' quants for one block column.
constexpr size_t kQuantBytes = 128;

struct Group {
  const uint16_t* scales;  // [nb][8]
  const uint8_t* quants;   // [nb][quant_bytes]
};

static inline Group group(const uint8_t* data, size_t row_bytes, int64_t nb, int64_t g) {
  const uint8_t* base = data + size_t(g) * kRows * row_bytes;
  return {reinterpret_cast<const uint16_t*>(base), base + size_t(nb) * kRows * sizeof(uint16_t)};
}

// Byte of the group's block-b quants holding value j (0..31) of row r (the high nibble for
// j >= 16).
static inline size_t quant_byte(int r, int j) { return size_t((j % 16) / 4) * 32 + r * 4 + j % 4; }

// Writes one group (8 GGUF rows of nb blocks at `rows`) in layout 1 to `out`.
static inline void pack_group(const uint8_t* rows, size_t row_bytes, int64_t nb, uint8_t* out) {
  uint16_t* scales = reinterpret_cast<uint16_t*>(out);
  uint8_t* quants = out + size_t(nb) * kRows * sizeof(uint16_t);
  for (int64_t b = 0; b < nb; ++b)
    for (int r = 0; r < kRows; ++r) {
      const BlockQ4_0* blk = reinterpret_cast<const BlockQ4_0*>(rows + r * row_bytes) + b;
      scales[b * kRows + r] = blk->d;
      // GGUF byte i holds values i (low nibble) and 16 + i (high): the pairing layout 1 uses,
      // so the bytes move 4 at a time unchanged.
      for (int k = 0; k < 4; ++k) std::memcpy(quants + size_t(b) * kQuantBytes + quant_byte(r, 4 * k), blk->qs + 4 * k, 4);
    }
}

// Rebuilds row r's block b of a group in GGUF form (the scalar kernel's view of layout 1).
static inline void unpack_block(const Group& g, int64_t b, int r, BlockQ4_0* out) {
  const uint8_t* q = g.quants + size_t(b) * kQuantBytes;
  out->d = g.scales[b * kRows + r];
  for (int j = 0; j < 16; ++j) out->qs[j] = q[quant_byte(r, j)];
}

}  // namespace tessera::cpu::packed
