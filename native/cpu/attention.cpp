// attention: causal softmax(q·K^T * scale) · V per (token, query head) over the fp16 paged
// KV cache (each row reads its own sequence's blocks), with GQA/MQA (query head h reads kv
// head h / (n_head / n_head_kv)), an optional sliding window and logit soft-capping. With kv.v_in_k (multi-head latent attention) the
// values are the first head_dim_v entries of the keys. Rounding follows llama.cpp's
// standard attention path so logits agree with it to fp32 noise: q is rounded to fp16 for
// the dot products with the fp16 keys, and the normalized probabilities to fp16 for the
// product with V; scores, softmax and the V accumulation are fp32 (the softmax sum fp64).
// Work is dealt over (token, head) pairs round-robin; each thread uses its own scratch slice
// (attention_scratch; this path uses one row of scores, one q and one accumulator row).
#include <algorithm>
#include <cmath>

#include "core/cpu_features.h"
#include "cpu/ops.h"

namespace tessera::cpu {

size_t attention_scratch_floats(int max_context, int head_dim, int head_dim_v) {
  // The quantized kernel uses a second head_dim_v row for a dequantized value.
  return kAttentionHeads * (size_t(kv_padded(max_context)) + size_t(head_dim)) + 2 * size_t(head_dim_v);
}

AttentionScratch attention_scratch(const AttentionArgs& a, int ith) {
  float* base = a.scratch + size_t(ith) * attention_scratch_floats(a.max_context, a.head_dim, a.head_dim_v);
  const int64_t stride = kv_padded(a.max_context);
  float* q16 = base + kAttentionHeads * stride;
  return {base, stride, q16, q16 + kAttentionHeads * a.head_dim};
}

namespace avx2 {
void attention(const AttentionArgs& a, int ith, int nth);
}

void attention(const AttentionArgs& a, int ith, int nth) {
  if (kv_type_quantized(a.kv.type)) return attention_quantized(a, ith, nth);
  if (active_cpu_isa() >= CpuIsa::Avx2) return avx2::attention(a, ith, nth);
  const int group = a.n_head / a.n_head_kv;
  const AttentionScratch scratch = attention_scratch(a, ith);
  float* scores = scratch.scores;
  float* q16 = scratch.q16;
  float* acc = scratch.acc;
  // Pairs dealt round-robin: a causal row's work grows with its position, so contiguous
  // halves would leave the thread with the early tokens idle for most of a prefill.
  for (int64_t r = ith; r < int64_t(a.n_tokens) * a.n_head; r += nth) {
    const int t = int(r / a.n_head), h = int(r % a.n_head), g = h / group;
    const int pos = a.last ? a.last[t] : a.rows.pos[t];
    const int32_t* table = a.rows.table[t];
    const int lo = a.sliding_window > 0 ? std::max(0, pos - a.sliding_window + 1) : 0;
    const float* q = a.q + t * a.ldq + int64_t(h) * a.head_dim;
    for (int i = 0; i < a.head_dim; ++i) q16[i] = fp16_to_fp32(fp32_to_fp16(q[i]));
    const int hd = a.head_dim;
    auto key = [&](int j, int i) {
      const uint16_t* tile = reinterpret_cast<const uint16_t*>(a.kv.key_tile(table[j / kKvBlock], g));
      return fp16_to_fp32(tile[kv_key_index(hd, j % kKvBlock, i)]);
    };
    // Value (j, i): the key's prefix with v_in_k, else in the transposed value tile.
    auto value = [&](int j, int i) {
      if (a.kv.v_in_k) return key(j, i);
      const uint16_t* tile = reinterpret_cast<const uint16_t*>(a.kv.value_tile(table[j / kKvBlock], g));
      return fp16_to_fp32(tile[int64_t(i) * kKvBlock + j % kKvBlock]);
    };

    float max = -INFINITY;
    for (int j = lo; j <= pos; ++j) {
      float s = 0.f;
      for (int i = 0; i < hd; ++i) s += q16[i] * key(j, i);
      s *= a.scale;
      if (a.softcap != 0.f) s = a.softcap * std::tanh(s * (1.0f / a.softcap));
      scores[j] = s;
      max = std::max(max, s);
    }
    if (a.sinks) max = std::max(max, a.sinks[h]);
    double sum = 0.0;
    for (int j = lo; j <= pos; ++j) {
      scores[j] = std::exp(scores[j] - max);
      sum += scores[j];
    }
    if (a.sinks) sum += double(std::exp(a.sinks[h] - max));
    const float inv = float(1.0 / sum);
    std::fill(acc, acc + a.head_dim_v, 0.f);
    float* probs = a.probs ? a.probs + (t * int64_t(a.n_head) + h) * a.probs_ld : nullptr;
    if (probs) std::fill(probs, probs + lo, 0.f);
    for (int j = lo; j <= pos; ++j) {
      const float p = fp16_to_fp32(fp32_to_fp16(scores[j] * inv));
      if (probs) probs[j] = p;
      for (int i = 0; i < a.head_dim_v; ++i) acc[i] += p * value(j, i);
    }
    float* out = a.out + t * a.ldo + int64_t(h) * a.head_dim_v;
    std::copy(acc, acc + a.head_dim_v, out);
  }
}

}  // namespace tessera::cpu
