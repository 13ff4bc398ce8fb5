/** GGUF tensor names, as llama.cpp's converters write them (shared by every architecture). */
export const GLOBAL_TENSORS = {
  tokEmbd: "token_embd.weight",
  outputNorm: "output_norm.weight",
  outputNormB: "output_norm.bias",
  output: "output.weight",
  outputB: "output.bias",
  ropeFreqs: "rope_freqs.weight",
  // LongRoPE (Phi-3 128k): per-pair frequency divisors for long and short contexts.
  ropeFactorsLong: "rope_factors_long.weight",
  ropeFactorsShort: "rope_factors_short.weight",
  // Encoders (bert, nomic-bert).
  posEmbd: "position_embd.weight",
  tokenTypes: "token_types.weight",
  tokEmbdNorm: "token_embd_norm.weight",
  tokEmbdNormB: "token_embd_norm.bias",
} as const;

/**
 * Per-block tensors: the name is `blk.${i}.${suffix}`. The native side has the same rows in
 * native/core/layer_roles.h; test/model/layer-roles.test.ts keeps the two in step.
 */
export const BLOCK_TENSORS = {
  attnNorm: "attn_norm.weight",
  attnNormB: "attn_norm.bias",
  wq: "attn_q.weight",
  wk: "attn_k.weight",
  wv: "attn_v.weight",
  wo: "attn_output.weight",
  bq: "attn_q.bias",
  bk: "attn_k.bias",
  bv: "attn_v.bias",
  bo: "attn_output.bias",
  // Fused q/k/v projection (encoders): rows [q | k | v].
  wqkv: "attn_qkv.weight",
  bqkv: "attn_qkv.bias",
  // Post-norm blocks (encoders): LayerNorm after the attention and after the FFN residual add.
  attnOutNorm: "attn_output_norm.weight",
  attnOutNormB: "attn_output_norm.bias",
  layerOutNorm: "layer_output_norm.weight",
  layerOutNormB: "layer_output_norm.bias",
  // Gemma 2/3: RMSNorm of the attention and the FFN output before its residual add.
  attnPostNorm: "post_attention_norm.weight",
  ffnPostNorm: "post_ffw_norm.weight",
  qNorm: "attn_q_norm.weight",
  kNorm: "attn_k_norm.weight",
  // Multi-head latent attention (deepseek2).
  wqA: "attn_q_a.weight",
  qANorm: "attn_q_a_norm.weight",
  wqB: "attn_q_b.weight",
  wkvA: "attn_kv_a_mqa.weight",
  kvANorm: "attn_kv_a_norm.weight",
  wkB: "attn_k_b.weight",
  wvB: "attn_v_b.weight",
  ffnNorm: "ffn_norm.weight",
  ffnNormB: "ffn_norm.bias",
  ffnGate: "ffn_gate.weight",
  ffnUp: "ffn_up.weight",
  ffnDown: "ffn_down.weight",
  ffnGateB: "ffn_gate.bias",
  ffnUpB: "ffn_up.bias",
  ffnDownB: "ffn_down.bias",
  ffnGateInp: "ffn_gate_inp.weight",
  // gpt-oss: the router's bias (added to its logits) and per-expert biases [width, n_expert].
  ffnGateInpB: "ffn_gate_inp.bias",
  ffnGateExpsB: "ffn_gate_exps.bias",
  ffnUpExpsB: "ffn_up_exps.bias",
  ffnDownExpsB: "ffn_down_exps.bias",
  // gpt-oss: a learned logit per head that joins every softmax denominator.
  attnSinks: "attn_sinks.weight",
  ffnGateExps: "ffn_gate_exps.weight",
  ffnUpExps: "ffn_up_exps.weight",
  ffnDownExps: "ffn_down_exps.weight",
  ffnExpProbsB: "exp_probs_b.bias",
  ffnGateShexp: "ffn_gate_shexp.weight",
  ffnUpShexp: "ffn_up_shexp.weight",
  ffnDownShexp: "ffn_down_shexp.weight",
  ffnGateInpShexp: "ffn_gate_inp_shexp.weight",
  // Mamba-2 blocks (ssm_a and ssm_d have no ".weight" suffix, as llama.cpp names them).
  ssmIn: "ssm_in.weight",
  ssmConv1d: "ssm_conv1d.weight",
  ssmConv1dB: "ssm_conv1d.bias",
  ssmDtB: "ssm_dt.bias",
  ssmA: "ssm_a",
  ssmD: "ssm_d",
  ssmNorm: "ssm_norm.weight",
  ssmOut: "ssm_out.weight",
} as const;

export type BlockTensorRole = keyof typeof BLOCK_TENSORS;

/** Tensors a layer multiplies activations with: their types must be computable (the rest are F32). */
export const MATMUL_ROLES: ReadonlySet<BlockTensorRole> = new Set<BlockTensorRole>([
  "wq", "wk", "wv", "wo", "ffnGate", "ffnUp", "ffnDown", "ffnGateInp", "ffnGateExps", "ffnUpExps",
  "ffnDownExps", "ffnGateShexp", "ffnUpShexp", "ffnDownShexp", "ffnGateInpShexp", "wqA", "wqB", "wkvA", "wkB", "wvB", "wqkv",
  "ssmIn", "ssmOut",
]);

/** The GGUF name of a block's tensor; `names` (ArchDescription.tensorNames) renames a role. */
export function blockTensorName(block: number, role: BlockTensorRole, names?: Partial<Record<BlockTensorRole, string>>): string {
  return `blk.${block}.${names?.[role] ?? BLOCK_TENSORS[role]}`;
}
