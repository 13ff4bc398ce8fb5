/**
 * A Session is one conversation's KV cache in native memory: evaluate() appends tokens and
 * returns the logits of the last one. Every argument is checked here, so the native side
 * only ever sees token ids in range and positions that fit the cache.
 */
import { TesseraError, fromNativeError } from "../errors.js";
import type { NativeContext } from "../native.js";

export interface SessionOptions {
  /** KV cache capacity in tokens. Defaults to the model's contextSize. */
  contextSize?: number;
  /** Tokens per native forward chunk while evaluating a long prompt. Default 512. */
  batchSize?: number;
}

export interface EvaluateOptions {
  signal?: AbortSignal;
}

export class Session {
  private context: NativeContext | undefined;
  private readonly history: number[] = [];
  private readonly logits: Float32Array;
  private running = false;

  /** @internal Created by Model.createSession. */
  constructor(
    context: NativeContext,
    readonly contextSize: number,
    private readonly nVocab: number,
    private readonly synchronous: boolean,
    private readonly onDispose: (s: Session) => void,
  ) {
    this.context = context;
    this.logits = new Float32Array(nVocab);
  }

  /** Tokens whose keys and values are in the cache, oldest first. */
  get tokens(): readonly number[] {
    return this.history;
  }

  get disposed(): boolean {
    return this.context === undefined;
  }

  /** Milliseconds the native forward pass took in the last evaluation (no N-API or JS time). */
  get lastNativeMs(): number {
    return this.live().lastEvalNs / 1e6;
  }

  /** Appends `tokens` to the cache and resolves to a copy of the last token's logits. */
  async evaluate(tokens: ArrayLike<number>, options: EvaluateOptions = {}): Promise<Float32Array> {
    return (await this.evaluateShared(tokens, options)).slice();
  }

  /**
   * @internal Like evaluate, but returns the session's own logits buffer, which the next
   * evaluation overwrites (the generation loop uses it to avoid a copy per step).
   */
  async evaluateShared(tokens: ArrayLike<number>, options: EvaluateOptions = {}): Promise<Float32Array> {
    const context = this.live();
    const ids = this.checkTokens(tokens);
    if (this.running) throw new TesseraError("ERR_BUSY", "the session is already evaluating; await the previous call");
    const signal = options.signal;
    if (signal?.aborted) throw new TesseraError("ERR_ABORTED", "evaluation aborted before it started");
    const pos0 = this.history.length;
    this.running = true;
    const onAbort = () => context.abort();
    signal?.addEventListener("abort", onAbort, { once: true });
    try {
      if (this.synchronous) context.evalSync(ids, pos0, false, this.logits);
      else await context.eval(ids, pos0, false, this.logits);
    } catch (e) {
      throw fromNativeError(e);
    } finally {
      this.running = false;
      signal?.removeEventListener("abort", onAbort);
    }
    for (const id of ids) this.history.push(id);
    return this.logits;
  }

  /**
   * Evaluates `tokens` and returns the logits of every one of them, [n][nVocab] row-major
   * (conformance tests and scoring use this).
   */
  async evaluateAll(tokens: ArrayLike<number>): Promise<Float32Array> {
    const context = this.live();
    const ids = this.checkTokens(tokens);
    if (this.running) throw new TesseraError("ERR_BUSY", "the session is already evaluating; await the previous call");
    const out = new Float32Array(ids.length * this.nVocab);
    this.running = true;
    try {
      await context.eval(ids, this.history.length, true, out);
    } catch (e) {
      throw fromNativeError(e);
    } finally {
      this.running = false;
    }
    for (const id of ids) this.history.push(id);
    return out;
  }

  /** Forgets every token: the next evaluate starts at position 0. */
  reset(): void {
    this.truncate(0);
  }

  /** Keeps the first n tokens of the cache (later evaluations overwrite the rest). */
  truncate(n: number): void {
    this.live();
    if (this.running) throw new TesseraError("ERR_BUSY", "cannot truncate while the session is evaluating");
    if (!Number.isInteger(n) || n < 0 || n > this.history.length)
      throw new TesseraError("ERR_INVALID_ARGUMENT", `truncate(${n}) is outside 0..${this.history.length}`);
    this.history.length = n;
  }

  /** Frees the KV cache. A running evaluation is aborted first. */
  dispose(): void {
    if (!this.context) return;
    this.context.dispose();
    this.context = undefined;
    this.onDispose(this);
  }

  private live(): NativeContext {
    if (!this.context) throw new TesseraError("ERR_DISPOSED", "the session was disposed; create a new one");
    return this.context;
  }

  private checkTokens(tokens: ArrayLike<number>): Int32Array {
    if (tokens.length === 0) throw new TesseraError("ERR_INVALID_ARGUMENT", "evaluate needs at least one token");
    const ids = new Int32Array(tokens.length);
    for (let i = 0; i < tokens.length; i++) {
      const t = tokens[i];
      if (!Number.isInteger(t) || t < 0 || t >= this.nVocab)
        throw new TesseraError("ERR_INVALID_ARGUMENT", `token ${String(t)} at index ${i} is not in the vocabulary (0..${this.nVocab - 1})`);
      ids[i] = t;
    }
    if (this.history.length + ids.length > this.contextSize)
      throw new TesseraError(
        "ERR_OUT_OF_CONTEXT",
        `${this.history.length} cached + ${ids.length} new tokens exceed the context size ${this.contextSize}; ` +
          "create the session with a larger contextSize, or reset/truncate it",
      );
    return ids;
  }
}
