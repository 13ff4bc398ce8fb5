// The two interfaces every compute backend (CPU here, CUDA in libtessera_cuda.so)
// implements. A Backend owns a model's prepared weights; an Executor owns one session's
// KV cache and scratch memory and runs the forward pass described by the ModelPlan.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>

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
