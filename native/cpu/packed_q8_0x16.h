// WeightLayout::Q8_0x16: the copy of a Q8_0 weight's rows [0, rows / 16 * 16) that
// pack_weight builds for the AVX-512 VNNI kernels in matmul_q8_0x16_avx512vnni.cpp
// (PackedWeight::packed), on machines whose active ISA is AVX-512 VNNI at load time.
//
// Why: the GGUF-layout tile spends a dot, a convert, a scale product and a multiply-add per
// row, token and pair of blocks (16 lanes, 8 per block, summed horizontally at the end), so
// a batch of 8 tokens (a draft verification, 8 decoding sequences) is bound by those fp32
// steps, not by reading the weights: m=8 cost 2.4x a one-token matvec. Here lane r of one
// vector is row r of a 16-row group: 8 vpdpbusd (each with 4 activation bytes broadcast
// from memory) give the 16 rows' exact int32 block dots, then one convert, one scale
// product and one multiply-add serve all 16 rows. The fp32 work per token drops 8x.
//
// Rows are taken in groups of 16. For group g and block column b (32 values per row):
//   scales: 16 fp16, the rows' block scales d, in row order                        (32 bytes)
//   quants: 8 vectors of 64 bytes; in vector j, bytes 4r..4r+3 hold values 4j..4j+3 of
//           row r, stored as unsigned w + 128 (w ^ 0x80)                          (512 bytes)
// vpdpbusd multiplies unsigned by signed bytes: the activation stays signed and each block
// dot starts from -128 * (the activation block's sum), which makes it exact.
// A group is all its scales (nb x 32 bytes) followed by all its quants, both streamed in
// order; it takes exactly the bytes of its 16 GGUF rows, so group g starts at
// g * 16 * row_bytes (the MoE path finds an expert's groups at the expert's GGUF offset).
//
// Summation order, per row: acc = fma(d_w * d_x, float(int32 block dot), acc) over the
// blocks in order, from acc = 0. The rows outside whole groups (the tail, or a range that
// cuts a group) run the same steps one row at a time, so a row's bits never depend on how
// the rows were split among threads, and a token's never on the batch it is in.
#pragma once
#include <cstdint>
#include <cstring>

#include "core/ggml_types.h"

namespace tessera::cpu::q8_0x16 {

constexpr int kRows = 16;

// Bytes of the 16 rows' quants for one block column.
constexpr size_t kQuantBytes = size_t(kRows) * QK8_0;

struct Group {
  const uint16_t* scales;  // [nb][16]
  const uint8_t* quants;   // [nb][kQuantBytes]
};

static inline Group group(const uint8_t* packed, size_t row_bytes, int64_t nb, int64_t g) {
  const uint8_t* base = packed + size_t(g) * kRows * row_bytes;
  return {reinterpret_cast<const uint16_t*>(base), base + size_t(nb) * kRows * sizeof(uint16_t)};
}

// Writes one group (16 GGUF rows of nb blocks at `rows`) to `out`.
static inline void pack_group(const uint8_t* rows, size_t row_bytes, int64_t nb, uint8_t* out) {
  uint16_t* scales = reinterpret_cast<uint16_t*>(out);
  uint8_t* quants = out + size_t(nb) * kRows * sizeof(uint16_t);
  for (int64_t b = 0; b < nb; ++b)
    for (int r = 0; r < kRows; ++r) {
      const BlockQ8_0* blk = reinterpret_cast<const BlockQ8_0*>(rows + r * row_bytes) + b;
      scales[b * kRows + r] = blk->d;
      for (int i = 0; i < QK8_0; ++i) quants[size_t(b) * kQuantBytes + (i / 4) * 64 + r * 4 + i % 4] = uint8_t(blk->qs[i]) ^ 0x80;
    }
}

}  // namespace tessera::cpu::q8_0x16
