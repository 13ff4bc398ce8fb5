import type { ArchDescription } from "./types.js";

/** Qwen2 / Qwen2.5: llama with neox RoPE and q/k/v biases. */
export const qwen2: ArchDescription = {
  name: "qwen2",
  norm: "rms",
  rope: "neox",
  activation: "silu",
  qkNorm: "none",
  qkvBias: "required",
  outputBias: "none",
  ffn: "dense",
  slidingWindow: false,
};
