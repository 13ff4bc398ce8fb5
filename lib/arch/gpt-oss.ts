import type { ArchDescription } from "./types.js";

/**
 * OpenAI gpt-oss (llama.cpp's src/models/openai-moe.cpp, GGUF name "gpt-oss"): neox RoPE
 * (YaRN in the released files), q/k/v and output biases, a learned attention sink per head,
 * sliding-window blocks alternating with global ones (local first), and a mixture of experts
 * on every block: the router's logits plus its bias pick the top-k experts, whose weights are
 * the softmax of the picked logits; each expert has gate/up/down biases and the clamped
 * SwiGLU of the release (alpha 1.702, limit 7). Its pre-FFN norm is named
 * post_attention_norm. The experts ship as MXFP4.
 */
export const gptOss: ArchDescription = {
  name: "gpt-oss",
  norm: "rms",
  rope: "neox",
  activation: "swiglu-oai",
  qkNorm: "none",
  qkvBias: "optional",
  outputBias: "required",
  ffnBias: "none",
  lmHeadBias: "none",
  ropeFreqs: "none",
  ffn: "moe-if-experts",
  moe: { gating: "softmax-weight", normTopKDefault: false, sharedExperts: "none", biases: "required" },
  slidingWindow: true,
  slidingWindowPattern: { defaultPeriod: 2, globalFirst: false, unscaledRopeWhenWindowed: false, windowRequired: true },
  attentionSinks: "required",
  outputRequired: true,
  tensorNames: { ffnNorm: "post_attention_norm.weight" },
};
