/**
 * Log-probabilities of generated tokens and a confidence summary. A token's logprob is its
 * natural-log probability under the softmax of the model's raw logits at that step — before
 * temperature, penalties or truncation, so it says what the model believes, not what the
 * sampler was told to do — with the k most likely alternatives and the distribution's
 * entropy in nats. Computed in float64 over the whole vocabulary, only when asked for.
 *
 * A model is "wrong with complete confidence" as often as it is unsure, so confidence here
 * is a description, not a verdict: spans of tokens where the distribution was flat (entropy
 * above LOW_CONFIDENCE_ENTROPY) or two candidates nearly tied (top-1 minus top-2 probability
 * below LOW_CONFIDENCE_MARGIN) are flagged.
 */

export interface TopLogprob {
  token: number;
  logprob: number;
}

export interface TokenLogprob {
  token: number;
  logprob: number;
  /** Entropy of the next-token distribution, nats. */
  entropy: number;
  /** The k most likely tokens, most likely first (k = the `logprobs` option). */
  top: TopLogprob[];
}

/** Entropy (nats) above which a step counts as unsure. */
export const LOW_CONFIDENCE_ENTROPY = 2.5;
/** Top-1 minus top-2 probability below which a step counts as a near tie. */
export const LOW_CONFIDENCE_MARGIN = 0.05;

export interface ConfidenceSpan {
  /** Token indices [start, end) into the generated tokens. */
  start: number;
  end: number;
  reason: "entropy" | "margin" | "both";
}

export interface Confidence {
  /** Mean logprob of the generated tokens. */
  meanLogprob: number;
  minLogprob: number;
  /** exp(-meanLogprob). */
  perplexity: number;
  meanEntropy: number;
  /** Runs of consecutive low-confidence steps. */
  lowConfidence: ConfidenceSpan[];
}

/**
 * The logprob of `token` under softmax(logits), the entropy, and the top-k alternatives.
 * `logits` is not modified.
 */
export function tokenLogprob(logits: ArrayLike<number>, token: number, k: number): TokenLogprob {
  const n = logits.length;
  let max = -Infinity;
  for (let i = 0; i < n; i++) if (logits[i] > max) max = logits[i];
  // One pass of exponentials: H = -sum p (x - lse) = lse - sum e x / sum e, e = exp(x - max).
  let sum = 0;
  let weighted = 0;
  for (let i = 0; i < n; i++) {
    const x = logits[i];
    if (x === -Infinity) continue;
    const e = Math.exp(x - max);
    sum += e;
    weighted += e * (x - max);
  }
  const lse = max + Math.log(sum);
  const entropy = Math.log(sum) - weighted / sum;
  return { token, logprob: logits[token] - lse, entropy, top: topK(logits, k).map((t) => ({ token: t, logprob: logits[t] - lse })) };
}

/** The indices of the k largest values, largest first (ties: lower index first). */
function topK(x: ArrayLike<number>, k: number): number[] {
  k = Math.min(k, x.length);
  if (k <= 0) return [];
  // A sorted window of the best k so far: vocabularies are ~1e5, k is small.
  const best: number[] = [];
  for (let i = 0; i < x.length; i++) {
    if (best.length === k && x[i] <= x[best[k - 1]]) continue;
    let at = best.length;
    while (at > 0 && x[best[at - 1]] < x[i]) at--;
    best.splice(at, 0, i);
    if (best.length > k) best.pop();
  }
  return best;
}

/** The summary of a generation's token logprobs (each entry needs top of at least 2 for margins). */
export function summarizeConfidence(steps: readonly TokenLogprob[]): Confidence {
  let sum = 0;
  let min = Infinity;
  let entropy = 0;
  const spans: ConfidenceSpan[] = [];
  steps.forEach((s, i) => {
    sum += s.logprob;
    min = Math.min(min, s.logprob);
    entropy += s.entropy;
    const flat = s.entropy > LOW_CONFIDENCE_ENTROPY;
    const tied = s.top.length >= 2 && Math.exp(s.top[0].logprob) - Math.exp(s.top[1].logprob) < LOW_CONFIDENCE_MARGIN;
    if (!flat && !tied) return;
    const reason = flat && tied ? "both" : flat ? "entropy" : "margin";
    const last = spans[spans.length - 1];
    if (last && last.end === i) {
      last.end = i + 1;
      if (last.reason !== reason) last.reason = "both";
    } else spans.push({ start: i, end: i + 1, reason });
  });
  const n = steps.length;
  const mean = n ? sum / n : 0;
  return { meanLogprob: mean, minLogprob: n ? min : 0, perplexity: Math.exp(-mean), meanEntropy: n ? entropy / n : 0, lowConfidence: spans };
}
