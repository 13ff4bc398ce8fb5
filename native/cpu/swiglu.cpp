// swiglu: out = act(gate) * up elementwise, act = SiLU (x / (1 + e^-x)) or GELU (tanh
// approximation, as GGUF models with GELU gates were trained), or gpt-oss's clamped SwiGLU
// (swiglu_oai below, its own formula of gate and up); rows x columns split across
// threads. out may alias gate. Without `up` (null) it is the activation alone (BERT's FFN). The AVX2 twin (swiglu_avx2.cpp) takes each run of a row.
#include <algorithm>
#include <cmath>

#include "core/cpu_features.h"
#include "core/thread_pool.h"
#include "cpu/ops.h"
#include "cpu/swiglu_kernels.h"

namespace tessera::cpu {

namespace {

float gelu_tanh(float x) {
  constexpr float kSqrt2OverPi = 0.79788456080286535587989211986876f;
  return 0.5f * x * (1.0f + std::tanh(kSqrt2OverPi * x * (1.0f + 0.044715f * x * x)));
}

// gpt-oss's clamped SwiGLU in ggml's order of operations (its swiglu_oai, alpha 1.702,
// limit 7; scalar there too).
float swiglu_oai(float g, float u) {
  constexpr float kAlpha = 1.702f, kLimit = 7.0f;
  const float x = std::min(g, kLimit);
  const float y = std::clamp(u, -kLimit, kLimit);
  const float glu = x / (1.f + std::exp(kAlpha * (-x)));
  return glu * (y + 1.f);
}

}  // namespace

void swiglu(const float* gate, const float* up, float* out, int n_rows, int dim, int64_t ld_in, int64_t ld_out,
            GateActivation act, int ith, int nth) {
  // A flat split over rows x columns keeps every thread busy for a single decode row too;
  // each thread walks its range as runs within rows.
  int64_t b, e;
  split_range(int64_t(n_rows) * dim, ith, nth, &b, &e);
  swiglu_span(gate, up, out, dim, ld_in, ld_out, act, b, e);
}

void swiglu_span(const float* gate, const float* up, float* out, int dim, int64_t ld_in, int64_t ld_out, GateActivation act,
                 int64_t b, int64_t e) {
  const bool avx2 = active_cpu_isa() >= CpuIsa::Avx2;
  // llama.cpp's AVX2 SiLU takes each row's last dim % 8 columns through libm's expf; the
  // same columns go through the scalar formula here so the two engines round alike.
  const int64_t vector_end = !avx2 || act == GateActivation::SwigluOai ? 0 : act == GateActivation::Silu ? dim / 8 * 8 : dim;
  while (b < e) {
    const int64_t r = b / dim, i = b % dim, n = std::min<int64_t>(e - b, dim - i);
    const float* g = gate + r * ld_in + i;
    const float* u = up ? up + r * ld_in + i : nullptr;
    float* o = out + r * ld_out + i;
    const int64_t n_vector = std::clamp<int64_t>(vector_end - i, 0, n);
    if (n_vector > 0) avx2::swiglu_run(g, u, o, n_vector, act);
    if (act == GateActivation::SwigluOai) {
      for (int64_t k = 0; k < n; ++k) o[k] = swiglu_oai(g[k], u ? u[k] : 0.0f);
    } else {
      for (int64_t k = n_vector; k < n; ++k)
        o[k] = (act == GateActivation::Silu ? g[k] / (1.0f + std::exp(-g[k])) : gelu_tanh(g[k])) * (u ? u[k] : 1.0f);
    }
    b += n;
  }
}

}  // namespace tessera::cpu
