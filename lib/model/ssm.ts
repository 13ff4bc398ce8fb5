/**
 * Mamba-2's hyperparameters (`${arch}.ssm.*`, as llama.cpp's llama_model_mamba2 reads them),
 * each range-checked before C++ sees it, and the file-level shape of a model whose blocks
 * are all state-space blocks: no attention heads (converters write head_count = 0) and no
 * FFN (feed_forward_length = 0).
 */
import { TesseraError } from "../errors.js";
import type { ArchDescription } from "../arch/types.js";
import { GGUFValueType, type GGUFArray, type GGUFFile } from "../gguf/types.js";
import type { Hyperparameters } from "./hparams.js";
import { ModelMetadata, malformedKey, type Range } from "./metadata.js";

export interface SsmHparams {
  /** Conv taps (ssm.conv_kernel); the executors take at most 16 (native SsmParams::kMaxConv). */
  dConv: number;
  /** ssm.inner_size: heads x head size. */
  dInner: number;
  /** ssm.state_size. */
  dState: number;
  /** ssm.group_count: B and C are shared by the heads of a group. */
  nGroup: number;
  /** ssm.time_step_rank: the number of heads (one time step and decay each). */
  nHead: number;
}

const MAX_CONV = 16;

function need(meta: ModelMetadata, key: string, range: Range): number {
  const v = meta.integer(key, range);
  if (v === undefined) throw new TesseraError("ERR_MODEL_INCOMPATIBLE", `the file has no ${key}; re-convert it`);
  return v;
}

/** The `${arch}.ssm.*` sizes, each range-checked. */
export function readSsmSizes(meta: ModelMetadata, k: (suffix: string) => string): SsmHparams {
  const dConv = need(meta, k("ssm.conv_kernel"), { min: 2, max: MAX_CONV });
  const dInner = need(meta, k("ssm.inner_size"), { min: 1, max: 1 << 20 });
  const dState = need(meta, k("ssm.state_size"), { min: 1, max: 4096 });
  const nGroup = need(meta, k("ssm.group_count"), { min: 1, max: dInner });
  const nHead = need(meta, k("ssm.time_step_rank"), { min: 1, max: dInner });
  if (dInner % nHead !== 0)
    throw malformedKey(k("ssm.inner_size"), `= ${dInner} is not a multiple of the head count ${k("ssm.time_step_rank")} = ${nHead}`);
  if (nHead % nGroup !== 0)
    throw malformedKey(k("ssm.group_count"), `= ${nGroup} does not divide the head count ${nHead}`);
  return { dConv, dInner, dState, nGroup, nHead };
}

/**
 * A hybrid's layout (SsmRecipe "no-kv-heads"): head_count_kv as one entry per block, 0 for
 * an SSM block; the attention blocks' entries must agree (one KV head count per model).
 */
export function readHybridKvHeads(file: GGUFFile, key: string, nLayer: number): { nHeadKv: number; ssmBlocks: boolean[] } {
  const kv = file.metadata.get(key);
  const meta = new ModelMetadata(file);
  if (!kv || kv.type !== GGUFValueType.ARRAY) {
    // One count for every block: no SSM block at all (or, with 0, no attention block).
    const n = meta.integer(key, { min: 0, max: 4096 });
    if (n === undefined || n === 0) throw malformedKey(key, "must give each block's KV head count (0 for a state-space block)");
    return { nHeadKv: n, ssmBlocks: new Array<boolean>(nLayer).fill(false) };
  }
  const a = kv.value as GGUFArray;
  if (a.itemType !== GGUFValueType.INT32 && a.itemType !== GGUFValueType.UINT32) throw malformedKey(key, "is an array of another type, expected one INT32 per block");
  if (a.items.length !== nLayer) throw malformedKey(key, `has ${a.items.length} entries for ${nLayer} blocks`);
  const items = Array.from(a.items as ArrayLike<number | bigint>, (v) => Number(v));
  if (items.some((v) => !Number.isInteger(v) || v < 0 || v > 4096)) throw malformedKey(key, "holds a count outside 0..4096");
  const heads = [...new Set(items.filter((v) => v > 0))];
  if (heads.length === 0) throw malformedKey(key, "has no attention block (all 0)");
  if (heads.length > 1)
    throw new TesseraError("ERR_MODEL_INCOMPATIBLE", `${key} varies between attention blocks (${heads.join(", ")}), which Tessera does not support`);
  return { nHeadKv: heads[0], ssmBlocks: items.map((v) => v === 0) };
}

export function readSsmHparams(file: GGUFFile, arch: ArchDescription): Hyperparameters {
  const a = arch.name;
  const k = (suffix: string) => `${a}.${suffix}`;
  const meta = new ModelMetadata(file);
  const nEmbd = need(meta, k("embedding_length"), { min: 1, max: 1 << 20 });
  const nLayer = need(meta, k("block_count"), { min: 1, max: 4096 });
  // No attention: llama.cpp's converter writes 0 heads and FFN width 0 ("unused").
  // Anything else there would mean attention or FFN blocks this description cannot run.
  for (const key of [k("attention.head_count"), k("feed_forward_length")]) meta.integerPerBlock(key, nLayer, { min: 0, max: 0 });
  const ssm = readSsmSizes(meta, k);
  const normEps = meta.real(k("attention.layer_norm_rms_epsilon"), { min: 0, max: 1, aboveMin: true }) ?? 1e-5;
  const nCtxTrain = meta.integer(k("context_length"), { min: 0, max: 0x7fffffff }) ?? 0;
  return {
    architecture: a,
    nLayer,
    nEmbd,
    nHead: 0,
    nHeadKv: 0,
    headDim: 0,
    headDimV: 0,
    nFf: 0,
    nCtxTrain,
    normEps,
    slidingWindow: 0,
    windowedBlocks: new Array<boolean>(nLayer).fill(false),
    rope: {
      nDims: 0,
      freqBase: 10000,
      freqScale: 1,
      scaling: "none",
      nCtxOrig: nCtxTrain,
      yarnExtFactor: 0,
      yarnAttnFactor: 1,
      yarnBetaFast: 32,
      yarnBetaSlow: 1,
    },
    multipliers: { embedding: 0, residual: 0, attention: 0, logit: 0 },
    ropeOff: false,
    queryScale: 0,
    attnTemp: { scale: 0, floor: 1 },
    gemma: { attnSoftcap: 0, finalSoftcap: 0 },
    ssm,
    ssmBlocks: new Array<boolean>(nLayer).fill(true),
  };
}
