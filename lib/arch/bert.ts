import type { ArchDescription } from "./types.js";

/**
 * BERT encoders (BGE, MiniLM, E5): absolute position and token-type embeddings, LayerNorm
 * with biases after each residual add, q/k/v (or fused qkv) with biases, a GELU FFN without
 * a gate, no RoPE, bidirectional attention, no LM head (embeddings only). As llama.cpp's
 * src/models/bert.cpp: the attention output bias and the FFN biases are optional there too.
 */
export const bert: ArchDescription = {
  name: "bert",
  norm: "layer",
  rope: "none",
  activation: "gelu",
  qkNorm: "none",
  qkvBias: "optional",
  outputBias: "optional",
  ffnBias: "optional",
  lmHeadBias: "none",
  ropeFreqs: "none",
  ffn: "dense-ungated",
  slidingWindow: false,
  encoder: { positionEmbeddings: "required", tokenTypes: "required", fusedQkv: "optional" },
};
