// Host launchers of the CUDA ops, one file each (native/cuda/<op>.cu). Every launcher only
// enqueues work on `stream`; shapes were validated by the backend before. Conventions:
//  - activations are fp32 row-major, one row per token, rows strided by an explicit ld;
//  - matmul inputs are "staged": written once per producer in the formats the consuming
//    matmuls read (StagedAct), row t of a width-K input at t * round_up(K, 32);
//  - the KV cache is the engine's paged pool (core/kv_cache.h), fp16: per layer, block and
//    kv head a key tile [kKvBlock][head_dim] and a value tile [kKvBlock][head_dim_v] of rows
//    (KvPaged); a row of a step finds its sequence's block ids through row_table;
//  - token positions and block tables are read from device memory, never baked into a
//    launch, so a captured CUDA graph stays valid for every position and table.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "core/kv_cache.h"
#include "core/model_plan.h"
#include "cuda/matrix_layout.h"

namespace tessera::cuda {

// ---------------------------------------------------------------- staged activations

enum StageFormat : unsigned { kStageQ8 = 1u, kStageF32 = 2u, kStageF16 = 4u };

// Destination of a staging op; the buffers hold [rows][cols32] (ds: [rows][cols32 / 32]).
struct StagedAct {
  int8_t* q8 = nullptr;   // q8 values (GEMV of quantized weights)
  float2* ds = nullptr;   // q8 per-chunk (d, d * sum q)
  float* f32 = nullptr;   // zero-padded fp32 copy (GEMV of F32/F16/BF16 weights)
  uint16_t* f16 = nullptr;  // zero-padded fp16 copy (tensor-core GEMM)
};

// The staged formats a matmul of `w` over n_tokens reads.
unsigned stage_formats_for(const DeviceMatrix& w, int n_tokens);
unsigned gemv_formats_for(const DeviceMatrix& w);

// (norm_stage.cu) RMSNorm / LayerNorm of rows of x (dim values, rows strided by ldx), times
// weight (+ bias for LayerNorm; either may be null), staged in `formats`.
void launch_norm_stage(const float* x, int64_t ldx, int rows, int dim, NormKind kind, const float* weight,
                       const float* bias, float eps, unsigned formats, const StagedAct& out, cudaStream_t s);
// (post_norm_add.cu) x[r] += RMSNorm(y[r]) * weight (* residual_scale when nonzero), rows of
// dim values: a post-norm block output (Gemma) joining the residual stream.
void launch_post_norm_add(const float* y, const float* weight, int rows, int dim, float eps, float residual_scale, float* x,
                          cudaStream_t s);
// (swiglu_stage.cu) act(gate) * up for rows of gate_up [rows][2 * ff] (gate in the first ff
// columns, up in the second), staged.
void launch_swiglu_stage(const float* gate_up, int rows, int ff, GateActivation act, unsigned formats,
                         const StagedAct& out, cudaStream_t s);
// (copy_stage.cu) rows of x [rows][dim] (strided by ldx), staged as they are.
void launch_copy_stage(const float* x, int64_t ldx, int rows, int dim, unsigned formats, const StagedAct& out,
                       cudaStream_t s);

// ---------------------------------------------------------------- matmul

// Where a matmul writes: y[t * ldy + r] = (accumulate ? y : 0) + (W[r] . x[t] + bias[r]) * scale
// (scale 0: none), then soft-capped (cap * tanh(y * (1 / cap)), as ggml scales) when softcap != 0.
struct MatmulOut {
  float* y = nullptr;
  int64_t ldy = 0;
  const float* bias = nullptr;
  float scale = 0.f;
  bool accumulate = false;
  float softcap = 0.f;
  // Expert matmuls only (moe_gemv/moe_gemm): a per-expert bias [n_expert][expert_rows] for
  // each part of the stacked weights (gpt-oss's gate/up/down biases), added before the rest.
  const float* expert_bias[2] = {nullptr, nullptr};
  int64_t expert_rows = 0;
};

// (matmul.cu) GEMV (gemv.cu) for up to 8 tokens, tensor-core GEMM (gemm.cu) above; `act`
// must hold the formats stage_formats_for(w, n_tokens) names. launch_gemv takes any token
// count (groups of 8) with the formats gemv_formats_for(w) names: fp32 or q8 activations and
// unrounded weights, for products whose precision matters more than their speed.
bool matmul_uses_gemm(int n_tokens);
void launch_matmul(const DeviceMatrix& w, const StagedAct& act, int n_tokens, const MatmulOut& out, cudaStream_t s);
void launch_gemv(const DeviceMatrix& w, const StagedAct& act, int n_tokens, const MatmulOut& out, cudaStream_t s);
void launch_gemm(const DeviceMatrix& w, const uint16_t* act_f16, int n_tokens, const MatmulOut& out, cudaStream_t s);
// Streaming multiprocessors of the device, by which the GEMM sizes its token tiles to fill
// it. Set by the backend from the attribute it reads anyway, and by the harness.
inline int& device_sm_count() {
  static int count = 1;
  return count;
}

// ---------------------------------------------------------------- mixture of experts
// A batch of n tokens routed to k experts each forms n * k "pairs": pair p = t * k + j is
// token t's j-th choice, with expert id experts[p] and routing weight weights[p]. Expert
// ids live in device memory only; every kernel reads them there (graph-safe, no host sync).

constexpr int kMaxExperts = 512;
constexpr int kMaxExpertGroups = 256;

// (moe_route.cu) The router of moe_route.cpp per token, from logits [n][ld] (the first
// n_expert columns): softmax or sigmoid gating, selection by probability + selection_bias
// (null: none) among the best n_group_used groups, top-k weights, normalized when
// norm_top_k, times weights_scale.
struct MoeRouteArgs {
  const float* logits = nullptr;
  int64_t ld = 0;
  const float* selection_bias = nullptr;
  MoeParams params;
  int n_tokens = 0;
  int32_t* experts = nullptr;  // [n][k]
  float* weights = nullptr;    // [n][k]
};
void launch_moe_route(const MoeRouteArgs& a, cudaStream_t s);

// (moe_sort.cu) Pairs grouped by expert for the grouped GEMM: order[slot] is the pair in
// that slot (expert 0's pairs first, each expert's in pair order), and the slots are cut
// into tiles of at most 64 of one expert: tiles[i] = (expert, first slot, count), *n_tiles.
struct MoeGroups {
  int32_t* order = nullptr;  // [pairs]
  int4* tiles = nullptr;     // [moe_max_tiles(pairs, n_expert)]
  int32_t* n_tiles = nullptr;
};
int moe_max_tiles(int pairs, int n_expert);
void launch_moe_sort(const int32_t* experts, int pairs, int n_expert, const MoeGroups& g, cudaStream_t s);

// Stacked expert matrices: part[i] is [n_expert * rows][cols] (expert e's rows at e * rows),
// all parts of one type and width; a product writes part i's row r to output column
// i * rows + r (gate and up side by side, as swiglu_stage reads them).
struct ExpertWeights {
  DeviceMatrix part[2];
  int parts = 1;
  int64_t rows = 0;
};

// (matmul.cu) For each pair p: y[p][i * rows + r] = W_i[experts[p]][r] . x[p / in_div], x the
// staged rows in `act` (in_div = k: token rows; 1: pair rows). Up to 8 tokens (n * k pairs)
// the grouped GEMV (moe_gemv.cu), above it the grouped tensor-core GEMM (moe_gemm.cu) over
// the groups of launch_moe_sort. `act` holds stage_formats_for(w.part[0], n_tokens).
struct MoeMatmul {
  const int32_t* experts = nullptr;
  MoeGroups groups;  // GEMM only
  int n_tokens = 0, k = 0, n_expert = 0, in_div = 1;
};
void launch_moe_matmul(const ExpertWeights& w, const MoeMatmul& m, const StagedAct& act, const MatmulOut& out,
                       cudaStream_t s);
void launch_moe_gemv(const ExpertWeights& w, const int32_t* experts, int pairs, int in_div, const StagedAct& act,
                     const MatmulOut& out, cudaStream_t s);
void launch_moe_gemm(const ExpertWeights& w, const MoeGroups& g, int max_tiles, int in_div, const uint16_t* act_f16,
                     const MatmulOut& out, cudaStream_t s);

// (head_matmul.cu) One matrix per attention head (MLA): y[p][r] = W[head_ids[p]][r] . x[p]
// for the rows p = t * n_head + h of `act` (staged in gemv_formats_for(w.part[0])), w one
// part of n_head stacked [rows][cols] matrices, head_ids[p] = p % n_head in device memory.
void launch_head_matmul(const ExpertWeights& w, const int32_t* head_ids, int rows, const StagedAct& act,
                        const MatmulOut& out, cudaStream_t s);

// (moe_combine.cu) x[t] += sum_j weights[t k + j] * expert_out[t k + j]
//                         + gate(t) * shared_out[t]  (when shared_out is set),
// gate(t) = sigmoid(shared_gate[t * ld_gate]) when shared_gate is set, else 1.
struct MoeCombine {
  float* x = nullptr;  // [n][dim]
  int n_tokens = 0, dim = 0, k = 0;
  const float* weights = nullptr;     // [n][k]
  const float* expert_out = nullptr;  // [n * k][dim]
  const float* shared_out = nullptr;  // [n][dim] or null
  const float* shared_gate = nullptr;
  int64_t ld_gate = 0;
  float scale = 0.f;  // the sum times scale before it is added (0: none; Granite's residual scale)
};
void launch_moe_combine(const MoeCombine& c, cudaStream_t s);

// ---------------------------------------------------------------- rows, heads, attention

// One layer's share of the paged KV pool and the step's block tables. Row t of the step is at
// its position of the sequence whose block ids start at tables + row_table[t]; the fp16 row
// of `width` values of position p, kv head g, lives at
//   base + ((table[p / kKvBlock] * n_head_kv + g) * kKvBlock + p % kKvBlock) * width
// (keys: base k, width head_dim; values: base v, width head_dim_v; with multi-head latent
// attention the values are the key rows' prefix: v = k, width the key width).
struct KvPaged {
  uint16_t* k = nullptr;
  uint16_t* v = nullptr;
  int n_head_kv = 0;
  int k_width = 0, v_width = 0;
  const int32_t* tables = nullptr;     // device: every sequence's block ids
  const int32_t* row_table = nullptr;  // device [n_tokens]: where row t's sequence's ids start

  __host__ __device__ const int32_t* table_of(int t) const { return tables + row_table[t]; }
  __host__ __device__ int64_t row(const int32_t* table, int g, int p, int width) const {
    return ((int64_t(table[p / kKvBlock]) * n_head_kv + g) * kKvBlock + p % kKvBlock) * width;
  }
};

// (gather_rows.cu) out[i] = x[rows[i]] for i < n, rows of `dim` values (x strided by ldx).
void launch_gather_rows(const float* x, int64_t ldx, const int32_t* rows, int n, int dim, float* out, cudaStream_t s);

// (get_rows.cu) out[t] = scale * row tokens[t] of `table` (scale 0: none); out is [n][cols].
void launch_get_rows(const DeviceMatrix& table, const int32_t* tokens, int n, float scale, float* out, cudaStream_t s);

// (qkv_post.cu) After the q/k/v projections of n tokens (rows of qkv, strided by ldqkv: q
// heads, then k heads, then v heads): optional per-head RMSNorm of q and k, RoPE of q and k
// at pos[t], q written back in place, k and v stored fp16 into the cache at pos[t].
struct QkvPost {
  float* qkv = nullptr;
  int64_t ldqkv = 0;
  int n_tokens = 0, n_head = 0, n_head_kv = 0, head_dim = 0, head_dim_v = 0;
  const int32_t* pos = nullptr;
  const float* q_norm = nullptr;  // [head_dim] or null
  const float* k_norm = nullptr;
  float norm_eps = 0.f;
  RopeParams rope;
  const float* freq_factors = nullptr;  // [rope.n_dims / 2] or null
  float temp_scale = 0.f;  // attention temperature (ModelPlan::attn_temp_scale); 0: none
  int temp_floor = 1;
  KvPaged kv;
};
void launch_qkv_post(const QkvPost& p, cudaStream_t s);

// (mla_post.cu) Multi-head latent attention after its projections, for n tokens: RoPE of
// each head's q_pe into the RoPE part of its MQA query row, and per token the latent
// RMSNorm + k_pe RoPE, stored fp16 as the cache row [latent | k_pe] at pos[t].
struct MlaPost {
  const float* q = nullptr;   // [n][n_head][nope + rope_dims]
  const float* kv = nullptr;  // [n][kv_lora + rope_dims]
  int n_tokens = 0, n_head = 0, nope = 0, rope_dims = 0, kv_lora = 0;
  const int32_t* pos = nullptr;
  const float* kv_norm = nullptr;  // [kv_lora]
  float norm_eps = 0.f;
  RopeParams rope;                      // rope.n_dims <= rope_dims
  const float* freq_factors = nullptr;  // [rope.n_dims / 2] or null
  float* q_mqa = nullptr;     // [n][n_head][kv_lora + rope_dims]: columns [kv_lora, +rope_dims) written
  KvPaged cache;              // one kv head of rows [kv_lora + rope_dims]
};
void launch_mla_post(const MlaPost& p, cudaStream_t s);

struct AttentionArgs {
  const float* q = nullptr;  // token t, head h at q + t * ldq + h * head_dim
  int64_t ldq = 0;
  KvPaged kv;                    // values: kv.v rows of kv.v_width (MLA: the key rows)
  const int32_t* pos = nullptr;  // device [n_tokens]; token t sees positions [lo, pos[t]] of its sequence
  int n_tokens = 0, n_head = 0, n_head_kv = 0, head_dim = 0, head_dim_v = 0;
  int sliding_window = 0;        // 0: lo = 0, else lo = max(0, pos - window + 1)
  float scale = 1.f, softcap = 0.f;
  // Attention sinks [n_head] (gpt-oss) or null: one more score per head in each softmax's max
  // and sum, with no value (the CPU's AttentionArgs::sinks).
  const float* sinks = nullptr;
  float* out = nullptr;          // token t, head h at out + t * ldo + h * head_dim_v
  int64_t ldo = 0;
  float* partials = nullptr;     // split-KV records (attention_partial_floats)
  int splits = 1;
  // Flash kernel: its blocks' query tiles, (first row, rows <= kFlashQueryTile, -, -) each
  // of one sequence (device), and how many.
  const int4* tiles = nullptr;
  int n_tiles = 0;
  // Split kernel only, head_dim_v a multiple of 32: the combine writes the output rows
  // (n_head * head_dim_v wide) staged in these formats for the output projection, instead
  // of into `out`, which saves the decode step a staging launch per layer.
  unsigned stage_formats = 0;
  StagedAct stage;
};

// (attention_split.cu) Split-KV attention for any head size (multiple of 8, keys <= 576,
// values <= 512): per (token, kv head, split) block, records merged by a combine kernel.
// Used for decode, and for prefill where the flash kernel does not cover the head size.
bool attention_split_can_stage(int head_dim_v);
size_t attention_partial_floats(int n_tokens, int n_head, int head_dim_v, int splits);
void launch_attention_split(const AttentionArgs& a, cudaStream_t s);
// (attention_flash.cu) Tensor-core flash attention for head_dim == head_dim_v in {64, 128},
// over query tiles of up to kFlashQueryTile rows of one sequence (AttentionArgs::tiles).
constexpr int kFlashQueryTile = 64;
bool flash_attention_supported(int head_dim, int head_dim_v);
void launch_attention_flash(const AttentionArgs& a, cudaStream_t s);

}  // namespace tessera::cuda
