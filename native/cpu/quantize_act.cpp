// quantize_act: encodes fp32 activation rows [n_tokens][cols] into the format a weight
// type's dot product consumes. Q8_0: blocks of 32 int8 with an fp16 scale amax/127.
// Q8_K: super-blocks of 256 int8 with an fp32 scale chosen so the largest-magnitude value
// maps to -127 (its sign flipped; the others clamp at 127), plus sums of each 16 for folding in K-quant minimums. F16/BF16: rounded
// copies. Rows are split across threads; rounding is to nearest, ties to even, as in the
// AVX2 path of llama.cpp, so both engines feed identical integers to the dot products.
#include <cmath>

#include "core/thread_pool.h"
#include "cpu/ops.h"

namespace tessera::cpu {

ActFormat act_format_for(GgmlType weight_type) {
  switch (weight_type) {
    case GgmlType::F16: return ActFormat::F16;
    case GgmlType::BF16: return ActFormat::BF16;
    case GgmlType::Q4_0:
    case GgmlType::Q8_0: return ActFormat::Q8_0;
    case GgmlType::Q4_K:
    case GgmlType::Q6_K: return ActFormat::Q8_K;
    default: return ActFormat::F32;
  }
}

size_t act_row_bytes(ActFormat format, int64_t cols) {
  switch (format) {
    case ActFormat::F32: return size_t(cols) * 4;
    case ActFormat::F16:
    case ActFormat::BF16: return size_t(cols) * 2;
    case ActFormat::Q8_0: return size_t((cols + QK8_0 - 1) / QK8_0) * sizeof(BlockQ8_0);
    case ActFormat::Q8_K: return size_t((cols + QK_K - 1) / QK_K) * sizeof(BlockQ8_K);
  }
  return 0;
}

size_t act_bytes(ActFormat format, int64_t cols, int n_tokens) { return act_row_bytes(format, cols) * size_t(n_tokens); }

static void quantize_row_q8_0_scalar(const float* x, BlockQ8_0* y, int64_t cols) {
  for (int64_t b = 0; b < cols / QK8_0; ++b) {
    const float* xb = x + b * QK8_0;
    float amax = 0.f;
    for (int i = 0; i < QK8_0; ++i) amax = std::fmax(amax, std::fabs(xb[i]));
    const float id = amax != 0.f ? 127.f / amax : 0.f;
    y[b].d = fp32_to_fp16(amax / 127.f);
    for (int i = 0; i < QK8_0; ++i) y[b].qs[i] = static_cast<int8_t>(nearest_int(xb[i] * id));
  }
}

static void quantize_row_q8_k_scalar(const float* x, BlockQ8_K* y, int64_t cols) {
  for (int64_t b = 0; b < cols / QK_K; ++b) {
    const float* xb = x + b * QK_K;
    float amax = 0.f, max = 0.f;
    for (int i = 0; i < QK_K; ++i) {
      const float a = std::fabs(xb[i]);
      if (a > amax) {
        amax = a;
        max = xb[i];
      }
    }
    BlockQ8_K& out = y[b];
    if (amax == 0.f) {
      out = BlockQ8_K{};
      continue;
    }
    const float iscale = -127.f / max;
    for (int i = 0; i < QK_K; ++i) {
      const int v = nearest_int(iscale * xb[i]);
      out.qs[i] = static_cast<int8_t>(v > 127 ? 127 : v);
    }
    for (int g = 0; g < QK_K / 16; ++g) {
      int sum = 0;
      for (int i = 0; i < 16; ++i) sum += out.qs[g * 16 + i];
      out.bsums[g] = static_cast<int16_t>(sum);
    }
    out.d = 1.f / iscale;
  }
}

void quantize_act(ActFormat format, const float* x, int n_tokens, int64_t cols, void* out, int ith, int nth) {
  int64_t t0, t1;
  split_range(n_tokens, ith, nth, &t0, &t1);
  const size_t row_bytes = act_row_bytes(format, cols);
  for (int64_t t = t0; t < t1; ++t) {
    const float* xr = x + t * cols;
    uint8_t* yr = static_cast<uint8_t*>(out) + t * row_bytes;
    switch (format) {
      case ActFormat::F32: break;
      case ActFormat::F16: {
        uint16_t* h = reinterpret_cast<uint16_t*>(yr);
        for (int64_t i = 0; i < cols; ++i) h[i] = fp32_to_fp16(xr[i]);
        break;
      }
      case ActFormat::BF16: {
        uint16_t* h = reinterpret_cast<uint16_t*>(yr);
        for (int64_t i = 0; i < cols; ++i) h[i] = fp32_to_bf16(xr[i]);
        break;
      }
      case ActFormat::Q8_0:
        quantize_row_q8_0_scalar(xr, reinterpret_cast<BlockQ8_0*>(yr), cols);
        break;
      case ActFormat::Q8_K: quantize_row_q8_k_scalar(xr, reinterpret_cast<BlockQ8_K*>(yr), cols); break;
    }
  }
}

}  // namespace tessera::cpu
