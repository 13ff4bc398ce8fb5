// The paged KV cache a model's sequences share: one pool of blocks of kKvBlock positions per
// model, each sequence a table of block ids (position p lives in block table[p / kKvBlock],
// slot p % kKvBlock). Which blocks a sequence holds, their sharing between sequences
// (prefixes, forks) and their reuse are decided in TypeScript (lib/engine); native code only
// reads and writes the blocks a step names, after checking every id and position against
// the pool (check_step in core/backend.h).
#pragma once
#include <cstdint>

#include "core/ggml_types.h"
#include "core/model_plan.h"

namespace tessera {

// Positions per KV block. A multiple of 8 (the CPU attention's key tiles) and small enough
// that a short sequence wastes little: 32 positions of one kv head are 4 KiB of fp16 keys at
// head size 64, one contiguous run for the hardware prefetcher.
constexpr int kKvBlock = 32;

// How keys and values are stored in the blocks (llama.cpp's -ctk/-ctv types).
enum class KvType : int32_t { F16 = 0, Q8_0 = 1, Q4_0 = 2 };

static inline bool kv_type_valid(int32_t t) { return t >= 0 && t <= 2; }

static inline const char* kv_type_name(KvType t) {
  switch (t) {
    case KvType::F16: return "f16";
    case KvType::Q8_0: return "q8_0";
    case KvType::Q4_0: return "q4_0";
  }
  return "?";
}

static inline bool kv_type_quantized(KvType t) { return t != KvType::F16; }

// Bytes of one kv head's `width` values at one position (quantized types in 32-value blocks:
// width must be a multiple of 32, which the executors check).
static inline uint64_t kv_row_bytes(KvType t, int64_t width) {
  switch (t) {
    case KvType::F16: return uint64_t(width) * 2;
    case KvType::Q8_0: return uint64_t(width / QK8_0) * sizeof(BlockQ8_0);
    case KvType::Q4_0: return uint64_t(width / QK4_0) * sizeof(BlockQ4_0);
  }
  return 0;
}

// Bytes of one kv head's tile in one block: kKvBlock positions of `width` values.
static inline uint64_t kv_tile_bytes(KvType t, int64_t width) { return kv_row_bytes(t, width) * kKvBlock; }

// Bytes one block takes in every attention layer: each kv head's key tile and value tile
// (with multi-head latent attention only the latent keys: the values are their prefix).
static inline uint64_t kv_block_bytes(const ModelPlan& p, KvType t) {
  const bool latent = p.mla.kv_lora_rank > 0;
  return uint64_t(attention_layer_count(p)) * p.n_head_kv *
         (kv_tile_bytes(t, p.head_dim) + (latent ? 0 : kv_tile_bytes(t, p.head_dim_v)));
}

// SSM blocks (model_plan.h SsmParams): each KV block also holds a checkpoint of its
// sequence's recurrent state in every SSM layer, fp32: the state after the last position
// written into the block. A row at position p reads the state of block (p - 1) / kKvBlock
// and leaves its own in block p / kKvBlock, so copy-on-write forks, published prefixes and
// rollbacks to a block boundary all hold exact states; a sequence rolled back into a block
// recomputes that block from its start (lib/engine/sequence.ts).
static inline uint64_t ssm_state_block_floats(const ModelPlan& p) {
  return uint64_t(p.n_layer - attention_layer_count(p)) * uint64_t(p.ssm.state_floats());
}

}  // namespace tessera
