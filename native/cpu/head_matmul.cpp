// head_matmul: one weight matrix per attention head, W [n_head][rows][cols] stacked in one
// 3-D GGUF tensor (ne = {cols, rows, n_head}): y[t * ldy + h * ldh + r] = W[h][r] · x[h][t]
// for every head h, token t and row r. Activations are head-major ([n_head][n_tokens][cols],
// encoded per act_format_for(w.type)) so each head's tokens are one contiguous block for the
// matmul tile kernels (AVX2 or scalar, via matmul_rows). Multi-head latent attention uses it
// to absorb q_nope through wk_b and to expand the latent attention output through wv_b.
// Work units are (head, chunk of 16 rows), split contiguously over threads so each thread
// streams its share of the weights once for all tokens.
#include <algorithm>

#include "core/thread_pool.h"
#include "cpu/ops.h"

namespace tessera::cpu {

void head_matmul(const PackedWeight& w, int n_head, const void* act, int n_tokens, float* y, int64_t ldy, int64_t ldh,
                 int ith, int nth) {
  const int64_t rows = w.rows / n_head;
  const size_t act_head = act_row_bytes(act_format_for(w.type), w.cols) * size_t(n_tokens);
  constexpr int64_t kChunk = 16;
  const int64_t chunks = (rows + kChunk - 1) / kChunk;
  int64_t u0, u1;
  split_range(int64_t(n_head) * chunks, ith, nth, &u0, &u1);
  for (int64_t u = u0; u < u1; ++u) {
    const int64_t h = u / chunks, c = u % chunks;
    const PackedWeight head = weight_slice(w, h, rows);
    matmul_rows(head, static_cast<const uint8_t*>(act) + size_t(h) * act_head, n_tokens, y + h * ldh, ldy, c * kChunk,
                std::min(rows, (c + 1) * kChunk), DotOrder::Gemm);
  }
}

}  // namespace tessera::cpu
