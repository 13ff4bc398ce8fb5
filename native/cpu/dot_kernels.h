// Row-by-token dot products of every weight type against its activation format, one
// implementation per ISA. matmul.cpp tiles rows and tokens and calls these; the scalar set
// is the reference the AVX2 set is checked against. Internal to native/cpu.
#pragma once
#include <cstdint>

#include "core/ggml_types.h"
#include "cpu/ops.h"

namespace tessera::cpu {

// out[t * ldy + r] for rows [r0, r1) and tokens [0, n_tokens): weight rows are `row_bytes`
// apart, activation rows `act_stride` bytes apart.
struct DotTile {
  const uint8_t* w;
  size_t row_bytes;
  const uint8_t* act;
  size_t act_stride;
  int64_t cols;
  int n_tokens;
  float* y;
  int64_t ldy;
};

// *_tile: layout 0 (GGUF rows). *_packed_tile: rows [r0, r1) inside the whole 8-row groups
// of a layout-1 (Q4_0) weight (cpu/packed_layout.h); r0 and r1 need not be group-aligned.
namespace scalar {
void matmul_tile(GgmlType type, const DotTile& t, int64_t r0, int64_t r1);
void matmul_packed_tile(const DotTile& t, int64_t r0, int64_t r1);
}

namespace avx2 {
// Returns false when the type has no AVX2 kernel (the caller falls back to scalar).
bool matmul_tile(GgmlType type, const DotTile& t, int64_t r0, int64_t r1);
void matmul_packed_tile(const DotTile& t, int64_t r0, int64_t r1);
}

}  // namespace tessera::cpu
