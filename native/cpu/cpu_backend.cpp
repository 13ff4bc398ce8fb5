#include "cpu/cpu_backend.h"

#include "core/aligned_buffer.h"

#include "cpu/cpu_executor.h"

namespace tessera {

std::unique_ptr<Backend> create_cpu_backend(const BackendOptions& options) {
  return std::make_unique<cpu::CpuBackend>(options);
}

}  // namespace tessera

namespace tessera::cpu {

namespace {

// Plan tensors that are multiplied with activations (the Matmul roles of core/layer_roles.h),
// each packed once.
std::vector<int> matmul_tensor_indices(const ModelPlan& plan) {
  // The LM head (tok_embd when tied); an encoder has none and reads tok_embd by row only.
  std::vector<int> out;
  if (plan.lm_head) out.push_back(plan.output >= 0 ? plan.output : plan.tok_embd);
  for (const LayerPlan& L : plan.layers)
    for (int r = 0; r < kLayerRoleCount; ++r)
      if (kLayerRoles[r].kind == RoleKind::Matmul && L[static_cast<LayerRole>(r)] >= 0)
        out.push_back(L[static_cast<LayerRole>(r)]);
  return out;
}

}  // namespace

Status CpuBackend::prepare(const ModelPlan& plan, LoadControl& control) {
  plan_ = &plan;
  packed_.assign(plan.tensors.size(), PackedWeight{});
  weight_bytes_ = 0;
  HugePageArena arena;  // the small weights side by side in huge pages (aligned_buffer.h)
  for (int index : matmul_tensor_indices(plan)) {
    if (packed_[index].data) continue;  // shared between roles (tied embeddings)
    TESSERA_RETURN_IF_ERROR(pack_weight(plan.tensors[index], &packed_[index], true, options_.weights_in_memory, &arena));
    weight_bytes_ += plan.tensors[index].nbytes;
    TESSERA_RETURN_IF_ERROR(control.advance(plan.tensors[index].nbytes));
  }
  return Status::ok();
}

Status CpuBackend::create_executor(const ExecutorOptions& options, std::unique_ptr<Executor>* out) {
  auto executor = std::make_unique<CpuExecutor>(*this);
  TESSERA_RETURN_IF_ERROR(executor->init(options));
  *out = std::move(executor);
  return Status::ok();
}

}  // namespace tessera::cpu
