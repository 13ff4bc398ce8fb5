// get_rows: embedding lookup, out[i] = dequantized row tokens[i] of table [n_vocab][n_embd].
// Tokens are split across threads; ids were range-checked by the executor.
#include "core/thread_pool.h"
#include "cpu/ops.h"

namespace tessera::cpu {

void get_rows(const TensorRef& table, const int32_t* tokens, int n_tokens, float* out, int ith, int nth) {
  const int64_t cols = table.ne[0];
  const size_t row_bytes = ggml_row_bytes(table.type, cols);
  int64_t t0, t1;
  split_range(n_tokens, ith, nth, &t0, &t1);
  for (int64_t t = t0; t < t1; ++t) dequantize_row(table.type, table.data + size_t(tokens[t]) * row_bytes, out + t * cols, cols);
}

}  // namespace tessera::cpu
