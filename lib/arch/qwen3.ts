import type { ArchDescription } from "./types.js";

/** Qwen3: neox RoPE, per-head RMSNorm of q and k before RoPE, no biases. */
export const qwen3: ArchDescription = {
  name: "qwen3",
  norm: "rms",
  rope: "neox",
  activation: "silu",
  qkNorm: "required",
  qkvBias: "none",
  outputBias: "none",
  ffn: "dense",
  slidingWindow: false,
};
