// matmul: picks the kernel for a weight product. Up to 8 tokens the work is bound by reading
// the weights once, so the GEMV (gemv.cu) streams them with q8 (quantized weights) or fp32
// activations; above that the tensor-core GEMM (gemm.cu) reuses each weight tile across 64
// tokens and reads fp16 activations.
#include "cuda/ops.cuh"

namespace tessera::cuda {

namespace {

constexpr int kMaxGemvTokens = 8;

bool is_quantized(GgmlType t) { return t == GgmlType::Q8_0 || t == GgmlType::Q4_0 || t == GgmlType::Q4_K || t == GgmlType::Q6_K; }

}  // namespace

unsigned stage_formats_for(const DeviceMatrix& w, int n_tokens) {
  if (n_tokens > kMaxGemvTokens) return kStageF16;
  return is_quantized(w.type) ? kStageQ8 : kStageF32;
}

void launch_matmul(const DeviceMatrix& w, const StagedAct& act, int n_tokens, const MatmulOut& out, cudaStream_t s) {
  if (n_tokens > kMaxGemvTokens) launch_gemm(w, act.f16, n_tokens, out, s);
  else launch_gemv(w, act, n_tokens, out, s);
}

}  // namespace tessera::cuda
