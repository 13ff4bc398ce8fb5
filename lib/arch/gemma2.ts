import type { ArchDescription } from "./types.js";

/**
 * Gemma 2 (llama.cpp's src/models/gemma2.cpp): neox RoPE, GELU-gated FFN, post-norms on the
 * attention and FFN outputs, embeddings times sqrt(n_embd), q scaled before attention, and
 * soft-capped attention scores (50) and logits (30) unless the file says otherwise. Blocks
 * alternate local (sliding window, 4096 by default) and global attention, local first. The
 * LM head is the token embedding table (llama.cpp loads no output.weight).
 */
export const gemma2: ArchDescription = {
  name: "gemma2",
  norm: "rms",
  rope: "neox",
  activation: "gelu",
  qkNorm: "none",
  qkvBias: "optional",
  outputBias: "none",
  ffnBias: "none",
  lmHeadBias: "none",
  ropeFreqs: "none",
  ffn: "dense",
  slidingWindow: true,
  slidingWindowPattern: { defaultPeriod: 2, globalFirst: false, unscaledRopeWhenWindowed: false, defaultWindow: 4096 },
  queryScale: { embdPerHeadAtBlocks: [46] },
  gemma: { attnSoftcapDefault: 50, finalSoftcapDefault: 30 },
  tiedOutput: true,
};
