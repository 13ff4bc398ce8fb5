/**
 * The sampler chain of lib/sampling/sampler.ts laid open, stage by stage, for the explorer:
 * which tokens top-k keeps, which of those top-p keeps, which of those min-p keeps, and the
 * probabilities temperature gives the survivors. Sampler.sample only returns the drawn id
 * (its candidate arrays are private and reused for speed), so this walks the same chain
 * with the same definitions: options checked by the same resolveSampling, top-k's
 * probabilities normalized over the top-k set and top-p's walk over them (over the whole
 * vocabulary without top-k), min-p relative to the top token, temperature applied to the
 * survivors only as p^(1/T) renormalized, temperature 0 meaning argmax. Ties order by
 * ascending id, as the sampler sorts. test/inspect/sampler-stages.test.ts checks that every
 * draw of the real Sampler lies in the set this reports, and that its draw frequencies
 * follow the final probabilities.
 */
import { TesseraError } from "../errors.js";
import { resolveSampling, type SamplingOptions } from "../sampling/sampler.js";

export interface StageCandidate {
  token: number;
  logit: number;
  /** softmax(logits) over the whole vocabulary (temperature 1). */
  prob: number;
  /** Survived top-k / top-p / min-p (each implies the earlier ones). */
  topK: boolean;
  topP: boolean;
  minP: boolean;
  /** Probability of being drawn: after temperature, over the survivors (0 for the others). */
  final: number;
}

export interface SamplerStages {
  temperature: number;
  topK: number;
  topP: number;
  minP: number;
  /** Whole vocabulary (finite logits). */
  vocabulary: number;
  /** Survivors after each stage. */
  afterTopK: number;
  afterTopP: number;
  afterMinP: number;
  /** Entropy of softmax(logits) (nats) and of the final distribution. */
  entropy: number;
  finalEntropy: number;
  /** The `show` most likely tokens (by logit), most likely first, with their fate. */
  candidates: StageCandidate[];
}

/**
 * Every stage of the sampler on `logits` (not modified) with `options` (temperature, topK,
 * topP, minP; penalties and bias are not part of the explorer's view), and the `show` most
 * likely tokens.
 */
export function samplerStages(logits: Float32Array, options: SamplingOptions, show = 40): SamplerStages {
  const o = resolveSampling({ ...options, seed: 0 });
  if (!Number.isInteger(show) || show < 1 || show > 1000) throw new TesseraError("ERR_INVALID_ARGUMENT", `show must be an integer in 1..1000, got ${String(show)}`);
  const order = sortedFinite(logits);
  if (order.length === 0) throw new TesseraError("ERR_NON_FINITE", "the logits hold no finite value to sample from");
  const V = order.length;
  const max = logits[order[0]];
  let z = 0;
  let weighted = 0;
  for (const id of order) {
    const e = Math.exp(logits[id] - max);
    z += e;
    weighted += e * (logits[id] - max);
  }
  const entropy = Math.log(z) - weighted / z;
  const prob = (id: number) => Math.exp(logits[id] - max) / z;

  let afterTopK: number, afterTopP: number, afterMinP: number;
  // The truncations' probabilities: over the top-k set when top-k truncates, else the vocabulary.
  const k = o.topK > 0 ? Math.min(o.topK, logits.length) : logits.length;
  if (o.temperature <= 0) {
    // Greedy: only the argmax can be drawn; the truncations do not run.
    afterTopK = afterTopP = afterMinP = 1;
  } else {
    afterTopK = Math.min(k, V);
    let zk = z;
    if (k < logits.length) {
      zk = 0;
      for (let i = 0; i < afterTopK; i++) zk += Math.exp(logits[order[i]] - max);
    }
    const p = (i: number) => Math.exp(logits[order[i]] - max) / zk;
    afterTopP = afterTopK;
    if (o.topP < 1) {
      let cumulative = 0;
      for (let i = 0; i < afterTopK; i++) {
        cumulative += p(i);
        if (cumulative >= o.topP) {
          afterTopP = i + 1;
          break;
        }
      }
    }
    afterMinP = afterTopP;
    if (o.minP > 0) {
      const threshold = p(0) * o.minP;
      let keep = 1;
      while (keep < afterTopP && p(keep) >= threshold) keep++;
      afterMinP = keep;
    }
  }
  // Temperature over the survivors: softmax(logit / T) restricted to them.
  const final = new Float64Array(afterMinP);
  if (o.temperature <= 0) final[0] = 1;
  else {
    let sum = 0;
    for (let i = 0; i < afterMinP; i++) sum += final[i] = Math.exp((logits[order[i]] - max) / o.temperature);
    for (let i = 0; i < afterMinP; i++) final[i] /= sum;
  }
  let finalEntropy = 0;
  for (const q of final) if (q > 0) finalEntropy -= q * Math.log(q);
  const candidates = Array.from(order.subarray(0, Math.min(show, V)), (token, i) => ({
    token,
    logit: logits[token],
    prob: prob(token),
    topK: i < afterTopK,
    topP: i < afterTopP,
    minP: i < afterMinP,
    final: i < afterMinP ? final[i] : 0,
  }));
  return { temperature: o.temperature, topK: o.topK, topP: o.topP, minP: o.minP, vocabulary: V, afterTopK, afterTopP, afterMinP, entropy, finalEntropy, candidates };
}

// As the sampler sorts its candidates: one float64 key per token, the float32 logit's bits
// made order-preserving above the id, sorted without a comparator (a 150k vocabulary sorts
// in milliseconds, so a slider can ask again on every move).
const ID_BITS = 2 ** 21;
const f32 = new Float32Array(1);
const f32Bits = new Uint32Array(f32.buffer);

/** Ids of the finite logits, by logit descending, ties by ascending id. */
function sortedFinite(logits: Float32Array): Int32Array {
  if (logits.length > ID_BITS) throw new TesseraError("ERR_INVALID_ARGUMENT", `the sampler takes vocabularies up to ${ID_BITS} tokens, got ${logits.length}`);
  const keys = new Float64Array(logits.length);
  let n = 0;
  for (let i = 0; i < logits.length; i++) {
    const v = logits[i];
    if (!(v > -Infinity && v < Infinity)) continue;
    f32[0] = v + 0;
    const bits = f32Bits[0];
    const ascending = bits & 0x80000000 ? ~bits >>> 0 : (bits | 0x80000000) >>> 0;
    keys[n++] = (0xffffffff - ascending) * ID_BITS + i;
  }
  const sorted = keys.subarray(0, n).sort();
  const ids = new Int32Array(n);
  // The id is the key's low part; floor division, as % on doubles this large is slow.
  for (let i = 0; i < n; i++) ids[i] = sorted[i] - Math.floor(sorted[i] / ID_BITS) * ID_BITS;
  return ids;
}
