/**
 * Reads an architecture's hyperparameters from GGUF metadata (`${arch}.<key>`), with the
 * defaults llama.cpp's converters rely on, and checks them for sanity before they reach C++.
 */
import { TesseraError } from "../errors.js";
import type { ArchDescription } from "../arch/types.js";
import { GGUFValueType, type GGUFFile } from "../gguf/types.js";
import { readSlidingWindow } from "./sliding-window.js";
import { readMlaHparams, type MlaHparams } from "./mla.js";

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
  nFfExp: number;
  gating: "softmax" | "sigmoid";
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
}

function scalar(file: GGUFFile, key: string): number | undefined {
  const kv = file.metadata.get(key);
  if (!kv) return undefined;
  const v = kv.value;
  if (typeof v === "number") return v;
  if (typeof v === "bigint") return Number(v);
  if (typeof v === "boolean") return v ? 1 : 0;
  if (kv.type === GGUFValueType.ARRAY && typeof v === "object" && "items" in v && v.items.length > 0) {
    // Per-layer arrays (e.g. head counts): accept them only when every layer agrees.
    const items = Array.from(v.items as ArrayLike<number | bigint>, Number);
    if (items.every((x) => x === items[0])) return items[0];
    throw new TesseraError("ERR_MODEL_INCOMPATIBLE", `${key} varies per layer, which Tessera does not support`);
  }
  throw new TesseraError("ERR_MODEL_INCOMPATIBLE", `metadata ${key} must be a number`);
}

function str(file: GGUFFile, key: string): string | undefined {
  const v = file.metadata.get(key)?.value;
  return typeof v === "string" ? v : undefined;
}

function positiveInt(value: number | undefined, key: string, max = 1 << 24): number {
  if (value === undefined) throw new TesseraError("ERR_MODEL_INCOMPATIBLE", `the file has no ${key}; re-convert it`);
  if (!Number.isInteger(value) || value < 1 || value > max)
    throw new TesseraError("ERR_MODEL_INCOMPATIBLE", `${key} = ${value} is not a valid count`);
  return value;
}

function finite(value: number, key: string): number {
  if (!Number.isFinite(value)) throw new TesseraError("ERR_MODEL_INCOMPATIBLE", `${key} = ${value} is not finite`);
  return value;
}

export function readHyperparameters(file: GGUFFile, arch: ArchDescription): Hyperparameters {
  const a = arch.name;
  const k = (suffix: string) => `${a}.${suffix}`;
  const get = (suffix: string) => scalar(file, k(suffix));

  const nEmbd = positiveInt(get("embedding_length"), k("embedding_length"));
  const nLayer = positiveInt(get("block_count"), k("block_count"), 4096);
  const nHead = positiveInt(get("attention.head_count"), k("attention.head_count"), 4096);
  const nHeadKv = positiveInt(get("attention.head_count_kv") ?? nHead, k("attention.head_count_kv"), 4096);
  const headDim = positiveInt(get("attention.key_length") ?? nEmbd / nHead, k("attention.key_length"), 4096);
  const headDimV = positiveInt(get("attention.value_length") ?? headDim, k("attention.value_length"), 4096);
  if (nHead % nHeadKv !== 0)
    throw new TesseraError("ERR_MODEL_INCOMPATIBLE", `head count ${nHead} is not a multiple of KV head count ${nHeadKv}`);
  const normEps = finite(
    (arch.norm === "rms" ? get("attention.layer_norm_rms_epsilon") : get("attention.layer_norm_epsilon")) ?? 1e-5,
    "norm epsilon",
  );

  const ropeDims = positiveInt(get("rope.dimension_count") ?? headDim, k("rope.dimension_count"), headDim);
  const legacyLinearScale = get("rope.scale_linear");
  const scalingType = str(file, k("rope.scaling.type")) ?? (legacyLinearScale !== undefined ? "linear" : "none");
  if (scalingType !== "none" && scalingType !== "linear" && scalingType !== "yarn")
    throw new TesseraError("ERR_MODEL_INCOMPATIBLE", `RoPE scaling "${scalingType}" is not supported`);
  const scaleFactor = finite(get("rope.scaling.factor") ?? legacyLinearScale ?? 1, k("rope.scaling.factor"));
  const scaling = scaleFactor > 0 && scaleFactor !== 1 ? scalingType : "none";
  const rope: RopeHparams = {
    nDims: ropeDims,
    freqBase: finite(get("rope.freq_base") ?? 10000, k("rope.freq_base")),
    freqScale: scaling === "none" ? 1 : 1 / scaleFactor,
    scaling,
    nCtxOrig: get("rope.scaling.original_context_length") ?? get("context_length") ?? 0,
    yarnExtFactor: scaling === "yarn" ? 1 : 0,
    yarnAttnFactor: get("rope.scaling.attn_factor") ?? 1,
    yarnBetaFast: get("rope.scaling.yarn_beta_fast") ?? 32,
    yarnBetaSlow: get("rope.scaling.yarn_beta_slow") ?? 1,
  };

  const nExpert = get("expert_count") ?? 0;
  let moe: MoeHparams | undefined;
  if (arch.ffn !== "dense" && nExpert > 0) {
    if (!arch.moe) throw new TesseraError("ERR_INTERNAL", `architecture ${a} has experts but no MoE recipe`);
    const gatingFunc = get("expert_gating_func");
    moe = {
      nExpert: positiveInt(nExpert, k("expert_count"), 4096),
      nExpertUsed: positiveInt(get("expert_used_count"), k("expert_used_count"), 64),
      nExpertShared: get("expert_shared_count") ?? 0,
      nFfExp: get("expert_feed_forward_length") ?? get("feed_forward_length") ?? 0,
      gating: gatingFunc === 2 ? "sigmoid" : gatingFunc === 1 ? "softmax" : arch.moe.gating,
      normTopK: file.metadata.has(k("expert_weights_norm")) ? get("expert_weights_norm") === 1 : arch.moe.normTopKDefault,
      weightsScale: get("expert_weights_scale") ?? 1,
      nGroup: get("expert_group_count") ?? 0,
      nGroupUsed: get("expert_group_used_count") ?? 0,
      leadingDenseBlocks: arch.ffn === "moe-after-leading-dense" ? get("leading_dense_block_count") ?? 0 : 0,
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
    nFf: get("feed_forward_length") ?? 0,
    nCtxTrain: get("context_length") ?? 0,
    normEps,
    ...readSlidingWindow(file, arch, nLayer, rope.scaling),
    rope,
    moe,
    mla: arch.mla && readMlaHparams(file, arch, get, { nHead, nHeadKv, headDim, headDimV, rope }),
  };
}
