/**
 * Perplexity and KL divergence by llama.cpp's `llama-perplexity` method, so the numbers are
 * comparable with its: the text (tokenized with the vocabulary's BOS) is cut into
 * non-overlapping chunks of `ctx` tokens; each chunk is evaluated from an empty cache with
 * its first token replaced by BOS, and only its second half is scored (every scored token
 * has at least ctx/2 tokens of context): the negative log-likelihood of token j+1 under the
 * logits at position j, for j from ctx/2 to ctx - 2. Perplexity is exp(mean NLL) — the seeds'
 * cross-entropy loss, measured.
 *
 * KL divergence (llama-perplexity --kl-divergence): the same positions through a base model
 * and a model under test (two files of one model, e.g. F16 and a quantization), the mean of
 * KL(base || test) over them and how often their top-1 tokens agree.
 */
import { TesseraError } from "../errors.js";
import type { Model } from "../model/model.js";

export interface PerplexityOptions {
  /** Tokens per chunk. Default 512. */
  ctx?: number;
  /** Most chunks to score (default: every whole chunk of the text). */
  chunks?: number;
  signal?: AbortSignal;
  /** Called after each chunk with the running perplexity. */
  onChunk?: (done: number, of: number, perplexity: number) => void;
}

export interface PerplexityResult {
  perplexity: number;
  /** Standard error of the estimate (llama.cpp's "+/-"). */
  error: number;
  /** Mean negative log-likelihood, nats per token. */
  nll: number;
  /** Tokens scored. */
  tokens: number;
  chunks: number;
  ctx: number;
}

export interface KlResult {
  /** Mean KL(base || model), nats per token. */
  meanKl: number;
  /** Share of scored positions where the two models' most likely tokens agree. */
  top1Agreement: number;
  tokens: number;
  chunks: number;
  ctx: number;
}

/** Rows of scored logits are read this many at a time (152k vocabularies: 39 MB). */
const ROWS_PER_PASS = 64;

function plan(model: Model, text: string, o: PerplexityOptions): { tokens: number[]; ctx: number; chunks: number } {
  if (typeof text !== "string") throw new TesseraError("ERR_INVALID_ARGUMENT", "perplexity needs the text as a string");
  const ctx = o.ctx ?? 512;
  if (!Number.isInteger(ctx) || ctx < 4 || ctx > model.info.contextSize)
    throw new TesseraError("ERR_INVALID_ARGUMENT", `ctx must be an integer in 4..${model.info.contextSize} (the model's context size), got ${String(o.ctx)}`);
  const tokens = model.tokenizer.encode(text, { addSpecial: true });
  if (tokens.length < 2 * ctx)
    throw new TesseraError("ERR_INVALID_ARGUMENT", `the text tokenizes to ${tokens.length} tokens; perplexity with a context of ${ctx} needs at least ${2 * ctx}`);
  let chunks = Math.floor(tokens.length / ctx);
  if (o.chunks !== undefined) {
    if (!Number.isInteger(o.chunks) || o.chunks < 1) throw new TesseraError("ERR_INVALID_ARGUMENT", `chunks must be a positive integer, got ${String(o.chunks)}`);
    chunks = Math.min(chunks, o.chunks);
  }
  return { tokens, ctx, chunks };
}

/**
 * Calls visit(row, logits, next) for every scored position of chunk i: `logits` the
 * model's raw logits there, `next` the token that follows.
 */
async function scoreChunk(model: Model, tokens: number[], start: number, ctx: number, signal: AbortSignal | undefined, visit: (logits: Float32Array, next: number) => void): Promise<void> {
  const chunk = tokens.slice(start, start + ctx);
  const bos = model.tokenizer.bos;
  if (model.tokenizer.addBos && bos !== undefined) chunk[0] = bos;
  const first = Math.floor(ctx / 2);
  const session = model.createSession({ contextSize: ctx });
  try {
    await session.evaluate(chunk.slice(0, first), { signal });
    const nVocab = model.info.nVocab;
    for (let p = first; p < ctx - 1; p += ROWS_PER_PASS) {
      const rows = chunk.slice(p, Math.min(p + ROWS_PER_PASS, ctx - 1));
      const logits = await session.evaluateAll(rows, { signal });
      for (let r = 0; r < rows.length; r++) visit(logits.subarray(r * nVocab, (r + 1) * nVocab), tokens[start + p + r + 1]);
    }
  } finally {
    session.dispose();
  }
}

/** log softmax(x)[i] in float64. */
function logSoftmaxAt(x: Float32Array, i: number): number {
  let max = -Infinity;
  for (let k = 0; k < x.length; k++) if (x[k] > max) max = x[k];
  let sum = 0;
  for (let k = 0; k < x.length; k++) sum += Math.exp(x[k] - max);
  return x[i] - max - Math.log(sum);
}

export async function perplexity(model: Model, text: string, o: PerplexityOptions = {}): Promise<PerplexityResult> {
  const { tokens, ctx, chunks } = plan(model, text, o);
  let nll = 0;
  let nll2 = 0;
  let count = 0;
  for (let i = 0; i < chunks; i++) {
    await scoreChunk(model, tokens, i * ctx, ctx, o.signal, (logits, next) => {
      const v = -logSoftmaxAt(logits, next);
      nll += v;
      nll2 += v * v;
      count++;
    });
    o.onChunk?.(i + 1, chunks, Math.exp(nll / count));
  }
  const mean = nll / count;
  const variance = nll2 / count - mean * mean;
  const ppl = Math.exp(mean);
  return { perplexity: ppl, error: variance > 0 ? Math.sqrt(variance / (count - 1)) * ppl : 0, nll: mean, tokens: count, chunks, ctx };
}

/** KL(base || model) and top-1 agreement over the scored positions of `text`. */
export async function klDivergence(base: Model, model: Model, text: string, o: PerplexityOptions = {}): Promise<KlResult> {
  if (base.info.nVocab !== model.info.nVocab || base.tokenizer.vocabSize !== model.tokenizer.vocabSize)
    throw new TesseraError("ERR_MODEL_INCOMPATIBLE", "KL divergence compares two files of one model: the vocabularies differ");
  const { tokens, ctx, chunks } = plan(model, text, o);
  let kl = 0;
  let agree = 0;
  let count = 0;
  for (let i = 0; i < chunks; i++) {
    const baseRows: Float64Array[] = [];
    await scoreChunk(base, tokens, i * ctx, ctx, o.signal, (logits) => baseRows.push(logProbs(logits)));
    let r = 0;
    await scoreChunk(model, tokens, i * ctx, ctx, o.signal, (logits) => {
      const p = baseRows[r++];
      const q = logProbs(logits);
      let d = 0;
      for (let k = 0; k < p.length; k++) if (p[k] > -Infinity) d += Math.exp(p[k]) * (p[k] - q[k]);
      kl += d;
      if (argmaxOf(p) === argmaxOf(q)) agree++;
      count++;
    });
    o.onChunk?.(i + 1, chunks, kl / count);
  }
  return { meanKl: kl / count, top1Agreement: agree / count, tokens: count, chunks, ctx };
}

function logProbs(x: Float32Array): Float64Array {
  let max = -Infinity;
  for (let k = 0; k < x.length; k++) if (x[k] > max) max = x[k];
  let sum = 0;
  for (let k = 0; k < x.length; k++) sum += Math.exp(x[k] - max);
  const lse = max + Math.log(sum);
  return Float64Array.from(x, (v) => v - lse);
}

function argmaxOf(x: Float64Array): number {
  let best = 0;
  for (let k = 1; k < x.length; k++) if (x[k] > x[best]) best = k;
  return best;
}
