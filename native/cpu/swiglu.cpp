// swiglu: out = act(gate) * up elementwise, act = SiLU (x / (1 + e^-x)) or GELU (tanh
// approximation, as GGUF models with GELU gates were trained); rows split across threads.
// out may alias gate.
#include <cmath>

#include "core/thread_pool.h"
#include "cpu/ops.h"

namespace tessera::cpu {

namespace {

float gelu_tanh(float x) {
  constexpr float kSqrt2OverPi = 0.79788456080286535587989211986876f;
  return 0.5f * x * (1.0f + std::tanh(kSqrt2OverPi * x * (1.0f + 0.044715f * x * x)));
}

}  // namespace

void swiglu(const float* gate, const float* up, float* out, int n_rows, int dim, int64_t ld_in, int64_t ld_out,
            GateActivation act, int ith, int nth) {
  // A flat split over rows x columns keeps every thread busy for a single decode row too.
  int64_t b, e;
  split_range(int64_t(n_rows) * dim, ith, nth, &b, &e);
  for (int64_t k = b; k < e; ++k) {
    const int64_t r = k / dim, i = k % dim;
    const float g = gate[r * ld_in + i];
    const float a = act == GateActivation::Silu ? g / (1.0f + std::exp(-g)) : gelu_tanh(g);
    out[r * ld_out + i] = a * up[r * ld_in + i];
  }
}

}  // namespace tessera::cpu
