import type { ArchDescription } from "./types.js";

/**
 * DeepSeek-V2 / V2-Lite / V3 (and R1): multi-head latent attention, normal-style RoPE on the
 * rope part of each head, leading dense blocks then MoE with shared experts; softmax gating
 * unless the file says sigmoid (V3, with the exp_probs_b selection bias and group-limited
 * top-k), routing weights renormalized only when the file says so, times expert_weights_scale.
 */
export const deepseek2: ArchDescription = {
  name: "deepseek2",
  norm: "rms",
  rope: "normal",
  activation: "silu",
  qkNorm: "none",
  qkvBias: "none",
  outputBias: "none",
  ffnBias: "none",
  lmHeadBias: "none",
  ropeFreqs: "none",
  ffn: "moe-after-leading-dense",
  moe: { gating: "softmax", normTopKDefault: false, sharedExperts: "required", selectionBias: "optional" },
  slidingWindow: false,
  mla: { yarnLogMultiplier: "softmax-scale" },
};
