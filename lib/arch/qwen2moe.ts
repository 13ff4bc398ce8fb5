import type { ArchDescription } from "./types.js";

/** Qwen2-MoE / Qwen1.5-MoE: qwen2 attention; softmax top-k router, a shared expert with a sigmoid gate. */
export const qwen2moe: ArchDescription = {
  name: "qwen2moe",
  norm: "rms",
  rope: "neox",
  activation: "silu",
  qkNorm: "none",
  qkvBias: "required",
  outputBias: "none",
  ffnBias: "none",
  lmHeadBias: "none",
  ropeFreqs: "none",
  ffn: "moe-if-experts",
  moe: { gating: "softmax", normTopKDefault: false, sharedExperts: "required" },
  slidingWindow: false,
};
