// The two interfaces every compute backend (CPU here, CUDA in libtessera_cuda.so)
// implements. A Backend owns a model's prepared weights; an Executor owns one engine's KV
// block pool and scratch memory and runs the forward pass described by the ModelPlan over
// batches of rows from many sequences.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "core/kv_cache.h"
#include "core/load_control.h"
#include "core/model_plan.h"
#include "core/status.h"

namespace tessera {

struct BackendOptions {
  int threads = 1;  // CPU threads (the CUDA backend uses them only while loading)
  int device = 0;   // CUDA device ordinal
  // The plan's tensors sit in memory the model owns (a file read with mmap: false, in huge
  // pages), not in a file mapping: the CPU backend then reads them in place instead of
  // copying them out of the mapping's 4 KiB pages.
  bool weights_in_memory = false;
};

// One engine's KV pool and batch shape (Backend::create_executor).
struct ExecutorOptions {
  int max_context = 0;  // most positions one sequence may reach (sizes the attention scratch)
  int n_blocks = 0;     // KV pool size in blocks of kKvBlock positions (core/kv_cache.h)
  int batch_size = 512; // rows per forward chunk; a step with more rows runs in chunks
  KvType kv_type = KvType::F16;
};

// What a traced step records for each of its rows and each layer (session.trace): an
// opt-in path, so a normal step pays nothing for it. Arrays are the caller's, sized as
// noted (n_rows: the step's rows; K: the model's experts per token).
struct StepTrace {
  float* residual_norm = nullptr;  // [n_layer][n_rows] L2 norm of the residual stream after each layer
  int top_k = 0;                   // logit lens: each layer's residual through the final norm and LM head
  int32_t* lens_ids = nullptr;     // [n_layer][n_rows][top_k] most likely tokens, most likely first
  float* lens_probs = nullptr;     // [n_layer][n_rows][top_k] their softmax probabilities
  const uint8_t* attention_layers = nullptr;  // [n_layer] nonzero: record that layer's attention weights
  float* attention = nullptr;      // [n_recorded][n_rows][n_head][positions] weight of each position (0 past the row's)
  int positions = 0;               // attention row length: more than every row's position
  int32_t* experts = nullptr;      // [n_layer][n_rows][K] routed experts (-1 in dense layers)
  float* expert_weights = nullptr; // [n_layer][n_rows][K] their routing weights
};

// One step of the engine: rows of many sequences, each a token at a position of its
// sequence, evaluated in one forward pass (the weights are read once for all of them).
// Attention of a row reads its own sequence's blocks up to its position, so the rows of
// one sequence must be in ascending position order and every earlier position must have
// been written (by this step's earlier rows or a previous step): the scheduler's contract,
// which check_step cannot verify. Everything memory safety depends on, it checks.
struct StepBatch {
  int n_rows = 0;
  const int32_t* tokens = nullptr;       // [n_rows]
  const int32_t* positions = nullptr;    // [n_rows]
  const int32_t* row_seq = nullptr;      // [n_rows] sequence of each row: an index into table_start
  int n_seqs = 0;
  const int32_t* table_start = nullptr;  // [n_seqs + 1] sequence s's block ids: tables[table_start[s], table_start[s + 1])
  const int32_t* tables = nullptr;       // [n_table_entries]
  int n_table_entries = 0;
  int n_logits = 0;
  const int32_t* logit_rows = nullptr;   // [n_logits] strictly ascending rows whose logits are wanted
  int n_copies = 0;
  const int32_t* copies = nullptr;       // [n_copies][2] (source, destination) blocks, copied before any row runs
  const StepTrace* trace = nullptr;      // record the layers' internals (backends without it refuse)
  // Embeddings: the final-norm hidden states (the LM head's input) of these rows, besides or
  // instead of their logits. A step without hidden rows pays nothing for the option.
  int n_hidden = 0;
  const int32_t* hidden_rows = nullptr;  // [n_hidden] strictly ascending rows whose hidden states are wanted
  float* hidden = nullptr;               // [n_hidden][n_embd]
};

class Executor {
 public:
  virtual ~Executor() = default;

  // Copies the step's blocks, then runs its rows (in chunks of batch_size rows), writing
  // their keys and values into the pool and the logits of the rows in logit_rows to
  // logits [n_logits][n_vocab].
  virtual Status step(const StepBatch& batch, float* logits) = 0;

  // step() without waiting, where the step is one pool region (a causal model, no trace, at
  // most one batch of rows) and the pool is free: returns true once it runs, and done(ctx,
  // status) follows on a pool thread when it ends (batch, logits and what they point to must
  // stay valid until then). False, with nothing done: the caller runs step() instead.
  virtual bool try_step_async(const StepBatch& batch, float* logits, void (*done)(void* ctx, const Status& st), void* ctx) {
    return false;
  }

  // Asks a running step to stop at the next layer boundary (returns StatusCode::Aborted).
  void request_abort() { abort_.store(true, std::memory_order_relaxed); }

  virtual int max_context() const = 0;
  virtual int n_blocks() const = 0;
  // Bytes one block takes across all layers (keys and values).
  virtual uint64_t block_bytes() const = 0;
  // Activation scratch and attention work space, allocated once.
  virtual uint64_t scratch_bytes() const = 0;

 protected:
  bool take_abort() { return abort_.exchange(false, std::memory_order_relaxed); }

  // The bounds every step re-checks before any kernel runs: ids inside the vocabulary and
  // the pool, positions inside the scratch's reach and their sequence's table.
  static Status check_step(const StepBatch& b, int max_context, int n_blocks, int n_vocab) {
    auto bad = [](const std::string& m) { return Status::error(StatusCode::InvalidArgument, "step: " + m); };
    if (b.n_rows < 0 || b.n_seqs < 0 || b.n_logits < 0 || b.n_copies < 0 || b.n_table_entries < 0)
      return bad("negative count");
    if (b.n_logits > b.n_rows) return bad("more logit rows than rows");
    if (b.n_rows > 0 && (!b.tokens || !b.positions || !b.row_seq || !b.table_start)) return bad("missing row arrays");
    if (b.n_seqs > 0) {
      if (b.table_start[0] != 0 || b.table_start[b.n_seqs] != b.n_table_entries) return bad("table offsets do not span the tables");
      for (int s = 0; s < b.n_seqs; ++s)
        if (b.table_start[s + 1] < b.table_start[s]) return bad("table offsets decrease");
    }
    for (int i = 0; i < b.n_table_entries; ++i)
      if (b.tables[i] < 0 || b.tables[i] >= n_blocks)
        return bad("block id " + std::to_string(b.tables[i]) + " is outside the pool of " + std::to_string(n_blocks));
    for (int r = 0; r < b.n_rows; ++r) {
      if (b.tokens[r] < 0 || b.tokens[r] >= n_vocab)
        return Status::error(StatusCode::InvalidArgument, "token id " + std::to_string(b.tokens[r]) + " is out of range");
      const int s = b.row_seq[r], p = b.positions[r];
      if (s < 0 || s >= b.n_seqs) return bad("row " + std::to_string(r) + " names no sequence");
      if (p < 0 || p >= max_context)
        return Status::error(StatusCode::OutOfContext, "position " + std::to_string(p) + " exceeds the context size " +
                                                           std::to_string(max_context));
      if (p / kKvBlock >= b.table_start[s + 1] - b.table_start[s])
        return bad("position " + std::to_string(p) + " has no block in its sequence's table");
    }
    for (int i = 0; i < b.n_logits; ++i)
      if (b.logit_rows[i] < 0 || b.logit_rows[i] >= b.n_rows || (i > 0 && b.logit_rows[i] <= b.logit_rows[i - 1]))
        return bad("logit rows must be ascending row indices");
    if (b.n_hidden < 0 || b.n_hidden > b.n_rows) return bad("hidden row count out of range");
    if (b.n_hidden > 0 && (!b.hidden_rows || !b.hidden)) return bad("missing hidden arrays");
    for (int i = 0; i < b.n_hidden; ++i)
      if (b.hidden_rows[i] < 0 || b.hidden_rows[i] >= b.n_rows || (i > 0 && b.hidden_rows[i] <= b.hidden_rows[i - 1]))
        return bad("hidden rows must be ascending row indices");
    for (int i = 0; i < b.n_copies; ++i) {
      const int src = b.copies[2 * i], dst = b.copies[2 * i + 1];
      if (src < 0 || src >= n_blocks || dst < 0 || dst >= n_blocks || src == dst) return bad("invalid block copy");
    }
    return Status::ok();
  }
  std::atomic<bool> abort_{false};
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual const char* name() const = 0;

  // Prepares (repacks, uploads) the weights `plan` refers to. Called once; the plan and the
  // mapped file outlive the backend. Advances `control` by each tensor's bytes as it is
  // prepared and returns Aborted (what it built is freed with the backend) once cancelled.
  virtual Status prepare(const ModelPlan& plan, LoadControl& control) = 0;
  virtual Status create_executor(const ExecutorOptions& options, std::unique_ptr<Executor>* out) = 0;
  virtual uint64_t weight_bytes() const = 0;
};

}  // namespace tessera
