// kv_store: writes new rows' keys and values into their blocks of one layer's share of the
// paged pool, in the KvLayer layout (ops.h): F16 keys in 8-position groups, F16 values
// transposed, quantized keys and values as one row per position, encoded as llama.cpp
// encodes its cache rows (Q8_0 like its activations, see quantize_act; Q4_0 by ggml's
// reference rounding, which its CPU backend also uses for a Q4_0 cache). With v_in_k (MLA)
// only keys. Split over (row, kv head).
#include <algorithm>
#include <cmath>

#include "core/cpu_features.h"
#include "core/thread_pool.h"
#include "cpu/kv_store_kernels.h"
#include "cpu/ops.h"

namespace tessera::cpu {

namespace {

// ggml's quantize_row_q4_0_ref: the signed value of largest magnitude maps to -8.
void q4_0_row(const float* x, BlockQ4_0* y, int64_t n) {
  for (int64_t b = 0; b < n / QK4_0; ++b) {
    const float* xb = x + b * QK4_0;
    float amax = 0.f, max = 0.f;
    for (int i = 0; i < QK4_0; ++i)
      if (amax < std::fabs(xb[i])) {
        amax = std::fabs(xb[i]);
        max = xb[i];
      }
    const float d = max / -8.f;
    const float id = d != 0.f ? 1.f / d : 0.f;
    y[b].d = fp32_to_fp16(d);
    for (int i = 0; i < QK4_0 / 2; ++i) {
      const uint8_t lo = static_cast<uint8_t>(std::min(15, int(static_cast<int8_t>(xb[i] * id + 8.5f))));
      const uint8_t hi = static_cast<uint8_t>(std::min(15, int(static_cast<int8_t>(xb[QK4_0 / 2 + i] * id + 8.5f))));
      y[b].qs[i] = static_cast<uint8_t>(lo | (hi << 4));
    }
  }
}

// One position's row of `width` values into a quantized tile row.
void store_row(KvType type, const float* x, int64_t width, uint8_t* dst) {
  if (type == KvType::Q8_0) quantize_act(ActFormat::Q8_0, x, 1, width, dst, 0, 1);
  else q4_0_row(x, reinterpret_cast<BlockQ4_0*>(dst), width);
}

// Where row r of a step's (token, kv head) rows goes: kv head g, slot `slot` of block `block`.
struct KvSlot {
  int t, g, block, slot;
};
KvSlot kv_slot(const KvLayer& kv, const KvRows& rows, int64_t r) {
  const int t = int(r / kv.n_head_kv), g = int(r % kv.n_head_kv), pos = rows.pos[t];
  return {t, g, rows.table[t][pos / kKvBlock], pos % kKvBlock};
}

}  // namespace

void kv_store_prefetch(const KvLayer& kv, int n_tokens, const KvRows& rows, int head_dim, int head_dim_v, int ith,
                       int nth) {
  if (n_tokens > kKvPrefetchTokens) return;
  int64_t r0, r1;
  split_range(int64_t(n_tokens) * kv.n_head_kv, ith, nth, &r0, &r1);
  auto lines = [](const uint8_t* p, int64_t bytes) {
    for (int64_t o = 0; o < bytes; o += 64) __builtin_prefetch(p + o, 1, 3);
    __builtin_prefetch(p + bytes - 1, 1, 3);  // a row that straddles one more line
  };
  for (int64_t r = r0; r < r1; ++r) {
    const auto [t, g, block, slot] = kv_slot(kv, rows, r);
    if (kv.type != KvType::F16) {
      const uint64_t kb = kv_row_bytes(kv.type, head_dim), vb = kv_row_bytes(kv.type, head_dim_v);
      lines(kv.key_tile(block, g) + slot * kb, int64_t(kb));
      if (!kv.v_in_k) lines(kv.value_tile(block, g) + slot * vb, int64_t(vb));
      continue;
    }
    // The slot's entries of its 8-position key group: one run of head_dim * 8 halves.
    lines(kv.key_tile(block, g) + 2 * kv_key_index(head_dim, slot, 0), int64_t(head_dim) * 16 - 14);
    if (kv.v_in_k) continue;
    // Transposed values: one half per line, head_dim_v lines.
    const uint8_t* vd = kv.value_tile(block, g) + 2 * slot;
    for (int i = 0; i < head_dim_v; ++i) __builtin_prefetch(vd + 2 * int64_t(i) * kKvBlock, 1, 3);
  }
}

void kv_store(const KvLayer& kv, const float* k, int64_t ldk, const float* v, int64_t ldv, int n_tokens,
              const KvRows& rows, int head_dim, int head_dim_v, int ith, int nth) {
  // The same split of (token, kv head) rows as rope's over k: the executor stores each row
  // on the thread that rotated it, with no barrier between (attention_block).
  int64_t r0, r1;
  split_range(int64_t(n_tokens) * kv.n_head_kv, ith, nth, &r0, &r1);
  const bool f16c = active_cpu_isa() >= CpuIsa::Avx2;
  for (int64_t r = r0; r < r1; ++r) {
    const auto [t, g, block, slot] = kv_slot(kv, rows, r);
    const float* ks = k + t * ldk + int64_t(g) * head_dim;
    const float* vs = kv.v_in_k ? nullptr : v + t * ldv + int64_t(g) * head_dim_v;
    if (kv.type != KvType::F16) {
      store_row(kv.type, ks, head_dim, kv.key_tile(block, g) + slot * kv_row_bytes(kv.type, head_dim));
      if (vs) store_row(kv.type, vs, head_dim_v, kv.value_tile(block, g) + slot * kv_row_bytes(kv.type, head_dim_v));
      continue;
    }
    uint16_t* kd = reinterpret_cast<uint16_t*>(kv.key_tile(block, g)) + kv_key_index(head_dim, slot, 0);
    uint16_t* vd = vs ? reinterpret_cast<uint16_t*>(kv.value_tile(block, g)) + slot : nullptr;
    if (f16c) {
      avx2::store_f16_strided(ks, head_dim, kd, 8);
      if (vd) avx2::store_f16_strided(vs, head_dim_v, vd, kKvBlock);
      continue;
    }
    for (int i = 0; i < head_dim; ++i) kd[i * 8] = fp32_to_fp16(ks[i]);
    if (!vd) continue;
    for (int i = 0; i < head_dim_v; ++i) vd[i * kKvBlock] = fp32_to_fp16(vs[i]);
  }
}

}  // namespace tessera::cpu
