// The device layout of a weight matrix W [rows][cols] (GGUF ne0 = cols). The backend repacks
// each GGUF tensor once at load time from its block layout (array of 18/34/144/210-byte
// structs, whose fields sit at unaligned offsets) into up to four separate streams (q: the
// values' low bits, qh: their high bits, s: a scale per chunk or half chunk, sb: a scale per
// super-block), so that a kernel reads each row's values with aligned 16-byte loads and its
// scales from their own arrays. Each type's streams are described in repack.cpp, beside the
// code that sizes and fills them; matrix.cuh reads them on the device.
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
