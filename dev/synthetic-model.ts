/**
 * Writes GGUF models with random weights at real shapes, for conformance tests (small
 * shapes, compared with llama.cpp on the same file) and benchmarks (Llama-3.2-1B-,
 * Qwen2.5-0.5B-, SmolLM2-135M-like shapes). Vocabularies are real ones from ../shared so
 * that llama.cpp loads the files unchanged.
 *
 * Weights are Gaussian with scale 1/sqrt(fan_in) (unit-scale activations through every
 * block); the LM head rows get log-normal norms so the next-token distribution has a
 * clear head, like a trained model's, instead of near-ties everywhere.
 */
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { GGMLType, GGML_TYPE_INFO, GGUFValueType, type GGUFKV } from "../lib/gguf/types.js";
import { kv, writeGGUF, type GGUFTensorSpec } from "../lib/gguf/writer.js";
import { quantize } from "../lib/gguf/quantize.js";
import { readGGUF } from "../lib/gguf/reader.js";
import { Rng } from "../lib/sampling/rng.js";

export type WeightScheme = "F32" | "F16" | "BF16" | "Q8_0" | "Q4_0" | "Q4_K" | "Q6_K" | "Q4_K_M" | Block32Scheme | IssueKScheme;
/** The blocks-of-32 types of issue 28, every matmul weight in the one type. */
export type Block32Scheme = "Q5_0" | "Q4_1" | "Q5_1" | "IQ4_NL" | "MXFP4";
/** Issue 28's K-quant types, and llama.cpp's Q5_K_M / Q3_K_M per-tensor mixes. */
export type IssueKScheme = "Q5_K" | "Q5_K_M" | "Q3_K" | "Q3_K_M" | "Q2_K" | "IQ4_XS";
export type VocabSource = "stories" | "llama3" | "qwen2" | "smollm2" | "bert-bge";

export interface MoeShape {
  nExpert: number;
  nExpertUsed: number;
  nFfExp: number;
  /** Width of the shared expert (qwen2moe/deepseek2), 0 for none. */
  nFfShexp?: number;
  nSharedExpert?: number;
  gating?: "softmax" | "sigmoid";
  normTopK?: boolean;
  weightsScale?: number;
  leadingDenseBlocks?: number;
  nGroup?: number;
  nGroupUsed?: number;
  /** qwen2moe: sigmoid gate on the shared expert. */
  sharedGate?: boolean;
  /** deepseek-v3 style selection bias. */
  selectionBias?: boolean;
  /** gpt-oss: ffn_gate_inp.bias and per-expert ffn_{gate,up,down}_exps.bias. */
  biases?: boolean;
}

export interface ModelShape {
  architecture: string;
  nLayer: number;
  nEmbd: number;
  nHead: number;
  nHeadKv: number;
  headDim?: number;
  nFf: number;
  contextLength: number;
  ropeFreqBase?: number;
  normEps?: number;
  tiedEmbeddings?: boolean;
  qkvBias?: boolean;
  /** ffn_gate/ffn_up/ffn_down biases on every dense block (llama). */
  ffnBias?: boolean;
  /** An LM head bias, output.bias (qwen2). */
  lmHeadBias?: boolean;
  qkNorm?: boolean;
  slidingWindow?: number;
  /**
   * `${arch}.attention.sliding_window_pattern`: a period n (every n-th layer global, 0: every
   * layer windowed) or one flag per layer (true: windowed).
   */
  slidingWindowPattern?: number | boolean[];
  moe?: MoeShape;
  /**
   * RoPE context extension as the GGUF metadata describes it; without a type only
   * rope.scaling.factor is written (llama.cpp reads that as linear scaling).
   */
  ropeScaling?: { type?: "linear" | "yarn"; factor: number; originalContext?: number };
  /** Write a rope_freqs.weight tensor (per-pair frequency divisors, as Llama 3.1 files have). */
  ropeFreqFactors?: boolean;
  /** Multi-head latent attention (deepseek2; nHeadKv must be 1), in llama.cpp's split attn_k_b/attn_v_b layout. */
  mla?: MlaShape;
  /** `${arch}.pooling_type` for embedding models (llama.cpp's numbering: 0 none, 1 mean, 2 cls, 3 last). */
  poolingType?: number;
  /** Granite's multipliers: `${arch}.embedding_scale`, `residual_scale`, `attention.scale`, `logit_scale`. */
  multipliers?: { embedding?: number; residual?: number; attention?: number; logit?: number };
  /** `${arch}.rope.scaling.finetuned` (Granite: false turns RoPE off). */
  ropeFinetuned?: boolean;
  /** attn_output.bias in every block. */
  outputBias?: boolean;
  /** attn_sinks.weight [n_head] in every block (gpt-oss). */
  attentionSinks?: boolean;
  /** The pre-FFN norm's GGUF name after `blk.N.` (gpt-oss: post_attention_norm.weight). */
  ffnNormName?: string;
  /** Mistral 3's `${arch}.attention.temperature_scale`. */
  attnTemperature?: number;
  /** `${arch}.rope.scaling.yarn_log_multiplier` (Mistral 3: mscale_all_dim). */
  yarnLogMul?: number;
  /** Phi-3's fused tensors: attn_qkv in place of attn_q/k/v, ffn_up [n_embd, 2 * nFf] in place of ffn_gate/ffn_up. */
  fused?: { qkv: boolean; gateUp: boolean };
  /** Phi-3's LongRoPE: rope_factors_long/short.weight and rope.scaling.attn_factor. */
  longRope?: { attnFactor: number; originalContext: number };
  /** Gemma's post_attention_norm / post_ffw_norm in every block. */
  postNorms?: boolean;
  /** `${arch}.attn_logit_softcapping` / `final_logit_softcapping` (Gemma). */
  softcaps?: { attention?: number; final?: number };
  /** `${arch}.rope.freq_base_swa`: the RoPE base of windowed blocks (Gemma 3). */
  ropeFreqBaseSwa?: number;
  /** An encoder (bert, nomic-bert): post-norm LayerNorm blocks, no LM head; see EncoderShape. */
  encoder?: EncoderShape;
  /**
   * Mamba-2 blocks: every block (mamba2; nHead, nHeadKv and nFf must be 0), or with
   * `ssmLayers` those blocks only, in place of attention (granitehybrid): see SsmShape.
   */
  ssm?: SsmShape;
  /** A hybrid's SSM blocks (true: SSM, written as head_count_kv 0); the rest attend. */
  ssmLayers?: boolean[];
}

/** Mamba-2's sizes, written as `${arch}.ssm.*` (llama.cpp's converter's keys). */
export interface SsmShape {
  dConv: number;
  dInner: number;
  dState: number;
  nGroup: number;
  /** ssm.time_step_rank: the head count. */
  nHead: number;
}

/**
 * An encoder's tensors, as llama.cpp's converter writes BERT-family files: token_embd_norm
 * (+bias), token_types [n_embd, 2], attn_output_norm / layer_output_norm (+biases) in every
 * block, no attn_norm/ffn_norm/output_norm/output.
 */
export interface EncoderShape {
  /** position_embd.weight [n_embd, contextLength] (bert); without it RoPE (nomic-bert). */
  positionEmbeddings: boolean;
  /** attn_qkv.weight in place of attn_q/k/v (nomic-bert). */
  fusedQkv: boolean;
  /** "gelu": ffn_up -> GELU -> ffn_down (bert); "swiglu": gate/up/down (nomic-bert). */
  ffn: "gelu" | "swiglu";
  /** q/k/v (or qkv), attention output and FFN up/down biases (bert). */
  biases: boolean;
}

export interface MlaShape {
  /** 0: attn_q (V2-Lite); else attn_q_a -> attn_q_a_norm -> attn_q_b (V3). */
  qLoraRank: number;
  kvLoraRank: number;
  headDimNope: number;
  headDimRope: number;
  headDimV: number;
  /** rope.scaling.yarn_log_multiplier as DeepSeek files store it: 0.1 * mscale_all_dim. */
  yarnLogMultiplier?: number;
}

export interface SyntheticOptions {
  weights: WeightScheme;
  vocab: VocabSource;
  seed?: number;
  /** Storage type of the LM head; default: the scheme's own type (Q6_K for Q4_K_M). */
  outputType?: GGMLType;
  /**
   * Benchmark files: every block gets block 0's weights and tensors of more than 4096 rows
   * repeat their first 4096 rows (still stored in full, so a forward pass reads as many
   * bytes); multi-GB files are written in seconds instead of minutes.
   */
  repeatLayers?: boolean;
  /**
   * Written as tokenizer.chat_template (a string), or as the default and named variants
   * (tokenizer.chat_template.<name>) when an object keyed by name ("default" for the first).
   */
  chatTemplate?: string | Record<string, string>;
}

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), path.basename(path.dirname(path.dirname(fileURLToPath(import.meta.url)))) === "dist" ? "../.." : "..");
export const sharedDir = path.resolve(repoRoot, "../shared");

/** Shapes of real models (hyperparameters as published in their config files). */
export const SHAPES = {
  "llama-3.2-1b": { architecture: "llama", nLayer: 16, nEmbd: 2048, nHead: 32, nHeadKv: 8, nFf: 8192, contextLength: 131072, ropeFreqBase: 500000, normEps: 1e-5, tiedEmbeddings: true },
  "qwen2.5-0.5b": { architecture: "qwen2", nLayer: 24, nEmbd: 896, nHead: 14, nHeadKv: 2, nFf: 4864, contextLength: 32768, ropeFreqBase: 1000000, normEps: 1e-6, tiedEmbeddings: true, qkvBias: true },
  "llama-3-8b": { architecture: "llama", nLayer: 32, nEmbd: 4096, nHead: 32, nHeadKv: 8, nFf: 14336, contextLength: 8192, ropeFreqBase: 500000, normEps: 1e-5 },
  "smollm2-135m": { architecture: "llama", nLayer: 30, nEmbd: 576, nHead: 9, nHeadKv: 3, nFf: 1536, contextLength: 8192, ropeFreqBase: 100000, normEps: 1e-5, tiedEmbeddings: true },
  // Qwen3-30B-A3B's layer (128 experts, 8 active, expert width 768, d=2048, GQA 32/4, head 128)
  // with 12 of its 48 layers: ~7.8B parameters, ~4.4 GB in Q4_0, the same active-expert
  // streaming pattern per token.
  "qwen3moe-30b-a3b-12l": { architecture: "qwen3moe", nLayer: 12, nEmbd: 2048, nHead: 32, nHeadKv: 4, headDim: 128, nFf: 6144, contextLength: 32768, ropeFreqBase: 1e6, normEps: 1e-6, tiedEmbeddings: true, qkNorm: true, moe: { nExpert: 128, nExpertUsed: 8, nFfExp: 768, normTopK: true } },
} satisfies Record<string, ModelShape>;

/** The vocabulary each real shape ships with. */
export const SHAPE_VOCAB: Record<keyof typeof SHAPES, VocabSource> = {
  "llama-3.2-1b": "llama3",
  "llama-3-8b": "llama3",
  "qwen2.5-0.5b": "qwen2",
  "smollm2-135m": "smollm2",
  "qwen3moe-30b-a3b-12l": "qwen2",
};

// ---------------------------------------------------------------- vocabularies

export interface Vocab {
  metadata: Array<[string, GGUFKV]>;
  size: number;
}

const TOKEN_NORMAL = 1;
const TOKEN_CONTROL = 3;
const TOKEN_UNUSED = 5;

function bpeVocab(pre: string, tokens: string[], types: number[], merges: string[], special: Record<string, number>): Vocab {
  return {
    size: tokens.length,
    metadata: [
      ["tokenizer.ggml.model", kv.str("gpt2")],
      ["tokenizer.ggml.pre", kv.str(pre)],
      ["tokenizer.ggml.tokens", kv.strArray(tokens)],
      ["tokenizer.ggml.token_type", kv.i32Array(Int32Array.from(types))],
      ["tokenizer.ggml.merges", kv.strArray(merges)],
      ...Object.entries(special).map(([k, id]): [string, GGUFKV] => [`tokenizer.ggml.${k}`, kv.u32(id)]),
    ],
  };
}

function readMerges(file: string): string[] {
  return fs
    .readFileSync(file, "utf8")
    .split(/\r?\n/)
    .filter((l) => l.length > 0 && !l.startsWith("#version"));
}

function tokensFromEncoder(encoder: Record<string, number>, size: number): { tokens: string[]; types: number[] } {
  const tokens = new Array<string>(size);
  const types = new Array<number>(size).fill(TOKEN_NORMAL);
  for (const [piece, id] of Object.entries(encoder)) if (id < size) tokens[id] = piece;
  for (let i = 0; i < size; i++)
    if (tokens[i] === undefined) {
      tokens[i] = `[PAD${i}]`;
      types[i] = TOKEN_UNUSED;
    }
  return { tokens, types };
}

export function loadVocab(source: VocabSource): Vocab {
  switch (source) {
    case "stories": {
      const file = readGGUF(path.join(sharedDir, "models/stories260K.gguf"));
      const metadata = [...file.metadata].filter(([k]) => k.startsWith("tokenizer."));
      const tokens = file.metadata.get("tokenizer.ggml.tokens")!.value as { items: string[] };
      return { metadata, size: tokens.items.length };
    }
    case "llama3": {
      const encoder = JSON.parse(fs.readFileSync(path.join(sharedDir, "tokenizers/llama3/encoder.json"), "utf8"));
      const { tokens, types } = tokensFromEncoder(encoder, 128256);
      const names: Record<number, string> = { 0: "<|begin_of_text|>", 1: "<|end_of_text|>", 6: "<|start_header_id|>", 7: "<|end_header_id|>", 8: "<|eom_id|>", 9: "<|eot_id|>", 10: "<|python_tag|>" };
      for (let i = 0; i < 256; i++) {
        tokens[128000 + i] = names[i] ?? `<|reserved_special_token_${i}|>`;
        types[128000 + i] = TOKEN_CONTROL;
      }
      const merges = readMerges(path.join(sharedDir, "tokenizers/llama3/vocab.bpe"));
      return bpeVocab("llama-bpe", tokens, types, merges, { bos_token_id: 128000, eos_token_id: 128009 });
    }
    case "qwen2": {
      const dir = path.join(sharedDir, "tokenizers/qwen2");
      const encoder = JSON.parse(fs.readFileSync(path.join(dir, "vocab.json"), "utf8"));
      const added = JSON.parse(fs.readFileSync(path.join(dir, "added_tokens.json"), "utf8")) as Record<string, number>;
      const { tokens, types } = tokensFromEncoder({ ...encoder, ...added }, 151936);
      for (const id of Object.values(added)) types[id] = TOKEN_CONTROL;
      return bpeVocab("qwen2", tokens, types, readMerges(path.join(dir, "merges.txt")), {
        bos_token_id: added["<|endoftext|>"],
        eos_token_id: added["<|im_end|>"] ?? added["<|endoftext|>"],
        padding_token_id: added["<|endoftext|>"],
      });
    }
    case "bert-bge": {
      // BGE's WordPiece vocabulary (llama.cpp's test vocab file), tokenizer keys as they are.
      const file = readGGUF(path.join(sharedDir, "tokenizers/vocab/ggml-vocab-bert-bge.gguf"));
      const metadata = [...file.metadata].filter(([k]) => k.startsWith("tokenizer."));
      const tokens = file.metadata.get("tokenizer.ggml.tokens")!.value as { items: string[] };
      return { metadata, size: tokens.items.length };
    }
    case "smollm2": {
      const json = JSON.parse(fs.readFileSync(path.join(sharedDir, "tokenizers/smollm2/tokenizer.json"), "utf8"));
      const { tokens, types } = tokensFromEncoder(json.model.vocab, 49152);
      for (const t of json.added_tokens as Array<{ id: number; special: boolean }>) if (t.special) types[t.id] = TOKEN_CONTROL;
      const merges = (json.model.merges as Array<string | [string, string]>).map((m) => (typeof m === "string" ? m : m.join(" ")));
      return bpeVocab("smollm", tokens, types, merges, { bos_token_id: 1, eos_token_id: 2 });
    }
  }
}

// ---------------------------------------------------------------- weights

class Gaussian {
  private readonly rng: Rng;
  private spare: number | undefined;
  constructor(seed: number) {
    this.rng = new Rng(seed);
  }
  next(): number {
    if (this.spare !== undefined) {
      const s = this.spare;
      this.spare = undefined;
      return s;
    }
    const u = 1 - this.rng.next();
    const v = this.rng.next();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }
  fill(n: number, scale: number, mean = 0): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = mean + scale * this.next();
    return out;
  }
}

function hashSeed(seed: number, name: string): number {
  let h = seed ^ 0x9e3779b9;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

const K_QUANTS = new Set([GGMLType.Q4_K, GGMLType.Q6_K, GGMLType.Q5_K, GGMLType.Q3_K, GGMLType.Q2_K, GGMLType.IQ4_XS]);

/** llama.cpp's use_more_bits (llama-quant.cpp): the first and last eighth of the layers and every third between. */
const useMoreBits = (i: number, n: number) => i < Math.trunc(n / 8) || i >= Math.trunc((7 * n) / 8) || (i - Math.trunc(n / 8)) % 3 === 2;

/**
 * llama.cpp's llama_tensor_get_type for the Q5_K_M and Q3_K_M mixes (non-Falcon, dense,
 * no imatrix): the LM head Q6_K; Q5_K_M: attn_v and ffn_down Q6_K in use_more_bits layers,
 * else Q5_K; Q3_K_M: attn_v Q5_K in layers 0-1 then Q4_K, ffn_down Q5_K in the first 16th
 * of the layers then Q4_K, attn_output (and fused qkv) Q4_K, the rest Q3_K.
 */
function issueKMixType(scheme: IssueKScheme, role: string, layer: [number, number] | undefined): GGMLType {
  const [i, n] = layer ?? [0, 1];
  if (scheme === "Q5_K" || scheme === "Q3_K" || scheme === "Q2_K" || scheme === "IQ4_XS") return GGMLType[scheme];
  if (role === "output") return GGMLType.Q6_K;
  if (scheme === "Q5_K_M") return (role === "attn_v" || role === "ffn_down") && layer && useMoreBits(i, n) ? GGMLType.Q6_K : GGMLType.Q5_K;
  if (role === "attn_v") return i < 2 ? GGMLType.Q5_K : GGMLType.Q4_K;
  if (role === "ffn_down") return i < Math.trunc(n / 16) ? GGMLType.Q5_K : GGMLType.Q4_K;
  if (role === "attn_output" || role === "attn_qkv") return GGMLType.Q4_K;
  return GGMLType.Q3_K;
}

/** The storage type of a matmul weight under a scheme; K-quants need rows of 256. */
function matmulType(scheme: WeightScheme, role: string, cols: number, outputType?: GGMLType, layer?: [number, number]): GGMLType {
  // llama.cpp's quantizer never quantizes expert routers: routing stays as exact as in the source model.
  if (role === "ffn_gate_inp") return GGMLType.F32;
  let t: GGMLType;
  // llama.cpp's quantizer never quantizes the expert router: routing is too sensitive to it.
  if (role === "ffn_gate_inp") return GGMLType.F32;
  if (role === "output" && outputType !== undefined) t = outputType;
  else if (scheme === "Q4_K_M") t = role === "output" || role === "attn_v" || role === "ffn_down" ? GGMLType.Q6_K : GGMLType.Q4_K;
  else if (scheme === "Q5_K" || scheme === "Q5_K_M" || scheme === "Q3_K" || scheme === "Q3_K_M" || scheme === "Q2_K" || scheme === "IQ4_XS") t = issueKMixType(scheme, role, layer);
  else t = GGMLType[scheme];
  // llama.cpp's quantizer falls back the same way for rows that are not whole super-blocks.
  if (K_QUANTS.has(t) && cols % 256 !== 0) t = GGMLType.Q8_0;
  if ((t === GGMLType.Q4_0 || t === GGMLType.Q8_0 || GGML_TYPE_INFO[t].blockSize === 32) && cols % 32 !== 0) t = GGMLType.F16;
  return t;
}

interface TensorPlan {
  name: string;
  dims: number[];
  type: GGMLType;
  /** The values of the first `rows` rows (all of them when omitted), rows of dims[0]. */
  make: (rows?: number) => Float32Array;
}

function tensorsFor(shape: ModelShape, nVocab: number, opts: SyntheticOptions): TensorPlan[] {
  const seed = opts.seed ?? 1;
  const e = shape.nEmbd;
  const hd = shape.headDim ?? e / shape.nHead;
  const out: TensorPlan[] = [];
  const gaussian = (name: string, n: number, scale: number, mean = 0, rowLength = n) => (rows?: number) =>
    new Gaussian(hashSeed(seed, name)).fill(rows === undefined ? n : rows * rowLength, scale, mean);
  const matmul = (name: string, role: string, cols: number, rows: number, extra: number[] = []) => {
    const count = cols * rows * extra.reduce((a, b) => a * b, 1);
    const blk = /^blk\.(\d+)\./.exec(name);
    const layer: [number, number] | undefined = blk ? [Number(blk[1]), shape.nLayer] : undefined;
    out.push({ name, dims: [cols, rows, ...extra], type: matmulType(opts.weights, role, cols, opts.outputType, layer), make: gaussian(name, count, 1 / Math.sqrt(cols), 0, cols) });
  };
  const vector = (name: string, n: number, mean: number, scale: number) =>
    out.push({ name, dims: [n], type: GGMLType.F32, make: gaussian(name, n, scale, mean) });
  const mlaTensors = (p: string, m: MlaShape) => {
    const qWidth = shape.nHead * (m.headDimNope + m.headDimRope);
    if (m.qLoraRank > 0) {
      matmul(`${p}attn_q_a.weight`, "attn_q_a", e, m.qLoraRank);
      vector(`${p}attn_q_a_norm.weight`, m.qLoraRank, 1, 0.1);
      matmul(`${p}attn_q_b.weight`, "attn_q_b", m.qLoraRank, qWidth);
    } else matmul(`${p}attn_q.weight`, "attn_q", e, qWidth);
    matmul(`${p}attn_kv_a_mqa.weight`, "attn_kv_a_mqa", e, m.kvLoraRank + m.headDimRope);
    vector(`${p}attn_kv_a_norm.weight`, m.kvLoraRank, 1, 0.1);
    // attn_k_b is the key up-projection transposed per head: its fan-in is the latent rank.
    const kb = `${p}attn_k_b.weight`;
    const kbCount = m.headDimNope * m.kvLoraRank * shape.nHead;
    out.push({ name: kb, dims: [m.headDimNope, m.kvLoraRank, shape.nHead], type: matmulType(opts.weights, "attn_k_b", m.headDimNope), make: gaussian(kb, kbCount, 1 / Math.sqrt(m.kvLoraRank), 0, m.headDimNope) });
    matmul(`${p}attn_v_b.weight`, "attn_v_b", m.kvLoraRank, m.headDimV, [shape.nHead]);
    matmul(`${p}attn_output.weight`, "attn_output", shape.nHead * m.headDimV, e);
  };

  // llama.cpp quantizes a tied embedding as the LM head it also is (Q6_K in the K mixes).
  const embdRole = shape.tiedEmbeddings && (opts.weights === "Q5_K_M" || opts.weights === "Q3_K_M") ? "output" : "token_embd";
  out.push({ name: "token_embd.weight", dims: [e, nVocab], type: matmulType(opts.weights, embdRole, e), make: gaussian("token_embd.weight", e * nVocab, 1, 0, e) });
  // A Mamba-2 mixer's tensors, at a checkpoint's ranges: time steps softplus(dt + dt_bias) of
  // ~0.01-0.3 (dt_bias near log(expm1(0.05))), decays A = -exp(A_log) in [-16, -1], D near 1.
  const ssmMixer = (p: string, s: SsmShape) => {
    const ch = s.dInner + 2 * s.nGroup * s.dState;
    const f32 = (name: string, dims: number[], make: () => Float32Array) => out.push({ name, dims, type: GGMLType.F32, make });
    matmul(`${p}ssm_in.weight`, "ssm_in", e, 2 * s.dInner + 2 * s.nGroup * s.dState + s.nHead);
    f32(`${p}ssm_conv1d.weight`, [s.dConv, ch], gaussian(`${p}ssm_conv1d.weight`, s.dConv * ch, 1 / Math.sqrt(s.dConv), 0, s.dConv));
    vector(`${p}ssm_conv1d.bias`, ch, 0, 0.1);
    vector(`${p}ssm_dt.bias`, s.nHead, -3, 0.5);
    f32(`${p}ssm_a`, [1, s.nHead], () => gaussian(`${p}ssm_a`, s.nHead, 0.6, 1.2)().map((v) => -Math.exp(Math.min(Math.max(v, 0), Math.log(16)))));
    f32(`${p}ssm_d`, [1, s.nHead], gaussian(`${p}ssm_d`, s.nHead, 0.1, 1));
    f32(`${p}ssm_norm.weight`, [s.dInner / s.nGroup, s.nGroup], gaussian(`${p}ssm_norm.weight`, s.dInner, 0.1, 1));
    matmul(`${p}ssm_out.weight`, "ssm_out", s.dInner, e);
  };
  if (shape.ssm && !shape.ssmLayers) {
    for (let b = 0; b < shape.nLayer; b++) {
      const p = `blk.${b}.`;
      vector(`${p}attn_norm.weight`, e, 1, 0.1);
      ssmMixer(p, shape.ssm);
    }
  } else if (shape.encoder) {
    encoderTensors(shape, shape.encoder, { matmul, vector, table: (name, rows) => out.push({ name, dims: [e, rows], type: GGMLType.F32, make: gaussian(name, e * rows, 0.5, 0, e) }) });
    return out;
  }
  for (let b = 0; b < shape.nLayer && !(shape.ssm && !shape.ssmLayers); b++) {
    const p = `blk.${b}.`;
    vector(`${p}attn_norm.weight`, e, 1, 0.1);
    const ssmBlock = shape.ssmLayers?.[b] === true;
    if (ssmBlock) ssmMixer(p, shape.ssm!);
    else if (shape.mla) mlaTensors(p, shape.mla);
    else {
      if (shape.fused?.qkv) matmul(`${p}attn_qkv.weight`, "attn_qkv", e, (shape.nHead + 2 * shape.nHeadKv) * hd);
      else {
        matmul(`${p}attn_q.weight`, "attn_q", e, shape.nHead * hd);
        matmul(`${p}attn_k.weight`, "attn_k", e, shape.nHeadKv * hd);
        matmul(`${p}attn_v.weight`, "attn_v", e, shape.nHeadKv * hd);
      }
      matmul(`${p}attn_output.weight`, "attn_output", shape.nHead * hd, e);
    }
    if (shape.postNorms && !ssmBlock) vector(`${p}post_attention_norm.weight`, e, 1, 0.1);
    if (shape.outputBias && !ssmBlock) vector(`${p}attn_output.bias`, e, 0, 0.5);
    // Sinks of a few units: comparable with the scores, so they take a visible share.
    if (shape.attentionSinks && !ssmBlock) vector(`${p}attn_sinks.weight`, shape.nHead, 0, 2);
    if (shape.qkvBias && !ssmBlock) {
      vector(`${p}attn_q.bias`, shape.nHead * hd, 0, 0.5);
      vector(`${p}attn_k.bias`, shape.nHeadKv * hd, 0, 0.5);
      vector(`${p}attn_v.bias`, shape.nHeadKv * hd, 0, 0.5);
    }
    if (shape.qkNorm && !ssmBlock) {
      vector(`${p}attn_q_norm.weight`, hd, 1, 0.1);
      vector(`${p}attn_k_norm.weight`, hd, 1, 0.1);
    }
    vector(`${p}${shape.ffnNormName ?? "ffn_norm.weight"}`, e, 1, 0.1);
    const moe = shape.moe;
    if (moe && b >= (moe.leadingDenseBlocks ?? 0)) {
      matmul(`${p}ffn_gate_inp.weight`, "ffn_gate_inp", e, moe.nExpert);
      matmul(`${p}ffn_gate_exps.weight`, "ffn_gate", e, moe.nFfExp, [moe.nExpert]);
      matmul(`${p}ffn_up_exps.weight`, "ffn_up", e, moe.nFfExp, [moe.nExpert]);
      matmul(`${p}ffn_down_exps.weight`, "ffn_down", moe.nFfExp, e, [moe.nExpert]);
      if (moe.selectionBias) vector(`${p}exp_probs_b.bias`, moe.nExpert, 0, 0.1);
      if (moe.biases) {
        vector(`${p}ffn_gate_inp.bias`, moe.nExpert, 0, 0.5);
        const table = (name: string, width: number) =>
          out.push({ name, dims: [width, moe.nExpert], type: GGMLType.F32, make: gaussian(name, width * moe.nExpert, 0.5, 0, width) });
        table(`${p}ffn_gate_exps.bias`, moe.nFfExp);
        table(`${p}ffn_up_exps.bias`, moe.nFfExp);
        table(`${p}ffn_down_exps.bias`, e);
      }
      if (moe.nFfShexp) {
        matmul(`${p}ffn_gate_shexp.weight`, "ffn_gate", e, moe.nFfShexp);
        matmul(`${p}ffn_up_shexp.weight`, "ffn_up", e, moe.nFfShexp);
        matmul(`${p}ffn_down_shexp.weight`, "ffn_down", moe.nFfShexp, e);
        if (moe.sharedGate) matmul(`${p}ffn_gate_inp_shexp.weight`, "ffn_gate_inp_shexp", e, 1);
      }
    } else if (shape.fused?.gateUp) {
      matmul(`${p}ffn_up.weight`, "ffn_up", e, 2 * shape.nFf);
      matmul(`${p}ffn_down.weight`, "ffn_down", shape.nFf, e);
    } else {
      matmul(`${p}ffn_gate.weight`, "ffn_gate", e, shape.nFf);
      matmul(`${p}ffn_up.weight`, "ffn_up", e, shape.nFf);
      matmul(`${p}ffn_down.weight`, "ffn_down", shape.nFf, e);
      if (shape.postNorms) vector(`${p}post_ffw_norm.weight`, e, 1, 0.1);
      if (shape.ffnBias) {
        vector(`${p}ffn_gate.bias`, shape.nFf, 0, 0.5);
        vector(`${p}ffn_up.bias`, shape.nFf, 0, 0.5);
        vector(`${p}ffn_down.bias`, e, 0, 0.5);
      }
    }
  }
  vector("output_norm.weight", e, 1, 0.1);
  if (shape.ropeFreqFactors) {
    const pairs = hd / 2;
    // Divisors from 1 (high frequencies) up to 8 (low frequencies), like Llama 3.1's.
    out.push({ name: "rope_freqs.weight", dims: [pairs], type: GGMLType.F32, make: () => Float32Array.from({ length: pairs }, (_, i) => 1 + (7 * i) / (pairs - 1)) });
  }
  if (shape.longRope) {
    const pairs = hd / 2;
    // Phi-3.5's shapes: short factors near 1, long ones growing to ~40 for the low frequencies.
    out.push({ name: "rope_factors_short.weight", dims: [pairs], type: GGMLType.F32, make: () => Float32Array.from({ length: pairs }, (_, i) => 1 + (0.5 * i) / (pairs - 1)) });
    out.push({ name: "rope_factors_long.weight", dims: [pairs], type: GGMLType.F32, make: () => Float32Array.from({ length: pairs }, (_, i) => 1 + (40 * i * i) / ((pairs - 1) * (pairs - 1))) });
  }
  if (!shape.tiedEmbeddings) {
    const type = matmulType(opts.weights, "output", e, opts.outputType);
    out.push({
      name: "output.weight",
      dims: [e, nVocab],
      type,
      make: (rows = nVocab) => {
        // Log-normal row norms: a few tokens dominate, as in a trained model's head.
        const g = new Gaussian(hashSeed(seed, "output.weight"));
        const w = new Float32Array(e * rows);
        for (let r = 0; r < rows; r++) {
          const rowScale = Math.exp(1.0 * g.next()) / Math.sqrt(e);
          for (let c = 0; c < e; c++) w[r * e + c] = rowScale * g.next();
        }
        return w;
      },
    });
  }
  if (shape.lmHeadBias) vector("output.bias", nVocab, 0, 1);
  return out;
}

interface TensorMakers {
  matmul: (name: string, role: string, cols: number, rows: number) => void;
  vector: (name: string, n: number, mean: number, scale: number) => void;
  /** An F32 row table [n_embd, rows] (position and token-type embeddings). */
  table: (name: string, rows: number) => void;
}

function encoderTensors(shape: ModelShape, enc: EncoderShape, t: TensorMakers): void {
  const e = shape.nEmbd;
  const hd = shape.headDim ?? e / shape.nHead;
  const q = shape.nHead * hd, kv = shape.nHeadKv * hd;
  t.table("token_types.weight", 2);
  if (enc.positionEmbeddings) t.table("position_embd.weight", shape.contextLength);
  t.vector("token_embd_norm.weight", e, 1, 0.1);
  t.vector("token_embd_norm.bias", e, 0, 0.1);
  for (let b = 0; b < shape.nLayer; b++) {
    const p = `blk.${b}.`;
    if (enc.fusedQkv) {
      t.matmul(`${p}attn_qkv.weight`, "attn_qkv", e, q + 2 * kv);
      if (enc.biases) t.vector(`${p}attn_qkv.bias`, q + 2 * kv, 0, 0.5);
    } else {
      t.matmul(`${p}attn_q.weight`, "attn_q", e, q);
      t.matmul(`${p}attn_k.weight`, "attn_k", e, kv);
      t.matmul(`${p}attn_v.weight`, "attn_v", e, kv);
      if (enc.biases) {
        t.vector(`${p}attn_q.bias`, q, 0, 0.5);
        t.vector(`${p}attn_k.bias`, kv, 0, 0.5);
        t.vector(`${p}attn_v.bias`, kv, 0, 0.5);
      }
    }
    t.matmul(`${p}attn_output.weight`, "attn_output", q, e);
    if (enc.biases) t.vector(`${p}attn_output.bias`, e, 0, 0.5);
    t.vector(`${p}attn_output_norm.weight`, e, 1, 0.1);
    t.vector(`${p}attn_output_norm.bias`, e, 0, 0.1);
    if (enc.ffn === "swiglu") t.matmul(`${p}ffn_gate.weight`, "ffn_gate", e, shape.nFf);
    t.matmul(`${p}ffn_up.weight`, "ffn_up", e, shape.nFf);
    t.matmul(`${p}ffn_down.weight`, "ffn_down", shape.nFf, e);
    if (enc.biases) {
      t.vector(`${p}ffn_up.bias`, shape.nFf, 0, 0.5);
      t.vector(`${p}ffn_down.bias`, e, 0, 0.5);
    }
    t.vector(`${p}layer_output_norm.weight`, e, 1, 0.1);
    t.vector(`${p}layer_output_norm.bias`, e, 0, 0.1);
  }
}

function hyperparameterMetadata(shape: ModelShape, name: string): Array<[string, GGUFKV]> {
  const a = shape.architecture;
  if (shape.ssm && !shape.ssmLayers) return ssmMetadata(shape, shape.ssm, name);
  const hd = shape.headDim ?? shape.nEmbd / shape.nHead;
  const m: Array<[string, GGUFKV]> = [
    ["general.architecture", kv.str(a)],
    ["general.name", kv.str(name)],
    [`${a}.context_length`, kv.u32(shape.contextLength)],
    [`${a}.embedding_length`, kv.u32(shape.nEmbd)],
    [`${a}.block_count`, kv.u32(shape.nLayer)],
    [`${a}.feed_forward_length`, kv.u32(shape.nFf)],
    [`${a}.attention.head_count`, kv.u32(shape.nHead)],
    // A hybrid's SSM blocks have no KV heads: one entry per block (llama.cpp's converter).
    [`${a}.attention.head_count_kv`, shape.ssmLayers ? kv.i32Array(Int32Array.from(shape.ssmLayers, (s) => (s ? 0 : shape.nHeadKv))) : kv.u32(shape.nHeadKv)],
    [`${a}.attention.${shape.encoder ? "layer_norm_epsilon" : "layer_norm_rms_epsilon"}`, kv.f32(shape.normEps ?? 1e-5)],
  ];
  if (shape.encoder) m.push([`${a}.attention.causal`, kv.bool(false)]);
  if (!shape.encoder?.positionEmbeddings)
    m.push([`${a}.rope.freq_base`, kv.f32(shape.ropeFreqBase ?? 10000)], [`${a}.rope.dimension_count`, kv.u32(shape.mla ? shape.mla.headDimRope : hd)]);
  if (shape.mla) m.push(...mlaMetadata(a, shape.mla));
  else if (shape.headDim !== undefined) {
    m.push([`${a}.attention.key_length`, kv.u32(hd)], [`${a}.attention.value_length`, kv.u32(hd)]);
  }
  if (shape.slidingWindow) m.push([`${a}.attention.sliding_window`, kv.u32(shape.slidingWindow)]);
  if (shape.poolingType !== undefined) m.push([`${a}.pooling_type`, kv.u32(shape.poolingType)]);
  if (shape.softcaps?.attention !== undefined) m.push([`${a}.attn_logit_softcapping`, kv.f32(shape.softcaps.attention)]);
  if (shape.softcaps?.final !== undefined) m.push([`${a}.final_logit_softcapping`, kv.f32(shape.softcaps.final)]);
  if (shape.attnTemperature !== undefined) m.push([`${a}.attention.temperature_scale`, kv.f32(shape.attnTemperature)]);
  if (shape.yarnLogMul !== undefined) m.push([`${a}.rope.scaling.yarn_log_multiplier`, kv.f32(shape.yarnLogMul)]);
  if (shape.longRope)
    m.push([`${a}.rope.scaling.attn_factor`, kv.f32(shape.longRope.attnFactor)], [`${a}.rope.scaling.original_context_length`, kv.u32(shape.longRope.originalContext)]);
  if (shape.ropeFreqBaseSwa !== undefined) m.push([`${a}.rope.freq_base_swa`, kv.f32(shape.ropeFreqBaseSwa)]);
  if (shape.ssm) m.push(...ssmMetadata(shape, shape.ssm, name).filter(([k]) => k.includes(".ssm.")));
  m.push(...multiplierMetadata(a, shape.multipliers, shape.ropeFinetuned));
  const pattern = shape.slidingWindowPattern;
  if (typeof pattern === "number") m.push([`${a}.attention.sliding_window_pattern`, kv.u32(pattern)]);
  else if (pattern) m.push([`${a}.attention.sliding_window_pattern`, kv.array(GGUFValueType.BOOL, pattern)]);
  if (shape.ropeScaling) {
    if (shape.ropeScaling.type) m.push([`${a}.rope.scaling.type`, kv.str(shape.ropeScaling.type)]);
    m.push([`${a}.rope.scaling.factor`, kv.f32(shape.ropeScaling.factor)]);
    if (shape.ropeScaling.originalContext) m.push([`${a}.rope.scaling.original_context_length`, kv.u32(shape.ropeScaling.originalContext)]);
  }
  const moe = shape.moe;
  if (moe) {
    m.push([`${a}.expert_count`, kv.u32(moe.nExpert)], [`${a}.expert_used_count`, kv.u32(moe.nExpertUsed)]);
    m.push([`${a}.expert_feed_forward_length`, kv.u32(moe.nFfExp)]);
    if (moe.nFfShexp) m.push([`${a}.expert_shared_feed_forward_length`, kv.u32(moe.nFfShexp)]);
    if (moe.nSharedExpert) m.push([`${a}.expert_shared_count`, kv.u32(moe.nSharedExpert)]);
    if (moe.leadingDenseBlocks) m.push([`${a}.leading_dense_block_count`, kv.u32(moe.leadingDenseBlocks)]);
    if (moe.weightsScale !== undefined) m.push([`${a}.expert_weights_scale`, kv.f32(moe.weightsScale)]);
    if (moe.normTopK !== undefined) m.push([`${a}.expert_weights_norm`, kv.bool(moe.normTopK)]);
    if (moe.gating) m.push([`${a}.expert_gating_func`, kv.u32(moe.gating === "softmax" ? 1 : 2)]);
    if (moe.nGroup) m.push([`${a}.expert_group_count`, kv.u32(moe.nGroup)], [`${a}.expert_group_used_count`, kv.u32(moe.nGroupUsed ?? 1)]);
  }
  return m;
}

/** A Mamba-2 file's keys as llama.cpp's converter writes them (head count and FFN width 0, "unused"). */
export function ssmMetadata(shape: ModelShape, s: SsmShape, name: string): Array<[string, GGUFKV]> {
  const a = shape.architecture;
  return [
    ["general.architecture", kv.str(a)],
    ["general.name", kv.str(name)],
    [`${a}.context_length`, kv.u32(shape.contextLength)],
    [`${a}.embedding_length`, kv.u32(shape.nEmbd)],
    [`${a}.feed_forward_length`, kv.u32(0)],
    [`${a}.attention.head_count`, kv.u32(0)],
    [`${a}.block_count`, kv.u32(shape.nLayer)],
    [`${a}.ssm.conv_kernel`, kv.u32(s.dConv)],
    [`${a}.ssm.inner_size`, kv.u32(s.dInner)],
    [`${a}.ssm.state_size`, kv.u32(s.dState)],
    [`${a}.ssm.time_step_rank`, kv.u32(s.nHead)],
    [`${a}.ssm.group_count`, kv.u32(s.nGroup)],
    [`${a}.attention.layer_norm_rms_epsilon`, kv.f32(shape.normEps ?? 1e-5)],
  ];
}

/** Granite's multiplier keys and RoPE switch, those given (also the fuzzer's, dev/fuzz-models.ts). */
export function multiplierMetadata(a: string, mul: ModelShape["multipliers"], ropeFinetuned?: boolean): Array<[string, GGUFKV]> {
  const m: Array<[string, GGUFKV]> = [];
  if (mul?.embedding !== undefined) m.push([`${a}.embedding_scale`, kv.f32(mul.embedding)]);
  if (mul?.residual !== undefined) m.push([`${a}.residual_scale`, kv.f32(mul.residual)]);
  if (mul?.attention !== undefined) m.push([`${a}.attention.scale`, kv.f32(mul.attention)]);
  if (mul?.logit !== undefined) m.push([`${a}.logit_scale`, kv.f32(mul.logit)]);
  if (ropeFinetuned !== undefined) m.push([`${a}.rope.scaling.finetuned`, kv.bool(ropeFinetuned)]);
  return m;
}

/** MLA keys as llama.cpp's converter writes them: the cache row as key/value lengths, the per-head sizes as *_mla. */
function mlaMetadata(a: string, m: MlaShape): Array<[string, GGUFKV]> {
  const out: Array<[string, GGUFKV]> = [
    [`${a}.attention.q_lora_rank`, kv.u32(m.qLoraRank)],
    [`${a}.attention.kv_lora_rank`, kv.u32(m.kvLoraRank)],
    [`${a}.attention.key_length`, kv.u32(m.kvLoraRank + m.headDimRope)],
    [`${a}.attention.value_length`, kv.u32(m.kvLoraRank)],
    [`${a}.attention.key_length_mla`, kv.u32(m.headDimNope + m.headDimRope)],
    [`${a}.attention.value_length_mla`, kv.u32(m.headDimV)],
  ];
  if (m.yarnLogMultiplier !== undefined) out.push([`${a}.rope.scaling.yarn_log_multiplier`, kv.f32(m.yarnLogMultiplier)]);
  return out;
}

/** Rows generated per tensor when layers repeat; larger tensors repeat these rows' bytes. */
const TILE_ROWS = 4096;

/** The tensor's bytes with its first TILE_ROWS rows repeated to the full row count. */
function tiledRows(p: TensorPlan): Uint8Array {
  const rows = p.dims.slice(1).reduce((a, b) => a * b, 1);
  if (rows <= TILE_ROWS) return quantize(p.type, p.make(), p.dims[0]);
  const tile = quantize(p.type, p.make(TILE_ROWS), p.dims[0]);
  const out = new Uint8Array((tile.length / TILE_ROWS) * rows);
  for (let at = 0; at < out.length; at += tile.length) out.set(tile.subarray(0, Math.min(tile.length, out.length - at)), at);
  return out;
}

/**
 * A prompt for a synthetic model: BOS (1), then n - 1 ids from an LCG over seed, never the
 * special ids 0..2. Deterministic per seed, so a check can be replayed.
 */
export function syntheticTokens(n: number, nVocab: number, seed: number): number[] {
  let s = seed >>> 0;
  const out = [1];
  while (out.length < n) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out.push(3 + (s % (nVocab - 3)));
  }
  return out;
}

/** Writes the model; returns the file size in bytes. */
export function writeSyntheticModel(file: string, shape: ModelShape, options: SyntheticOptions): number {
  const vocab = loadVocab(options.vocab);
  const plans = tensorsFor(shape, vocab.size, options);
  const repeated = new Map<string, Uint8Array>();
  const data = (p: TensorPlan) => {
    if (!options.repeatLayers) return quantize(p.type, p.make(), p.dims[0]);
    // Per type too: the Q5_K_M/Q3_K_M mixes store one role in different types by layer.
    const key = `${p.name.replace(/^blk\.\d+\./, "")}:${p.type}`;
    let bytes = repeated.get(key);
    if (!bytes) repeated.set(key, (bytes = tiledRows(p)));
    return bytes;
  };
  const tensors: GGUFTensorSpec[] = plans.map((p) => ({ name: p.name, type: p.type, dims: p.dims, data: () => data(p) }));
  const templates = typeof options.chatTemplate === "string" ? { default: options.chatTemplate } : (options.chatTemplate ?? {});
  const metadata = [
    // llama.cpp keys tokenizer workarounds on general.name ("phi3" looks up Phi-3's special
    // tokens, which a borrowed vocabulary lacks): the name carries the weights only.
    ...hyperparameterMetadata(shape, `synthetic ${options.weights} model`),
    ...vocab.metadata,
    ...Object.entries(templates).map(([name, t]): [string, GGUFKV] => [
      name === "default" ? "tokenizer.chat_template" : `tokenizer.chat_template.${name}`,
      kv.str(t),
    ]),
  ];
  fs.mkdirSync(path.dirname(file), { recursive: true });
  writeGGUF(file, { metadata, tensors });
  return fs.statSync(file).size;
}

/**
 * Bytes of the weights a decode step reads: every tensor but the embedding table (unless
 * it doubles as the LM head), and of the stacked expert tensors only the active experts'.
 */
export function decodeWeightBytes(shape: ModelShape, options: SyntheticOptions, nVocab: number): number {
  const activeShare = shape.moe ? shape.moe.nExpertUsed / shape.moe.nExpert : 1;
  return tensorsFor(shape, nVocab, options)
    .filter((t) => t.name !== "token_embd.weight" || shape.tiedEmbeddings)
    .reduce((sum, t) => {
      const info = GGML_TYPE_INFO[t.type];
      const count = t.dims.reduce((a, b) => a * b, 1);
      const share = t.name.includes("_exps.") ? activeShare : 1;
      return sum + (count / info.blockSize) * info.typeSize * share;
    }, 0);
}

