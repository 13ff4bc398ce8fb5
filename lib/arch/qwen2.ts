import type { ArchDescription } from "./types.js";

/** Qwen2 / Qwen2.5: llama with neox RoPE and q/k/v biases; an LM head bias where a file has one. */
export const qwen2: ArchDescription = {
  name: "qwen2",
  norm: "rms",
  rope: "neox",
  activation: "silu",
  qkNorm: "none",
  qkvBias: "required",
  outputBias: "none",
  ffnBias: "none",
  lmHeadBias: "optional",
  ropeFreqs: "none",
  ffn: "dense",
  slidingWindow: false,
};
