// The CPU backend: weights packed for the AVX2/scalar kernels at load time, and executors
// that run the forward pass as one ThreadPool region per batch chunk.
#pragma once
#include <memory>
#include <vector>

#include "core/backend.h"
#include "cpu/ops.h"

namespace tessera::cpu {

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(const BackendOptions& options) : options_(options) {}
  const char* name() const override { return "cpu"; }
  Status prepare(const ModelPlan& plan, LoadControl& control) override;
  Status create_executor(const ExecutorOptions& options, std::unique_ptr<Executor>* out) override;
  uint64_t weight_bytes() const override { return weight_bytes_; }

  const ModelPlan& plan() const { return *plan_; }
  // The packed form of plan tensor `index` (only matmul weights are packed).
  const PackedWeight& weight(int index) const { return packed_[index]; }
  const float* f32(int index) const {
    return index < 0 ? nullptr : reinterpret_cast<const float*>(plan_->tensors[index].data);
  }
  int threads() const { return options_.threads; }

 private:
  BackendOptions options_;
  const ModelPlan* plan_ = nullptr;
  std::vector<PackedWeight> packed_;  // indexed like plan.tensors; empty entries for non-matmul tensors
  uint64_t weight_bytes_ = 0;
};

}  // namespace tessera::cpu
