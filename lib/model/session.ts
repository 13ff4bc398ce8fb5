/**
 * A Session is one conversation's sequence in its model's engine: its tokens, and their
 * keys and values in the shared block pool (kept between calls, evicted only when the pool
 * needs the room, then recomputed on the next call). evaluate() appends tokens and returns
 * the logits of the last one. Every argument is checked here, so the native side only ever
 * sees token ids in range and positions that fit the context.
 *
 * A generation running on a session owns it: anything else that would change or read its
 * cache meanwhile (evaluate, reset, truncate, fork, another generation) gets ERR_BUSY.
 */
import { optionalSignal, optionsObject } from "../arguments.js";
import { TesseraError } from "../errors.js";
import type { Engine, EvaluateResult } from "../engine/engine.js";
import { readTrace, traceSpec, type TraceOptions, type TraceResult } from "../inspect/trace.js";
import type { Sequence } from "../engine/sequence.js";

export interface SessionOptions {
  /** Most tokens the session may hold; at most the model's contextSize (the default). */
  contextSize?: number;
  /** Most prompt tokens of this session per engine step. Default 512. */
  batchSize?: number;
}

export interface EvaluateOptions {
  signal?: AbortSignal;
}

export class Session {
  private seq: Sequence | undefined;
  /** Tokens whose evaluation finished (the sequence also holds a request's tokens in flight). */
  private length = 0;
  private owner: object | undefined;

  /** @internal Created by Model.createSession. */
  constructor(
    private readonly engine: Engine,
    /** @internal The model this session belongs to (generations check it). */
    readonly modelId: object,
    seq: Sequence,
    readonly contextSize: number,
    private readonly nVocab: number,
    private readonly batchSize: number,
    private readonly onDispose: (s: Session) => void,
    /** The model's layer and head counts (what a trace reports over). */
    private readonly shape: { nLayer: number; nHead: number; nExpertUsed: number },
  ) {
    this.seq = seq;
    this.length = seq.tokens.length;
  }

  /** Tokens whose keys and values are in the cache, oldest first. */
  get tokens(): readonly number[] {
    const seq = this.seq;
    if (!seq) return [];
    return seq.tokens.length === this.length ? seq.tokens : seq.tokens.slice(0, this.length);
  }

  get disposed(): boolean {
    return this.seq === undefined;
  }

  /** Milliseconds the last native step of the model took (no N-API or JS time). */
  get lastNativeMs(): number {
    return this.engine.lastStepMs;
  }

  /** Appends `tokens` to the cache and resolves to a copy of the last token's logits. */
  async evaluate(tokens: ArrayLike<number>, options?: EvaluateOptions): Promise<Float32Array> {
    return (await this.run(undefined, tokens, false, signalOf(options, "evaluate"))).logits.slice();
  }

  /**
   * @internal Like evaluate, but returns a view of the engine's logits buffer, which the
   * model's next step overwrites (the generation loop samples from it at once).
   */
  async evaluateShared(tokens: ArrayLike<number>, options?: EvaluateOptions): Promise<Float32Array> {
    return (await this.run(undefined, tokens, false, signalOf(options, "evaluate"))).logits;
  }

  /**
   * Evaluates `tokens` and returns the logits of every one of them, [n][nVocab] row-major
   * (conformance tests and scoring use this).
   */
  async evaluateAll(tokens: ArrayLike<number>, options?: EvaluateOptions): Promise<Float32Array> {
    return (await this.run(undefined, tokens, true, signalOf(options, "evaluateAll"))).logits;
  }

  /**
   * Evaluates `tokens` like evaluate, recording per layer and token the residual norm, the
   * logit lens (top-k), attention weights (with `attention`) and MoE routing (CPU backend).
   */
  async trace(tokens: ArrayLike<number>, options: TraceOptions = {}): Promise<TraceResult> {
    const seq = this.check(undefined);
    const ids = this.checkTokens(tokens);
    const spec = traceSpec(options, this.shape.nLayer);
    const base = this.length;
    const r = await this.engine.evaluate(seq, { tokens: ids, signal: options.signal, maxChunk: Infinity, trace: { topK: spec.topK, attentionLayers: spec.attentionLayers } });
    this.length = seq.tokens.length;
    return readTrace(r.trace!, spec.layers, ids, ids.map((_, i) => base + i), this.shape.nHead, this.shape.nExpertUsed, r.logits);
  }

  /** Forgets every token: the next evaluate starts at position 0. */
  reset(): void {
    this.truncate(0);
  }

  /** Keeps the first n tokens of the cache (later evaluations overwrite the rest). */
  truncate(n: number): void {
    this.truncateAs(undefined, n);
  }

  /**
   * A new session holding the same tokens, sharing their cache blocks copy-on-write: the
   * branch costs no memory until it diverges.
   */
  fork(): Session {
    const seq = this.check(undefined);
    const forked = this.engine.fork(seq);
    return this.spawn(forked);
  }

  /** Frees the session's cache blocks. A running evaluation is aborted first. */
  dispose(): void {
    if (!this.seq) return;
    this.engine.releaseSequence(this.seq);
    this.seq = undefined;
    this.owner = undefined;
    this.onDispose(this);
  }

  /** @internal Makes `owner` (a generation) the only caller allowed until release(owner). */
  acquire(owner: object): void {
    const seq = this.check(undefined);
    if (this.engine.isBusy(seq)) throw new TesseraError("ERR_BUSY", "the session is evaluating; await it before starting a generation");
    this.owner = owner;
  }

  /** @internal */
  release(owner: object): void {
    if (this.owner === owner) this.owner = undefined;
  }

  /** @internal evaluate on behalf of `owner` (the generation holding the session). */
  async run(owner: object | undefined, tokens: ArrayLike<number>, allLogits: boolean, signal?: AbortSignal, out?: Float32Array, greedyRows?: boolean): Promise<EvaluateResult> {
    const seq = this.check(owner);
    const ids = this.checkTokens(tokens);
    const result = await this.engine.evaluate(seq, { tokens: ids, allLogits, signal, maxChunk: this.batchSize, out, greedyRows });
    this.length = seq.tokens.length;
    return result;
  }

  /** @internal truncate on behalf of `owner`. */
  truncateAs(owner: object | undefined, n: number): void {
    const seq = this.check(owner);
    if (this.engine.isBusy(seq)) throw new TesseraError("ERR_BUSY", "cannot truncate while the session is evaluating");
    if (!Number.isInteger(n) || n < 0 || n > this.length)
      throw new TesseraError("ERR_INVALID_ARGUMENT", `truncate(${n}) is outside 0..${this.length}`);
    seq.truncate(n);
    this.length = n;
  }

  /** @internal A session of the same model over `seq`. */
  spawn(seq: Sequence): Session {
    return new Session(this.engine, this.modelId, seq, this.contextSize, this.nVocab, this.batchSize, this.onDispose, this.shape);
  }

  private check(owner: object | undefined): Sequence {
    if (!this.seq) throw new TesseraError("ERR_DISPOSED", "the session was disposed; create a new one");
    if (this.owner !== undefined && this.owner !== owner)
      throw new TesseraError("ERR_BUSY", "a generation is running on this session; await it or abort it first");
    return this.seq;
  }

  private checkTokens(tokens: ArrayLike<number>): number[] {
    if (tokens === null || typeof tokens !== "object" || typeof tokens.length !== "number")
      throw new TesseraError("ERR_INVALID_ARGUMENT", "tokens must be an array of token ids");
    if (tokens.length === 0) throw new TesseraError("ERR_INVALID_ARGUMENT", "evaluate needs at least one token");
    const ids = new Array<number>(tokens.length);
    for (let i = 0; i < tokens.length; i++) {
      const t = tokens[i];
      if (!Number.isInteger(t) || t < 0 || t >= this.nVocab)
        throw new TesseraError("ERR_INVALID_ARGUMENT", `token ${String(t)} at index ${i} is not in the vocabulary (0..${this.nVocab - 1})`);
      ids[i] = t;
    }
    if (this.length + ids.length > this.contextSize)
      throw new TesseraError(
        "ERR_OUT_OF_CONTEXT",
        `${this.length} cached + ${ids.length} new tokens exceed the context size ${this.contextSize}; ` +
          "create the session with a larger contextSize, or reset/truncate it",
      );
    return ids;
  }
}

function signalOf(options: EvaluateOptions | undefined, where: string): AbortSignal | undefined {
  return optionalSignal(optionsObject(options, where).signal, where);
}
