// The two interfaces every compute backend (CPU here, CUDA in libtessera_cuda.so)
// implements. A Backend owns a model's prepared weights; an Executor owns one session's
// KV cache and scratch memory and runs the forward pass described by the ModelPlan.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "core/model_plan.h"
#include "core/status.h"

namespace tessera {

struct BackendOptions {
  int threads = 1;  // CPU threads (the CUDA backend uses them only while loading)
  int device = 0;   // CUDA device ordinal
};

struct ExecutorOptions {
  int context_size = 0;  // KV cache capacity in tokens
  int batch_size = 512;  // tokens per forward chunk during prefill
};

class Executor {
 public:
  virtual ~Executor() = default;

  // Runs n_tokens tokens at positions pos0 .. pos0 + n_tokens - 1, appending their keys and
  // values to the cache (positions >= pos0 are overwritten). Writes the logits of the last
  // token to logits [n_vocab], or of every token [n_tokens][n_vocab] when all_logits.
  // Token ids and positions are validated by the caller; this re-checks bounds cheaply.
  virtual Status eval(const int32_t* tokens, int n_tokens, int pos0, bool all_logits, float* logits) = 0;

  // Asks a running eval to stop at the next layer boundary (returns StatusCode::Aborted).
  void request_abort() { abort_.store(true, std::memory_order_relaxed); }

  virtual int capacity() const = 0;
  virtual uint64_t memory_bytes() const = 0;

 protected:
  bool take_abort() { return abort_.exchange(false, std::memory_order_relaxed); }

  // The bounds every eval re-checks: at least one token, positions inside the cache, ids
  // inside the vocabulary.
  static Status check_eval_args(const int32_t* tokens, int n_tokens, int pos0, int capacity, int n_vocab) {
    if (n_tokens < 1) return Status::error(StatusCode::InvalidArgument, "eval needs at least one token");
    if (pos0 < 0 || int64_t(pos0) + n_tokens > capacity)
      return Status::error(StatusCode::OutOfContext,
                           "positions " + std::to_string(pos0) + ".." + std::to_string(int64_t(pos0) + n_tokens - 1) +
                               " exceed the context size " + std::to_string(capacity) +
                               "; create the session with a larger contextSize or reset it");
    for (int i = 0; i < n_tokens; ++i)
      if (tokens[i] < 0 || tokens[i] >= n_vocab)
        return Status::error(StatusCode::InvalidArgument, "token id " + std::to_string(tokens[i]) + " is out of range");
    return Status::ok();
  }
  std::atomic<bool> abort_{false};
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual const char* name() const = 0;

  // Prepares (repacks, uploads) the weights `plan` refers to. Called once; the plan and the
  // mapped file outlive the backend.
  virtual Status prepare(const ModelPlan& plan) = 0;
  virtual Status create_executor(const ExecutorOptions& options, std::unique_ptr<Executor>* out) = 0;
  virtual uint64_t weight_bytes() const = 0;
};

}  // namespace tessera
