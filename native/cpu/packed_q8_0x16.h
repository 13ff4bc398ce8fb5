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
// Block columns go in pairs, [scales 2p][scales 2p+1][quants 2p][quants 2p+1] (1088 bytes,
// 17 cache lines), so a group is one sequential stream, 64-byte aligned where nb is even
// (a lone last block: its scales, then its quants). One stream per group matters for the
// one-token matvec: separate scale and quant streams ran it 3-7% slower than the GGUF
// kernel. A group takes exactly the bytes of its 16 GGUF rows, so group g starts at
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

// Bytes of a pair of block columns.
constexpr size_t kPairBytes = 2 * (kRows * sizeof(uint16_t) + kQuantBytes);

struct Group {
  const uint8_t* base;
  int64_t nb;
  const uint16_t* scales(int64_t b) const {
    return reinterpret_cast<const uint16_t*>(base + size_t(b / 2) * kPairBytes + size_t(b % 2) * kRows * sizeof(uint16_t));
  }
  const uint8_t* quants(int64_t b) const {
    const size_t pair = size_t(b / 2) * kPairBytes;
    // A whole pair: both scale rows, then quants b - b % 2 and b - b % 2 + 1; a lone last block: its scales, then its quants.
    return base + pair + (b - b % 2 + 1 < nb ? 2 * kRows * sizeof(uint16_t) + size_t(b % 2) * kQuantBytes : kRows * sizeof(uint16_t));
  }
};

static inline Group group(const uint8_t* packed, size_t row_bytes, int64_t nb, int64_t g) {
  return {packed + size_t(g) * kRows * row_bytes, nb};
}

// Writes one group (16 GGUF rows of nb blocks at `rows`) to `out`. Row by row, so the file's
// bytes are read in order (one stream, not 16) into a group that stays in cache; 4 values
// at a time, each byte biased by 128. (A byte at a time across the 16 rows, packing made
// loading a 145 MB Q8_0 model 3.3x slower than copying it.)
static inline void pack_group(const uint8_t* rows, size_t row_bytes, int64_t nb, uint8_t* out) {
  const Group g{out, nb};
  for (int r = 0; r < kRows; ++r) {
    const BlockQ8_0* row = reinterpret_cast<const BlockQ8_0*>(rows + r * row_bytes);
    for (int64_t b = 0; b < nb; ++b) {
      const_cast<uint16_t*>(g.scales(b))[r] = row[b].d;
      uint8_t* quants = const_cast<uint8_t*>(g.quants(b)) + r * 4;
      for (int j = 0; j < QK8_0 / 4; ++j) {
        uint32_t v;
        std::memcpy(&v, row[b].qs + 4 * j, 4);
        v ^= 0x80808080u;
        std::memcpy(quants + j * 64, &v, 4);
      }
    }
  }
}

}  // namespace tessera::cpu::q8_0x16
