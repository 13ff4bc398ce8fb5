// The per-block tensor roles of a ModelPlan: one row per role, expanded into LayerPlan's
// fields (core/model_plan.h), the plan conversion (addon/plan_from_js.cpp), the type and
// presence checks (core/model.cpp), the CPU packer's matmul list (cpu/cpu_backend.cpp) and
// the addon's `layerRoles()` export, which test/model/layer-roles.test.ts compares with
// lib/arch/tensor-names.ts (BLOCK_TENSORS, MATMUL_ROLES). A new per-block tensor is one row
// here and one in tensor-names.ts; what the block computes with it stays in the executors.
//
// X(field, jsName, gguf suffix (blk.N.<suffix>), kind, presence, label for messages)
//   kind:     Matmul (multiplied with activations: any compute type), Norm (an F32 norm
//             weight), Bias (an F32 vector added or used for selection), Param (another F32
//             parameter: Mamba-2's conv taps, decays and skips)
//   presence: Required (every block whose recipe (dense/MoE, MHA/MLA) uses it has it),
//             Optional (the architecture description decides)
#pragma once

#define TESSERA_LAYER_ROLES(X)                                                                        \
  X(attn_norm, attnNorm, "attn_norm.weight", Norm, Required, "attention norm")                         \
  X(attn_norm_b, attnNormB, "attn_norm.bias", Bias, Optional, "attention norm bias")                   \
  X(wq, wq, "attn_q.weight", Matmul, Required, "attention q")                                          \
  X(wk, wk, "attn_k.weight", Matmul, Required, "attention k")                                          \
  X(wv, wv, "attn_v.weight", Matmul, Required, "attention v")                                          \
  X(wo, wo, "attn_output.weight", Matmul, Required, "attention output")                                \
  X(bq, bq, "attn_q.bias", Bias, Optional, "q bias")                                                   \
  X(bk, bk, "attn_k.bias", Bias, Optional, "k bias")                                                   \
  X(bv, bv, "attn_v.bias", Bias, Optional, "v bias")                                                   \
  X(bo, bo, "attn_output.bias", Bias, Optional, "output bias")                                         \
  X(wqkv, wqkv, "attn_qkv.weight", Matmul, Optional, "fused attention qkv")                             \
  X(bqkv, bqkv, "attn_qkv.bias", Bias, Optional, "fused qkv bias")                                     \
  X(attn_out_norm, attnOutNorm, "attn_output_norm.weight", Norm, Optional, "attention output norm")    \
  X(attn_out_norm_b, attnOutNormB, "attn_output_norm.bias", Bias, Optional, "attention output norm bias") \
  X(layer_out_norm, layerOutNorm, "layer_output_norm.weight", Norm, Optional, "layer output norm")     \
  X(layer_out_norm_b, layerOutNormB, "layer_output_norm.bias", Bias, Optional, "layer output norm bias") \
  X(attn_post_norm, attnPostNorm, "post_attention_norm.weight", Norm, Optional, "post-attention norm") \
  X(ffn_post_norm, ffnPostNorm, "post_ffw_norm.weight", Norm, Optional, "post-FFN norm")              \
  X(q_norm, qNorm, "attn_q_norm.weight", Norm, Optional, "q norm")                                     \
  X(k_norm, kNorm, "attn_k_norm.weight", Norm, Optional, "k norm")                                     \
  X(wq_a, wqA, "attn_q_a.weight", Matmul, Required, "attention q low-rank down")                       \
  X(q_a_norm, qANorm, "attn_q_a_norm.weight", Norm, Required, "attention q low-rank norm")             \
  X(wq_b, wqB, "attn_q_b.weight", Matmul, Required, "attention q low-rank up")                         \
  X(wkv_a, wkvA, "attn_kv_a_mqa.weight", Matmul, Required, "attention kv latent")                      \
  X(kv_a_norm, kvANorm, "attn_kv_a_norm.weight", Norm, Required, "attention kv latent norm")           \
  X(wk_b, wkB, "attn_k_b.weight", Matmul, Required, "attention k up-projection")                       \
  X(wv_b, wvB, "attn_v_b.weight", Matmul, Required, "attention v up-projection")                       \
  X(ffn_norm, ffnNorm, "ffn_norm.weight", Norm, Required, "ffn norm")                                  \
  X(ffn_norm_b, ffnNormB, "ffn_norm.bias", Bias, Optional, "ffn norm bias")                            \
  X(ffn_gate, ffnGate, "ffn_gate.weight", Matmul, Required, "ffn gate")                                \
  X(ffn_up, ffnUp, "ffn_up.weight", Matmul, Required, "ffn up")                                        \
  X(ffn_down, ffnDown, "ffn_down.weight", Matmul, Required, "ffn down")                                \
  X(ffn_gate_b, ffnGateB, "ffn_gate.bias", Bias, Optional, "ffn gate bias")                            \
  X(ffn_up_b, ffnUpB, "ffn_up.bias", Bias, Optional, "ffn up bias")                                    \
  X(ffn_down_b, ffnDownB, "ffn_down.bias", Bias, Optional, "ffn down bias")                            \
  X(ffn_gate_inp, ffnGateInp, "ffn_gate_inp.weight", Matmul, Required, "expert router")                \
  X(ffn_gate_inp_b, ffnGateInpB, "ffn_gate_inp.bias", Bias, Optional, "expert router bias")             \
  X(ffn_gate_exps_b, ffnGateExpsB, "ffn_gate_exps.bias", Bias, Optional, "expert gate biases")          \
  X(ffn_up_exps_b, ffnUpExpsB, "ffn_up_exps.bias", Bias, Optional, "expert up biases")                  \
  X(ffn_down_exps_b, ffnDownExpsB, "ffn_down_exps.bias", Bias, Optional, "expert down biases")          \
  X(attn_sinks, attnSinks, "attn_sinks.weight", Param, Optional, "attention sinks")                     \
  X(ffn_gate_exps, ffnGateExps, "ffn_gate_exps.weight", Matmul, Required, "expert gates")              \
  X(ffn_up_exps, ffnUpExps, "ffn_up_exps.weight", Matmul, Required, "expert ups")                      \
  X(ffn_down_exps, ffnDownExps, "ffn_down_exps.weight", Matmul, Required, "expert downs")              \
  X(ffn_exp_probs_b, ffnExpProbsB, "exp_probs_b.bias", Bias, Optional, "expert selection bias")        \
  X(ffn_gate_shexp, ffnGateShexp, "ffn_gate_shexp.weight", Matmul, Optional, "shared expert gate")     \
  X(ffn_up_shexp, ffnUpShexp, "ffn_up_shexp.weight", Matmul, Optional, "shared expert up")             \
  X(ffn_down_shexp, ffnDownShexp, "ffn_down_shexp.weight", Matmul, Optional, "shared expert down")     \
  X(ffn_gate_inp_shexp, ffnGateInpShexp, "ffn_gate_inp_shexp.weight", Matmul, Optional, "shared expert gate input") \
  X(ssm_in, ssmIn, "ssm_in.weight", Matmul, Required, "ssm input projection")                         \
  X(ssm_conv1d, ssmConv1d, "ssm_conv1d.weight", Param, Required, "ssm conv")                            \
  X(ssm_conv1d_b, ssmConv1dB, "ssm_conv1d.bias", Bias, Optional, "ssm conv bias")                      \
  X(ssm_dt_b, ssmDtB, "ssm_dt.bias", Bias, Required, "ssm time step bias")                             \
  X(ssm_a, ssmA, "ssm_a", Param, Required, "ssm decay")                                                 \
  X(ssm_d, ssmD, "ssm_d", Param, Required, "ssm skip")                                                  \
  X(ssm_norm, ssmNorm, "ssm_norm.weight", Norm, Required, "ssm group norm")                            \
  X(ssm_out, ssmOut, "ssm_out.weight", Matmul, Required, "ssm output projection")

namespace tessera {

enum class RoleKind { Matmul, Norm, Bias, Param };
enum class RolePresence { Required, Optional };

enum class LayerRole {
#define TESSERA_ROLE_ENUM(field, js, suffix, kind, presence, label) field,
  TESSERA_LAYER_ROLES(TESSERA_ROLE_ENUM)
#undef TESSERA_ROLE_ENUM
};

struct LayerRoleInfo {
  const char* field;   // LayerPlan member
  const char* js;      // NativePlan layer key (TypeScript BlockTensorRole)
  const char* suffix;  // GGUF tensor name after "blk.N."
  RoleKind kind;
  RolePresence presence;
  const char* label;
};

inline constexpr LayerRoleInfo kLayerRoles[] = {
#define TESSERA_ROLE_INFO(field, js, suffix, kind, presence, label) \
  {#field, #js, suffix, RoleKind::kind, RolePresence::presence, label},
    TESSERA_LAYER_ROLES(TESSERA_ROLE_INFO)
#undef TESSERA_ROLE_INFO
};

inline constexpr int kLayerRoleCount = static_cast<int>(sizeof kLayerRoles / sizeof kLayerRoles[0]);

inline const LayerRoleInfo& layer_role_info(LayerRole r) { return kLayerRoles[static_cast<int>(r)]; }

inline const char* role_kind_name(RoleKind k) {
  return k == RoleKind::Matmul ? "matmul" : k == RoleKind::Norm ? "norm" : k == RoleKind::Bias ? "bias" : "param";
}

}  // namespace tessera
