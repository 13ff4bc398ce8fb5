import type { ArchDescription } from "./types.js";

/**
 * nomic-bert (nomic-embed-text): a BERT encoder with neox RoPE in place of position
 * embeddings, a fused qkv projection (separate q/k/v load too, as in llama.cpp), and a
 * SwiGLU FFN without biases (llama.cpp's graph ignores FFN biases for this architecture,
 * so a file with them is refused rather than run differently). Token-type row 0 is added to
 * every token; LayerNorm after each residual add; no LM head (embeddings only).
 */
export const nomicBert: ArchDescription = {
  name: "nomic-bert",
  norm: "layer",
  rope: "neox",
  activation: "silu",
  qkNorm: "none",
  qkvBias: "optional",
  outputBias: "optional",
  ffnBias: "none",
  lmHeadBias: "none",
  ropeFreqs: "none",
  ffn: "dense",
  slidingWindow: false,
  encoder: { positionEmbeddings: "none", tokenTypes: "required", fusedQkv: "optional" },
};
