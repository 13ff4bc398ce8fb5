import type { ArchDescription } from "./types.js";

/**
 * Phi-3 / Phi-3.5 / Phi-4 (llama.cpp's src/models/phi3.cpp): neox RoPE, a fused attn_qkv
 * (or separate q/k/v, as the file has it), one ffn_up holding [gate | up] for SwiGLU, q
 * scaled by 1/sqrt(head_dim) before attention, and for the 128k models LongRoPE's long and
 * short frequency factors with rope.scaling.attn_factor. llama.cpp turns Phi's sliding
 * window off (its conversions do not describe it correctly), and so does this description.
 */
export const phi3: ArchDescription = {
  name: "phi3",
  norm: "rms",
  rope: "neox",
  activation: "silu",
  qkNorm: "none",
  qkvBias: "optional",
  outputBias: "none",
  ffnBias: "none",
  lmHeadBias: "none",
  ropeFreqs: "none",
  ffn: "dense-fused-gate-up",
  slidingWindow: false,
  queryScale: { embdPerHeadAtBlocks: [] },
  fusedQkv: "optional",
  longRope: true,
};
