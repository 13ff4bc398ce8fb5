/**
 * The sampler chain, in llama.cpp's default order: logit bias -> repetition/frequency/presence
 * penalties -> top-k -> top-p -> min-p -> temperature -> draw. Temperature 0 is greedy (argmax
 * after penalties). Truncations use the untempered distribution; temperature shapes only the
 * draw.
 *
 * A token mask (constrained decoding) restricts the draw to the allowed tokens exactly as if
 * every other logit were -Infinity: the same seed gives the same draw as the unmasked sampler
 * on those logits, and greedy picks the best allowed token. Without a mask nothing changes.
 *
 * NaN logits are never drawn; logits with no finite value, or with +Infinity, cannot be
 * sampled and give ERR_NON_FINITE (the engine's own steps never hand such logits over).
 */
import { TesseraError } from "../errors.js";
import type { TokenMask } from "./constraint.js";
import { Rng } from "./rng.js";

export interface SamplingOptions {
  /** 0 picks the most likely token (greedy); below 0 is refused with ERR_INVALID_ARGUMENT. Default 0.8. */
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
  /**
   * Added to the logits of these tokens before anything else (OpenAI's logit_bias): token id
   * -> bias; -Infinity bans a token. An object keyed by id or a Map.
   */
  logitBias?: Record<number, number> | ReadonlyMap<number, number>;
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
  /** Token ids and their biases, in parallel arrays (empty: none). */
  biasIds: Int32Array;
  biasValues: Float32Array;
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
  const { biasIds, biasValues } = resolveBias(o.logitBias);
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
    biasIds,
    biasValues,
  };
}

function resolveBias(bias: SamplingOptions["logitBias"]): { biasIds: Int32Array; biasValues: Float32Array } {
  if (bias === undefined) return { biasIds: new Int32Array(0), biasValues: new Float32Array(0) };
  let entries: Array<[unknown, unknown]>;
  if (bias instanceof Map) entries = [...bias.entries()];
  else if (typeof bias === "object" && bias !== null && !Array.isArray(bias)) entries = Object.entries(bias);
  else throw new TesseraError("ERR_INVALID_ARGUMENT", "logitBias must be an object or a Map of token id -> bias, e.g. { 1234: -100 }");
  const ids = new Int32Array(entries.length);
  const values = new Float32Array(entries.length);
  entries.forEach(([k, v], i) => {
    const id = typeof k === "string" && /^\d+$/.test(k) ? Number(k) : k;
    if (typeof id !== "number" || !Number.isInteger(id) || id < 0 || id >= 2 ** 31)
      throw new TesseraError("ERR_INVALID_ARGUMENT", `logitBias keys must be token ids (non-negative integers), got ${JSON.stringify(k)}`);
    if (typeof v !== "number" || Number.isNaN(v) || v === Infinity || (Number.isFinite(v) && Math.abs(v) > 1e6))
      throw new TesseraError("ERR_INVALID_ARGUMENT", `logitBias[${id}] must be a number in [-1e6, 1e6] or -Infinity, got ${String(v)}`);
    ids[i] = id;
    values[i] = v;
  });
  return { biasIds: ids, biasValues: values };
}

export class Sampler {
  readonly options: ResolvedSampling;
  private readonly rng: Rng;
  // Reused candidate storage: ids and their logits (then probabilities), sorted descending.
  private ids: Int32Array;
  private values: Float64Array;
  // A sparse mask's allowed logits and their token ids.
  private maskedLogits = new Float32Array(0);
  private maskedIds = new Int32Array(0);

  /** Greedy, and neither bias nor penalties change a logit: the pick is the row's argmax. */
  readonly untouched: boolean;

  constructor(options: SamplingOptions = {}) {
    this.options = resolveSampling(options);
    const o = this.options;
    this.untouched =
      o.temperature <= 0 &&
      o.biasIds.length === 0 &&
      (o.repeatLastN === 0 || (o.repeatPenalty === 1 && o.frequencyPenalty === 0 && o.presencePenalty === 0));
    this.rng = new Rng(this.options.seed);
    this.ids = new Int32Array(0);
    this.values = new Float64Array(0);
  }

  /**
   * Picks the next token from `logits` (modified in place by the bias, the penalties and a
   * dense mask), given the tokens generated or evaluated so far, among the tokens of `mask`
   * when one is given.
   */
  sample(logits: Float32Array, history: ArrayLike<number> = [], mask?: TokenMask, argmax?: number): number {
    // `argmax`: the index of the largest of these logits, lowest on ties, when the caller has
    // it (the engine computes it natively with each step). Greedy sampling that changes no
    // logit (no mask, bias or penalty) returns it instead of scanning the row.
    if (argmax !== undefined && mask === undefined && this.untouched && argmax >= 0 && argmax < logits.length) {
      if (!(logits[argmax] > -Infinity)) throw nothingToSample();
      return argmax;
    }
    this.applyBias(logits);
    this.applyPenalties(logits, history);
    if (mask === undefined) return this.draw(logits, logits.length);
    if (mask.count <= 0) throw new TesseraError("ERR_INTERNAL", "the token mask allows no token; nothing can be sampled");
    if (mask.count * 2 > logits.length) {
      // Most tokens allowed: blank the others in place and sample as usual.
      blankDisallowed(logits, mask.bits);
      const id = this.draw(logits, logits.length);
      return isAllowed(mask.bits, id) ? id : firstAllowed(mask.bits);
    }
    // Few allowed: sample over just their logits (ascending ids, so that ties and sums go in
    // the same order as over the whole vocabulary) and map the pick back.
    const n = this.gather(logits, mask);
    return this.maskedIds[this.draw(this.maskedLogits.subarray(0, n), logits.length)];
  }

  /** The allowed logits into maskedLogits/maskedIds; returns how many. */
  private gather(logits: Float32Array, mask: TokenMask): number {
    if (this.maskedLogits.length < mask.count) {
      this.maskedLogits = new Float32Array(mask.count);
      this.maskedIds = new Int32Array(mask.count);
    }
    const out = this.maskedLogits;
    const outIds = this.maskedIds;
    let n = 0;
    if (mask.ids) {
      const ids = mask.ids;
      for (let i = 0; i < ids.length && ids[i] < logits.length; i++) {
        out[n] = logits[ids[i]];
        outIds[n++] = ids[i];
      }
      return n;
    }
    const bits = mask.bits;
    for (let w = 0; w < bits.length; w++) {
      let word = bits[w];
      while (word !== 0) {
        const low = word & -word;
        word ^= low;
        const id = (w << 5) + 31 - Math.clz32(low);
        if (id >= logits.length) return n;
        out[n] = logits[id];
        outIds[n++] = id;
      }
    }
    return n;
  }

  /**
   * The draw over `logits` (the whole vocabulary, or a mask's allowed part); `vocabulary` is
   * the whole vocabulary's size, which decides whether top-k truncates. Returns an index into
   * `logits`.
   */
  private draw(logits: Float32Array, vocabulary: number): number {
    const o = this.options;
    if (o.temperature <= 0) {
      const id = argmax(logits);
      if (!(logits[id] > -Infinity)) throw nothingToSample();
      return id;
    }

    const k = o.topK > 0 ? Math.min(o.topK, vocabulary) : vocabulary;
    // Probabilities at temperature 1 over the top-k (or the whole vocabulary), for the truncations.
    let n = k < vocabulary ? this.selectTopK(logits, k) : this.selectLikely(logits);
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

  private applyBias(logits: Float32Array): void {
    const { biasIds, biasValues } = this.options;
    for (let i = 0; i < biasIds.length; i++) {
      const id = biasIds[i];
      if (id >= logits.length)
        throw new TesseraError("ERR_INVALID_ARGUMENT", `logitBias names token ${id}, but the vocabulary has ${logits.length} tokens`);
      logits[id] += biasValues[i];
    }
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

  private reserve(n: number): void {
    if (this.ids.length >= n) return;
    this.ids = new Int32Array(n);
    this.values = new Float64Array(n);
  }

  /**
   * The k largest finite logits, sorted into ids, with their probabilities over the top-k set
   * (top-p's normalizer is that set's) in values; returns the count.
   */
  private selectTopK(logits: Float32Array, k: number): number {
    this.reserve(k);
    const ids = this.ids;
    const vals = this.values;
    // Min-heap of the best k seen so far. Its root, once full, is the bar a logit must clear,
    // kept in a local: on a 150k vocabulary almost every logit fails that one comparison.
    let size = 0;
    let bar = -Infinity; // also drops -Infinity and NaN
    for (let id = 0; id < logits.length; id++) {
      const v = logits[id];
      if (!(v > bar)) continue;
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
        if (size === k) bar = vals[0];
      } else {
        siftDown(vals, ids, size, v, id);
        bar = vals[0];
      }
    }
    if (size === 0) throw nothingToSample();
    sortCandidates(logits, ids, vals, size);
    if (vals[0] === Infinity) throw nothingToSample();
    this.toProbabilities(size);
    return size;
  }

  /**
   * Without top-k, top-p normalizes over the whole vocabulary, but only the tokens above the
   * top-p and min-p cuts can be drawn. Sorting just those (a few hundred, not 150k) gives the
   * same draw: one pass for the normalizer and a histogram of exp mass by distance below the
   * max says how far down the top-p prefix reaches; a second pass collects the tokens above
   * the tighter cut. Fills ids and their probabilities over every finite logit; returns the count.
   */
  private selectLikely(logits: Float32Array): number {
    const o = this.options;
    let max = -Infinity;
    for (let i = 0; i < logits.length; i++) if (logits[i] > max) max = logits[i];
    if (!(max > -Infinity) || max === Infinity) throw nothingToSample();

    const mass = new Float64Array(HISTOGRAM_BUCKETS);
    let sumExp = 0;
    for (let i = 0; i < logits.length; i++) {
      const v = logits[i];
      if (!(v > -Infinity)) continue;
      const e = Math.exp(v - max);
      sumExp += e;
      const bucket = Math.floor((max - v) * BUCKETS_PER_LOGIT);
      if (bucket < HISTOGRAM_BUCKETS) mass[bucket] += e;
    }
    // The cuts as logit floors, each a little below where it falls so that rounding in the
    // exact comparisons of sample() never needs a token left out.
    let topPFloor = -Infinity;
    if (o.topP < 1) {
      let cumulative = 0;
      for (let b = 0; b < HISTOGRAM_BUCKETS; b++) {
        cumulative += mass[b];
        if (cumulative >= o.topP * sumExp) {
          topPFloor = max - (b + 2) / BUCKETS_PER_LOGIT;
          break;
        }
      }
    }
    const minPFloor = o.minP > 0 ? max + Math.log(o.minP) - 1e-6 : -Infinity;

    let count = this.collectAbove(logits, Math.max(topPFloor, minPFloor), sumExp);
    // Top-p reaching past the collected tokens (only by rounding at a histogram edge) while
    // min-p does not bound the draw: collect again down to min-p's floor alone.
    if (topPFloor > minPFloor && !this.prefixReaches(count, o.topP)) count = this.collectAbove(logits, minPFloor, sumExp);
    return count;
  }

  /** Every logit >= floor (and finite) into ids, sorted, with probabilities; returns the count. */
  private collectAbove(logits: Float32Array, floor: number, sumExp: number): number {
    this.reserve(logits.length);
    let count = 0;
    for (let i = 0; i < logits.length; i++) if (logits[i] >= floor && logits[i] > -Infinity) this.ids[count++] = i;
    sortCandidates(logits, this.ids, this.values, count);
    this.toProbabilities(count, sumExp);
    return count;
  }

  /**
   * The first n sorted logits in values as probabilities: exp(logit − max) / sumExp, where
   * sumExp (Σ exp(logit − max) over the distribution's whole support) defaults to the sum over
   * these n.
   */
  private toProbabilities(n: number, sumExp?: number): void {
    const vals = this.values;
    const top = vals[0];
    let sum = 0;
    for (let i = 0; i < n; i++) {
      vals[i] = Math.exp(vals[i] - top);
      sum += vals[i];
    }
    const z = sumExp ?? sum;
    for (let i = 0; i < n; i++) vals[i] /= z;
  }

  /** Whether the first n probabilities add up to p, summed as sample()'s top-p walk sums them. */
  private prefixReaches(n: number, p: number): boolean {
    let cumulative = 0;
    for (let i = 0; i < n; i++) cumulative += this.values[i];
    return cumulative >= p;
  }
}

// Resolution of the top-p histogram: a quarter of a logit per bucket, 64 logits deep (mass
// further below the max is under e^-64 of it, never needed to reach a p below 1).
const BUCKETS_PER_LOGIT = 4;
const HISTOGRAM_BUCKETS = 64 * BUCKETS_PER_LOGIT;

function nothingToSample(): TesseraError {
  return new TesseraError(
    "ERR_NON_FINITE",
    "the logits hold no finite value to sample from (all NaN or -Infinity, or +Infinity): the model's weights hold " +
      "non-finite values or its activations overflowed; load it with checkTensors: true, or use another quantization",
  );
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

// Candidates sort as one number each, value descending then id ascending: the float32
// logit's bits made order-preserving (32 bits) above the id (21 bits) fit a double's 53, and
// a typed array sorts numbers without a comparator several times faster.
const ID_BITS = 2 ** 21;
const f32 = new Float32Array(1);
const f32Bits = new Uint32Array(f32.buffer);

/**
 * Sorts the first n candidate ids by their logit, descending, the lower id first among
 * equals, and writes the logits beside them into vals.
 */
function sortCandidates(logits: Float32Array, ids: Int32Array, vals: Float64Array, n: number): void {
  if (logits.length > ID_BITS)
    throw new TesseraError("ERR_INVALID_ARGUMENT", `the sampler takes vocabularies up to ${ID_BITS} tokens, got ${logits.length}`);
  const keys = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    f32[0] = logits[ids[i]] + 0; // -0 as +0: they tie, as in a comparison
    const bits = f32Bits[0];
    const ascending = bits & 0x80000000 ? ~bits >>> 0 : (bits | 0x80000000) >>> 0;
    keys[i] = (0xffffffff - ascending) * ID_BITS + ids[i];
  }
  keys.sort();
  for (let i = 0; i < n; i++) {
    // k - floor(k / 2^21) * 2^21 is exact for keys below 2^53 and much faster than `%`, which
    // is fmod on doubles this large.
    const k = keys[i];
    const id = k - Math.floor(k / ID_BITS) * ID_BITS;
    ids[i] = id;
    vals[i] = logits[id];
  }
}

function isAllowed(bits: Uint32Array, id: number): boolean {
  return (id >>> 5) < bits.length && (bits[id >>> 5] & (1 << (id & 31))) !== 0;
}

function firstAllowed(bits: Uint32Array): number {
  for (let w = 0; w < bits.length; w++) if (bits[w] !== 0) return (w << 5) + 31 - Math.clz32(bits[w] & -bits[w]);
  throw new TesseraError("ERR_INTERNAL", "the token mask allows no token");
}

/** Sets every logit the mask leaves out to -Infinity. */
function blankDisallowed(logits: Float32Array, bits: Uint32Array): void {
  const covered = Math.min(bits.length, (logits.length + 31) >>> 5);
  for (let w = 0; w < covered; w++) {
    const word = bits[w];
    if (word === 0xffffffff) continue;
    const base = w << 5;
    if (word === 0) {
      logits.fill(-Infinity, base, Math.min(base + 32, logits.length));
      continue;
    }
    let missing = ~word;
    while (missing !== 0) {
      const low = missing & -missing;
      missing ^= low;
      const id = base + 31 - Math.clz32(low);
      if (id < logits.length) logits[id] = -Infinity;
    }
  }
  if (covered << 5 < logits.length) logits.fill(-Infinity, covered << 5);
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
