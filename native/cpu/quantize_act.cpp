// quantize_act: encodes fp32 activation rows [n_tokens][cols] into the format a weight
// type's dot product consumes. Q8_0: blocks of 32 int8 with an fp16 scale amax/127.
// Q8_K: super-blocks of 256 int8 with an fp32 scale chosen so the largest-magnitude value
// maps to -127 (its sign flipped; the others clamp at 127), plus sums of each 16 for folding in K-quant minimums. F16/BF16: rounded
// copies. Work is split across threads by block (a decode row too); rounding is to nearest,
// ties to even, as in the AVX2 path of llama.cpp, so both engines feed identical integers to
// the dot products. The AVX2 twins (quantize_act_avx2.cpp) produce the same bytes.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/cpu_features.h"
#include "core/thread_pool.h"
#include "cpu/ops.h"
#include "cpu/quantize_act_kernels.h"

namespace tessera::cpu {

ActFormat act_format_for(GgmlType weight_type) {
  switch (weight_type) {
#define TESSERA_ACT_FORMAT(type, act, layout, layout512) \
  case GgmlType::type: return ActFormat::act;
    TESSERA_WEIGHT_TYPES(TESSERA_ACT_FORMAT)
#undef TESSERA_ACT_FORMAT
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
    case ActFormat::Q8_1: return size_t((cols + 31) / 32) * sizeof(BlockQ8_1);
  }
  return 0;
}

size_t act_bytes(ActFormat format, int64_t cols, int n_tokens) { return act_row_bytes(format, cols) * size_t(n_tokens); }

namespace {

void q8_0_blocks(const float* x, BlockQ8_0* y, int64_t n_blocks) {
  for (int64_t b = 0; b < n_blocks; ++b) {
    const float* xb = x + b * QK8_0;
    float amax = 0.f;
    for (int i = 0; i < QK8_0; ++i) amax = std::fmax(amax, std::fabs(xb[i]));
    const float id = amax != 0.f ? 127.f / amax : 0.f;
    y[b].d = fp32_to_fp16(amax / 127.f);
    for (int i = 0; i < QK8_0; ++i) y[b].qs[i] = static_cast<int8_t>(nearest_int(xb[i] * id));
  }
}

void q8_k_blocks(const float* x, BlockQ8_K* y, int64_t n_blocks) {
  for (int64_t b = 0; b < n_blocks; ++b) {
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

// Q8_0's values and d, and s = fp16(d * sum(q)) with d the fp32 amax / 127 (llama.cpp's
// quantize_row_q8_1). The AVX2 twin wraps its Q8_0 encoder the same way.
void q8_1_blocks(const float* x, BlockQ8_1* y, int64_t n_blocks) {
  for (int64_t b = 0; b < n_blocks; ++b) {
    BlockQ8_0 q;
    q8_0_blocks(x + b * 32, &q, 1);
    float amax = 0.f;
    for (int i = 0; i < 32; ++i) amax = std::fmax(amax, std::fabs(x[b * 32 + i]));
    int sum = 0;
    for (int i = 0; i < 32; ++i) sum += q.qs[i];
    y[b].d = q.d;
    y[b].s = fp32_to_fp16(amax / 127.f * float(sum));
    std::memcpy(y[b].qs, q.qs, 32);
  }
}

void f16_values(const float* x, uint16_t* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = fp32_to_fp16(x[i]);
}

void bf16_values(const float* x, uint16_t* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = fp32_to_bf16(x[i]);
}

// Encodes `count` units (blocks, or runs of kHalfUnit values for F16/BF16) starting at unit
// `first` of row `x`, whose encoding starts at `y`.
void encode_units(ActFormat format, const float* x, uint8_t* y, int64_t first, int64_t count, int64_t unit, bool avx2) {
  const float* xs = x + first * unit;
  switch (format) {
    case ActFormat::F32: break;
    case ActFormat::F16: {
      uint16_t* h = reinterpret_cast<uint16_t*>(y) + first * unit;
      avx2 ? avx2::f16_values(xs, h, count * unit) : f16_values(xs, h, count * unit);
      break;
    }
    case ActFormat::BF16: {
      uint16_t* h = reinterpret_cast<uint16_t*>(y) + first * unit;
      avx2 ? avx2::bf16_values(xs, h, count * unit) : bf16_values(xs, h, count * unit);
      break;
    }
    case ActFormat::Q8_0: {
      BlockQ8_0* blocks = reinterpret_cast<BlockQ8_0*>(y) + first;
      avx2 ? avx2::q8_0_blocks(xs, blocks, count) : q8_0_blocks(xs, blocks, count);
      break;
    }
    case ActFormat::Q8_K: {
      BlockQ8_K* blocks = reinterpret_cast<BlockQ8_K*>(y) + first;
      avx2 ? avx2::q8_k_blocks(xs, blocks, count) : q8_k_blocks(xs, blocks, count);
      break;
    }
    case ActFormat::Q8_1: {
      BlockQ8_1* blocks = reinterpret_cast<BlockQ8_1*>(y) + first;
      avx2 ? avx2::q8_1_blocks(xs, blocks, count) : q8_1_blocks(xs, blocks, count);
      break;
    }
  }
}

// Values per work unit: a block, or 64 halves (a whole row when that does not divide it).
int64_t act_unit(ActFormat format, int64_t cols) {
  constexpr int64_t kHalfUnit = 64;
  return format == ActFormat::Q8_0 || format == ActFormat::Q8_1 ? QK8_0 : format == ActFormat::Q8_K ? QK_K : (cols % kHalfUnit ? cols : kHalfUnit);
}

// Thread ith's (row, unit) pairs [u0, u1): work is split over them, so a single decode row is
// shared by all threads. quantize_act and quantize_act_split both take it from here, so a
// phase fused on the split (cpu_executor.cpp) encodes exactly what it wrote.
void unit_range(int n_tokens, int64_t per_row, int ith, int nth, int64_t* u0, int64_t* u1) {
  split_range(int64_t(n_tokens) * per_row, ith, nth, u0, u1);
}

}  // namespace

bool quantize_act_split(ActFormat format, int n_tokens, int64_t cols, int ith, int nth, int64_t* begin, int64_t* end) {
  const int64_t unit = act_unit(format, cols);
  if (format == ActFormat::F32 || cols % unit != 0) return false;
  unit_range(n_tokens, cols / unit, ith, nth, begin, end);
  *begin *= unit;
  *end *= unit;
  return true;
}

void quantize_act(ActFormat format, const float* x, int n_tokens, int64_t cols, void* out, int ith, int nth) {
  if (format == ActFormat::F32) return;
  const int64_t unit = act_unit(format, cols);
  const int64_t per_row = cols / unit;
  const size_t row_bytes = act_row_bytes(format, cols);
  const bool avx2 = active_cpu_isa() >= CpuIsa::Avx2;
  int64_t u0, u1;
  unit_range(n_tokens, per_row, ith, nth, &u0, &u1);
  while (u0 < u1) {
    const int64_t t = u0 / per_row, first = u0 % per_row;
    const int64_t count = std::min(u1 - u0, per_row - first);
    encode_units(format, x + t * cols, static_cast<uint8_t*>(out) + t * row_bytes, first, count, unit, avx2);
    u0 += count;
  }
}

}  // namespace tessera::cpu
