// WeightLayout::Q6_Kx16: the copy of a Q6_K weight's rows [0, rows / 16 * 16) that
// pack_weight builds, where AVX-512 VNNI is the active ISA at load, for the kernel in
// matmul_q6_kx16_avx512vnni.cpp. A group is its super-block columns, each the 16 rows'
// 210-byte GGUF blocks with the value bits rearranged so that the kernel decodes them with
// few vector operations, row r in bytes 4r..4r+3 of each vector:
//   d:      16 fp16, in row order;
//   scales: the 16 int8 sub-block scales, scale-major: scale s of the 16 rows in 16 bytes
//           (one vpmovsxbd gives them as int32 lanes, where a byte of a word took two shifts);
//   q:      48 vectors of the 6-bit values q = ql nibble | qh bits << 4 (0..63). Byte
//           4r + i of vectors 3s, 3s + 1, 3s + 2 (bytes B0, B1, B2) holds u_k, value
//           16s + 4k + i of row r (sub-block s), for k = 0..3:
//             B0 = u0 | (u3 & 3) << 6,  B1 = u1 | (u3 >> 2 & 3) << 6,  B2 = u2 | (u3 >> 4) << 6
//           so that three values come out with a mask and the fourth with three shifts,
//           two bit selects and a mask.
// (GGUF value 128n + 32c + l: the low nibble (c < 2) or high nibble of ql byte
// 64n + 32(c % 2) + l, and bits 2c..2c+1 of qh byte 32n + l; scale 8n + 2c + l / 16.)
// Why not the GGUF fields (ql, qh) side by side: each value then took up to two shifts, a
// bit select and a mask, and one thread read no faster from DRAM than the decode allowed.
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
  int8_t scales[16][kRows];
  uint8_t q[48][4 * kRows];
};
static_assert(sizeof(Column) == kRows * sizeof(BlockQ6_K), "a column holds exactly its 16 GGUF blocks");

static inline const Column* group(const uint8_t* packed, size_t row_bytes, int64_t g) {
  return reinterpret_cast<const Column*>(packed + size_t(g) * kRows * row_bytes);
}

// Value l (0..255) of a GGUF Q6_K block, 0..63.
static inline int value6(const BlockQ6_K& b, int l) {
  const int n = l / 128, c = (l / 32) % 4, m = l % 32;
  const int ql = b.ql[64 * n + 32 * (c % 2) + m];
  return (c < 2 ? ql & 0xF : ql >> 4) | (((b.qh[32 * n + m] >> (2 * c)) & 3) << 4);
}

// Writes one group (16 GGUF rows of nb super-blocks at `rows`) to `out`, row by row.
static inline void pack_group(const uint8_t* rows, size_t row_bytes, int64_t nb, uint8_t* out) {
  Column* columns = reinterpret_cast<Column*>(out);
  for (int r = 0; r < kRows; ++r)
    for (int64_t b = 0; b < nb; ++b) {
      Column& c = columns[b];
      const BlockQ6_K& blk = reinterpret_cast<const BlockQ6_K*>(rows + r * row_bytes)[b];
      c.d[r] = blk.d;
      for (int s = 0; s < 16; ++s) c.scales[s][r] = blk.scales[s];
      for (int s = 0; s < 16; ++s)
        for (int i = 0; i < 4; ++i) {
          int u[4];
          for (int k = 0; k < 4; ++k) u[k] = value6(blk, 16 * s + 4 * k + i);
          c.q[3 * s][4 * r + i] = uint8_t(u[0] | (u[3] & 3) << 6);
          c.q[3 * s + 1][4 * r + i] = uint8_t(u[1] | (u[3] >> 2 & 3) << 6);
          c.q[3 * s + 2][4 * r + i] = uint8_t(u[2] | (u[3] >> 4) << 6);
        }
    }
}

}  // namespace tessera::cpu::q6_kx16
