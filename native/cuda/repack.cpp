// Host side of the weight layout (matrix_layout.h): stream sizes and the GGUF -> device
// repacking, run once per tensor at load time. Each type's streams per row (matrix.cuh reads
// them the same way on the device):
//
//   F32/F16/BF16  q: the values, each row zero-padded to cols32 = cols rounded up to 32.
//   Q8_0          q: int8 [cols] per row;  s: fp16 scale per 32-chunk.
//   Q4_0          q: 16 bytes per 32-chunk, value i of the chunk in the low nibble of byte i
//                    (i < 16) or the high nibble of byte i - 16 (the GGUF qs order);
//                 s: fp16 scale per chunk. w = d * (q - 8).
//   Q4_K          q: as Q4_0 per chunk (the GGUF super-block interleave undone);
//                 s: uint16 per chunk, 6-bit scale | 6-bit min << 8 (unpacked);
//                 sb: (d, dmin) fp16 pair per 256-value super-block. w = d*sc*q - dmin*m.
//   Q6_K          q: low 4 bits of each value, as Q4_0 per chunk;
//                 qh: 8 bytes per chunk, the high 2 bits of value 16w + 4s + k at bits
//                     [2s, 2s+2) of byte k of 32-bit word w (so 4 consecutive values come
//                     out as one int8x4 word with a shift and a mask);
//                 s: int8 scale per 16 values; sb: fp16 d per super-block. w = d*sc*(q - 32).
//   Q5_0          q: low 4 bits of each value, as Q4_0 per chunk; qh: the 32 fifth bits per
//                    chunk as one uint32, bit i for value i (the GGUF qh);
//                 s: fp16 d per chunk. w = d * (q - 16).
//   Q4_1          q: as Q4_0; s: (d, m) fp16 pair per chunk. w = d * q + m.
//   Q5_1          q, qh: as Q5_0; s: (d, m) fp16 pair per chunk. w = d * q + m.
//   IQ4_NL        q: the 4-bit indices, as Q4_0; s: fp16 d per chunk.
//                 w = d * kIq4nlValues[q].
//   MXFP4         q: the 4-bit E2M1 codes, as Q4_0; s: the E8M0 byte per chunk.
//                 w = e8m0_to_fp32_half(e) * kMxfp4Values[q].
//   Q5_K          q, s, sb: as Q4_K (low 4 bits of each value in q);
//                 qh: 4 bytes per chunk, the 5th bit of value 16w + 4s + k at bit 4w + s of
//                     byte k (so 4 consecutive values' bits come out with one shift and a
//                     mask). w = d*sc*q - dmin*m.
//   Q3_K          q: each 3-bit value (low 2 bits | high bit << 2, 0..7) as a nibble, as
//                    Q4_0 per chunk (4 bits for 3.4: simple, 1.3x the file's bytes);
//                 s: int8 scale - 32 per 16 values; sb: fp16 d per super-block. w = d*sc*(q - 4).
//   Q2_K          q: 8 bytes per chunk, value 16w + 4s + k at bits [2s, 2s+2) of byte 4w + k
//                    (Q6_K's qh order: 4 values per int8x4 word with a shift and a mask);
//                 s: byte per 16 values, 4-bit scale | 4-bit min << 4;
//                 sb: (d, dmin) fp16 pair per super-block. w = d*sc*q - dmin*m.
//   IQ4_XS        q: the 4-bit grid indexes, as Q4_0 per chunk (GGUF's own order);
//                 s: int8 scale - 32 per chunk; sb: fp16 d per super-block.
//                 w = d * sc * kIq4nlValues[q].
//
//
// A new type adds its streams here (its line above, its case in matrix_layout and in
// repack_rows) and its reads in matrix.cuh.
#include <algorithm>
#include <cstddef>
#include <cstring>

#include "cuda/matrix_layout.h"

namespace tessera::cuda {

namespace {

size_t align256(size_t n) { return (n + 255) / 256 * 256; }

void put16(uint8_t* p, uint16_t v) { std::memcpy(p, &v, 2); }

// Packs 32 4-bit values into the chunk order: value i in the low nibble of byte i % 16 for
// i < 16, the high nibble for i >= 16.
void pack_nibbles(const uint8_t v[32], uint8_t out[16]) {
  for (int i = 0; i < 16; ++i) out[i] = uint8_t((v[i] & 0xF) | ((v[i + 16] & 0xF) << 4));
}

// The high 2 bits of 32 6-bit values: value 16w + 4s + k at bits [2s, 2s+2) of byte 4w + k.
void pack_high_bits(const uint8_t v[32], uint8_t out[8]) {
  std::memset(out, 0, 8);
  for (int i = 0; i < 32; ++i) {
    const int w = i / 16, s = (i % 16) / 4, k = i % 4;
    out[4 * w + k] |= uint8_t(((v[i] >> 4) & 3) << (2 * s));
  }
}

// The 5th bits of 32 5-bit values: value 16w + 4s + k at bit 4w + s of byte k.
void pack_fifth_bits(const uint8_t v[32], uint8_t out[4]) {
  std::memset(out, 0, 4);
  for (int i = 0; i < 32; ++i) {
    const int w = i / 16, s = (i % 16) / 4, k = i % 4;
    out[k] |= uint8_t(((v[i] >> 4) & 1) << (4 * w + s));
  }
}

}  // namespace

MatrixLayout matrix_layout(GgmlType type, int64_t rows, int64_t cols) {
  MatrixLayout L;
  const size_t k32 = size_t(round_up(cols, kChunk)), k = size_t(cols);
  switch (type) {
    case GgmlType::F32: L.q_row = 4 * k32; break;
    case GgmlType::F16:
    case GgmlType::BF16: L.q_row = 2 * k32; break;
    case GgmlType::Q8_0:
      L.q_row = k;
      L.s_row = 2 * (k / 32);
      break;
    case GgmlType::Q4_0:
      L.q_row = k / 2;
      L.s_row = 2 * (k / 32);
      break;
    case GgmlType::Q4_K:
      L.q_row = k / 2;
      L.s_row = 2 * (k / 32);
      L.sb_row = 4 * (k / 256);
      break;
    case GgmlType::Q6_K:
      L.q_row = k / 2;
      L.qh_row = k / 4;
      L.s_row = k / 16;
      L.sb_row = 2 * (k / 256);
      break;
    case GgmlType::Q5_0:
      L.q_row = k / 2;
      L.qh_row = k / 8;
      L.s_row = 2 * (k / 32);
      break;
    case GgmlType::Q4_1:
      L.q_row = k / 2;
      L.s_row = 4 * (k / 32);
      break;
    case GgmlType::Q5_1:
      L.q_row = k / 2;
      L.qh_row = k / 8;
      L.s_row = 4 * (k / 32);
      break;
    case GgmlType::IQ4_NL:
      L.q_row = k / 2;
      L.s_row = 2 * (k / 32);
      break;
    case GgmlType::MXFP4:
      L.q_row = k / 2;
      L.s_row = k / 32;
      break;
    case GgmlType::Q5_K:
      L.q_row = k / 2;
      L.qh_row = k / 8;
      L.s_row = 2 * (k / 32);
      L.sb_row = 4 * (k / 256);
      break;
    case GgmlType::Q3_K:
      L.q_row = k / 2;
      L.s_row = k / 16;
      L.sb_row = 2 * (k / 256);
      break;
    case GgmlType::Q2_K:
      L.q_row = k / 4;
      L.s_row = k / 16;
      L.sb_row = 4 * (k / 256);
      break;
    case GgmlType::IQ4_XS:
      L.q_row = k / 2;
      L.s_row = k / 32;
      L.sb_row = 2 * (k / 256);
      break;
    default: break;
  }
  const size_t r = size_t(rows);
  L.q_off = 0;
  L.qh_off = L.q_off + align256(L.q_row * r);
  L.s_off = L.qh_off + align256(L.qh_row * r);
  L.sb_off = L.s_off + align256(L.s_row * r);
  L.total = L.sb_off + align256(L.sb_row * r);
  return L;
}

DeviceMatrix matrix_view(GgmlType type, int64_t rows, int64_t cols, const MatrixLayout& L, const uint8_t* base) {
  DeviceMatrix m;
  m.type = type;
  m.rows = rows;
  m.cols = cols;
  m.cols32 = round_up(cols, kChunk);
  m.q = base + L.q_off;
  m.qh = L.qh_row ? base + L.qh_off : nullptr;
  m.s = L.s_row ? base + L.s_off : nullptr;
  m.sb = L.sb_row ? base + L.sb_off : nullptr;
  m.q_row = L.q_row;
  m.qh_row = L.qh_row;
  m.s_row = L.s_row;
  m.sb_row = L.sb_row;
  return m;
}

void repack_rows(GgmlType type, int64_t cols, const uint8_t* src, int64_t n_rows, const MatrixLayout& L,
                 int64_t dst_row, uint8_t* dst) {
  const size_t src_row = ggml_row_bytes(type, cols);
  for (int64_t i = 0; i < n_rows; ++i) {
    const uint8_t* in = src + size_t(i) * src_row;
    const size_t r = size_t(dst_row + i);
    uint8_t* q = dst + L.q_off + r * L.q_row;
    uint8_t* qh = dst + L.qh_off + r * L.qh_row;
    uint8_t* s = dst + L.s_off + r * L.s_row;
    uint8_t* sb = dst + L.sb_off + r * L.sb_row;
    switch (type) {
      case GgmlType::F32:
      case GgmlType::F16:
      case GgmlType::BF16:
        std::memcpy(q, in, src_row);
        std::memset(q + src_row, 0, L.q_row - src_row);
        break;
      case GgmlType::Q8_0:
        for (int64_t b = 0; b < cols / QK8_0; ++b) {
          const uint8_t* blk = in + b * sizeof(BlockQ8_0);
          std::memcpy(s + 2 * b, blk, 2);
          std::memcpy(q + 32 * b, blk + 2, 32);
        }
        break;
      case GgmlType::Q4_0:
        for (int64_t b = 0; b < cols / QK4_0; ++b) {
          const uint8_t* blk = in + b * sizeof(BlockQ4_0);
          std::memcpy(s + 2 * b, blk, 2);
          std::memcpy(q + 16 * b, blk + 2, 16);  // already in chunk nibble order
        }
        break;
      case GgmlType::Q4_K:
        for (int64_t b = 0; b < cols / QK_K; ++b) {
          BlockQ4_K blk;
          std::memcpy(&blk, in + b * sizeof(BlockQ4_K), sizeof blk);
          put16(sb + 4 * b, blk.d);
          put16(sb + 4 * b + 2, blk.dmin);
          for (int j = 0; j < 8; ++j) {
            uint8_t sc, mn, v[32];
            q4k_scale_min(j, blk.scales, &sc, &mn);
            put16(s + 2 * (8 * b + j), uint16_t(sc | (mn << 8)));
            // Sub-block j holds the low (even j) or high (odd j) nibbles of qs[32*(j/2) ..].
            const uint8_t* qs = blk.qs + 32 * (j / 2);
            for (int l = 0; l < 32; ++l) v[l] = (j & 1) ? (qs[l] >> 4) : (qs[l] & 0xF);
            pack_nibbles(v, q + 16 * (8 * b + j));
          }
        }
        break;
      case GgmlType::Q6_K:
        for (int64_t b = 0; b < cols / QK_K; ++b) {
          BlockQ6_K blk;
          std::memcpy(&blk, in + b * sizeof(BlockQ6_K), sizeof blk);
          put16(sb + 2 * b, blk.d);
          std::memcpy(s + 16 * b, blk.scales, 16);
          for (int g = 0; g < 8; ++g) {
            // Chunk g: low bits from ql[64*half + 32*(g&1) ..] (low nibble for g%4 < 2),
            // high bits from qh[32*half ..] at bit 2*(g%4).
            const int half = g / 4, sub = g % 4;
            const uint8_t* ql = blk.ql + 64 * half + 32 * (sub & 1);
            const uint8_t* qhs = blk.qh + 32 * half;
            uint8_t v[32];
            for (int l = 0; l < 32; ++l) {
              const int lo = sub < 2 ? (ql[l] & 0xF) : (ql[l] >> 4);
              const int hi = (qhs[l] >> (2 * sub)) & 3;
              v[l] = uint8_t(lo | (hi << 4));
            }
            pack_nibbles(v, q + 16 * (8 * b + g));
            pack_high_bits(v, qh + 8 * (8 * b + g));
          }
        }
        break;
      case GgmlType::Q5_0:
        for (int64_t b = 0; b < cols / 32; ++b) {
          const uint8_t* blk = in + b * sizeof(BlockQ5_0);
          std::memcpy(s + 2 * b, blk + offsetof(BlockQ5_0, d), 2);
          std::memcpy(qh + 4 * b, blk + offsetof(BlockQ5_0, qh), 4);
          std::memcpy(q + 16 * b, blk + offsetof(BlockQ5_0, qs), 16);  // already in chunk nibble order
        }
        break;
      case GgmlType::Q4_1:
        for (int64_t b = 0; b < cols / 32; ++b) {
          const uint8_t* blk = in + b * sizeof(BlockQ4_1);
          std::memcpy(s + 4 * b, blk + offsetof(BlockQ4_1, d), 4);  // d, m
          std::memcpy(q + 16 * b, blk + offsetof(BlockQ4_1, qs), 16);
        }
        break;
      case GgmlType::Q5_1:
        for (int64_t b = 0; b < cols / 32; ++b) {
          const uint8_t* blk = in + b * sizeof(BlockQ5_1);
          std::memcpy(s + 4 * b, blk + offsetof(BlockQ5_1, d), 4);  // d, m
          std::memcpy(qh + 4 * b, blk + offsetof(BlockQ5_1, qh), 4);
          std::memcpy(q + 16 * b, blk + offsetof(BlockQ5_1, qs), 16);
        }
        break;
      case GgmlType::IQ4_NL:
        for (int64_t b = 0; b < cols / 32; ++b) {
          const uint8_t* blk = in + b * sizeof(BlockIQ4_NL);
          std::memcpy(s + 2 * b, blk + offsetof(BlockIQ4_NL, d), 2);
          std::memcpy(q + 16 * b, blk + offsetof(BlockIQ4_NL, qs), 16);
        }
        break;
      case GgmlType::MXFP4:
        for (int64_t b = 0; b < cols / 32; ++b) {
          const uint8_t* blk = in + b * sizeof(BlockMXFP4);
          s[b] = blk[offsetof(BlockMXFP4, e)];
          std::memcpy(q + 16 * b, blk + offsetof(BlockMXFP4, qs), 16);
        }
        break;
      case GgmlType::Q5_K:
        for (int64_t b = 0; b < cols / QK_K; ++b) {
          BlockQ5_K blk;
          std::memcpy(&blk, in + b * sizeof(BlockQ5_K), sizeof blk);
          put16(sb + 4 * b, blk.d);
          put16(sb + 4 * b + 2, blk.dmin);
          for (int j = 0; j < 8; ++j) {
            uint8_t sc, mn, v[32];
            q4k_scale_min(j, blk.scales, &sc, &mn);
            put16(s + 2 * (8 * b + j), uint16_t(sc | (mn << 8)));
            // Sub-block j: nibbles as Q4_K, the 5th bit from bit j of qh[l].
            const uint8_t* qs = blk.qs + 32 * (j / 2);
            for (int l = 0; l < 32; ++l) v[l] = uint8_t(((j & 1) ? (qs[l] >> 4) : (qs[l] & 0xF)) | (((blk.qh[l] >> j) & 1) << 4));
            pack_nibbles(v, q + 16 * (8 * b + j));
            pack_fifth_bits(v, qh + 4 * (8 * b + j));
          }
        }
        break;
      case GgmlType::Q3_K:
        for (int64_t b = 0; b < cols / QK_K; ++b) {
          BlockQ3_K blk;
          std::memcpy(&blk, in + b * sizeof(BlockQ3_K), sizeof blk);
          put16(sb + 2 * b, blk.d);
          q3k_scales(blk.scales, reinterpret_cast<int8_t*>(s + 16 * b));
          for (int g = 0; g < 8; ++g) {
            uint8_t v[32];
            for (int l = 0; l < 32; ++l)
              v[l] = uint8_t(((blk.qs[32 * (g / 4) + l] >> (2 * (g % 4))) & 3) | (((blk.hmask[l] >> g) & 1) << 2));
            pack_nibbles(v, q + 16 * (8 * b + g));
          }
        }
        break;
      case GgmlType::Q2_K:
        for (int64_t b = 0; b < cols / QK_K; ++b) {
          BlockQ2_K blk;
          std::memcpy(&blk, in + b * sizeof(BlockQ2_K), sizeof blk);
          put16(sb + 4 * b, blk.d);
          put16(sb + 4 * b + 2, blk.dmin);
          std::memcpy(s + 16 * b, blk.scales, 16);
          for (int g = 0; g < 8; ++g) {
            uint8_t v[32];
            // pack_high_bits takes bits 4..5: the 2-bit values shifted there.
            for (int l = 0; l < 32; ++l) v[l] = uint8_t(((blk.qs[32 * (g / 4) + l] >> (2 * (g % 4))) & 3) << 4);
            pack_high_bits(v, q + 8 * (8 * b + g));
          }
        }
        break;
      case GgmlType::IQ4_XS:
        for (int64_t b = 0; b < cols / QK_K; ++b) {
          BlockIQ4_XS blk;
          std::memcpy(&blk, in + b * sizeof(BlockIQ4_XS), sizeof blk);
          put16(sb + 2 * b, blk.d);
          for (int j = 0; j < 8; ++j) s[8 * b + j] = uint8_t(int8_t(iq4xs_scale(blk, j)));
          std::memcpy(q + 128 * b, blk.qs, 128);  // already in chunk nibble order
        }
        break;
      default: break;
    }
  }
}

}  // namespace tessera::cuda
