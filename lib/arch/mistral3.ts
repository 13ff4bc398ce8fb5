import type { ArchDescription } from "./types.js";

/**
 * Mistral 3 (Ministral 3 and kin; llama.cpp's src/models/mistral3.cpp): Llama's block, with
 * YaRN whose log multiplier is mscale_all_dim, and Llama 4 style attention temperature
 * (q scaled by position beyond the original context) when the file sets
 * attention.temperature_scale. Biases and rope_freqs where a file has them, experts as
 * Mixtral's when it has experts.
 */
export const mistral3: ArchDescription = {
  name: "mistral3",
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
  attentionTemperature: true,
  yarnLogMultiplier: "rope-attn-factor",
};
