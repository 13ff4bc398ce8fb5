// One engine's CPU forward pass: the paged KV pool of every sequence of the model, scratch
// activations for a chunk of rows, and a ThreadPool whose single region per chunk runs every
// layer with barriers between dependent ops. Rows of many sequences share each matmul.
#pragma once
#include <algorithm>
#include <chrono>
#include <functional>
#include <initializer_list>
#include <vector>

#include "core/aligned_buffer.h"
#include "core/backend.h"
#include "core/thread_pool.h"
#include "cpu/cpu_backend.h"

namespace tessera::cpu {

// How many of the pool's threads run a step. On a machine other processes share, a thread
// the OS deschedules holds every barrier of the step until it runs again, so n threads can
// be far slower than n - 1 (a 2-core machine with one busy neighbour: 2 threads got 29 tok/s
// where 1 thread gets about 60). Per step size, the chooser keeps a moving average of the
// time per row of both counts, runs the better one, and tries the other every kExplore
// steps, so it follows the load as it comes and goes. Results do not depend on the count
// (every row's arithmetic is the same on any thread).
//
// Running on all threads, a try that confirms one fewer is far slower doubles the wait
// before the next one, up to kMaxExplore steps; the wait drops back to kExplore as soon as
// the running count slows down (a neighbour arriving) or the counts come close. Why: a try
// of one thread on a memory-bound decode step costs most of a step (1B Q3_K_M on the 2-core
// VM: 21 ms against 11), and one every 64 steps was 1.4% of decode on a quiet machine.
class ThreadChooser {
 public:
  explicit ThreadChooser(int threads) : threads_(threads) {}
  int pick(int rows);
  void record(int rows, int threads, double ns);

 private:
  static constexpr int kExplore = 64, kMaxExplore = 1024, kFirstExplore = 8, kConfirm = 8;
  // A try backs off when it took at least this much longer per row than the running count's
  // average; the wait resets when that average rises this much above its level at the try.
  static constexpr double kFarSlower = 1.25;
  struct Bucket {
    double ns_per_row[2] = {0, 0};  // [all threads, one fewer]
    int current = 0;
    int steps = 0;
    int next_explore = 0;     // the step of the next try of the other count (after kFirstExplore)
    int wait = kExplore;      // steps from one try to the next (kExplore .. kMaxExplore)
    double tried_at = 0;      // the running count's ns per row at the last try that backed off
  };
  // Steps of one bucket must cost about the same per row, or the arms compare different
  // work: with 2..8 rows in one bucket, a 1-thread try on an 8-row step (3.0 ms/row) beat a
  // 2-thread average made of 2-row steps (3.6 ms/row), and every later 8-row step of that
  // model ran on one thread at 1.5x the time (SmolLM2-135M Q8_0, quiet 2-core machine). So
  // each row count up to 16 has its own bucket (decode of up to 16 sequences, draft
  // verification), and larger steps one per power of two.
  static constexpr int kExactRows = 16, kBuckets = kExactRows + 20;
  static int bucket(int rows) {
    if (rows <= kExactRows) return rows < 1 ? 0 : rows - 1;
    int log2 = 0;
    while ((rows >> (log2 + 1)) > 0) ++log2;  // floor(log2(rows)) >= 4
    return std::min(kBuckets - 1, kExactRows + log2 - 4);
  }
  int count(int arm) const { return arm == 0 ? threads_ : threads_ - 1; }
  const int threads_;
  Bucket buckets_[kBuckets];
};

class CpuExecutor final : public Executor {
 public:
  explicit CpuExecutor(const CpuBackend& backend);
  Status init(const ExecutorOptions& options);
  Status step(const StepBatch& batch, float* logits) override;
  bool try_step_async(const StepBatch& batch, float* logits, void (*done)(void* ctx, const Status& st), void* ctx) override;
  int max_context() const override { return max_context_; }
  int n_blocks() const override { return n_blocks_; }
  uint64_t block_bytes() const override { return block_bytes_; }
  uint64_t scratch_bytes() const override { return scratch_.size(); }

 private:
  // Activations of one chunk of up to batch_ tokens. Shapes are [tokens][width].
  struct Scratch {
    float* x = nullptr;       // [B][n_embd] residual stream
    float* xn = nullptr;      // [B][n_embd] normalized input of the current block
    float* q = nullptr;       // [B][n_head * head_dim]
    float* k = nullptr;       // [B][n_head_kv * head_dim]
    float* v = nullptr;       // [B][n_head_kv * head_dim_v]
    float* attn = nullptr;    // [B][n_head * head_dim_v]
    float* proj = nullptr;    // [B][n_embd] output of a block before the residual add
    float* gate = nullptr;    // [B][n_ff]
    float* up = nullptr;      // [B][n_ff]
    float* logits = nullptr;  // [n_vocab] last-token logits before the copy-out
    void* act[kActFormatCount] = {};        // encoded activations per ActFormat (F32 unused: rows are read in place)
    float* attn_scratch = nullptr;  // per-thread attention work space
    int32_t* pos = nullptr;             // [B] position of each row
    int32_t* last = nullptr;            // [B] bidirectional attention: last position each row sees
    float* gate_up = nullptr;           // [B][2 * n_ff] fused [gate | up] projection (ffn_fused_gate_up)
    float* qkv = nullptr;               // [B][q_w + k_w + v_w] fused projection (plans with attn_qkv)
    const int32_t** table = nullptr;    // [B] block ids of each row's sequence
    int32_t* logit_rows = nullptr;      // [B] rows of the chunk whose logits are wanted
    int32_t* hidden_rows = nullptr;     // [B] rows of the chunk whose final-norm hidden states are wanted
    // Mixture of experts (allocated only for MoE models). K = n_expert_used.
    float* router = nullptr;          // [B][n_expert] router logits
    int32_t* sel = nullptr;           // [B][K] selected experts
    float* sel_w = nullptr;           // [B][K] their weights
    int32_t* slot = nullptr;          // [B][K] packed row of each (token, choice)
    int32_t* active = nullptr;        // [n_expert] experts with at least one token, ascending
    int32_t* active_off = nullptr;    // [n_expert + 1] first packed row per active expert
    float* route_scratch = nullptr;   // [2 * n_expert]
    float* moe_x = nullptr;           // [B*K][n_embd] token rows grouped by expert
    float* moe_gate = nullptr;        // [B*K][n_ff_exp]
    float* moe_up = nullptr;          // [B*K][n_ff_exp]
    float* moe_out = nullptr;         // [B*K][n_embd]
    void* moe_act[kActFormatCount] = {};            // encoded moe_x / moe_gate rows per ActFormat
    float* shexp_gate = nullptr;      // [B] sigmoid gate of the shared expert (qwen2moe)
    // Multi-head latent attention (allocated only for MLA models); q holds the MQA queries
    // [B][n_head][kv_lora + rope] and attn the latent outputs [B][n_head][kv_lora].
    float* mla_q = nullptr;           // [B][n_head * (nope + rope)] projected q
    float* mla_qa = nullptr;          // [B][q_lora] low-rank q
    float* mla_kv = nullptr;          // [B][kv_lora + rope] latent and k_pe: the cache row
    float* mla_heads = nullptr;       // [n_head][B][max(nope, kv_lora)] head-major staging
    float* mla_out = nullptr;         // [B][n_head * head_dim_v] attention output after wv_b
    // Mamba-2 blocks (plans with SSM blocks; P = the in_proj width, see SsmParams).
    float* ssm_zx = nullptr;          // [B][P] in_proj output [z | xBC | dt]; the conv writes its xBC in place
    float* ssm_y = nullptr;           // [B][P] scan output (the first d_inner of each row)
    float* ssm_g = nullptr;           // [B][d_inner] gated, normalized: out_proj's input
    void* mla_act[kActFormatCount] = {};  // encoded mla_heads rows per ActFormat
  };

  void layout(BumpAllocator& alloc);
  // Encodes x [n][cols] in every format `mask` (bit per ActFormat) names; ends with a barrier.
  void encode(const float* x, int n, int64_t cols, unsigned mask, int ith, int nth);
  const void* act_for(int weight, const float* x) const;
  // y [n][ldy] = weight · x, for x [n][...] already encoded (see encode).
  struct Projection {
    int weight;
    const float* x;
    float* y;
    int64_t ldy;
    float* residual = nullptr;  // MatmulJob::residual
  };
  // The group's products with their rows shared among the threads (matmul_shared), then a
  // barrier. Independent projections go in one group: one barrier, and no thread idles
  // between them.
  void project(std::initializer_list<Projection> group, int n, int ith, int nth);

  // Rows [0, n) of the chunk in s_ (tokens given, positions and tables set); the logits of
  // its n_logits rows s_.logit_rows go to logits [n_logits][n_vocab], the final-norm hidden
  // states of its n_hidden rows s_.hidden_rows to hidden [n_hidden][n_embd].
  void forward(const int32_t* tokens, int n, int n_logits, float* logits, int n_hidden, float* hidden, int ith, int nth);
  // Encoders: the step's rows form whole sequences (see ModelPlan::causal).
  Status check_bidirectional(const StepBatch& b) const;
  // A step's checks, block copies and trace set-up, before its first chunk.
  Status begin_step(const StepBatch& b);
  // The chunk of rows [done, done + n) set up in the scratch (positions, tables, its logit
  // and hidden rows, advancing next_logit and next_hidden past them) for forward().
  struct Chunk {
    int n = 0, n_logits = 0, n_hidden = 0;
    float* logits = nullptr;  // [n_logits][n_vocab]
    float* hidden = nullptr;  // [n_hidden][n_embd]
  };
  Chunk prepare_chunk(const StepBatch& b, float* logits, int done, int* next_logit, int* next_hidden);
  // x += token_types[0] and position embeddings, then the embedding LayerNorm (encoders).
  void input_embeddings(int n, int ith, int nth);
  // xn = the block's input: norm(x) (pre-norm), or x itself (post-norm); ends with a barrier.
  void block_input(int norm_w, int norm_b, int n, int ith, int nth);
  // block_input, then encode(xn, ..., formats); one phase where it can be (see the .cpp).
  void block_input_encoded(int norm_w, int norm_b, int n, unsigned formats, int ith, int nth);
  // q, k, v from the fused attn_qkv projection of xn, already encoded (and its bias).
  void fused_qkv(const LayerPlan& L, int n, int ith, int nth);
  // Rows `idx` [count] of x through the final norm into y [count][n_embd] (gathered via proj
  // when not contiguous); ends with a barrier.
  void final_norm_rows(const int32_t* idx, int count, float* y, int ith, int nth);
  void attention_block(int il, int n, int ith, int nth);
  // Multi-head latent attention in the absorbed form over the latent cache.
  void mla_attention_block(int il, int n, int ith, int nth);
  // Attention over layer il's blocks for the chunk's n rows (q, out and their strides unset).
  AttentionArgs attention_args(int il, int n) const;
  KvRows rows() const { return {s_.pos, s_.table}; }
  // Copies block src to block dst in every layer (keys and values).
  void copy_block(int src, int dst);
  // Encodes head-major rows [rows][cols] of mla_heads for `weight`; returns the activations.
  const void* encode_heads(int weight, int rows, int64_t cols, int ith, int nth);
  // Output projection (and bias) of attn_in [n][width], added to the residual stream.
  void attention_output(int il, const float* attn_in, int64_t width, int n, int ith, int nth);
  // x += proj (times the plan's residual_scale first, where set) over the chunk's n rows.
  // x += proj, proj first RMS-normalized by post_norm (a weight index; -1: none) and scaled.
  void residual_add(int n, int post_norm, int ith, int nth);
  // s_.x when a block output with this bias and post-norm (-1: none) joins the residual
  // stream by a plain add, which the projection itself can then do (MatmulJob::residual);
  // else null.
  float* fused_residual(int bias, int post_norm) const;
  // y [rows packed by expert][width] += the bias row of each row's expert (bias -1: nothing).
  void expert_bias(int bias, float* y, int64_t width, int ith, int nth);
  // Logits [rows][n_vocab] times 1 / logit_scale, where set (no barrier).
  void scale_logits(float* logits, int rows, int ith, int nth) const;
  void ffn_block(int il, int n, int ith, int nth);
  void moe_block(int il, int n, int ith, int nth);
  // Runs the packed rows of every active expert through `weight` (stacked [n_expert][rows][cols]).
  void expert_matmul(int weight, const void* act, int64_t cols, float* y, int64_t rows, int ith, int nth);
  // Dense SwiGLU FFN on xn (already normalized and encoded for `gate`/`up`) into s_.proj;
  // ends with a barrier. Biases (-1: none) as llama.cpp's build_ffn adds them: gate and up
  // before the activation, down after its projection.
  // With residual, the down projection is also added into it (MatmulJob::residual).
  void dense_ffn(int gate, int up, int down, int gate_b, int up_b, int down_b, int64_t width, int n, int ith, int nth,
                 float* residual = nullptr);
  void norm(const float* x, int norm_w, int norm_b, float* y, int n, int ith, int nth) const;
  // Tracing (a step with StepBatch::trace): after layer il, the residual norms and the
  // logit lens of the chunk's n rows; ends with a barrier.
  void trace_layer(int il, int n, int ith, int nth);
  // Mamba-2 (ssm_block.cpp): the block il on the chunk's n rows, residual add included; and
  // the chunk's segments, computed on the calling thread before the chunk runs.
  void ssm_block(int il, int n, int ith, int nth);
  void plan_ssm_segments(int n);
  float* ssm_state(int block, int il) const;

  const CpuBackend& backend_;
  const ModelPlan& plan_;
  std::shared_ptr<ThreadPool> pool_;  // ThreadPool::shared: one per thread count in the process
  ThreadChooser chooser_;
  int max_context_ = 0;
  int n_blocks_ = 0;
  uint64_t block_bytes_ = 0;  // one block in every layer
  int batch_ = 0;
  // A quantized cache stores keys (queries alike) and values Hadamard-rotated in runs of
  // this many values (hadamard.cpp), as llama.cpp does; 0: not rotated.
  int rot_k_ = 0, rot_v_ = 0;
  size_t attn_scratch_floats_ = 0;
  AlignedBuffer kv_;          // [n_layer][n_blocks][n_head_kv] key tiles, then value tiles, per layer
  AlignedBuffer scratch_;
  std::vector<KvLayer> kv_layers_;
  Scratch s_;
  // The trace of the step running (null: none), where the chunk's rows start in it, its rows
  // in all, the recorded-layer index of each layer, and the logit lens's [B][n_vocab] logits.
  const StepTrace* trace_ = nullptr;
  int trace_row0_ = 0, trace_rows_ = 0;
  std::vector<int> trace_slot_;
  std::vector<float> lens_logits_;
  bool stop_ = false;      // sampled by thread 0 from the abort flag, read by all after a barrier
  // The step try_step_async started: its region's job (referenced by the pool until it ends),
  // and what async_step_done needs on the pool thread that ends it.
  struct AsyncStep {
    int n = 0, threads = 0;
    std::chrono::steady_clock::time_point start;
    void (*done)(void*, const Status&) = nullptr;
    void* ctx = nullptr;
  };
  AsyncStep async_;
  struct Pick {
    int rows = -1, threads = 0;
  };
  Pick picked_;  // try_step_async's pick for the step it gave back to step()
  std::function<void(int, int)> async_job_;
  static void async_step_done(void* self);
  int n_active_ = 0;       // experts with tokens in the current MoE block (set by thread 0)
  int64_t ffn_width_ = 0;  // widest dense FFN (n_ff, or the shared expert's width)
  // Recurrent state (SSM blocks): per KV block, every SSM layer's state checkpoint
  // (core/kv_cache.h), block-major so a block copy is one memcpy.
  AlignedBuffer ssm_states_;
  uint64_t ssm_block_floats_ = 0;
  std::vector<int64_t> ssm_layer_offset_;  // [n_layer] floats into a block's checkpoints, -1: attention layer
  // A chunk's rows as segments: consecutive rows of one sequence within one KV block, run
  // in order; before the first row the block's state comes from `src` (a block id), zeros
  // (kSsmZero: the row is position 0) or is already in place (kSsmInPlace).
  struct SsmSegment {
    int row0 = 0, n = 0, dst = 0, src = 0;
  };
  static constexpr int kSsmZero = -1, kSsmInPlace = -2;
  std::vector<SsmSegment> ssm_segments_;
  int n_ssm_segments_ = 0;
  unsigned format_bit_of(int weight) const;
};

}  // namespace tessera::cpu
