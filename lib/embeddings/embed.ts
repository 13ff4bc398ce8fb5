/**
 * model.embed: texts (or token arrays) to vectors through the batched engine. Each input is
 * a sequence of its own; all of them are submitted together (at most MAX_IN_FLIGHT at a
 * time) so the engine packs many texts into each forward pass, and every step returns the
 * final-norm hidden states of the rows pooling needs (no LM head runs for them). Pooling is
 * done here, in fp64, over those rows.
 *
 * Tokens are made as llama.cpp's embedding path makes them: the vocabulary's BOS/EOS (or
 * CLS/SEP) added, control-token text left as text.
 */
import { describe, optionalBoolean, optionalSignal, optionsObject, rejectUnknownOptions } from "../arguments.js";
import { TesseraError } from "../errors.js";
import type { Engine, HiddenRows } from "../engine/engine.js";
import type { Tokenizer } from "../tokenizer/index.js";

/**
 * How the per-token hidden states of an input become one vector: "mean" of all tokens,
 * "cls" the first token's, "last" the last token's, "none" every token's (no pooling).
 */
export type Pooling = "none" | "mean" | "cls" | "last";

/** `<arch>.pooling_type` as llama.cpp numbers it. */
export const POOLING_TYPES: readonly Pooling[] = ["none", "mean", "cls", "last"];

export interface EmbedOptions {
  /**
   * Default: the file's `<arch>.pooling_type` (0 none, 1 mean, 2 cls, 3 last); "last" when
   * it has none (decoder models used as embedders, e.g. Qwen3-Embedding).
   */
  pooling?: Pooling;
  /** Scale each vector (with "none": each token's) to unit L2 length. Default true. */
  normalize?: boolean;
  /**
   * An input longer than the context: true keeps its first contextSize tokens; false
   * (default) fails with ERR_OUT_OF_CONTEXT.
   */
  truncate?: boolean;
  signal?: AbortSignal;
}

/** One text, or one array of token ids. */
export type EmbedInput = string | ArrayLike<number>;

/** What embed needs of a model (Model passes its own). */
export interface EmbedTarget {
  engine: Engine;
  tokenizer: Tokenizer;
  contextSize: number;
  nEmbd: number;
  nVocab: number;
  /** `<arch>.pooling_type`, undefined when absent. */
  poolingType: number | undefined;
}

const OPTION_KEYS = { pooling: true, normalize: true, truncate: true, signal: true } satisfies Record<keyof EmbedOptions, true>;

/** Requests queued in the engine at once: enough to fill many steps, few enough to bound memory. */
const MAX_IN_FLIGHT = 512;

/** The pooling a model embeds with by default. */
export function defaultPooling(poolingType: number | undefined): Pooling {
  if (poolingType === undefined) return "last";
  const p = POOLING_TYPES[poolingType];
  if (p === undefined)
    throw new TesseraError(
      "ERR_UNSUPPORTED",
      `the model's pooling_type ${poolingType} (4 is llama.cpp's reranking head) is not supported; pass pooling: "mean", "cls", "last" or "none"`,
    );
  return p;
}

export function checkPooling(p: unknown): Pooling {
  if (typeof p !== "string" || !(POOLING_TYPES as readonly string[]).includes(p))
    throw new TesseraError("ERR_INVALID_ARGUMENT", `pooling must be one of ${POOLING_TYPES.join(", ")}, got ${describe(p)}`);
  return p as Pooling;
}

/**
 * Vectors of `inputs`, in order: Float32Array(nEmbd) each, or with pooling "none" one
 * Float32Array of nTokens * nEmbd (token t's vector at [t * nEmbd, (t + 1) * nEmbd)).
 */
export async function embed(target: EmbedTarget, inputs: EmbedInput | readonly EmbedInput[], options?: EmbedOptions): Promise<Float32Array[]> {
  const o = optionsObject(options, "embed");
  rejectUnknownOptions(o, OPTION_KEYS, "embed");
  const pooling = o.pooling === undefined ? defaultPooling(target.poolingType) : checkPooling(o.pooling);
  const normalize = optionalBoolean(o.normalize, "embed", "normalize") ?? true;
  const truncate = optionalBoolean(o.truncate, "embed", "truncate") ?? false;
  const signal = optionalSignal(o.signal, "embed");
  const list: readonly EmbedInput[] = typeof inputs === "string" || isTokenArray(inputs) ? [inputs as EmbedInput] : (inputs as readonly EmbedInput[]);
  if (!Array.isArray(list)) throw new TesseraError("ERR_INVALID_ARGUMENT", `embed takes a text, an array of texts or arrays of token ids, got ${describe(inputs)}`);
  const tokens = list.map((input, i) => tokensOf(target, input, i, truncate));
  if (signal?.aborted) throw new TesseraError("ERR_ABORTED", "embedding aborted before it started");

  const hidden: HiddenRows = pooling === "cls" ? "first" : pooling === "last" ? "last" : "all";
  const out: Float32Array[] = new Array(tokens.length);
  let next = 0;
  let failed: unknown;
  const worker = async (): Promise<void> => {
    while (next < tokens.length && failed === undefined) {
      const i = next++;
      const seq = target.engine.createSequence();
      try {
        const r = await target.engine.evaluate(seq, { tokens: tokens[i], hidden, signal });
        out[i] = pool(r.hidden!, tokens[i].length, target.nEmbd, pooling, normalize);
      } catch (e) {
        failed ??= e;
      } finally {
        target.engine.releaseSequence(seq);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(MAX_IN_FLIGHT, tokens.length) }, worker));
  if (failed !== undefined) throw failed;
  return out;
}

function isTokenArray(v: unknown): boolean {
  return ArrayBuffer.isView(v) || (Array.isArray(v) && v.length > 0 && typeof v[0] === "number");
}

function tokensOf(target: EmbedTarget, input: EmbedInput, index: number, truncate: boolean): number[] {
  let ids: number[];
  if (typeof input === "string") {
    ids = target.tokenizer.encode(input);
  } else if (isTokenArray(input) || (Array.isArray(input) && input.length === 0)) {
    ids = Array.from(input as ArrayLike<number>);
    for (const id of ids)
      if (!Number.isInteger(id) || id < 0 || id >= target.nVocab)
        throw new TesseraError("ERR_INVALID_ARGUMENT", `input ${index}: token id ${describe(id)} is not in 0..${target.nVocab - 1}`);
  } else {
    throw new TesseraError("ERR_INVALID_ARGUMENT", `input ${index} must be a string or an array of token ids, got ${describe(input)}`);
  }
  if (ids.length === 0) throw new TesseraError("ERR_INVALID_ARGUMENT", `input ${index} has no tokens; embed non-empty texts`);
  if (ids.length > target.contextSize) {
    if (!truncate)
      throw new TesseraError(
        "ERR_OUT_OF_CONTEXT",
        `input ${index} has ${ids.length} tokens, more than the context size ${target.contextSize}; pass truncate: true or load the model with a larger contextSize`,
      );
    ids = ids.slice(0, target.contextSize);
  }
  return ids;
}

/** hidden: [rows][nEmbd] (all of the input's tokens, or the one pooling needs). */
function pool(hidden: Float32Array, nTokens: number, nEmbd: number, pooling: Pooling, normalize: boolean): Float32Array {
  for (let i = 0; i < hidden.length; i++)
    if (!Number.isFinite(hidden[i]))
      throw new TesseraError("ERR_NON_FINITE", "the model produced NaN or Infinity hidden states; load it with checkTensors: true to find a damaged tensor");
  if (pooling === "none") {
    const out = hidden.slice(0, nTokens * nEmbd);
    if (normalize) for (let t = 0; t < nTokens; t++) normalizeInPlace(out.subarray(t * nEmbd, (t + 1) * nEmbd));
    return out;
  }
  let v: Float32Array;
  if (pooling === "mean") {
    const sum = new Float64Array(nEmbd);
    for (let t = 0; t < nTokens; t++) for (let j = 0; j < nEmbd; j++) sum[j] += hidden[t * nEmbd + j];
    v = new Float32Array(nEmbd);
    for (let j = 0; j < nEmbd; j++) v[j] = sum[j] / nTokens;
  } else {
    v = hidden.slice(0, nEmbd);
  }
  if (normalize) normalizeInPlace(v);
  return v;
}

function normalizeInPlace(v: Float32Array): void {
  let ss = 0;
  for (let j = 0; j < v.length; j++) ss += v[j] * v[j];
  // llama.cpp's common_embd_normalize: a zero vector stays zero.
  const inv = ss > 0 ? 1 / Math.sqrt(ss) : 0;
  for (let j = 0; j < v.length; j++) v[j] *= inv;
}
