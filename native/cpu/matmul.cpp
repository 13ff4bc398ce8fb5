// matmul: y[t][r] = W[r] · x[t] for every weight row r and token t, W in its GGUF type,
// x encoded per act_format_for. Threads claim ranges of rows (so each thread streams its
// own slices of the weights once for all tokens); the per-ISA tile kernels live in
// matmul_scalar.cpp, matmul_avx2.cpp and the *_avx512vnni.cpp files (Q8_0, repacked Q4_0), each level
// falling back to the one below for the types it lacks.
#include <algorithm>

#include "core/cpu_features.h"
#include "cpu/dot_kernels.h"
#include "cpu/ops.h"

namespace tessera::cpu {

namespace {

// llama.cpp's tinyBLAS (its float-weight batch kernel) takes only whole groups of 4 rows
// and 8 columns; it multiplies any other shape with its one-row kernels.
DotOrder order_for(const PackedWeight& w, DotOrder order) {
  return is_float_type(w.type) && (w.rows % 4 != 0 || w.cols % 8 != 0) ? DotOrder::Gemv : order;
}

DotTile tile_for(const PackedWeight& w, const void* act, int n_tokens, float* y, int64_t ldy, DotOrder order,
                 uint64_t act_key) {
  return DotTile{w.data, w.packed, ggml_row_bytes(w.type, w.cols), static_cast<const uint8_t*>(act),
                 act_row_bytes(act_format_for(w.type), w.cols), w.cols, n_tokens, y, ldy, order_for(w, order), act_key};
}

}  // namespace

void matmul_rows(const PackedWeight& w, const void* act, int n_tokens, float* y, int64_t ldy, int64_t row_begin,
                 int64_t row_end, DotOrder order, uint64_t act_key) {
  if (row_begin >= row_end) return;
  const DotTile t = tile_for(w, act, n_tokens, y, ldy, order, act_key);
  const CpuIsa isa = active_cpu_isa();
#ifdef TESSERA_HAVE_AVX512VNNI
  if (isa >= CpuIsa::Avx512Vnni && avx512vnni::matmul_tile(w.type, w.layout, t, row_begin, row_end)) return;
#endif
  if (isa >= CpuIsa::Avx2 && avx2::matmul_tile(w.type, w.layout, t, row_begin, row_end)) return;
  scalar::matmul_tile(w.type, t, row_begin, row_end);
}

PackedWeight weight_slice(const PackedWeight& w, int64_t index, int64_t rows) {
  const size_t bytes = size_t(index) * rows * ggml_row_bytes(w.type, w.cols);
  PackedWeight view;
  view.type = w.type;
  view.rows = rows;
  view.cols = w.cols;
  view.data = w.data + bytes;
  if (w.packed && rows % layout_group_rows(w.layout) == 0) {
    // The slice's rows are whole groups of the stacked repacked matrix (same bytes per row).
    view.layout = w.layout;
    view.packed = w.packed + bytes;
  }
  return view;
}

void matmul_shared(const MatmulJob* jobs, int n_jobs, int n_tokens, ThreadPool::WorkCursor* cursors, int ith, int nth) {
  // Work units are 16-row chunks (whole repacked groups of every layout), numbered job after job.
  constexpr int64_t kUnitRows = 16;
  int64_t first_unit[kMaxMatmulJobs + 1];
  first_unit[0] = 0;
  for (int j = 0; j < n_jobs; ++j) first_unit[j + 1] = first_unit[j] + (jobs[j].w->rows + kUnitRows - 1) / kUnitRows;
  const int64_t total = first_unit[n_jobs];
  // One key per call on this thread: its claims read activations that stay unchanged.
  thread_local uint64_t calls = 0;
  const uint64_t act_key = ++calls;
  auto run_units = [&](int64_t begin, int64_t end) {
    for (int j = 0; j < n_jobs; ++j) {
      const int64_t u0 = std::max(begin, first_unit[j]), u1 = std::min(end, first_unit[j + 1]);
      if (u0 >= u1) continue;
      const MatmulJob& job = jobs[j];
      const int64_t r0 = (u0 - first_unit[j]) * kUnitRows, r1 = std::min(job.w->rows, (u1 - first_unit[j]) * kUnitRows);
      matmul_rows(*job.w, job.act, n_tokens, job.y, job.ldy, r0, r1, job.order, act_key);
      if (job.residual)
        for (int t = 0; t < n_tokens; ++t) add(job.residual + t * job.ldy + r0, job.y + t * job.ldy + r0, r1 - r0, 0, 1);
    }
  };
  // Part p's cursor holds the units taken from its front (low 32 bits) and from its back
  // (high 32 bits). Each claim takes half of what is left of the part, so a thread the OS
  // stops holds at most half of its part's rest. Why contiguous parts: a claim that jumps
  // elsewhere in the weights restarts the thread's stream (its first columns wait on DRAM,
  // its prefetches past the end are wasted), and claims of a third of what was left of the
  // whole product (one shared cursor before) jumped ~10-17 times per thread and product.
  auto claim_size = [](int64_t left) { return std::max<int64_t>(1, left / 2); };
  for (int k = 0; k < nth; ++k) {
    const int p = (ith + k) % nth;
    int64_t part_begin, part_end;
    split_range(total, p, nth, &part_begin, &part_end);
    std::atomic<int64_t>& cursor = cursors[p].value;
    int64_t s = cursor.load(std::memory_order_relaxed);
    for (;;) {
      const int64_t front = s & 0xFFFFFFFF, back = s >> 32, left = part_end - part_begin - front - back;
      if (left <= 0) break;
      const int64_t size = claim_size(left);
      // The owner advances the front; the others take from the back.
      const int64_t next = k == 0 ? s + size : s + (size << 32);
      if (!cursor.compare_exchange_weak(s, next, std::memory_order_relaxed)) continue;
      if (k == 0)
        run_units(part_begin + front, part_begin + front + size);
      else
        run_units(part_end - back - size, part_end - back);
      s = cursor.load(std::memory_order_relaxed);
    }
  }
}

}  // namespace tessera::cpu
