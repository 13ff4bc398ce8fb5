import type { ArchDescription } from "./types.js";

/**
 * Gemma 3 text models (llama.cpp's src/models/gemma3.cpp): Gemma 2's block with per-head q/k
 * RMSNorm and no attention soft-cap; logits soft-capped only when the file gives
 * final_logit_softcapping. With `gemma3.attention.sliding_window` set, five of every six
 * blocks are local, rotating with rope.freq_base_swa (10000 by default) and no scaling; the
 * sixth is global, with the file's base and linear scaling. The LM head is output.weight or
 * the token embedding table.
 */
export const gemma3: ArchDescription = {
  name: "gemma3",
  norm: "rms",
  rope: "neox",
  activation: "gelu",
  qkNorm: "required",
  qkvBias: "optional",
  outputBias: "none",
  ffnBias: "none",
  lmHeadBias: "none",
  ropeFreqs: "none",
  ffn: "dense",
  slidingWindow: true,
  slidingWindowPattern: { defaultPeriod: 6, globalFirst: false, unscaledRopeWhenWindowed: false, windowedRopeBase: 10000 },
  queryScale: { embdPerHeadAtBlocks: [62] },
  gemma: { finalSoftcapDefault: 0 },
};
