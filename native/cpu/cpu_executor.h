// One session's CPU forward pass: KV cache, scratch activations, and a ThreadPool whose
// single region per batch chunk runs every layer with barriers between dependent ops.
#pragma once
#include <vector>

#include "core/aligned_buffer.h"
#include "core/backend.h"
#include "core/thread_pool.h"
#include "cpu/cpu_backend.h"

namespace tessera::cpu {

class CpuExecutor final : public Executor {
 public:
  explicit CpuExecutor(const CpuBackend& backend);
  Status init(const ExecutorOptions& options);
  Status eval(const int32_t* tokens, int n_tokens, int pos0, bool all_logits, float* logits) override;
  int capacity() const override { return capacity_; }
  uint64_t memory_bytes() const override { return kv_.size() + scratch_.size(); }

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
    void* act[5] = {};        // encoded activations per ActFormat (F32 unused: rows are read in place)
    float* attn_scratch = nullptr;  // per-thread attention work space
    int32_t* pos = nullptr;   // [B]
  };

  void layout(BumpAllocator& alloc);
  // Encodes x [n][cols] in every format `mask` (bit per ActFormat) names; ends with a barrier.
  void encode(const float* x, int n, int64_t cols, unsigned mask, int ith, int nth);
  const void* act_for(int weight, const float* x) const;
  void project(int weight, const float* x, int n, float* y, int64_t ldy, int ith, int nth) const;

  void forward(const int32_t* tokens, int n, int pos0, bool all_logits, float* logits, int ith, int nth);
  void attention_block(int il, int n, int pos0, int ith, int nth);
  void ffn_block(int il, int n, int ith, int nth);
  void norm(const float* x, int norm_w, int norm_b, float* y, int n, int ith, int nth) const;

  const CpuBackend& backend_;
  const ModelPlan& plan_;
  ThreadPool pool_;
  int capacity_ = 0;
  int batch_ = 0;
  size_t attn_scratch_floats_ = 0;
  AlignedBuffer kv_;
  AlignedBuffer scratch_;
  std::vector<KvLayer> kv_layers_;
  Scratch s_;
  bool stop_ = false;  // sampled by thread 0 from the abort flag, read by all after a barrier
};

}  // namespace tessera::cpu
