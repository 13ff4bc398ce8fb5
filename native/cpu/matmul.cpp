// matmul: y[t][r] = W[r] · x[t] for every weight row r and token t, W in its GGUF type,
// x encoded per act_format_for. Threads split the rows in chunks (so each thread streams
// its own slice of the weights once for all tokens); the per-ISA tile kernels live in
// matmul_scalar.cpp and matmul_avx2.cpp.
#include <algorithm>

#include "core/cpu_features.h"
#include "core/thread_pool.h"
#include "cpu/dot_kernels.h"
#include "cpu/ops.h"
#include "cpu/packed_layout.h"

namespace tessera::cpu {

namespace {

DotTile tile_for(const PackedWeight& w, const void* act, int n_tokens, float* y, int64_t ldy) {
  return DotTile{w.data, ggml_row_bytes(w.type, w.cols), static_cast<const uint8_t*>(act),
                 act_row_bytes(act_format_for(w.type), w.cols), w.cols, n_tokens, y, ldy};
}

}  // namespace

void matmul_rows(const PackedWeight& w, const void* act, int n_tokens, float* y, int64_t ldy, int64_t row_begin,
                 int64_t row_end) {
  if (row_begin >= row_end) return;
  const DotTile t = tile_for(w, act, n_tokens, y, ldy);
  const bool avx2 = active_cpu_isa() == CpuIsa::Avx2;
  if (w.layout == 1) {
    // Whole 8-row groups are interleaved; rows past the last group keep layout 0.
    const int64_t grouped_end = std::min(row_end, w.rows / packed::kRows * packed::kRows);
    if (row_begin < grouped_end) {
      if (avx2) avx2::matmul_packed_tile(t, row_begin, grouped_end);
      else scalar::matmul_packed_tile(t, row_begin, grouped_end);
      row_begin = grouped_end;
    }
    if (row_begin >= row_end) return;
  }
  if (avx2 && avx2::matmul_tile(w.type, t, row_begin, row_end)) return;
  scalar::matmul_tile(w.type, t, row_begin, row_end);
}

void matmul(const PackedWeight& w, const void* act, int n_tokens, float* y, int64_t ldy, int ith, int nth) {
  // Chunks of 8 rows keep repacked row groups whole on one thread.
  constexpr int64_t kRowChunk = 8;
  const int64_t chunks = (w.rows + kRowChunk - 1) / kRowChunk;
  int64_t c0, c1;
  split_range(chunks, ith, nth, &c0, &c1);
  matmul_rows(w, act, n_tokens, y, ldy, c0 * kRowChunk, std::min(w.rows, c1 * kRowChunk));
}

}  // namespace tessera::cpu
