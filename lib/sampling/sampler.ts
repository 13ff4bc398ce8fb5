/**
 * The sampler chain, in llama.cpp's default order: repetition/frequency/presence penalties
 * -> top-k -> top-p -> min-p -> temperature -> draw. Temperature 0 is greedy (argmax after
 * penalties). Truncations use the untempered distribution; temperature shapes only the draw.
 */
import { TesseraError } from "../errors.js";
import { Rng } from "./rng.js";

export interface SamplingOptions {
  /** 0 (or below) picks the most likely token. Default 0.8. */
  temperature?: number;
  /** Keep only the k most likely tokens; 0 keeps all. Default 40. */
  topK?: number;
  /** Keep the smallest set whose probability reaches p; 1 keeps all. Default 0.95. */
  topP?: number;
  /** Drop tokens less likely than minP × the top token's probability; 0 keeps all. Default 0.05. */
  minP?: number;
  /** Divide (positive) or multiply (negative) the logits of recent tokens; 1 is off. Default 1. */
  repeatPenalty?: number;
  /** How many recent tokens the penalties look at; -1 means all. Default 64. */
  repeatLastN?: number;
  /** Subtract count × this from each recent token's logit. Default 0. */
  frequencyPenalty?: number;
  /** Subtract this from each recent token's logit once. Default 0. */
  presencePenalty?: number;
  /** Seed of the draw: the same seed and inputs give the same tokens. Default: random. */
  seed?: number;
}

export interface ResolvedSampling {
  temperature: number;
  topK: number;
  topP: number;
  minP: number;
  repeatPenalty: number;
  repeatLastN: number;
  frequencyPenalty: number;
  presencePenalty: number;
  seed: number;
}

function option(value: number | undefined, fallback: number, name: string, min: number, max: number): number {
  const v = value ?? fallback;
  if (typeof v !== "number" || Number.isNaN(v) || v < min || v > max)
    throw new TesseraError("ERR_INVALID_ARGUMENT", `${name} must be a number in [${min}, ${max}], got ${String(value)}`);
  return v;
}

export function resolveSampling(o: SamplingOptions = {}): ResolvedSampling {
  const seed = o.seed ?? Math.floor(Math.random() * 0x100000000);
  if (!Number.isInteger(seed)) throw new TesseraError("ERR_INVALID_ARGUMENT", `seed must be an integer, got ${seed}`);
  const topK = option(o.topK, 40, "topK", 0, Number.MAX_SAFE_INTEGER);
  const repeatLastN = option(o.repeatLastN, 64, "repeatLastN", -1, Number.MAX_SAFE_INTEGER);
  if (!Number.isInteger(topK) || !Number.isInteger(repeatLastN))
    throw new TesseraError("ERR_INVALID_ARGUMENT", "topK and repeatLastN must be integers");
  return {
    temperature: option(o.temperature, 0.8, "temperature", 0, 1e6),
    topK,
    topP: option(o.topP, 0.95, "topP", 0, 1),
    minP: option(o.minP, 0.05, "minP", 0, 1),
    repeatPenalty: option(o.repeatPenalty, 1, "repeatPenalty", 1e-6, 1e6),
    repeatLastN,
    frequencyPenalty: option(o.frequencyPenalty, 0, "frequencyPenalty", -1e6, 1e6),
    presencePenalty: option(o.presencePenalty, 0, "presencePenalty", -1e6, 1e6),
    seed,
  };
}

export class Sampler {
  readonly options: ResolvedSampling;
  private readonly rng: Rng;
  // Reused candidate storage: ids and their logits/probabilities, sorted descending.
  private ids: Int32Array;
  private values: Float64Array;

  constructor(options: SamplingOptions = {}) {
    this.options = resolveSampling(options);
    this.rng = new Rng(this.options.seed);
    this.ids = new Int32Array(0);
    this.values = new Float64Array(0);
  }

  /**
   * Picks the next token from `logits` (modified in place by the penalties), given the
   * tokens generated or evaluated so far.
   */
  sample(logits: Float32Array, history: ArrayLike<number> = []): number {
    const o = this.options;
    this.applyPenalties(logits, history);
    if (o.temperature <= 0) return argmax(logits);

    let n = this.selectCandidates(logits);
    // Probabilities at temperature 1, for the truncations.
    softmaxInPlace(this.values, n);
    if (o.topP < 1) {
      let cumulative = 0;
      for (let i = 0; i < n; i++) {
        cumulative += this.values[i];
        if (cumulative >= o.topP) {
          n = i + 1;
          break;
        }
      }
    }
    if (o.minP > 0) {
      const threshold = this.values[0] * o.minP;
      let keep = 1;
      while (keep < n && this.values[keep] >= threshold) keep++;
      n = keep;
    }
    // Temperature on the survivors: p_i^(1/T) renormalized equals softmax(logit_i / T).
    const invT = 1 / o.temperature;
    const logMax = Math.log(this.values[0]);
    let sum = 0;
    for (let i = 0; i < n; i++) {
      const w = Math.exp((Math.log(this.values[i]) - logMax) * invT);
      this.values[i] = w;
      sum += w;
    }
    let r = this.rng.next() * sum;
    for (let i = 0; i < n; i++) {
      r -= this.values[i];
      if (r < 0) return this.ids[i];
    }
    return this.ids[n - 1];
  }

  private applyPenalties(logits: Float32Array, history: ArrayLike<number>): void {
    const o = this.options;
    if (o.repeatPenalty === 1 && o.frequencyPenalty === 0 && o.presencePenalty === 0) return;
    if (o.repeatLastN === 0) return;
    const start = o.repeatLastN < 0 ? 0 : Math.max(0, history.length - o.repeatLastN);
    const counts = new Map<number, number>();
    for (let i = start; i < history.length; i++) counts.set(history[i], (counts.get(history[i]) ?? 0) + 1);
    for (const [id, count] of counts) {
      if (id < 0 || id >= logits.length) continue;
      let l = logits[id];
      l = l > 0 ? l / o.repeatPenalty : l * o.repeatPenalty;
      logits[id] = l - count * o.frequencyPenalty - o.presencePenalty;
    }
  }

  /** Fills ids/values with the top-k (or all finite) logits, sorted descending; returns the count. */
  private selectCandidates(logits: Float32Array): number {
    const k = this.options.topK > 0 ? Math.min(this.options.topK, logits.length) : logits.length;
    if (this.ids.length < k) {
      this.ids = new Int32Array(k);
      this.values = new Float64Array(k);
    }
    const ids = this.ids;
    const vals = this.values;
    // Min-heap of the best k seen so far (root = smallest kept); full sort only at the end.
    let size = 0;
    for (let id = 0; id < logits.length; id++) {
      const v = logits[id];
      if (!(v > -Infinity)) continue; // drops -Infinity and NaN
      if (size < k) {
        let i = size++;
        while (i > 0) {
          const parent = (i - 1) >> 1;
          if (vals[parent] <= v) break;
          vals[i] = vals[parent];
          ids[i] = ids[parent];
          i = parent;
        }
        vals[i] = v;
        ids[i] = id;
      } else if (v > vals[0]) {
        siftDown(vals, ids, size, v, id);
      }
    }
    if (size === 0) throw new TesseraError("ERR_INTERNAL", "every logit is -Infinity or NaN; nothing can be sampled");
    // Sort descending (heap order is not sorted).
    const order = Array.from({ length: size }, (_, i) => i).sort((a, b) => vals[b] - vals[a] || ids[a] - ids[b]);
    const sortedIds = order.map((i) => ids[i]);
    const sortedVals = order.map((i) => vals[i]);
    for (let i = 0; i < size; i++) {
      ids[i] = sortedIds[i];
      vals[i] = sortedVals[i];
    }
    return size;
  }
}

function siftDown(vals: Float64Array, ids: Int32Array, size: number, v: number, id: number): void {
  let i = 0;
  for (;;) {
    const l = 2 * i + 1;
    if (l >= size) break;
    const r = l + 1;
    const c = r < size && vals[r] < vals[l] ? r : l;
    if (vals[c] >= v) break;
    vals[i] = vals[c];
    ids[i] = ids[c];
    i = c;
  }
  vals[i] = v;
  ids[i] = id;
}

/** In-place softmax of the first n (descending) values. */
function softmaxInPlace(values: Float64Array, n: number): void {
  const max = values[0];
  let sum = 0;
  for (let i = 0; i < n; i++) {
    values[i] = Math.exp(values[i] - max);
    sum += values[i];
  }
  for (let i = 0; i < n; i++) values[i] /= sum;
}

/** Index of the largest logit; the lowest index wins ties (as llama.cpp's greedy sampler). */
export function argmax(logits: Float32Array): number {
  let best = 0;
  let bestValue = -Infinity;
  for (let i = 0; i < logits.length; i++) {
    if (logits[i] > bestValue) {
      bestValue = logits[i];
      best = i;
    }
  }
  return best;
}
