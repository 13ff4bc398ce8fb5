// The CUDA backend (core/backend.h): CudaBackend uploads a model's weights once, repacked
// into the device layout (matrix_layout.h), with q/k/v and gate/up fused into one matrix each
// when their types agree (stacked expert tensors: one matrix each, expert e's rows at
// e * rows, gate and up launched together when their types agree); CudaExecutor owns a
// session's fp16 KV cache and activation buffers (allocated once) and runs the forward pass
// the CPU executor runs, op for op.
// libtessera_cuda.so exports tessera_cuda_create_backend; nothing here throws across it.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "core/aligned_buffer.h"
#include "core/backend.h"
#include "cuda/common.cuh"
#include "cuda/ops.cuh"

namespace tessera::cuda {

// A weight product writing columns [offset, offset + w.rows) of its output rows.
struct Projection {
  DeviceMatrix w;
  int64_t offset = 0;
  const float* bias = nullptr;  // [w.rows] or null
};

// Stacked expert matrices writing columns [offset, offset + parts * rows) of their output
// rows (gate and up fused when their types agree, as for dense projections).
struct ExpertProjection {
  ExpertWeights w;
  int64_t offset = 0;
};

// A mixture-of-experts feed-forward block.
struct MoeWeights {
  std::vector<Projection> router;  // into [n_expert router logits | shared-expert gate logit]
  const float* selection_bias = nullptr;
  // gpt-oss: per-expert biases [n_expert][n_ff_exp] (gate, up) and [n_expert][n_embd] (down).
  const float *gate_bias = nullptr, *up_bias = nullptr, *down_bias = nullptr;
  std::vector<ExpertProjection> gate_up;  // into rows [gate | up] of width 2 * n_ff_exp
  ExpertProjection down;
  // Shared experts (folded into one matrix per projection), absent when shexp_ff == 0.
  int64_t shexp_ff = 0;
  std::vector<Projection> shexp_gate_up;
  Projection shexp_down;
  bool shexp_gated = false;  // the router's last column is the shared expert's sigmoid gate logit
};

// Multi-head latent attention (deepseek2), the tensors of core/model_plan.h's MLA layer.
struct MlaWeights {
  Projection wq;                    // q rows [n_head][nope + rope], without a q LoRA
  Projection wq_a, wq_b;            // with one: wq_b(RMSNorm(wq_a(x)) * q_a_norm)
  const float* q_a_norm = nullptr;
  Projection wkv_a;                 // [kv_lora + rope]: latent | k_pe
  const float* kv_a_norm = nullptr;
  ExpertWeights wk_b;               // per head [kv_lora][nope]: q_nope into the latent space
  ExpertWeights wv_b;               // per head [head_dim_v][kv_lora]: latent out into values
};

struct LayerWeights {
  const float* attn_norm = nullptr;
  const float* attn_norm_b = nullptr;
  const float* ffn_norm = nullptr;
  const float* ffn_norm_b = nullptr;
  const float* q_norm = nullptr;
  const float* k_norm = nullptr;
  const float* attn_sinks = nullptr;      // gpt-oss: a logit per head in each softmax
  const float* attn_post_norm = nullptr;  // Gemma: RMSNorm of the attention output before the add
  const float* ffn_post_norm = nullptr;   // and of the FFN output
  const float* bo = nullptr;
  std::vector<Projection> qkv;      // into rows [q heads | k heads | v heads]; empty when mla
  bool mla = false;
  MlaWeights latent;                // when mla
  Projection wo;
  std::vector<Projection> gate_up;  // into rows [gate | up], with the gate and up biases
  Projection down;                  // with the down bias
  bool moe = false;
  MoeWeights experts;  // when moe
};

struct ModelWeights {
  DeviceMatrix tok_embd;
  DeviceMatrix output;  // the LM head; tok_embd when the embeddings are tied
  const float* output_b = nullptr;  // LM head bias
  const float* output_norm = nullptr;
  const float* output_norm_b = nullptr;
  const float* rope_freqs = nullptr;
  std::vector<LayerWeights> layers;
};

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(const BackendOptions& options);
  const char* name() const override { return "cuda"; }
  Status prepare(const ModelPlan& plan, LoadControl& control) override;
  Status create_executor(const ExecutorOptions& options, std::unique_ptr<Executor>* out) override;
  uint64_t weight_bytes() const override { return weights_.size(); }

  const ModelPlan& plan() const { return *plan_; }
  const ModelWeights& weights() const { return model_; }
  int device() const { return device_; }
  int sm_count() const { return sm_count_; }

 private:
  Status check_plan(const ModelPlan& plan) const;
  Status build(const ModelPlan& plan, uint8_t* base, size_t* used, LoadControl* control);

  int device_ = 0;
  int threads_ = 1;
  int sm_count_ = 1;
  const ModelPlan* plan_ = nullptr;
  DeviceBuffer weights_;
  ModelWeights model_;
};

class CudaExecutor final : public Executor {
 public:
  explicit CudaExecutor(const CudaBackend& backend);
  ~CudaExecutor() override;
  Status init(const ExecutorOptions& options);
  Status step(const StepBatch& batch, float* logits) override;
  int max_context() const override { return max_context_; }
  int n_blocks() const override { return n_blocks_; }
  uint64_t block_bytes() const override { return block_bytes_; }
  uint64_t scratch_bytes() const override { return scratch_.size(); }

 private:
  // What the rows of one chunk need besides their tokens and positions.
  struct Chunk {
    int n = 0;               // rows
    int n_tiles = 0;         // flash query tiles (runs of one sequence's rows, <= 64 each)
    bool prefill = false;    // some sequence has more than one row: flash attention where it applies
  };

  void layout(BumpAllocator& c);
  Status run_chunk(const StepBatch& b, int first, const Chunk& chunk, const int32_t* logit_rows, int n_logits, float* logits);
  Status decode_step(int n, float* logits);
  Status enqueue_layer(int il, const Chunk& chunk);
  void enqueue_attention(int il, const Chunk& chunk);
  void enqueue_mla_attention(int il, const Chunk& chunk);
  AttentionArgs attention_args(int il, const Chunk& chunk, int64_t ldq) const;
  void enqueue_output_projection(const LayerWeights& L, int n);
  // x += w . stage_ (+ bias), through a post norm (RMSNorm then add) when post_norm is set.
  void enqueue_residual_out(const DeviceMatrix& w, const float* bias, const float* post_norm, int n);
  void enqueue_head(int rows, bool gathered);
  Status enqueue_logits(int n_logits, float* host_out);
  void enqueue_matmul(const Projection& p, int n, float* y, int64_t ldy, bool accumulate);
  void enqueue_dense_ffn(const LayerWeights& L, int n);
  void enqueue_moe_ffn(const LayerWeights& L, int n);
  unsigned formats_for(const std::vector<Projection>& ps, int n) const;
  KvPaged kv_of(int il) const;

  const CudaBackend& backend_;
  const ModelPlan& plan_;
  const ModelWeights& w_;
  int max_context_ = 0, n_blocks_ = 0, batch_ = 0, splits_ = 1, logit_rows_ = 1;
  int max_table_entries_ = 0;
  uint64_t block_bytes_ = 0;
  int64_t qkv_w_ = 0, attn_w_ = 0, ff_ = 0, widest_ = 0;
  bool has_moe_ = false, has_mla_ = false, has_post_norm_ = false;
  int64_t router_w_ = 0;  // router logit columns (n_expert, + 1 for a shared-expert gate)
  cudaStream_t stream_ = nullptr;
  cudaEvent_t layer_done_[2] = {nullptr, nullptr};
  DeviceBuffer kv_, scratch_;
  PinnedBuffer host_io_, host_logits_;
  std::vector<uint16_t*> k_cache_, v_cache_;  // per layer: [n_blocks][n_head_kv][kKvBlock][width]
  // Device activations.
  float *x_ = nullptr, *qkv_ = nullptr, *attn_ = nullptr, *gate_up_ = nullptr, *logits_ = nullptr, *partials_ = nullptr;
  float* gathered_ = nullptr;  // [logit_rows_][n_embd] rows whose logits are wanted
  int32_t *tokens_ = nullptr, *pos_ = nullptr, *row_table_ = nullptr, *tables_ = nullptr, *logit_idx_ = nullptr;
  int4* tiles_ = nullptr;
  StagedAct stage_;
  float* block_out_ = nullptr;  // [batch][n_embd] a post-normed block's output (has_post_norm_)
  // Mixture of experts (when has_moe_): router logits, routing, expert activations per pair.
  float *router_ = nullptr, *sel_w_ = nullptr, *moe_gate_up_ = nullptr, *moe_out_ = nullptr, *shexp_out_ = nullptr;
  int32_t* sel_ = nullptr;
  MoeGroups groups_;
  StagedAct moe_stage_;
  // Multi-head latent attention (when has_mla_): its projections' outputs, the per-head
  // expanded values, and the head of each (token, head) row for the per-head products.
  float *mla_kv_ = nullptr, *mla_qa_ = nullptr, *mla_q_ = nullptr, *mla_out_ = nullptr;
  int32_t* head_ids_ = nullptr;
  // Decode steps (every row its own sequence's one token, every row's logits wanted) of up
  // to kMaxGraphRows rows replay a graph captured per row count; others launch directly.
  static constexpr int kMaxGraphRows = 16;
  cudaGraphExec_t decode_graphs_[kMaxGraphRows + 1] = {};
  bool graph_failed_ = false;
};

}  // namespace tessera::cuda
