// copy_heads: strided copy of `width` fp32 values per (token, head),
// y[t * y_ld_token + h * y_ld_head + c] = x[t * x_ld_token + h * x_ld_head + c]. Multi-head
// latent attention uses it to regroup per-head slices: q_nope and the latent attention
// output token-major -> head-major for head_matmul, and q_pe into the wider MQA query rows.
// Source and destination must not overlap. Split over (token, head) pairs.
#include <algorithm>

#include "core/thread_pool.h"
#include "cpu/ops.h"

namespace tessera::cpu {

void copy_heads(const float* x, int64_t x_ld_token, int64_t x_ld_head, float* y, int64_t y_ld_token, int64_t y_ld_head,
                int n_tokens, int n_head, int width, int ith, int nth) {
  int64_t r0, r1;
  split_range(int64_t(n_tokens) * n_head, ith, nth, &r0, &r1);
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t t = r / n_head, h = r % n_head;
    const float* src = x + t * x_ld_token + h * x_ld_head;
    std::copy(src, src + width, y + t * y_ld_token + h * y_ld_head);
  }
}

}  // namespace tessera::cpu
