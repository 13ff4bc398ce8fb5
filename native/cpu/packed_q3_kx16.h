// WeightLayout::Q3_Kx16: the copy of a Q3_K weight's rows [0, rows / 16 * 16) that
// pack_weight builds, where AVX-512 VNNI is the active ISA at load, for the kernel in
// matmul_q3_kx16_avx512vnni.cpp. A group is its super-block columns, each the 16 rows'
// 110-byte GGUF blocks with the bits rearranged so that the kernel decodes them with few
// vector operations, row r in bytes 4r..4r+3 of each vector. A unit (s, k) is the values
// 16s + 4k + i (i = 0..3) of a row, q = low 2 bits | high bit << 2 (0..7), in byte i:
//   d:      16 fp16, in row order;
//   q:      24 vectors; byte 4r + i of vector j = 4a + k (a = 0..5) holds
//             bits 0..2: unit (a, k)        ("A": one AND gives q)
//             bits 3..5: unit (6 + a, k)    ("B": one AND gives 8q)
//             bits 6..7: for j < 16, q >> 1 of unit (12 + j / 4, j % 4) ("C");
//                        for j = 16 + h, bit 6 the q & 1 of C unit 2h, bit 7 of 2h + 1
//           (C unit c is (12 + c / 4, c % 4): its bits 6..7 in vector c, its low bit one
//           shift of vector 16 + c / 2 away, so one bit select and an AND give 32q);
//   scales: 3 words per row, word-major, each two 16-bit halves of
//             bits 10..15 (X), 4..9 (Y), 0..3 (N)
//           holding the 16 scales minus 32 as 6-bit two's complement fields f: pair p
//           (0..5) is (f of sub-block p, f of sub-block 6 + p) in (low half, high half) of
//           X (p even) or Y (p odd) of word p / 2, so one or two 16-bit shifts give the pair
//           as int16 for vpdpwssd; sub-blocks 12, 13 keep f >> 2 in N of word 0's (low, high)
//           half and f & 3 in bits 0..1 of word 2's N; 14, 15 the same in word 1 and bits
//           2..3 of word 2's N.
// Why: the kernel was bound by its vector operations, not by memory (one thread read 29 GB/s
// of a 8192x2048 matrix from DRAM and 44 GB/s from cache, where Q4_K reads 41 and 71). A
// value at bits 0..2 or 3..5 of a byte needs one AND where the previous layout (three bytes
// packed value by value) took a shift and an AND; a dot of values scaled by 8 or 32 is shifted
// back once per sub-block, not once per value; and pairs of scales come out with one or two
// shifts and multiply two sub-blocks' dots in one vpdpwssd, where each scale took two shifts
// and a vpmulld.
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

// The shift that brings a scale of each class to the dot's true size: sub-blocks 0..5 are
// decoded as q (A), 6..11 as 8q (B), 12..15 as 32q (C).
static inline int class_shift(int s) { return s < 6 ? 0 : s < 12 ? 3 : 5; }

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
      uint32_t half[3][2];  // [word][low, high]
      for (int w = 0; w < 3; ++w)
        for (int h = 0; h < 2; ++h) half[w][h] = f[6 * h + 2 * w] << 10 | f[6 * h + 2 * w + 1] << 4;
      for (int h = 0; h < 2; ++h) {
        half[0][h] |= f[12 + h] >> 2;
        half[1][h] |= f[14 + h] >> 2;
        half[2][h] |= (f[12 + h] & 3) | (f[14 + h] & 3) << 2;
      }
      for (int w = 0; w < 3; ++w) c.scales[w][r] = half[w][0] | half[w][1] << 16;
      // Unit (s, k)'s value in byte i.
      auto unit = [&](int s, int k, int i) { return uint32_t(value3(blk, 16 * s + 4 * k + i)); };
      for (int j = 0; j < 24; ++j)
        for (int i = 0; i < 4; ++i) {
          uint32_t byte = unit(j / 4, j % 4, i) | unit(6 + j / 4, j % 4, i) << 3;
          if (j < 16) {
            byte |= (unit(12 + j / 4, j % 4, i) >> 1) << 6;
          } else {
            const int c0 = 2 * (j - 16), c1 = c0 + 1;
            byte |= (unit(12 + c0 / 4, c0 % 4, i) & 1) << 6 | (unit(12 + c1 / 4, c1 % 4, i) & 1) << 7;
          }
          c.q[j][4 * r + i] = uint8_t(byte);
        }
    }
}

}  // namespace tessera::cpu::q3_kx16
