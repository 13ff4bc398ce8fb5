// ssm_scan: Mamba-2's selective scan (llama.cpp's ggml_ssm_scan with a scalar decay per
// head, then its + D * x) over one sequence's consecutive rows, the state updated in place.
// Scalar, summed over d_state in order: ggml sums in SIMD lanes, so the two differ by fp32
// rounding only (the conformance test's budget covers it).
#include <cmath>

#include "cpu/ops.h"

namespace tessera::cpu {

namespace {

// ggml_compute_softplus_f32: log(1 + e^x), x itself above 20 (where they agree in fp32).
float softplus(float v) { return v > 20.0f ? v : std::log(1.0f + std::exp(v)); }

}  // namespace

void ssm_scan(const SsmScanArgs& a, int h0, int h1) {
  const int hd = a.head_dim, ds = a.d_state;
  const int heads_per_group = a.n_head / a.n_group;
  for (int t = 0; t < a.n_rows; ++t) {
    const float* x = a.x + t * a.ld_x;
    const float* B = a.B + t * a.ld_x;
    const float* C = a.C + t * a.ld_x;
    const float* dt = a.dt + t * a.ld_dt;
    float* y = a.y + t * a.ld_y;
    for (int h = h0; h < h1; ++h) {
      const float sp = softplus(dt[h] + a.dt_bias[h]);
      const float dA = std::exp(sp * a.A[h]);
      const int g = h / heads_per_group;
      const float* Bg = B + int64_t(g) * ds;
      const float* Cg = C + int64_t(g) * ds;
      for (int i = 0; i < hd; ++i) {
        const int64_t ii = int64_t(h) * hd + i;
        float* s = a.state + ii * ds;
        const float x_dt = x[ii] * sp;
        float sum = 0.0f;
        for (int k = 0; k < ds; ++k) {
          const float v = s[k] * dA + Bg[k] * x_dt;
          sum += v * Cg[k];
          s[k] = v;
        }
        const float skip = x[ii] * a.D[h];  // ggml_mul, then ggml_add: two roundings
        y[ii] = sum + skip;
      }
    }
  }
}

}  // namespace tessera::cpu
