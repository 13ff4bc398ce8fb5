import type { ArchDescription } from "./types.js";

/** Qwen3-MoE: qwen3 attention; softmax top-k router with renormalized weights, no shared expert. */
export const qwen3moe: ArchDescription = {
  name: "qwen3moe",
  norm: "rms",
  rope: "neox",
  activation: "silu",
  qkNorm: "required",
  qkvBias: "optional",
  outputBias: "none",
  ffnBias: "none",
  lmHeadBias: "none",
  ropeFreqs: "none",
  ffn: "moe-if-experts",
  moe: { gating: "softmax", normTopKDefault: true, sharedExperts: "none" },
  slidingWindow: false,
};
