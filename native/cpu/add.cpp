// add: residual x += y over a flat range, and x[t] += bias broadcast over rows; both split
// across threads.
#include "core/thread_pool.h"
#include "cpu/ops.h"

namespace tessera::cpu {

void add(float* x, const float* y, int64_t n, int ith, int nth) {
  int64_t b, e;
  split_range(n, ith, nth, &b, &e);
  for (int64_t i = b; i < e; ++i) x[i] += y[i];
}

void add_bias(float* x, const float* bias, int n_rows, int dim, int64_t ldx, int ith, int nth) {
  int64_t r0, r1;
  split_range(n_rows, ith, nth, &r0, &r1);
  for (int64_t r = r0; r < r1; ++r)
    for (int i = 0; i < dim; ++i) x[r * ldx + i] += bias[i];
}

}  // namespace tessera::cpu
