import type { ArchDescription } from "./types.js";

/** Qwen3: neox RoPE, per-head RMSNorm of q and k before RoPE; q/k/v biases where a file has them (llama.cpp applies them). */
export const qwen3: ArchDescription = {
  name: "qwen3",
  norm: "rms",
  rope: "neox",
  activation: "silu",
  qkNorm: "required",
  qkvBias: "optional",
  outputBias: "none",
  ffnBias: "none",
  lmHeadBias: "none",
  ropeFreqs: "none",
  ffn: "dense",
  slidingWindow: false,
};
