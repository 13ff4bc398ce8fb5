// matmul: y[t][r] = W[r] · x[t] for every weight row r and token t, W in its GGUF type,
// x encoded per act_format_for. Threads split the rows in chunks (so each thread streams
// its own slice of the weights once for all tokens); the per-ISA tile kernels live in
// matmul_scalar.cpp and matmul_avx2.cpp.
#include "core/cpu_features.h"
#include "core/thread_pool.h"
#include "cpu/dot_kernels.h"
#include "cpu/ops.h"

namespace tessera::cpu {

namespace {

DotTile tile_for(const PackedWeight& w, const void* act, int n_tokens, float* y, int64_t ldy) {
  return DotTile{w.data, w.packed, ggml_row_bytes(w.type, w.cols), static_cast<const uint8_t*>(act),
                 act_row_bytes(act_format_for(w.type), w.cols), w.cols, n_tokens, y, ldy};
}

}  // namespace

void matmul_rows(const PackedWeight& w, const void* act, int n_tokens, float* y, int64_t ldy, int64_t row_begin,
                 int64_t row_end) {
  if (row_begin >= row_end) return;
  const DotTile t = tile_for(w, act, n_tokens, y, ldy);
  if (active_cpu_isa() == CpuIsa::Avx2 && avx2::matmul_tile(w.type, w.layout, t, row_begin, row_end)) return;
  scalar::matmul_tile(w.type, t, row_begin, row_end);
}

PackedWeight weight_slice(const PackedWeight& w, int64_t index, int64_t rows) {
  const size_t bytes = size_t(index) * rows * ggml_row_bytes(w.type, w.cols);
  PackedWeight view;
  view.type = w.type;
  view.rows = rows;
  view.cols = w.cols;
  view.data = w.data + bytes;
  if (w.packed && rows % 8 == 0) {
    // The slice's rows are whole 8-row groups of the stacked repacked matrix (same bytes per row).
    view.layout = w.layout;
    view.packed = w.packed + bytes;
  }
  return view;
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
