import type { ArchDescription } from "./types.js";

/**
 * Mamba-2 (state-space duality): every block is RMSNorm -> Mamba-2 mixer -> residual add,
 * no attention and no FFN (llama.cpp's src/models/mamba.cpp with build_mamba2_layer); the
 * LM head is output.weight or tied to the token embeddings. The attention fields below are
 * unused by its blocks; they say what a description must.
 */
export const mamba2: ArchDescription = {
  name: "mamba2",
  norm: "rms",
  rope: "none",
  activation: "silu",
  qkNorm: "none",
  qkvBias: "none",
  outputBias: "none",
  ffnBias: "none",
  lmHeadBias: "none",
  ropeFreqs: "none",
  ffn: "dense",
  slidingWindow: false,
  ssm: { blocks: "all", convBias: "required" },
};
