// ssm_conv: Mamba's causal depthwise conv (llama.cpp's ggml_ssm_conv plus its bias add) over
// one sequence's consecutive rows, with the sequence's conv window carried in `state`.
// Scalar: the conv is a few taps per channel, a small share of a Mamba-2 block's time (its
// projections dominate), and the taps are summed in ggml's order so both engines round alike.
#include <algorithm>

#include "cpu/ops.h"

namespace tessera::cpu {

void ssm_conv(float* state, const float* x, int64_t ldx, int n_rows, const float* w, const float* bias, int64_t channels,
              int d_conv, float* y, int64_t ldy, int64_t c0, int64_t c1) {
  const int taps = std::clamp(d_conv, 1, kMaxSsmConv);  // callers check d_conv; this keeps win in bounds
  float win[kMaxSsmConv];
  for (int64_t c = c0; c < c1; ++c) {
    for (int k = 0; k + 1 < taps; ++k) win[k] = state[k * channels + c];
    const float* wc = w + c * taps;
    for (int t = 0; t < n_rows; ++t) {
      win[taps - 1] = x[t * ldx + c];
      float sum = 0.0f;
      for (int k = 0; k < taps; ++k) sum += win[k] * wc[k];
      y[t * ldy + c] = bias ? sum + bias[c] : sum;
      for (int k = 0; k + 1 < taps; ++k) win[k] = win[k + 1];
    }
    for (int k = 0; k + 1 < taps; ++k) state[k * channels + c] = win[k];
  }
}

}  // namespace tessera::cpu
