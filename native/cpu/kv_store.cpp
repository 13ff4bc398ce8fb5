// kv_store: writes the new tokens' keys and values into the fp16 cache of one layer in the
// KvLayer layout (ops.h): K in 8-position blocks [n_head_kv][padded / 8][head_dim][8], V
// transposed [n_head_kv][head_dim_v][padded]; with v_in_k (MLA) only K, whose prefix is the
// value. Split over (token, kv head) rows.
#include "core/thread_pool.h"
#include "cpu/ops.h"

namespace tessera::cpu {

void kv_store(const KvLayer& kv, const float* k, int64_t ldk, const float* v, int64_t ldv, int n_tokens, int pos0,
              int n_head_kv, int head_dim, int head_dim_v, int ith, int nth) {
  int64_t r0, r1;
  split_range(int64_t(n_tokens) * n_head_kv, ith, nth, &r0, &r1);
  const int64_t padded = kv_padded(kv.capacity);
  for (int64_t r = r0; r < r1; ++r) {
    const int t = int(r / n_head_kv), h = int(r % n_head_kv), j = pos0 + t;
    const float* ks = k + t * ldk + int64_t(h) * head_dim;
    uint16_t* kd = kv.k + kv_key_index(kv.capacity, head_dim, h, j, 0);
    for (int i = 0; i < head_dim; ++i) kd[i * 8] = fp32_to_fp16(ks[i]);
    if (kv.v_in_k) continue;
    const float* vs = v + t * ldv + int64_t(h) * head_dim_v;
    uint16_t* vd = kv.v + int64_t(h) * head_dim_v * padded + j;
    for (int i = 0; i < head_dim_v; ++i) vd[i * padded] = fp32_to_fp16(vs[i]);
  }
}

}  // namespace tessera::cpu
