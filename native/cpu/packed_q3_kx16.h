// WeightLayout::Q3_Kx16: the copy of a Q3_K weight's rows [0, rows / 16 * 16) that
// pack_weight builds, where AVX-512 VNNI is the active ISA at load, for the kernel in
// matmul_q3_kx16_avx512vnni.cpp. A group is its super-block columns, each the 16 rows'
// 110-byte GGUF blocks with the bits rearranged so that the kernel decodes them with few
// vector operations, row r in bytes 4r..4r+3 of each vector:
//   d:      16 fp16, in row order;
//   scales: 3 words per row, word-major: the 16 scales minus 32 as 6-bit two's complement
//           fields; scale 5w + m (m < 5) at bits 6m..6m+5 of word w, scale 15's bits 2w,
//           2w + 1 at bits 30, 31 of word w;
//   q:      24 vectors of the 3-bit values q = low 2 bits | high bit << 2 (0..7). Byte
//           4r + i of vectors 3g, 3g + 1, 3g + 2 (bytes B0, B1, B2) holds u_t, value
//           32g + 4t + i of row r, for t = 0..7:
//             B0 = u0 & 3 | u2 << 2 | u3 << 5
//             B1 = u1 & 3 | u4 << 2 | u5 << 5
//             B2 = u6 | u7 << 3 | (u0 >> 2) << 6 | (u1 >> 2) << 7
//           so that six values come out with a shift and a mask and two with a bit select.
// Why not the GGUF fields (hmask, qs) side by side: each value then took two shifts, a bit
// select and a mask, and the kernel was bound by those operations, not by memory.
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
  uint8_t q[24][4 * kRows];
};
static_assert(sizeof(Column) == kRows * sizeof(BlockQ3_K), "a column holds exactly its 16 GGUF blocks");

static inline const Column* group(const uint8_t* packed, size_t row_bytes, int64_t g) {
  return reinterpret_cast<const Column*>(packed + size_t(g) * kRows * row_bytes);
}

// Scale i (0..15) of a GGUF Q3_K block, 0..63 (the stored value, before the -32), as ggml
// unpacks it.
static inline int scale6(const uint8_t* s, int i) {
  const int low = i < 8 ? s[i % 8] & 0xF : s[i % 8] >> 4;
  return low | (((s[8 + i % 4] >> (2 * (i / 4))) & 3) << 4);
}

// Value l (0..255) of a GGUF Q3_K block, 0..7.
static inline int value3(const BlockQ3_K& b, int l) {
  const int hn = l / 128, j = (l / 32) % 4, m = l % 32;
  return ((b.qs[32 * hn + m] >> (2 * j)) & 3) | (((b.hmask[m] >> (4 * hn + j)) & 1) << 2);
}

// Writes one group (16 GGUF rows of nb super-blocks at `rows`) to `out`, row by row.
static inline void pack_group(const uint8_t* rows, size_t row_bytes, int64_t nb, uint8_t* out) {
  Column* columns = reinterpret_cast<Column*>(out);
  for (int r = 0; r < kRows; ++r)
    for (int64_t b = 0; b < nb; ++b) {
      Column& c = columns[b];
      const BlockQ3_K& blk = reinterpret_cast<const BlockQ3_K*>(rows + r * row_bytes)[b];
      c.d[r] = blk.d;
      uint32_t f[16];
      for (int i = 0; i < 16; ++i) f[i] = uint32_t(scale6(blk.scales, i) - 32) & 63;
      for (int w = 0; w < 3; ++w) {
        uint32_t word = ((f[15] >> (2 * w)) & 3) << 30;
        for (int m = 0; m < 5; ++m) word |= f[5 * w + m] << (6 * m);
        c.scales[w][r] = word;
      }
      for (int g = 0; g < 8; ++g)
        for (int i = 0; i < 4; ++i) {
          int u[8];
          for (int t = 0; t < 8; ++t) u[t] = value3(blk, 32 * g + 4 * t + i);
          c.q[3 * g][4 * r + i] = uint8_t((u[0] & 3) | u[2] << 2 | u[3] << 5);
          c.q[3 * g + 1][4 * r + i] = uint8_t((u[1] & 3) | u[4] << 2 | u[5] << 5);
          c.q[3 * g + 2][4 * r + i] = uint8_t(u[6] | u[7] << 3 | (u[0] >> 2) << 6 | (u[1] >> 2) << 7);
        }
    }
}

}  // namespace tessera::cpu::q3_kx16
