/**
 * An architecture is data: which GGUF keys hold its hyperparameters, which tensors each
 * block has, and the block recipe (norm, RoPE style, q/k-norm, biases, FFN kind). The plan
 * builder (lib/model/plan.ts) interprets a description; nothing else branches on the name.
 * The tensors a description names (required or optional) are all a file of the architecture
 * may hold: the plan builder refuses any other tensor, as llama.cpp does, rather than run the
 * model without it. Optional tensors follow llama.cpp's loader (src/models/<arch>.cpp).
 */

export type NormKind = "rms" | "layer";
export type RopeStyle = "normal" | "neox" | "none";
/** "swiglu-oai": gpt-oss's clamped gate: min(g, 7) * sigmoid(1.702 min(g, 7)) * (clamp(u, -7, 7) + 1). */
export type GateActivation = "silu" | "gelu" | "swiglu-oai";
/** "required": every block must have it; "optional": used when the file has it. */
export type Presence = "none" | "optional" | "required";
export type FfnKind =
  /** gate/up/down SwiGLU in every block. */
  | "dense"
  /** up -> activation -> down in every block, no gate (BERT's GELU FFN). */
  | "dense-ungated"
  /** One ffn_up [n_embd, 2 * n_ff] holding [gate | up], then SwiGLU and down (Phi-3). */
  | "dense-fused-gate-up"
  /** Mixture of experts in every block (when `${arch}.expert_count` > 0), dense otherwise. */
  | "moe-if-experts"
  /** The first `leading_dense_block_count` blocks dense, the rest mixture of experts. */
  | "moe-after-leading-dense";

export interface MoeRecipe {
  /**
   * "softmax-weight" (gpt-oss): experts picked by raw logit, their weights the softmax of the
   * picked logits alone; the file's expert_gating_func is not read (llama.cpp's graph fixes it).
   */
  gating: "softmax" | "sigmoid" | "softmax-weight";
  /** Router bias (ffn_gate_inp.bias, added to the logits) and per-expert biases (ffn_*_exps.bias). */
  biases?: Presence;
  /** Renormalize the top-k weights when the file doesn't say (`${arch}.expert_weights_norm`). */
  normTopKDefault: boolean;
  /** Shared experts (ffn_*_shexp) present: "required", or "optional". */
  sharedExperts: Presence;
  /** Expert selection bias (exp_probs_b); default: "optional" with sigmoid gating, else "none". */
  selectionBias?: Presence;
}

/**
 * Multi-head latent attention (DeepSeek-V2/V3): keys and values come from one compressed
 * latent per token (attn_kv_a_mqa, normalized by attn_kv_a_norm) plus a shared RoPE'd key
 * part; q optionally through a low-rank pair (attn_q_a, attn_q_a_norm, attn_q_b); the
 * per-head up-projections attn_k_b / attn_v_b are absorbed into q and the output, so the KV
 * cache holds only the latent and runs as MQA with one KV head of width kv_lora + rope.
 */
export interface MlaRecipe {
  /**
   * How the file's rope.scaling.yarn_log_multiplier (0.1 * mscale_all_dim) applies under
   * YaRN. "softmax-scale": the magnitude correction 1 + 0.1 * mscale_all_dim * ln(factor)
   * multiplies the softmax scale squared and RoPE itself rotates without one (DeepSeek).
   */
  yarnLogMultiplier: "softmax-scale";
}

/**
 * Scalar multipliers read from the file (Granite): each key, when present and nonzero,
 * changes one step of the block recipe as llama.cpp's build_granite does.
 */
export interface Multipliers {
  /** `${arch}.embedding_scale`: multiplies the token embeddings. */
  embedding: Presence;
  /** `${arch}.residual_scale`: multiplies each attention and FFN output before its residual add. */
  residual: Presence;
  /** `${arch}.attention.scale`: the softmax scale, in place of 1/sqrt(head_dim). */
  attention: Presence;
  /** `${arch}.logit_scale`: the logits are multiplied by 1 / it. */
  logit: Presence;
}

export interface ArchDescription {
  /** The `general.architecture` value, also the prefix of the hyperparameter keys. */
  name: string;
  norm: NormKind;
  rope: RopeStyle;
  activation: GateActivation;
  /** Per-head RMSNorm of q and k (attn_q_norm / attn_k_norm). */
  qkNorm: Presence;
  /** q/k/v projection biases. */
  qkvBias: Presence;
  /** Attention output bias. */
  outputBias: Presence;
  /**
   * Dense FFN biases (ffn_gate/ffn_up/ffn_down.bias): gate and up biases are added before the
   * activation, the down bias after the down projection (llama.cpp's build_ffn).
   */
  ffnBias: Presence;
  /** LM head bias (output.bias), added to the logits. */
  lmHeadBias: Presence;
  /** Per-pair RoPE frequency divisors (rope_freqs.weight, as Llama 3.1 files have). */
  ropeFreqs: Presence;
  ffn: FfnKind;
  moe?: MoeRecipe;
  /**
   * Read `${arch}.attention.sliding_window` (0 or absent: no window) and apply it to every
   * block, or to the blocks `slidingWindowPattern` selects.
   */
  slidingWindow: boolean;
  slidingWindowPattern?: SlidingWindowPattern;
  /** Multi-head latent attention instead of q/k/v projections (absent: standard attention). */
  mla?: MlaRecipe;
  /** Scalar multipliers from the file's metadata (absent: none). */
  multipliers?: Multipliers;
  /** `${arch}.rope.scaling.finetuned` = false turns RoPE off (Granite; absent: on). */
  ropeSwitch?: boolean;
  /**
   * Gemma's block extras (absent: none): post-norms of the attention and FFN outputs, the
   * token embeddings scaled by sqrt(n_embd), soft-capped scores and logits.
   */
  gemma?: GemmaRecipe;
  /**
   * q multiplied by 1/sqrt(head_dim) after RoPE, then attention with softmax scale 1, as
   * llama.cpp's graph does it for Gemma and Phi-3 (ggml_scale of Qcur; the same math as the
   * usual softmax scale, rounded as llama.cpp rounds it). `embdPerHeadAtBlocks`: files with
   * these block counts use 1/sqrt(n_embd / n_head) instead (Gemma's 27B models).
   */
  queryScale?: { embdPerHeadAtBlocks: number[] };
  /**
   * Mistral 3: `${arch}.attention.temperature_scale` (when nonzero) multiplies q of the row at
   * position p by 1 + scale * ln(floor(p / L) + 1), L the original context
   * (rope.scaling.original_context_length), as llama.cpp's Llama 4 style temperature tuning.
   */
  attentionTemperature?: boolean;
  /**
   * YaRN's rope.scaling.yarn_log_multiplier as mscale_all_dim (Mistral 3; DeepSeek's MLA has
   * its own reading): RoPE's attention factor becomes attn_factor / (1 + 0.1 m ln s).
   */
  yarnLogMultiplier?: "rope-attn-factor";
  /** Attention sinks (attn_sinks.weight, a logit per head in every softmax's denominator; gpt-oss). */
  attentionSinks?: Presence;
  /**
   * GGUF names that differ from the usual role names (tensor-names.ts BLOCK_TENSORS): gpt-oss
   * calls its pre-FFN norm post_attention_norm.
   */
  tensorNames?: Partial<Record<import("./tensor-names.js").BlockTensorRole, string>>;
  /** Fused attn_qkv.weight (+ attn_qkv.bias) in place of attn_q/k/v, per block as the file has it (Phi-3). */
  fusedQkv?: Presence;
  /**
   * LongRoPE (Phi-3 128k): rope_factors_long.weight / rope_factors_short.weight, per-pair
   * frequency divisors; the long ones when the context is longer than the original
   * (rope.scaling.original_context_length), as llama.cpp picks them.
   */
  longRope?: boolean;
  /** The LM head is always the token embedding table; a file's output.weight is refused, as llama.cpp loads none (Gemma 2). */
  tiedOutput?: boolean;
  /** output.weight must be in the file (gpt-oss: llama.cpp does not fall back to the embeddings). */
  outputRequired?: boolean;
  /**
   * An encoder (BERT and kin) when set: bidirectional attention, post-norm blocks, input
   * embeddings beyond the token table, and no LM head. Absent: a causal decoder.
   */
  encoder?: EncoderRecipe;
  /**
   * Mamba-2 selective state-space blocks in place of attention (and of the FFN) when set:
   * `${arch}.ssm.*` sizes, blk.N.ssm_* tensors, and per-sequence recurrent state.
   */
  ssm?: SsmRecipe;
}

/**
 * A state-space recipe, as llama.cpp's build_mamba2_layer builds each block:
 *   x += ssm_out(groupRmsNorm(mamba2(rmsNorm(x; attn_norm))))
 * where mamba2 is in_proj -> [z | xBC | dt], a causal conv over xBC (+ bias, SiLU), the
 * selective scan with a scalar decay per head (+ D * x), times SiLU(z). The recurrent state
 * is kept per sequence (checkpointed in the KV blocks; see native/core/kv_cache.h).
 */
export interface SsmRecipe {
  /**
   * "all" (mamba2): every block is an SSM block, without attention or FFN. "no-kv-heads"
   * (granitehybrid): the blocks whose `${arch}.attention.head_count_kv` entry is 0 mix with
   * the SSM in place of attention and keep their FFN; the others are the recipe's attention
   * blocks.
   */
  blocks: "all" | "no-kv-heads";
  /** The conv bias ssm_conv1d.bias. */
  convBias: Presence;
}

/**
 * An encoder's recipe, as llama.cpp's src/models/bert.cpp builds its graph:
 *   x = token_embd[t] + token_types[0] + position_embd[pos]; x = LayerNorm(x; token_embd_norm)
 *   per block: x = LayerNorm(x + attn(x); attn_output_norm);
 *              x = LayerNorm(x + ffn(x); layer_output_norm)
 * Every token of an input attends to every other (no causal mask), so an input is evaluated
 * in one step from position 0; the hidden states are the last block's output (no final
 * norm), and there is no LM head: model.embed works, text generation is refused.
 */
export interface EncoderRecipe {
  /** Absolute position embeddings position_embd.weight [n_embd, n_positions] (bert). */
  positionEmbeddings: Presence;
  /** Token-type embeddings token_types.weight [n_embd, n_types]; row 0 is added to every token. */
  tokenTypes: Presence;
  /**
   * Fused attn_qkv.weight (and optional attn_qkv.bias) in place of attn_q/k/v: "optional"
   * takes either form per block, as llama.cpp's loader does.
   */
  fusedQkv: Presence;
}

/**
 * Interleaved local/global attention. The file's `${arch}.attention.sliding_window_pattern`
 * overrides the default: a scalar replaces the period, a per-block array (true: windowed)
 * replaces the whole pattern.
 */
export interface SlidingWindowPattern {
  /** Of every n blocks one attends globally, the others through the window; 0: all windowed. */
  defaultPeriod: number;
  /** The global block opens each period (block % n == 0) rather than closing it (n - 1). */
  globalFirst: boolean;
  /** Windowed blocks rotate q/k with plain RoPE, ignoring the file's linear/YaRN scaling. */
  unscaledRopeWhenWindowed: boolean;
  /**
   * Windowed blocks rotate with `${arch}.rope.freq_base_swa` (this when absent) and no
   * scaling (Gemma 3's local blocks); absent: the file's RoPE.
   */
  windowedRopeBase?: number;
  /** The window when `${arch}.attention.sliding_window` is absent (Gemma 2: 4096); absent: no window. */
  defaultWindow?: number;
  /** `${arch}.attention.sliding_window` must be in the file (gpt-oss: llama.cpp requires it). */
  windowRequired?: boolean;
}

/**
 * Gemma 2/3, as llama.cpp's src/models/gemma2.cpp and gemma3.cpp build their graphs:
 *   x = token_embd[t] * sqrt(n_embd)
 *   per block: x += post_attention_norm(attn(attn_norm(x))); x += post_ffw_norm(ffn(ffn_norm(x)))
 * with q scaled as `queryScale` says (softmax scale 1), and the soft-caps
 * cap * tanh(v / cap) on attention scores and logits where the recipe reads them. The
 * `(1 + w)` of Gemma's RMSNorm is already in the file's norm weights (llama.cpp's converter
 * adds the 1), so the norms are plain RMSNorm.
 */
export interface GemmaRecipe {
  /** `${arch}.attn_logit_softcapping`, this when absent; undefined: never soft-capped. */
  attnSoftcapDefault?: number;
  /** `${arch}.final_logit_softcapping`, this when absent (0: none). */
  finalSoftcapDefault: number;
}
