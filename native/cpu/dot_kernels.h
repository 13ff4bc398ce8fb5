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
  const uint8_t* packed;  // repacked rows of a Q4_0x8 / Q4_Kx8 / Q8_0x16 layout (row r in group r / group rows), or null
  size_t row_bytes;
  const uint8_t* act;
  size_t act_stride;
  int64_t cols;
  int n_tokens;
  float* y;
  int64_t ldy;
  DotOrder order;  // the fp32 summation order, where the type's kernels have two (Q4_K)
  // Nonzero: this thread's earlier tiles with the same key and act read the same, unchanged
  // activations (one matmul_shared call), so a kernel may reuse what it derived from them.
  uint64_t act_key;
};

// What a kernel's per-thread buffer derived from activations was built from: reuse(t) is
// true when t's activations are those of the last build under the same nonzero act_key,
// else it records t's as the new ones.
class ActMemo {
 public:
  bool reuse(const DotTile& t) {
    if (t.act_key != 0 && t.act_key == key_ && t.act == act_ && t.n_tokens == n_tokens_ && t.cols == cols_) return true;
    key_ = t.act_key;
    act_ = t.act;
    n_tokens_ = t.n_tokens;
    cols_ = t.cols;
    return false;
  }

 private:
  uint64_t key_ = 0;
  const uint8_t* act_ = nullptr;
  int n_tokens_ = 0;
  int64_t cols_ = 0;
};

// Rows per chunk of a multi-token product: ~128 KiB of weights (at most 64 rows), each chunk
// visited by every token tile while it is still in L2, so the weights come from DRAM once
// instead of once per tile. Shared by the AVX2 and AVX-512 VNNI tiles.
inline int64_t l2_chunk_rows(size_t row_bytes) {
  const int64_t rows = (int64_t(128) << 10) / int64_t(row_bytes);
  return rows < 1 ? 1 : rows > 64 ? 64 : rows;
}

namespace scalar {
void matmul_tile(GgmlType type, const DotTile& t, int64_t r0, int64_t r1);
}

namespace avx2 {
// Returns false when the type has no AVX2 kernel (the caller falls back to scalar).
bool matmul_tile(GgmlType type, WeightLayout layout, const DotTile& t, int64_t r0, int64_t r1);
// Whole 8-row groups [g0, g1) of a WeightLayout::Q4_0x8 weight (matmul_q4_0x8_avx2.cpp):
// Q4_0, or with `levels` the 16 int8 values the 4-bit indices stand for (IQ4_NL, whose
// blocks have Q4_0's bytes).
void matmul_q4_0x8_groups(const DotTile& t, int64_t g0, int64_t g1, const int8_t* levels = nullptr);
// Whole 8-row groups [g0, g1) of a WeightLayout::Q4_Kx8 weight (matmul_q4_kx8_avx2.cpp).
void matmul_q4_kx8_groups(const DotTile& t, int64_t g0, int64_t g1);
}

namespace avx512vnni {
// Returns false when the type has no AVX-512 VNNI kernel (the caller falls back to AVX2).
bool matmul_tile(GgmlType type, WeightLayout layout, const DotTile& t, int64_t r0, int64_t r1);
// Rows [r0, r1) of a WeightLayout::Q8_0x16 weight, any number of tokens
// (matmul_q8_0x16_avx512vnni.cpp).
void matmul_q8_0x16(const DotTile& t, int64_t r0, int64_t r1);
// Rows [r0, r1) of a WeightLayout::Q4_Kx16 weight, any number of tokens, in t.order
// (matmul_q4_kx16_avx512vnni.cpp).
void matmul_q4_kx16(const DotTile& t, int64_t r0, int64_t r1);
// Rows [r0, r1) of a WeightLayout::Q5_Kx16 weight (matmul_q5_kx16_avx512vnni.cpp).
void matmul_q5_kx16(const DotTile& t, int64_t r0, int64_t r1);
// Rows [r0, r1) of a WeightLayout::Q3_Kx16 weight (matmul_q3_kx16_avx512vnni.cpp).
void matmul_q3_kx16(const DotTile& t, int64_t r0, int64_t r1);
// Rows [r0, r1) of a WeightLayout::Q6_Kx16 weight (matmul_q6_kx16_avx512vnni.cpp).
void matmul_q6_kx16(const DotTile& t, int64_t r0, int64_t r1);
// q8_0x16::pack_group with gathers (the layout is made only where this ISA is active).
void pack_q8_0x16_group(const uint8_t* rows, size_t row_bytes, int64_t nb, uint8_t* out);
}

}  // namespace tessera::cpu
