// matmul: picks the kernel for a weight product. Up to 8 tokens the work is bound by reading
// the weights once, so the GEMV (gemv.cu) streams them with q8 (quantized weights) or fp32
// activations; above that the tensor-core GEMM (gemm.cu) reuses each weight tile across 64
// tokens and reads fp16 activations. The grouped expert products (launch_moe_matmul) switch
// at the same token count, so their staged formats follow stage_formats_for too.
#include "core/weight_types.h"
#include "cuda/ops.cuh"

namespace tessera::cuda {

namespace {

constexpr int kMaxGemvTokens = 8;

// The block-quantized weight types (core/weight_types.h less the float ones) take q8 activations.
bool is_quantized(GgmlType t) { return is_matmul_type(t) && !is_float_type(t); }

}  // namespace

bool matmul_uses_gemm(int n_tokens) { return n_tokens > kMaxGemvTokens; }

unsigned gemv_formats_for(const DeviceMatrix& w) { return is_quantized(w.type) ? kStageQ8 : kStageF32; }

unsigned stage_formats_for(const DeviceMatrix& w, int n_tokens) {
  return matmul_uses_gemm(n_tokens) ? kStageF16 : gemv_formats_for(w);
}

void launch_matmul(const DeviceMatrix& w, const StagedAct& act, int n_tokens, const MatmulOut& out, cudaStream_t s) {
  if (matmul_uses_gemm(n_tokens)) launch_gemm(w, act.f16, n_tokens, out, s);
  else launch_gemv(w, act, n_tokens, out, s);
}

void launch_moe_matmul(const ExpertWeights& w, const MoeMatmul& m, const StagedAct& act, const MatmulOut& out,
                       cudaStream_t s) {
  const int pairs = m.n_tokens * m.k;
  if (matmul_uses_gemm(m.n_tokens))
    launch_moe_gemm(w, m.groups, moe_max_tiles(pairs, m.n_expert), m.in_div, act.f16, out, s);
  else launch_moe_gemv(w, m.experts, pairs, m.in_div, act, out, s);
}

}  // namespace tessera::cuda
