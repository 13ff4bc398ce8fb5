import type { ArchDescription } from "./types.js";

/**
 * IBM Granite 3.x (dense): llama blocks with four scalar multipliers from the file
 * (embedding, residual, attention and logit scales; llama.cpp's build_granite), and RoPE
 * that `granite.rope.scaling.finetuned = false` turns off. Biases and rope_freqs where a
 * file has them, as llama.cpp's loader takes them.
 */
export const granite: ArchDescription = {
  name: "granite",
  norm: "rms",
  rope: "normal",
  activation: "silu",
  qkNorm: "none",
  qkvBias: "optional",
  outputBias: "optional",
  ffnBias: "optional",
  lmHeadBias: "none",
  ropeFreqs: "optional",
  ffn: "dense",
  slidingWindow: false,
  multipliers: { embedding: "optional", residual: "optional", attention: "optional", logit: "required" },
  ropeSwitch: true,
};
