/**
 * The autoregressive loop: tokenize the prompt, reuse the session's cached prefix, evaluate
 * the rest, then sample -> stream-detokenize -> check stops -> evaluate the new token. Each
 * evaluation is a request to the model's engine, which batches the rows of every running
 * generation into one native step. Text is emitted only in whole UTF-8 characters.
 *
 * With a constraint (jsonSchema, grammar or responseFormat), each step samples among the
 * tokens the grammar allows, advances the grammar with the sampled token, and stops when the
 * grammar is complete and nothing may follow ("grammar") or the model picks an
 * end-of-generation token where the output may end ("eos").
 */
import { optionalBoolean, optionalSignal, rejectUnknownOptions } from "../arguments.js";
import { TesseraError } from "../errors.js";
import type { EvaluateResult } from "../engine/engine.js";
import { summarizeConfidence, tokenLogprob, type Confidence, type TokenLogprob } from "../inspect/logprobs.js";
import { constraintFactory, type ConstraintFactory, type ConstraintOptions } from "../grammar/constraint.js";
import { vocabIndex } from "../grammar/token-masks.js";
import type { Session } from "../model/session.js";
import type { TokenConstraint, TokenMask } from "../sampling/constraint.js";
import { Sampler, type SamplingOptions } from "../sampling/sampler.js";
import type { Tokenizer } from "../tokenizer/index.js";
import { Speculator, checkSpeculative, lookupMemory, type SpeculativeOptions, type SpeculativeStats } from "./speculative.js";
import { StopSequenceMatcher } from "./stop-sequences.js";

export interface GenerateOptions extends SamplingOptions, ConstraintOptions {
  /** Most tokens to generate. Default 256. */
  maxTokens?: number;
  /** Generation ends before any of these strings; the string itself is not emitted. */
  stop?: string[];
  signal?: AbortSignal;
  /** Add BOS/EOS to a text prompt as the vocabulary asks. Default true. */
  addSpecial?: boolean;
  /** Turn special-token text (e.g. "<|im_start|>") in the prompt into those tokens. Default false. */
  parseSpecial?: boolean;
  /** Keep going past end-of-generation tokens. Default false. */
  ignoreEos?: boolean;
  /**
   * Leave control tokens (<|im_start|>, <|python_tag|>, ...) out of the streamed text.
   * Default true; the chat API turns it off so markers that are control tokens reach its
   * tool-call parser.
   */
  skipSpecial?: boolean;
  /** Session to run in (its cached prefix is reused). Default: the model's own session. */
  session?: Session;
  /**
   * Report each generated token's logprob under the raw logits (no temperature, penalties
   * or filters), the entropy, and this many most likely alternatives (0..20). Off by default.
   */
  logprobs?: number;
  /**
   * Speculative decoding: a draft model or prompt lookup proposes tokens that the target
   * checks in one pass. The output is the same as without (greedy: token for token; sampled:
   * the same distribution, and the same tokens for the same seed); only the speed changes.
   */
  speculative?: SpeculativeOptions;
}

export interface GenerationChunk {
  /** New text (whole characters only; may be empty while a character or stop string is incomplete). */
  text: string;
  /** Tokens sampled since the previous chunk. */
  tokens: number[];
  /** With the logprobs option: one entry per token of `tokens`. */
  logprobs?: TokenLogprob[];
}

/**
 * Why a generation ended: an end-of-generation token ("eos"), a stop sequence ("stop"),
 * maxTokens ("length"), a full context ("context"), or a constraint's grammar that is complete
 * and admits nothing more ("grammar").
 */
export type StopReason = "eos" | "stop" | "length" | "context" | "grammar";

/**
 * Every option generate() takes, in one place: anything else is refused, so that a misspelt
 * or foreign option (n_predict, max_tokens) is an error instead of silently doing nothing.
 */
const OPTION_KEYS = {
  maxTokens: true,
  stop: true,
  signal: true,
  addSpecial: true,
  parseSpecial: true,
  skipSpecial: true,
  ignoreEos: true,
  session: true,
  temperature: true,
  topK: true,
  topP: true,
  minP: true,
  repeatPenalty: true,
  repeatLastN: true,
  frequencyPenalty: true,
  presencePenalty: true,
  seed: true,
  logitBias: true,
  jsonSchema: true,
  grammar: true,
  responseFormat: true,
  lazyGrammar: true,
  logprobs: true,
  speculative: true,
} as const satisfies Record<keyof GenerateOptions, true>;

export const GENERATE_OPTION_KEYS: readonly string[] = Object.keys(OPTION_KEYS);

const ALIASES: Record<string, string> = {
  n_predict: "maxTokens",
  max_tokens: "maxTokens",
  maxLength: "maxTokens",
  stopSequences: "stop",
  temp: "temperature",
  penalty: "repeatPenalty",
  repetitionPenalty: "repeatPenalty",
  schema: "jsonSchema",
};

/**
 * Refuses option keys generate() does not know (`extra`: more keys a caller takes, such as
 * generateMany's n), with the likely intended name when there is one.
 */
export function checkGenerateOptions(options: object, extra: readonly string[] = [], where = "generate"): void {
  const known = extra.length ? { ...OPTION_KEYS, ...Object.fromEntries(extra.map((k) => [k, true as const])) } : OPTION_KEYS;
  rejectUnknownOptions(options, known, where, ALIASES);
}

export interface GenerationStats {
  promptTokens: number;
  /** Prompt tokens whose keys and values were reused (the session's cache or the prefix cache), not evaluated again. */
  cachedTokens: number;
  promptMs: number;
  generatedTokens: number;
  generateMs: number;
  /** With speculative decoding: guesses proposed and accepted, target passes. */
  speculative?: SpeculativeStats;
}

export interface Completion {
  text: string;
  tokens: number[];
  stopReason: StopReason;
  stats: GenerationStats;
  /** With the logprobs option: one entry per token, and their summary. */
  logprobs?: TokenLogprob[];
  confidence?: Confidence;
}

function commonPrefixLength(a: readonly number[], b: readonly number[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

function checkAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new TesseraError("ERR_ABORTED", "generation aborted");
}

/**
 * Where a generation runs: a session it owns while it runs, or a sequence of its own. The
 * model provides it when the generation starts and `release` is called when it ends.
 */
export interface GenerationTarget {
  /** Tokens in the cache. */
  readonly tokens: readonly number[];
  readonly contextSize: number;
  truncate(n: number): void;
  evaluate(tokens: number[], signal: AbortSignal | undefined): Promise<EvaluateResult>;
  /**
   * The logits of every token ([n][nVocab]), written into `out` when given (see
   * EvaluateRequest.out), only the rows greedy sampling can reach with greedyRows.
   */
  evaluateAll(tokens: number[], signal: AbortSignal | undefined, out?: Float32Array, greedyRows?: boolean): Promise<EvaluateResult>;
  release(): void;
}

/**
 * One generation: iterate it for chunks; `stopReason` and `stats` are set once it ends.
 */
export class Generation implements AsyncIterable<GenerationChunk> {
  stopReason: StopReason | undefined;
  readonly stats: GenerationStats = { promptTokens: 0, cachedTokens: 0, promptMs: 0, generatedTokens: 0, generateMs: 0 };
  private started = false;
  /** The compiled grammar of jsonSchema/grammar/responseFormat/lazyGrammar (shared through a cache). */
  private readonly constraint: ConstraintFactory | undefined;

  /** @internal Created by Model.generate. Compiles the constraint, if any (errors are thrown here). */
  constructor(
    private readonly tokenizer: Tokenizer,
    private readonly open: (owner: Generation) => GenerationTarget | Promise<GenerationTarget>,
    private readonly prompt: string | ArrayLike<number>,
    private readonly options: GenerateOptions,
  ) {
    this.constraint = constraintFactory(tokenizer, options);
  }

  [Symbol.asyncIterator](): AsyncIterator<GenerationChunk> {
    if (this.started) throw new TesseraError("ERR_INVALID_ARGUMENT", "a Generation can be iterated only once");
    this.started = true;
    return this.run();
  }

  /** @internal The prompt's tokens (generateMany's branches share them). */
  promptTokensForBranch(): number[] {
    return this.promptTokens();
  }

  private promptTokens(): number[] {
    const o = this.options;
    const prompt: unknown = this.prompt;
    if (typeof prompt === "string")
      return this.tokenizer.encode(prompt, { addSpecial: o.addSpecial ?? true, parseSpecial: o.parseSpecial ?? false });
    if (typeof prompt !== "object" || prompt === null || typeof (prompt as ArrayLike<number>).length !== "number")
      throw new TesseraError("ERR_INVALID_ARGUMENT", "the prompt must be a string or an array of token ids");
    return Array.from(prompt as ArrayLike<number>);
  }

  private async *run(): AsyncGenerator<GenerationChunk> {
    const o = this.options;
    const maxTokens = o.maxTokens ?? 256;
    if (!Number.isInteger(maxTokens) || maxTokens < 0)
      throw new TesseraError("ERR_INVALID_ARGUMENT", `maxTokens must be a non-negative integer, got ${maxTokens}`);
    const topLogprobs = o.logprobs;
    if (topLogprobs !== undefined && (!Number.isInteger(topLogprobs) || topLogprobs < 0 || topLogprobs > 20))
      throw new TesseraError("ERR_INVALID_ARGUMENT", `logprobs must be an integer in 0..20 (alternatives per token), got ${String(topLogprobs)}`);
    const stops = o.stop ?? [];
    if (!Array.isArray(stops) || stops.some((s) => typeof s !== "string" || s.length === 0))
      throw new TesseraError("ERR_INVALID_ARGUMENT", "stop must be an array of non-empty strings, e.g. stop: [\"\\n\"]");
    for (const name of ["addSpecial", "parseSpecial", "ignoreEos"] as const) optionalBoolean(o[name], "generate", name);
    const sampler = new Sampler(o);
    for (const id of sampler.options.biasIds)
      if (id >= this.tokenizer.vocabSize)
        throw new TesseraError("ERR_INVALID_ARGUMENT", `logitBias names token ${id}, but the vocabulary has ${this.tokenizer.vocabSize} tokens`);
    const signal = optionalSignal(o.signal, "generate");
    if (o.speculative !== undefined) checkSpeculative(o.speculative, this.tokenizer);
    checkAborted(signal);

    const prompt = this.promptTokens();
    if (prompt.length === 0)
      throw new TesseraError("ERR_INVALID_ARGUMENT", "the prompt has no tokens; pass text, or addSpecial: true for a BOS-only prompt");
    const constraint = this.constraint?.({ ignoreEos: o.ignoreEos ?? false, stripLeadingSpace: this.dropsLeadingSpace(prompt) });
    const target = await this.open(this);
    try {
      yield* this.loop(target, prompt, sampler, maxTokens, stops, constraint);
    } finally {
      target.release();
    }
  }

  /**
   * Whether the first generated token's leading space is left out of the text (SentencePiece
   * vocabularies drop the space they add in front of a text, so after a BOS-only prompt " {"
   * decodes as "{"): the grammar must then see the token without it. Probed through the
   * stream decoder with a token that starts with a space.
   */
  private dropsLeadingSpace(prompt: number[]): boolean {
    const v = vocabIndex(this.tokenizer);
    const [lo, hi] = v.spaceRange;
    if (lo === hi) return false;
    const probe = v.order[lo];
    const full = new TextDecoder().decode(v.bytesOf(lo));
    const decoder = this.tokenizer.createStreamDecoder({ prefix: prompt });
    return !(decoder.push(probe) + decoder.flush()).endsWith(full);
  }

  private async *loop(
    target: GenerationTarget,
    prompt: number[],
    sampler: Sampler,
    maxTokens: number,
    stops: string[],
    constraint: TokenConstraint | undefined,
  ): AsyncGenerator<GenerationChunk> {
    const o = this.options;
    const signal = o.signal;
    if (prompt.length >= target.contextSize)
      throw new TesseraError(
        "ERR_OUT_OF_CONTEXT",
        `the prompt has ${prompt.length} tokens but the context holds ${target.contextSize}; shorten it or use a larger contextSize`,
      );
    // Reuse the cached prefix, but always evaluate at least one token to get fresh logits.
    const keep = Math.min(commonPrefixLength(target.tokens, prompt), prompt.length - 1);
    target.truncate(keep);
    this.stats.promptTokens = prompt.length;
    let t0 = performance.now();
    const first = await target.evaluate(prompt.slice(keep), signal);
    let logits = first.logits;
    // The engine's greedy pick of these logits (valid while they are unmodified; see Sampler.sample).
    let argmaxHint = first.argmax;
    this.stats.cachedTokens = prompt.length - first.computedTokens;
    this.stats.promptMs = performance.now() - t0;

    // The prompt is the prefix: the first generated token continues its text (SentencePiece
    // drops its added leading space only at the very start of a text).
    const decoder = this.tokenizer.createStreamDecoder({ prefix: prompt, skipSpecial: o.skipSpecial ?? true });
    const stopper = new StopSequenceMatcher(stops);
    const history = [...prompt];
    let pending: number[] = [];
    const wantLogprobs = o.logprobs !== undefined;
    let pendingLogprobs: TokenLogprob[] = [];
    // A verification pass need only copy the rows greedy sampling reaches when the pick is
    // the row's argmax: no bias, penalty or grammar.
    const greedy = sampler.untouched && !constraint;
    const speculator = o.speculative ? new Speculator(target, history, o.speculative, lookupMemory(this.tokenizer), greedy) : undefined;
    t0 = performance.now();
    try {
      for (let produced = 0; ; ) {
        if (produced >= maxTokens) {
          this.stopReason = "length";
          break;
        }
        checkAborted(signal);
        // Tokens this generation may still produce, this one included: maxTokens, or the
        // context (each but the last must be evaluated), whichever ends first. A constraint
        // keeps its output finishable within them.
        let mask: TokenMask | undefined;
        if (constraint) {
          if (constraint.isFinished) {
            this.stopReason = "grammar";
            break;
          }
          mask = constraint.allowed(Math.min(maxTokens - produced, target.contextSize - target.tokens.length + 1));
          if (mask && mask.count === 0)
            throw new TesseraError("ERR_INVALID_ARGUMENT", "the grammar cannot go on with this vocabulary: no token spells any of the characters it allows next");
        }
        // The sampler changes the logits in place (penalties, bias, mask): logprobs read them before.
        const raw = wantLogprobs ? logits.slice() : undefined;
        const id = sampler.sample(logits, history, mask, argmaxHint);
        if (!o.ignoreEos && this.tokenizer.isEndOfGeneration(id)) {
          this.stopReason = "eos";
          break;
        }
        constraint?.accept(id);
        produced++;
        this.stats.generatedTokens = produced;
        history.push(id);
        pending.push(id);
        if (raw) pendingLogprobs.push(tokenLogprob(raw, id, Math.max(o.logprobs!, 2)));
        const { emit, stopped } = stopper.push(decoder.push(id));
        if (emit.length > 0 || stopped) {
          yield this.chunk(emit, pending, pendingLogprobs);
          pending = [];
          pendingLogprobs = [];
        }
        if (stopped) {
          this.stopReason = "stop";
          break;
        }
        if (constraint?.isFinished) {
          this.stopReason = "grammar";
          break;
        }
        if (produced >= maxTokens) continue;
        if (target.tokens.length >= target.contextSize) {
          this.stopReason = "context";
          break;
        }
        const next = speculator ? await speculator.next(id, signal) : await target.evaluate([id], signal);
        logits = next.logits;
        argmaxHint = next.argmax;
      }
    } finally {
      this.stats.generateMs = performance.now() - t0;
      if (speculator) {
        speculator.finish();
        this.stats.speculative = speculator.summary(this.stats.generatedTokens);
      }
    }
    if (this.stopReason !== "stop") {
      const rest = stopper.push(decoder.flush());
      if (rest.stopped) this.stopReason = "stop";
      const text = rest.emit + (rest.stopped ? "" : stopper.flush());
      if (text.length > 0 || pending.length > 0) yield this.chunk(text, pending, pendingLogprobs);
    }
  }

  /** A chunk, with logprobs trimmed to the k alternatives asked for (the margin check keeps 2). */
  private chunk(text: string, tokens: number[], logprobs: TokenLogprob[]): GenerationChunk {
    const k = this.options.logprobs;
    if (k === undefined) return { text, tokens };
    this.allLogprobs.push(...logprobs);
    return { text, tokens, logprobs: logprobs.map((l) => ({ ...l, top: l.top.slice(0, k) })) };
  }

  /** @internal Every token's logprob so far (with at least 2 alternatives each). */
  readonly allLogprobs: TokenLogprob[] = [];

  /** With the logprobs option: the summary of the tokens generated so far. */
  get confidence(): Confidence | undefined {
    return this.options.logprobs === undefined ? undefined : summarizeConfidence(this.allLogprobs);
  }
}

export async function complete(generation: Generation): Promise<Completion> {
  let text = "";
  const tokens: number[] = [];
  const logprobs: TokenLogprob[] = [];
  for await (const chunk of generation) {
    text += chunk.text;
    tokens.push(...chunk.tokens);
    if (chunk.logprobs) logprobs.push(...chunk.logprobs);
  }
  const done: Completion = { text, tokens, stopReason: generation.stopReason ?? "length", stats: generation.stats };
  if (generation.confidence) {
    done.logprobs = logprobs;
    done.confidence = generation.confidence;
  }
  return done;
}
