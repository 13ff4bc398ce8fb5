// The device layout of a weight matrix W [rows][cols] (GGUF ne0 = cols). The backend repacks
// each GGUF tensor once at load time from its block layout (array of 18/34/144/210-byte
// structs, whose fields sit at unaligned offsets) into separate streams, so that a kernel
// reads each row's values with aligned 16-byte loads and its scales from their own arrays:
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
// Every stream of every row starts at a multiple of its widest access (16 bytes for q).
#pragma once
#include <cstddef>
#include <cstdint>

#include "core/ggml_types.h"

namespace tessera::cuda {

constexpr int kChunk = 32;  // values per chunk: the unit every weight kernel decodes

inline int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

struct MatrixLayout {
  size_t q_row = 0, qh_row = 0, s_row = 0, sb_row = 0;  // bytes per row of each stream
  size_t q_off = 0, qh_off = 0, s_off = 0, sb_off = 0;  // stream offsets inside one allocation
  size_t total = 0;                                      // bytes of the allocation
};

// A repacked matrix on the device (the streams of MatrixLayout, already offset).
struct DeviceMatrix {
  GgmlType type = GgmlType::F32;
  int64_t rows = 0, cols = 0, cols32 = 0;
  const uint8_t* q = nullptr;
  const uint8_t* qh = nullptr;
  const uint8_t* s = nullptr;
  const uint8_t* sb = nullptr;
  size_t q_row = 0, qh_row = 0, s_row = 0, sb_row = 0;
};

// Stream sizes of a rows x cols matrix of `type` (cols must be a whole number of blocks).
MatrixLayout matrix_layout(GgmlType type, int64_t rows, int64_t cols);

// A view of the matrix stored at `base` (device or host) with layout L.
DeviceMatrix matrix_view(GgmlType type, int64_t rows, int64_t cols, const MatrixLayout& L, const uint8_t* base);

// Converts n_rows GGUF rows starting at `src` into rows [dst_row, dst_row + n_rows) of the
// repacked matrix at `dst` (host memory, L.total bytes).
void repack_rows(GgmlType type, int64_t cols, const uint8_t* src, int64_t n_rows, const MatrixLayout& L,
                 int64_t dst_row, uint8_t* dst);

}  // namespace tessera::cuda
