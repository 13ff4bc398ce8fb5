// hadamard: rotates rows by an orthonormal Walsh-Hadamard matrix of size n, chunk by chunk
// (each run of n values of a row separately), in place. A quantized KV cache stores keys and
// values rotated this way, as llama.cpp does: the rotation spreads a vector's outliers over
// its whole chunk, so a 32-value quantization block loses less, and since H is orthonormal
// and symmetric (H·H = I) scores are unchanged (Hq·Hk = q·k) and the attention output is
// rotated back by the same H. Computed as llama.cpp's fast transform computes it, so the
// bits agree: every value scaled by 1/sqrt(n) first, then the butterflies (u + v, u - v)
// over strides 1, 2, 4, ... Split over rows.
#include <cmath>

#include "core/thread_pool.h"
#include "cpu/ops.h"

namespace tessera::cpu {

void hadamard(float* x, int n_rows, int64_t ldx, int64_t width, int n, int ith, int nth) {
  int64_t r0, r1;
  split_range(n_rows, ith, nth, &r0, &r1);
  const float scale = 1.0f / std::sqrt(float(n));
  for (int64_t r = r0; r < r1; ++r) {
    for (int64_t c = 0; c + n <= width; c += n) {
      float* v = x + r * ldx + c;
      for (int j = 0; j < n; ++j) v[j] *= scale;
      for (int len = 1; len < n; len <<= 1)
        for (int i = 0; i < n; i += 2 * len)
          for (int j = 0; j < len; ++j) {
            const float u = v[i + j], w = v[i + len + j];
            v[i + j] = u + w;
            v[i + len + j] = u - w;
          }
    }
  }
}

int hadamard_size(int width) {
  // Width 0 (a model with no attention block, mamba2, whose head size is 0) has no rotation:
  // every n divides it, so the loop below would double n until it overflowed to 0 and then
  // divide by it (SIGFPE).
  if (width <= 0 || width % 64) return 0;
  int n = 64;
  while (n <= width / 2 && width % (2 * n) == 0) n *= 2;
  return n;
}

}  // namespace tessera::cpu
