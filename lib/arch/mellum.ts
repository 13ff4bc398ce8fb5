import type { ArchDescription } from "./types.js";

/**
 * Mellum: qwen3moe's block (q/k RMSNorm, neox RoPE, softmax top-k experts) with sliding-window
 * attention in three of every four blocks, the fourth global, unless the file's
 * `mellum.attention.sliding_window_pattern` says otherwise (0 or an all-true array: every
 * block windowed, i.e. Mistral-style). Of the GGUF architectures llama.cpp knows, this is the
 * llama-like one that honours `attention.sliding_window`; `llama` files ignore the key.
 */
export const mellum: ArchDescription = {
  name: "mellum",
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
  slidingWindow: true,
  slidingWindowPattern: { defaultPeriod: 4, globalFirst: false, unscaledRopeWhenWindowed: true },
};
