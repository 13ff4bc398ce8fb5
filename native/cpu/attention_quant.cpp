// attention_quantized: causal attention over a Q8_0 / Q4_0 paged cache (kvCacheType), as
// llama.cpp computes with a quantized cache: q is encoded as Q8_0 and each score is the
// cache type's dot product with a key row (the same kernel a Q8_0 / Q4_0 weight row uses:
// one key tile is a [kKvBlock][head_dim] matrix of that type), scaled and soft-capped; the
// softmax is fp32 (its sum fp64, as the fp16 path), and the values are dequantized rows
// summed in fp32 with their probabilities. Work is dealt over (token, head) pairs
// round-robin, as the scalar fp16 kernel does; each thread uses its scratch slice.
#include <algorithm>
#include <cmath>

#include "cpu/ops.h"

namespace tessera::cpu {

void attention_quantized(const AttentionArgs& a, int ith, int nth) {
  const int group = a.n_head / a.n_head_kv, hd = a.head_dim, hdv = a.head_dim_v;
  const GgmlType type = a.kv.type == KvType::Q8_0 ? GgmlType::Q8_0 : GgmlType::Q4_0;
  const uint64_t k_row = kv_row_bytes(a.kv.type, hd), v_row = kv_row_bytes(a.kv.type, hdv);
  const AttentionScratch scratch = attention_scratch(a, ith);
  float* scores = scratch.scores;
  uint8_t* q8 = reinterpret_cast<uint8_t*>(scratch.q16);  // [act_row_bytes(Q8_0, hd)] fits head_dim floats
  float* acc = scratch.acc;
  float* row = acc + hdv;  // one dequantized value row
  for (int64_t r = ith; r < int64_t(a.n_tokens) * a.n_head; r += nth) {
    const int t = int(r / a.n_head), h = int(r % a.n_head), g = h / group;
    const int pos = a.last ? a.last[t] : a.rows.pos[t];
    const int32_t* table = a.rows.table[t];
    const int lo = a.sliding_window > 0 ? std::max(0, pos - a.sliding_window + 1) : 0;
    quantize_act(ActFormat::Q8_0, a.q + t * a.ldq + int64_t(h) * hd, 1, hd, q8, 0, 1);

    // Scores a block at a time: the block's key tile is a kKvBlock x head_dim matrix.
    for (int jb = lo / kKvBlock * kKvBlock; jb <= pos; jb += kKvBlock) {
      PackedWeight keys;
      keys.type = type;
      keys.rows = kKvBlock;
      keys.cols = hd;
      keys.data = a.kv.key_tile(table[jb / kKvBlock], g);
      const int s0 = std::max(lo, jb) - jb, s1 = std::min(pos + 1, jb + kKvBlock) - jb;
      matmul_rows(keys, q8, 1, scores + jb, 0, s0, s1, DotOrder::Gemv);
    }
    float max = -INFINITY;
    for (int j = lo; j <= pos; ++j) {
      float s = scores[j] * a.scale;
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
    std::fill(acc, acc + hdv, 0.f);
    float* probs = a.probs ? a.probs + (t * int64_t(a.n_head) + h) * a.probs_ld : nullptr;
    if (probs) {
      std::fill(probs, probs + lo, 0.f);
      for (int j = lo; j <= pos; ++j) probs[j] = scores[j] * inv;
    }
    for (int j = lo; j <= pos; ++j) {
      const int block = table[j / kKvBlock], slot = j % kKvBlock;
      // With v_in_k the value is the prefix of the key row (whole 32-value blocks of it).
      const uint8_t* src = a.kv.v_in_k ? a.kv.key_tile(block, g) + slot * k_row : a.kv.value_tile(block, g) + slot * v_row;
      dequantize_row(type, src, row, hdv);
      const float p = scores[j] * inv;
      for (int i = 0; i < hdv; ++i) acc[i] += p * row[i];
    }
    std::copy(acc, acc + hdv, a.out + t * a.ldo + int64_t(h) * hdv);
  }
}

}  // namespace tessera::cpu
