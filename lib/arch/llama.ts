import type { ArchDescription } from "./types.js";

/** Llama 1/2/3, Mistral 7B, and Mixtral (llama with `llama.expert_count` > 0); FFN biases where a file has them. */
export const llama: ArchDescription = {
  name: "llama",
  norm: "rms",
  rope: "normal",
  activation: "silu",
  qkNorm: "none",
  qkvBias: "optional",
  outputBias: "optional",
  ffnBias: "optional",
  lmHeadBias: "none",
  ropeFreqs: "optional",
  ffn: "moe-if-experts",
  moe: { gating: "softmax", normTopKDefault: true, sharedExperts: "none" },
  slidingWindow: false,
};
