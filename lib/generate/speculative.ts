/**
 * Speculative decoding. Decode reads every weight once per token, so checking several
 * proposed tokens in one pass costs about as much as one: a proposer (a small draft model,
 * or the longest earlier match of the text's last n-gram — prompt lookup) guesses the next
 * k tokens, the target evaluates the sampled token and the k guesses in one request, and
 * every guess the target agrees with saves a pass.
 *
 * The generation loop is unchanged: it samples each token from the target's logits as
 * always, and asks the speculator for the logits after it. When the sampled token is the
 * guess, those logits were computed in the last verification pass; otherwise the guesses'
 * keys and values are rolled back and a new pass runs. So greedy output is the output
 * without speculation, token for token; and with sampling, it is the standard rejection
 * rule (Leviathan et al. 2023; Chen et al. 2023) with a deterministic proposal: a guess d
 * (draft probability q(d) = 1) is accepted with probability min(1, p(d)/q(d)) = p(d), and a
 * rejection samples the residual normalize(max(0, p - q)) = p without d — which is exactly
 * what sampling p and comparing with d does. The output distribution is the target's, and
 * even the same seed gives the same tokens. The draft proposes its greedy continuation.
 */
import { TesseraError } from "../errors.js";
import type { Model } from "../model/model.js";
import type { Session } from "../model/session.js";
import { argmax } from "../sampling/sampler.js";
import type { Tokenizer } from "../tokenizer/index.js";
import type { GenerationTarget } from "./generate.js";

/**
 * Mean milliseconds of a lookup generation's next() calls while guessing and while not, as
 * the last one on a model that measured both left them: the next one starts in the faster
 * mode. Kept per model (lookupMemory).
 */
export interface LookupMemory {
  guessMs: number;
  plainMs: number;
}

const lookupMemories = new WeakMap<object, LookupMemory>();

/** The lookup memory of the model `key` stands for (its tokenizer: one per loaded model). */
export function lookupMemory(key: object): LookupMemory {
  let m = lookupMemories.get(key);
  if (!m) lookupMemories.set(key, (m = { guessMs: NaN, plainMs: NaN }));
  return m;
}

/** Logits after a token, and their argmax when known (see EvaluateResult.argmax). */
export interface Step {
  logits: Float32Array;
  argmax?: number;
}

export interface SpeculativeOptions {
  /** A smaller model with the same vocabulary that proposes tokens. */
  draft?: Model;
  /** Propose the continuation of the longest earlier match of the text's last n-gram. */
  promptLookup?: boolean;
  /** Most tokens proposed per pass; the number adapts to the acceptance rate. Default 8. */
  maxDraftTokens?: number;
}

export interface SpeculativeStats {
  /** Proposed tokens the target's sample was checked against (guesses left when it ended excluded). */
  proposed: number;
  /** Proposed tokens the target agreed with. */
  accepted: number;
  /** Target evaluations after the prompt (each a pass over the sampled token and the guesses). */
  targetPasses: number;
  /** Generated tokens per target pass. */
  tokensPerPass: number;
}

interface Proposer {
  /** Guessing costs next to nothing (no model runs): worth checking guesses it does not send. */
  readonly cheap: boolean;
  /** Up to k guesses of the tokens after `history`. */
  propose(history: readonly number[], k: number, signal: AbortSignal | undefined): Promise<number[]>;
  dispose(): void;
}

/** The continuation of the longest earlier occurrence (n-gram of up to maxN tokens) of the text's end, the most recent of those. */
class PromptLookup implements Proposer {
  readonly cheap = true;
  constructor(private readonly maxN = 4) {}

  async propose(h: readonly number[], k: number): Promise<number[]> {
    const end = h.length;
    for (let n = Math.min(this.maxN, end - 1); n >= 1; n--) {
      // The most recent earlier start i with h[i..i+n) == h[end-n..end).
      for (let i = end - n - 1; i >= 0; i--) {
        let j = 0;
        while (j < n && h[i + j] === h[end - n + j]) j++;
        if (j < n) continue;
        // What followed it, read on into the guesses themselves when it reaches the end: a
        // text that repeats with period end - n - i (a loop, a repeated line) gets k guesses,
        // not just the few tokens between that occurrence and the end.
        const from = i + n;
        const out: number[] = [];
        for (let t = 0; t < k; t++) out.push(from + t < end ? h[from + t] : out[from + t - end]);
        return out;
      }
    }
    return [];
  }

  dispose(): void {}
}

/** The draft model's greedy continuation, its cache kept in step with the text. */
class DraftModel implements Proposer {
  readonly cheap = false;
  private readonly session: Session;

  constructor(draft: Model) {
    this.session = draft.createSession();
  }

  async propose(h: readonly number[], k: number, signal: AbortSignal | undefined): Promise<number[]> {
    const s = this.session;
    // Drop what the draft guessed wrong last time; feed it what it has not seen.
    let keep = 0;
    const cached = s.tokens;
    while (keep < cached.length && keep < h.length - 1 && cached[keep] === h[keep]) keep++;
    s.truncate(keep);
    // The draft's own context may be shorter than the target's: then it has nothing to say.
    const room = s.contextSize - h.length;
    k = Math.min(k, room);
    if (k <= 0) return [];
    // The engine's own logits, read at once (argmax before anything else runs): a copy per
    // guess allocated 196 KB of fresh pages per draft step for a 49k vocabulary.
    let logits = await s.evaluateShared(h.slice(keep), { signal });
    const out: number[] = [];
    for (;;) {
      const t = argmax(logits);
      out.push(t);
      if (out.length >= k) return out;
      logits = await s.evaluateShared([t], { signal });
    }
  }

  dispose(): void {
    this.session.dispose();
  }
}

const vocabChecked = new WeakMap<Tokenizer, WeakSet<Tokenizer>>();

/** The draft must read and write the same tokens as the target. */
function checkVocabularies(target: Tokenizer, draft: Tokenizer): void {
  if (vocabChecked.get(target)?.has(draft)) return;
  const differ = (why: string) =>
    new TesseraError("ERR_MODEL_INCOMPATIBLE", `the draft model's vocabulary differs from the target's (${why}); use a draft of the same model family and tokenizer`);
  if (target.vocabSize !== draft.vocabSize) throw differ(`${draft.vocabSize} tokens against ${target.vocabSize}`);
  for (let id = 0; id < target.vocabSize; id++) {
    const a = target.tokenBytes(id), b = draft.tokenBytes(id);
    if (a.length !== b.length || a.some((x, i) => x !== b[i]) || target.isSpecial(id) !== draft.isSpecial(id)) throw differ(`token ${id}`);
  }
  if (!vocabChecked.has(target)) vocabChecked.set(target, new WeakSet());
  vocabChecked.get(target)!.add(draft);
}

/** Validates the options; the draft's vocabulary against the target's. */
export function checkSpeculative(o: SpeculativeOptions, target: Tokenizer): void {
  if (o === null || typeof o !== "object") throw new TesseraError("ERR_INVALID_ARGUMENT", "speculative must be an object: { draft?, promptLookup?, maxDraftTokens? }");
  const max = o.maxDraftTokens ?? 8;
  if (!Number.isInteger(max) || max < 1 || max > 64) throw new TesseraError("ERR_INVALID_ARGUMENT", `maxDraftTokens must be an integer in 1..64, got ${String(o.maxDraftTokens)}`);
  if (o.draft === undefined && !o.promptLookup) throw new TesseraError("ERR_INVALID_ARGUMENT", "speculative needs a draft model or promptLookup: true");
  if (o.draft !== undefined) {
    if (typeof o.draft !== "object" || o.draft === null || typeof (o.draft as Model).createSession !== "function")
      throw new TesseraError("ERR_INVALID_ARGUMENT", "speculative.draft must be a loaded Model");
    checkVocabularies(target, o.draft.tokenizer);
  }
}

/**
 * The logits oracle of a speculative generation: next(id) returns the target's logits after
 * the sampled token id, from the last verification pass when id was the guess.
 */
export class Speculator {
  private readonly proposer: Proposer;
  /** Guesses of the last pass not yet reached, each with the target's logits after it. */
  private ahead: Array<{ token: number; logits: Float32Array; argmax: number | undefined }> = [];
  private k: number;
  private readonly max: number;
  /** The verification passes' logits, [max + 1][nVocab], reused (see EvaluateRequest.out). */
  private verified: Float32Array | undefined;
  readonly stats = { proposed: 0, accepted: 0, targetPasses: 0 };
  // Whether guessing pays (a cheap proposer only). Each next() call yields one token, so the
  // mean time of a call while guessing, against that of plain steps, says which mode gives
  // more tokens per millisecond, with every cost counted (the passes' extra rows, copying
  // their logits, the proposer, rolling back). Where a row is a good part of a step (a small
  // model) and guesses are often wrong, plain steps win: k drops to 0 until a fresh try.
  // While not guessing, the proposer's guesses are still checked against the tokens
  // sampled (`shadow`), and guessing is tried again when they agree more than they did.
  /** Mean milliseconds of a next() call while guessing and while not (NaN: not measured). */
  private guessMs = NaN;
  private plainMs = NaN;
  /** Plain calls since guessing stopped, and the agreement rate then. */
  private plainCalls = 0;
  private agreementWhenStopped = 0;
  /** Guesses the target agreed with and passes where it did not, sent or shadow. */
  private agreed = 0;
  private disagreed = 0;
  private shadow: number | undefined;

  constructor(
    private readonly target: GenerationTarget,
    /** Prompt and generated tokens, the sampled token last (the loop's history). */
    private readonly history: readonly number[],
    o: SpeculativeOptions,
    /** What earlier lookup generations on this model measured (see LookupMemory). */
    private readonly memory?: LookupMemory,
    /** The loop samples each token as its row's argmax (EvaluateRequest.greedyRows). */
    private readonly greedy = false,
  ) {
    this.proposer = o.draft ? new DraftModel(o.draft) : new PromptLookup();
    this.max = o.maxDraftTokens ?? 8;
    // Start at the most, as llama.cpp drafts: a wrong guess costs its rows in one pass and
    // takes one off k, while a ramp from max / 2 cost a draft that agreed 2 passes in 16
    // (128 tokens of the bench's target/draft pair).
    this.k = this.max;
    // Where plain steps were faster last time, start there (every generation exploring
    // from k = max cost stories260K 12% of a 120-token reply); shadow guesses that agree
    // more often than not start guessing again.
    if (this.proposer.cheap && memory && memory.plainMs < memory.guessMs) {
      this.k = 0;
      this.guessMs = memory.guessMs;
      this.plainMs = memory.plainMs;
      this.agreementWhenStopped = 0.4;
    }
  }

  /**
   * The target's logits after `id`, the token just sampled (history ends with it), with
   * their argmax when the engine gave it (EvaluateResult.argmax).
   */
  async next(id: number, signal: AbortSignal | undefined): Promise<Step> {
    const guessing = this.k > 0;
    const t0 = performance.now();
    const out = await this.step(id, signal);
    const ms = performance.now() - t0;
    // Running means, a call counted at most 3x the mean so far: a garbage collection or a
    // scheduler hiccup in one call must not flip the choice.
    const mean = (m: number) => (Number.isNaN(m) ? ms : 0.9 * m + 0.1 * Math.min(ms, 3 * m));
    if (guessing) this.guessMs = mean(this.guessMs);
    else this.plainMs = mean(this.plainMs);
    return out;
  }

  private async step(id: number, signal: AbortSignal | undefined): Promise<Step> {
    if (this.shadow !== undefined) {
      if (this.shadow === id) this.agreed++;
      else this.disagreed++;
      this.shadow = undefined;
    }
    if (this.k === 0 && ++this.plainCalls >= 16 && (!(this.guessMs >= this.plainMs) || this.agreement() > this.agreementWhenStopped + 0.1 || this.plainCalls >= 256)) {
      // A fresh try: guessing measured faster after all (the first plain stretch was only
      // assumed better), the text turned repetitive, or it has been a while (the batch
      // around this sequence changes).
      this.k = 1;
      this.guessMs = NaN;
    }
    const hit = this.ahead.shift();
    if (hit && hit.token === id) {
      this.stats.accepted++;
      this.agreed++;
      if (this.ahead.length === 0) this.k = Math.min(this.max, this.k + 1);
      return { logits: hit.logits, argmax: hit.argmax };
    }
    if (hit) {
      // A wrong guess: its keys and values (and those after it) go; one fewer next time.
      this.target.truncate(this.target.tokens.length - 1 - this.ahead.length);
      this.ahead = [];
      this.disagreed++;
      this.k = Math.max(1, this.k - 1);
      if (this.k === 1 && this.proposer.cheap && this.plainBetter()) {
        this.k = 0;
        this.plainCalls = 0;
        this.agreementWhenStopped = this.agreement();
      }
    }
    const room = this.target.contextSize - this.target.tokens.length - 1;
    if (this.k === 0) {
      // Not guessing: the plain step, and the guess it would have made, checked next time.
      if (room > 0) this.shadow = (await this.proposer.propose(this.history, 1, signal))[0];
      this.stats.targetPasses++;
      return this.target.evaluate([id], signal);
    }
    const guesses = room > 0 ? await this.proposer.propose(this.history, Math.min(this.k, room), signal) : [];
    this.stats.targetPasses++;
    // Nothing to check: the plain step (the engine's logits, no copy of every row).
    if (guesses.length === 0) return this.target.evaluate([id], signal);
    // `ahead` holds views of the last pass's rows; every one was reached or dropped by now.
    const res = await this.target.evaluateAll([id, ...guesses], signal, this.verified, this.greedy);
    this.stats.proposed += guesses.length;
    const n = res.logits.length / (guesses.length + 1);
    this.verified ??= new Float32Array((this.max + 1) * n);
    this.ahead = guesses.map((token, i) => ({ token, logits: res.logits.subarray((i + 1) * n, (i + 2) * n), argmax: res.argmaxRows?.[i + 1] }));
    return { logits: res.logits.subarray(0, n), argmax: res.argmaxRows?.[0] };
  }

  /** The share of guesses (sent or shadow) the target agreed with, Laplace-smoothed. */
  private agreement(): number {
    return (this.agreed + 1) / (this.agreed + this.disagreed + 2);
  }

  /**
   * Plain steps give more tokens per millisecond than guessing did. Unmeasured, they are
   * assumed to when guesses agree less than half the time, so that a first plain stretch
   * measures them.
   */
  private plainBetter(): boolean {
    if (Number.isNaN(this.guessMs)) return false;
    if (Number.isNaN(this.plainMs)) return this.agreement() < 0.5;
    return this.plainMs < this.guessMs;
  }

  /** Drops the keys and values of guesses never reached. */
  finish(): void {
    // Guesses never reached were neither accepted nor rejected: they do not count as proposed.
    this.stats.proposed -= this.ahead.length;
    if (this.ahead.length > 0) this.target.truncate(this.target.tokens.length - this.ahead.length);
    this.ahead = [];
    this.proposer.dispose();
    if (this.proposer.cheap && this.memory && !Number.isNaN(this.guessMs) && !Number.isNaN(this.plainMs)) {
      this.memory.guessMs = this.guessMs;
      this.memory.plainMs = this.plainMs;
    }
  }

  summary(generated: number): SpeculativeStats {
    return { ...this.stats, tokensPerPass: this.stats.targetPasses ? generated / this.stats.targetPasses : 0 };
  }
}
