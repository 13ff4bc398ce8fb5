/**
 * Reads an architecture's hyperparameters from GGUF metadata (`${arch}.<key>`), with the
 * defaults llama.cpp's converters rely on, and checks them for sanity before they reach C++.
 * Every key is read by its GGUF type and range (metadata.ts); the FFN widths read here are
 * checked against, and replaced by, the tensors' (plan.ts).
 */
import { TesseraError } from "../errors.js";
import type { ArchDescription } from "../arch/types.js";
import type { GGUFFile } from "../gguf/types.js";
import { ModelMetadata, malformedKey, type Range } from "./metadata.js";
import { readSlidingWindow } from "./sliding-window.js";
import { readMlaHparams, type MlaHparams } from "./mla.js";
import { readHybridKvHeads, readSsmHparams, readSsmSizes, type SsmHparams } from "./ssm.js";

export interface RopeHparams {
  nDims: number;
  freqBase: number;
  /** 1 / linear scaling factor. */
  freqScale: number;
  scaling: "none" | "linear" | "yarn";
  nCtxOrig: number;
  yarnExtFactor: number;
  yarnAttnFactor: number;
  yarnBetaFast: number;
  yarnBetaSlow: number;
}

export interface MoeHparams {
  nExpert: number;
  nExpertUsed: number;
  nExpertShared: number;
  /** The file's expert_feed_forward_length (0: absent) until lib/model/plan.ts sets the expert tensors' width. */
  nFfExp: number;
  /** The file's expert_shared_feed_forward_length, 0 when absent. */
  nFfShexp: number;
  gating: "softmax" | "sigmoid" | "softmax-weight";
  normTopK: boolean;
  weightsScale: number;
  nGroup: number;
  nGroupUsed: number;
  leadingDenseBlocks: number;
}

export interface Hyperparameters {
  architecture: string;
  nLayer: number;
  nEmbd: number;
  nHead: number;
  nHeadKv: number;
  headDim: number;
  headDimV: number;
  /** The file's feed_forward_length (0: absent) until lib/model/plan.ts sets the dense FFN tensors' width. */
  nFf: number;
  nCtxTrain: number;
  normEps: number;
  slidingWindow: number;
  /** Per block: attends through `slidingWindow` (see sliding-window.ts). */
  windowedBlocks: boolean[];
  rope: RopeHparams;
  moe?: MoeHparams;
  /** Multi-head latent attention (then nHeadKv = 1 and headDim/headDimV are the cached row's). */
  mla?: MlaHparams;
  /**
   * `${arch}.pooling_type` as llama.cpp numbers it (0 none, 1 mean, 2 cls, 3 last, 4 rank),
   * undefined when absent: the default pooling of model.embed (lib/embeddings).
   */
  poolingType?: number;
  /** The architecture's scalar multipliers (ArchDescription.multipliers); 0: not applied. */
  multipliers: { embedding: number; residual: number; attention: number; logit: number };
  /** RoPE turned off by the file (ArchDescription.ropeSwitch). */
  ropeOff: boolean;
  /** The RoPE base of windowed blocks, which rotate unscaled (Gemma 3); undefined: the file's RoPE. */
  windowedRopeBase?: number;
  /** q's scale (ArchDescription.queryScale), 0 where not applied. */
  queryScale: number;
  /** Attention temperature (ArchDescription.attentionTemperature): scale 0 where not applied. */
  attnTemp: { scale: number; floor: number };
  /** Gemma's soft-caps (ArchDescription.gemma); 0 where not applied. */
  gemma: { attnSoftcap: number; finalSoftcap: number };
  /** State-space sizes (ArchDescription.ssm; lib/model/ssm.ts). */
  ssm?: SsmHparams;
  /** Per block: a state-space block (with ssm). */
  ssmBlocks?: boolean[];
}

/** Counts of blocks, heads, experts and the like. */
const COUNT: Range = { min: 1, max: 4096 };
/** Widths (embedding, FFN); 0 where the file may leave a width to the tensors. */
const WIDTH: Range = { min: 1, max: 1 << 20 };
const POSITIONS: Range = { min: 0, max: 0x7fffffff };
/** Norm epsilons: llama.cpp's are 1e-12 to 1e-5; 0, negative or huge ones are damage. */
const EPSILON: Range = { min: 0, max: 1, aboveMin: true };
const POSITIVE_REAL: Range = { min: 0, max: 1e30, aboveMin: true };
const NON_NEGATIVE_REAL: Range = { min: 0, max: 1e30 };

function required<T>(value: T | undefined, key: string): T {
  if (value === undefined) throw new TesseraError("ERR_MODEL_INCOMPATIBLE", `the file has no ${key}; re-convert it`);
  return value;
}

export function readHyperparameters(file: GGUFFile, arch: ArchDescription): Hyperparameters {
  if (arch.ssm?.blocks === "all") return readSsmHparams(file, arch);
  const a = arch.name;
  const k = (suffix: string) => `${a}.${suffix}`;
  const meta = new ModelMetadata(file);

  const nEmbd = required(meta.integer(k("embedding_length"), WIDTH), k("embedding_length"));
  const nLayer = required(meta.integer(k("block_count"), COUNT), k("block_count"));
  const nHead = required(meta.integerPerBlock(k("attention.head_count"), nLayer, COUNT), k("attention.head_count"));
  const hybrid = arch.ssm ? readHybridKvHeads(file, k("attention.head_count_kv"), nLayer) : undefined;
  const nHeadKv = hybrid?.nHeadKv ?? meta.integerPerBlock(k("attention.head_count_kv"), nLayer, COUNT) ?? nHead;
  const keyLength = meta.integer(k("attention.key_length"), COUNT);
  if (keyLength === undefined && nEmbd % nHead !== 0)
    throw new TesseraError(
      "ERR_MODEL_INCOMPATIBLE",
      `${k("embedding_length")} = ${nEmbd} is not a multiple of the head count ${nHead} and the file has no ${k("attention.key_length")}`,
    );
  const headDim = keyLength ?? nEmbd / nHead;
  const headDimV = meta.integer(k("attention.value_length"), COUNT) ?? headDim;
  if (nHead % nHeadKv !== 0)
    throw new TesseraError("ERR_MODEL_INCOMPATIBLE", `head count ${nHead} is not a multiple of KV head count ${nHeadKv}`);
  const epsKey = k(arch.norm === "rms" ? "attention.layer_norm_rms_epsilon" : "attention.layer_norm_epsilon");
  const normEps = meta.real(epsKey, EPSILON) ?? 1e-5;
  const nCtxTrain = meta.integer(k("context_length"), POSITIONS) ?? 0;

  const ropeDims = meta.integer(k("rope.dimension_count"), { min: 1, max: headDim }) ?? headDim;
  const legacyLinearScale = meta.real(k("rope.scale_linear"), NON_NEGATIVE_REAL);
  // llama.cpp reads a scaling factor without a type as linear scaling (its default), for the
  // current key and the legacy rope.scale_linear alike.
  const scalingType = meta.string(k("rope.scaling.type")) ?? "linear";
  if (scalingType !== "none" && scalingType !== "linear" && scalingType !== "yarn")
    throw new TesseraError("ERR_MODEL_INCOMPATIBLE", `RoPE scaling "${scalingType}" is not supported`);
  // 0 (or absent) means no scaling, as in llama.cpp.
  const scaleKey = meta.has(k("rope.scaling.factor")) ? k("rope.scaling.factor") : k("rope.scale_linear");
  const scaleFactor = meta.real(k("rope.scaling.factor"), NON_NEGATIVE_REAL) ?? legacyLinearScale ?? 0;
  // RoPE runs with 1 / factor in fp32: a factor so small (a denormal) that it overflows would
  // rotate by infinite angles, and under MLA make the softmax scale infinite.
  if (scaleFactor > 0 && !Number.isFinite(Math.fround(1 / scaleFactor)))
    throw malformedKey(scaleKey, `= ${scaleFactor} is too small to scale positions by (1 / factor overflows)`);
  const scaling = scaleFactor > 0 && scaleFactor !== 1 ? scalingType : "none";
  const rope: RopeHparams = {
    nDims: ropeDims,
    freqBase: meta.real(k("rope.freq_base"), POSITIVE_REAL) ?? 10000,
    freqScale: scaling === "none" ? 1 : 1 / scaleFactor,
    scaling,
    nCtxOrig: meta.integer(k("rope.scaling.original_context_length"), POSITIONS) ?? nCtxTrain,
    yarnExtFactor: scaling === "yarn" ? 1 : 0,
    yarnAttnFactor: meta.real(k("rope.scaling.attn_factor"), POSITIVE_REAL) ?? 1,
    yarnBetaFast: meta.real(k("rope.scaling.yarn_beta_fast"), NON_NEGATIVE_REAL) ?? 32,
    yarnBetaSlow: meta.real(k("rope.scaling.yarn_beta_slow"), NON_NEGATIVE_REAL) ?? 1,
  };

  if (arch.yarnLogMultiplier === "rope-attn-factor" && scaling === "yarn")
    rope.yarnAttnFactor = yarnLogMultiplied(meta, k("rope.scaling.yarn_log_multiplier"), rope);

  const nExpert = meta.integer(k("expert_count"), { min: 0, max: 4096 }) ?? 0;
  let moe: MoeHparams | undefined;
  if ((arch.ffn === "moe-if-experts" || arch.ffn === "moe-after-leading-dense") && nExpert > 0) {
    if (!arch.moe) throw new TesseraError("ERR_INTERNAL", `architecture ${a} has experts but no MoE recipe`);
    const nExpertUsed = required(meta.integerPerBlock(k("expert_used_count"), nLayer, COUNT), k("expert_used_count"));
    const nGroup = meta.integer(k("expert_group_count"), { min: 0, max: nExpert }) ?? 0;
    moe = {
      nExpert,
      nExpertUsed,
      nExpertShared: meta.integer(k("expert_shared_count"), { min: 0, max: 4096 }) ?? 0,
      // 0: the width comes from the expert tensors (lib/model/plan.ts checks it against them).
      nFfExp: meta.integerPerBlock(k("expert_feed_forward_length"), nLayer, { min: 0, max: WIDTH.max }) ?? 0,
      nFfShexp: meta.integer(k("expert_shared_feed_forward_length"), { min: 0, max: WIDTH.max }) ?? 0,
      // softmax-weight is the graph's own choice (gpt-oss): llama.cpp reads no key for it.
      gating: arch.moe.gating === "softmax-weight" ? "softmax-weight" : expertGating(meta, k("expert_gating_func"), arch.moe.gating),
      normTopK: meta.bool(k("expert_weights_norm")) ?? arch.moe.normTopKDefault,
      // llama.cpp scales the routing weights only by a factor other than 0 and 1.
      weightsScale: meta.real(k("expert_weights_scale"), NON_NEGATIVE_REAL) || 1,
      nGroup,
      nGroupUsed: meta.integer(k("expert_group_used_count"), { min: 0, max: nGroup }) ?? 0,
      leadingDenseBlocks:
        arch.ffn === "moe-after-leading-dense" ? meta.integer(k("leading_dense_block_count"), { min: 0, max: nLayer }) ?? 0 : 0,
    };
  }

  return {
    architecture: a,
    nLayer,
    nEmbd,
    nHead,
    nHeadKv,
    headDim,
    headDimV,
    // 0: the width comes from the FFN tensors (lib/model/plan.ts checks it against them).
    nFf: meta.integerPerBlock(k("feed_forward_length"), nLayer, { min: 0, max: WIDTH.max }) ?? 0,
    nCtxTrain,
    normEps,
    ...readSlidingWindow(file, arch, nLayer, rope.scaling),
    rope,
    moe,
    mla: arch.mla && readMlaHparams(file, arch, meta, { nHead, nHeadKv, headDim, headDimV, rope }),
    poolingType: meta.integer(k("pooling_type"), { min: 0, max: 0xffffffff }),
    multipliers: readMultipliers(meta, arch, k),
    ropeOff: arch.ropeSwitch === true && meta.bool(k("rope.scaling.finetuned")) === false,
    queryScale: queryScaleOf(arch, { nLayer, nEmbd, nHead, headDim }),
    attnTemp: readAttentionTemperature(meta, arch, k, rope.nCtxOrig),
    gemma: readGemma(meta, arch, k),
    ssm: arch.ssm && readSsmSizes(meta, k),
    ssmBlocks: hybrid?.ssmBlocks,
  };
}

/**
 * RoPE's attention factor under YaRN with a log multiplier m (mscale_all_dim), step by step
 * in fp32 as llama.cpp's context computes it: get_mscale(s, 1) / get_mscale(s, m), times
 * 1 / (1 + 0.1 ln s) (RoPE multiplies that back), times rope.scaling.attn_factor. m = 0 or
 * absent leaves the attention factor as it is.
 */
function yarnLogMultiplied(meta: ModelMetadata, key: string, rope: RopeHparams): number {
  const m = meta.real(key, NON_NEGATIVE_REAL) ?? 0;
  if (m === 0) return rope.yarnAttnFactor;
  const f = Math.fround;
  const s = f(1 / f(rope.freqScale));
  const ln = f(Math.log(s));
  const mscale = (ms: number) => (s <= 1 ? 1 : f(f(f(f(0.1) * f(ms)) * ln) + 1));
  const cancel = f(1 / f(1 + f(f(0.1) * ln)));
  const factor = f(f(f(mscale(1) / mscale(m)) * cancel) * f(rope.yarnAttnFactor));
  if (!(factor > 0 && Number.isFinite(factor))) throw malformedKey(key, `= ${m} gives a RoPE attention factor of ${factor}`);
  return factor;
}

/**
 * The attention temperature: `${arch}.attention.temperature_scale` (0 or absent: none) over
 * positions in steps of the original context length, which must then be known.
 */
function readAttentionTemperature(
  meta: ModelMetadata,
  arch: ArchDescription,
  k: (suffix: string) => string,
  nCtxOrig: number,
): Hyperparameters["attnTemp"] {
  if (!arch.attentionTemperature) return { scale: 0, floor: 1 };
  const scale = meta.real(k("attention.temperature_scale"), { min: -1e6, max: 1e6 }) ?? 0;
  if (scale === 0) return { scale: 0, floor: 1 };
  if (!(nCtxOrig > 0))
    throw new TesseraError(
      "ERR_MODEL_INCOMPATIBLE",
      `${k("attention.temperature_scale")} is set but the file gives no original context length ` +
        `(${k("rope.scaling.original_context_length")} or ${k("context_length")}); re-convert it`,
    );
  return { scale, floor: nCtxOrig };
}

/**
 * The query scale: 1/sqrt(head_dim), or 1/sqrt(n_embd / n_head) at the block counts the
 * recipe lists (llama.cpp's choice for Gemma's 27B models), in fp32 as llama.cpp computes it
 * (n_embd / n_head an integer division); 0 without the recipe field.
 */
function queryScaleOf(arch: ArchDescription, shape: { nLayer: number; nEmbd: number; nHead: number; headDim: number }): number {
  if (!arch.queryScale) return 0;
  const perHead = arch.queryScale.embdPerHeadAtBlocks.includes(shape.nLayer) ? Math.floor(shape.nEmbd / shape.nHead) : shape.headDim;
  return Math.fround(1 / Math.fround(Math.sqrt(perHead)));
}

/** Gemma's soft-caps, from the file or the recipe's defaults; zeros for other architectures. */
function readGemma(meta: ModelMetadata, arch: ArchDescription, k: (suffix: string) => string): Hyperparameters["gemma"] {
  const g = arch.gemma;
  if (!g) return { attnSoftcap: 0, finalSoftcap: 0 };
  const cap = (suffix: string, fallback: number) => {
    const v = meta.real(k(suffix), NON_NEGATIVE_REAL) ?? fallback;
    if (!Number.isFinite(Math.fround(v)) || (v !== 0 && !Number.isFinite(Math.fround(1 / v))))
      throw malformedKey(k(suffix), `= ${v} does not fit in fp32`);
    return v;
  };
  return {
    attnSoftcap: g.attnSoftcapDefault === undefined ? 0 : cap("attn_logit_softcapping", g.attnSoftcapDefault),
    finalSoftcap: cap("final_logit_softcapping", g.finalSoftcapDefault),
  };
}

/**
 * The recipe's multipliers: each from its key where the recipe has it (a "required" one must
 * be there), 0 where absent or not in the recipe. Positive and finite in fp32, or refused.
 */
function readMultipliers(meta: ModelMetadata, arch: ArchDescription, k: (suffix: string) => string): Hyperparameters["multipliers"] {
  const m = arch.multipliers;
  const keys = { embedding: "embedding_scale", residual: "residual_scale", attention: "attention.scale", logit: "logit_scale" } as const;
  const out = { embedding: 0, residual: 0, attention: 0, logit: 0 };
  if (!m) return out;
  for (const name of Object.keys(keys) as Array<keyof typeof keys>) {
    if (m[name] === "none") continue;
    const key = k(keys[name]);
    const v = meta.real(key, NON_NEGATIVE_REAL);
    if (m[name] === "required") required(v, key);
    // 0 means "not set" in llama.cpp's reading of these keys (its defaults); only the
    // logit scale divides, so it must be nonzero.
    if (v !== undefined && !Number.isFinite(Math.fround(v))) throw malformedKey(key, `= ${v} does not fit in fp32`);
    if (name === "logit" && v === 0) throw malformedKey(key, "= 0: the logits are divided by it");
    out[name] = v ?? 0;
  }
  return out;
}

/** `${arch}.expert_gating_func` as llama.cpp numbers it; 0 or absent: the architecture's own. */
function expertGating(meta: ModelMetadata, key: string, fallback: "softmax" | "sigmoid"): "softmax" | "sigmoid" {
  const v = meta.integer(key, { min: 0, max: 0xffffffff });
  if (v === undefined || v === 0) return fallback;
  if (v === 1) return "softmax";
  if (v === 2) return "sigmoid";
  throw new TesseraError(
    "ERR_MODEL_INCOMPATIBLE",
    `${key} = ${v} is not supported; Tessera routes experts by softmax (1) or sigmoid (2) gating`,
  );
}
