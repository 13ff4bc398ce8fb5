/**
 * The continuous-batching scheduler of one model. Sequences submit requests (tokens to
 * append, and whether the last token's or every token's logits are wanted); every step the
 * engine takes the rows of all running requests, decode rows first, then chunks of prompts
 * under a token budget, gives each its KV blocks, and runs them in one native call: the
 * weights are read once per step for every sequence in it. After the step each request
 * that finished gets its logits, and the next step is scheduled with setImmediate, after
 * the promise continuations have run (so every generation has sampled and resubmitted).
 *
 * Per-row results do not depend on the other rows of a step (every kernel treats rows
 * independently and sums in the same order at any batch size), so a sequence gets the
 * same logits alone or batched with others, and from cached blocks or computed ones.
 *
 * When the pool runs out of blocks, idle sequences (sessions between calls) are evicted
 * first, least recently used; then the newest running sequence not in the step is
 * preempted (its blocks freed; its tokens are recomputed when it is scheduled again, from
 * the prefix cache where their blocks survive). A request that could never fit the pool or
 * the context fails with ERR_OUT_OF_CONTEXT.
 *
 * The native step checks the logits it writes: a row holding NaN or Infinity fails the step
 * with ERR_NON_FINITE and flags the row, and only the requests whose rows were flagged fail
 * (rows are independent, so the others' logits are good); the engine runs on.
 */
import { TesseraError, fromNativeError } from "../errors.js";
import type { NativeEngine } from "../native.js";
import { BlockPool, KV_BLOCK_SIZE, type BlockStats } from "./blocks.js";
import { Sequence, type BlockCopies } from "./sequence.js";

export interface EngineConfig {
  nVocab: number;
  /** Most positions one sequence may hold (the native engine's maxContext). */
  maxContext: number;
  /** Rows per step (prefill chunks fill what decode rows leave). */
  stepTokens: number;
  /** Run steps on the calling thread (tiny models, where the thread hop costs more). */
  synchronous: boolean;
  /** Shapes the trace arrays need. */
  nLayer: number;
  nHead: number;
  /** Experts per token (0: a dense model). */
  nExpertUsed: number;
  /** Width of a hidden state (EvaluateRequest.hidden). */
  nEmbd: number;
  /**
   * false for an encoder (bidirectional attention, no LM head): it only evaluates hidden
   * requests, each a whole input in one step on a fresh sequence, and never reuses or
   * publishes cached blocks (a position's keys depend on the tokens after it). Default true.
   */
  causal?: boolean;
  /** The architecture's name, for the encoder's refusal message. */
  architecture?: string;
  /**
   * The model carries recurrent state per sequence (SSM blocks): the KV blocks hold state
   * checkpoints (see BlockPool.checkpointed). Default false.
   */
  recurrent?: boolean;
}

/**
 * Which of a request's rows return their final-norm hidden state (embeddings): every
 * appended token's, the first's or the last's. Such a request computes no logits at all.
 */
export type HiddenRows = "all" | "first" | "last";

export interface EvaluateRequest {
  /** Tokens to append to the sequence. */
  tokens: ArrayLike<number>;
  /** Logits of every appended token ([n][nVocab]) rather than of the last one. */
  allLogits?: boolean;
  /**
   * With allLogits: the caller's array to write them into (at least n * nVocab floats; the
   * result is a view of its first n rows). A fresh array per call costs a page fault per
   * 4 KiB on first write: 1.7 MB for a 9-row draft verification of a 49k vocabulary, ~4 ms
   * on the dev VM, as long as the verification itself.
   */
  out?: Float32Array;
  /**
   * With out: the caller samples greedily and reads row j only when every row before it
   * predicted (its argmax) the request's next token, as in a greedy verification pass. Rows
   * after the first that did not are left uncopied (about 0.2 ms per 9 rows of a 49k
   * vocabulary, a step of a small model).
   */
  greedyRows?: boolean;
  signal?: AbortSignal;
  /** Most rows of this request per step (a session's batchSize). */
  maxChunk?: number;
  /** Record the layers' internals (session.trace): the request runs alone, in one step. */
  trace?: TraceSpec;
  /** Return hidden states instead of logits (see HiddenRows). */
  hidden?: HiddenRows;
}

/** What a traced request records (see StepTrace in native/core/backend.h). */
export interface TraceSpec {
  /** Logit-lens alternatives per layer and token (0: none). */
  topK: number;
  /** Per layer: record its attention weights. */
  attentionLayers?: Uint8Array;
}

/** The native trace arrays of a traced step, [layer][row]... over the step's rows. */
export interface NativeTrace {
  residualNorm: Float32Array;
  topK: number;
  lensIds: Int32Array;
  lensProbs: Float32Array;
  attentionLayers?: Uint8Array;
  attention?: Float32Array;
  positions: number;
  experts?: Int32Array;
  expertWeights?: Float32Array;
  /** The step's rows, and the first of them that belong to the request's tokens. */
  rows: number;
  firstRow: number;
}

export interface EvaluateResult {
  /**
   * The last token's logits: a view of the engine's buffer, valid until the next step
   * starts (copy it to keep it); with allLogits the request's own [n][nVocab] array.
   */
  logits: Float32Array;
  /** Positions of the sequence whose keys and values were not computed by this request (cached). */
  cachedTokens: number;
  /** Rows this request ran. */
  computedTokens: number;
  /** A traced request's arrays. */
  trace?: NativeTrace;
  /** A hidden request's states, [rows][nEmbd] (one row for "first" and "last"); logits is then empty. */
  hidden?: Float32Array;
  /**
   * Without allLogits: the index of the largest logit, lowest on ties, computed natively with
   * the step (the greedy pick, so the sampler need not scan the row; see Sampler.sample).
   */
  argmax?: number;
  /** With allLogits: each row's argmax, likewise ([n]). */
  argmaxRows?: Int32Array;
}

export interface EngineStats extends BlockStats {
  /** Bytes of one block (keys and values of every layer). */
  blockBytes: number;
  /** KV bytes of the blocks in use. */
  kvBytesInUse: number;
  /** Sequences with a request running or waiting. */
  running: number;
  steps: number;
  preemptions: number;
}

interface Pending {
  seq: Sequence;
  /** tokens.length before the request (rolled back to on failure). */
  base: number;
  allLogits: boolean;
  maxChunk: number;
  out: Float32Array | undefined;
  /** With out: each row's argmax ([n]), as EvaluateResult.argmaxRows. */
  argmaxOut: Int32Array | undefined;
  /** EvaluateRequest.greedyRows; set to false once a row mispredicted (later rows unread). */
  greedyRows: boolean;
  /** greedyRows: a row mispredicted, so no later row is copied. */
  greedyMissed: boolean;
  rows: number;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  aborted: boolean;
  trace: TraceSpec | undefined;
  traceOut: NativeTrace | undefined;
  hidden: HiddenRows | undefined;
  hiddenOut: Float32Array | undefined;
  resolve: (r: EvaluateResult) => void;
  reject: (e: unknown) => void;
}

/** One sequence's rows in a step. */
interface StepEntry {
  req: Pending;
  first: number;
  count: number;
  /** Row of the first logit row of this entry (index into the step's logit rows), or -1. */
  logitIndex: number;
  /** Positions of the request's first logit row (for allLogits), else -1. */
  logitPos: number;
  logitCount: number;
  /** The same for hidden-state rows. */
  hiddenIndex: number;
  hiddenPos: number;
  hiddenCount: number;
}

export class Engine {
  private readonly pool: BlockPool;
  private readonly sequences = new Set<Sequence>();
  /** Requests in arrival order. */
  private readonly queue: Pending[] = [];
  private readonly requests = new Map<Sequence, Pending>();
  private logits = new Float32Array(0);
  private hidden = new Float32Array(0);
  private readonly arrays = new StepArrays();
  /** One flag per logit row of the running step: its logits were not finite. */
  private nonFinite = new Uint8Array(0);
  private argmax = new Int32Array(0);
  private scheduled = false;
  private running: StepEntry[] | undefined;
  private arrivals = 0;
  private steps = 0;
  private preemptions = 0;
  private disposed = false;

  constructor(
    private readonly native: NativeEngine,
    private readonly config: EngineConfig,
  ) {
    this.pool = new BlockPool(native.blocks, config.recurrent ?? false);
  }

  get maxContext(): number {
    return this.config.maxContext;
  }

  get blockBytes(): number {
    return this.native.blockBytes;
  }

  /** Milliseconds the last native step took (no N-API or JS time). */
  get lastStepMs(): number {
    return this.native.lastStepNs / 1e6;
  }

  stats(): EngineStats {
    const blocks = this.pool.stats();
    return {
      ...blocks,
      blockBytes: this.native.blockBytes,
      kvBytesInUse: blocks.inUse * this.native.blockBytes,
      running: this.queue.length,
      steps: this.steps,
      preemptions: this.preemptions,
    };
  }

  createSequence(): Sequence {
    this.live();
    const s = new Sequence(this.pool, this.arrivals++);
    this.sequences.add(s);
    return s;
  }

  fork(seq: Sequence): Sequence {
    this.live();
    if (this.requests.has(seq)) throw new TesseraError("ERR_BUSY", "cannot fork a sequence while it is evaluating");
    const s = seq.fork(this.arrivals++);
    this.sequences.add(s);
    return s;
  }

  releaseSequence(seq: Sequence): void {
    const req = this.requests.get(seq);
    if (req) this.cancel(req, new TesseraError("ERR_DISPOSED", "the sequence was disposed"));
    seq.dispose();
    this.sequences.delete(seq);
  }

  /** Whether seq has a request queued or running. */
  isBusy(seq: Sequence): boolean {
    return this.requests.has(seq);
  }

  /** Appends tokens to seq and resolves with their logits once they have run. */
  evaluate(seq: Sequence, request: EvaluateRequest): Promise<EvaluateResult> {
    this.live();
    if (seq.disposed) throw new TesseraError("ERR_DISPOSED", "the sequence was disposed");
    if (this.requests.has(seq)) throw new TesseraError("ERR_BUSY", "the sequence is already evaluating; await the previous call");
    const n = request.tokens.length;
    const total = seq.tokens.length + n;
    if (total > this.config.maxContext)
      throw new TesseraError(
        "ERR_OUT_OF_CONTEXT",
        `${seq.tokens.length} cached + ${n} new tokens exceed the context size ${this.config.maxContext}; ` +
          "load the model with a larger contextSize, or reset/truncate the session",
      );
    if (Sequence.blocksFor(total) > this.pool.total)
      throw new TesseraError(
        "ERR_OUT_OF_CONTEXT",
        `${total} tokens need ${Sequence.blocksFor(total)} KV blocks but the pool holds ${this.pool.total} ` +
          `(${this.pool.total * KV_BLOCK_SIZE} tokens); load the model with a larger kvCacheTokens`,
      );
    if (this.config.causal === false) this.checkEncoderRequest(seq, request);
    const signal = request.signal;
    if (signal?.aborted) throw new TesseraError("ERR_ABORTED", "evaluation aborted before it started");
    if (request.trace && seq.tokens.length - seq.computed + n > this.config.stepTokens)
      throw new TesseraError("ERR_INVALID_ARGUMENT", `a trace runs in one step: at most ${this.config.stepTokens} tokens (batchSize) at once, with the session's uncomputed ones`);
    return new Promise<EvaluateResult>((resolve, reject) => {
      const req: Pending = {
        seq,
        base: seq.tokens.length,
        allLogits: request.allLogits ?? false,
        maxChunk: request.maxChunk ?? Infinity,
        out: request.allLogits ? logitsArray(request.out, n * this.config.nVocab) : undefined,
        argmaxOut: request.allLogits ? new Int32Array(n) : undefined,
        greedyRows: request.allLogits === true && request.greedyRows === true,
        greedyMissed: false,
        rows: 0,
        signal,
        onAbort: undefined,
        aborted: false,
        trace: request.trace,
        traceOut: undefined,
        hidden: request.hidden,
        hiddenOut: request.hidden ? new Float32Array((request.hidden === "all" ? n : 1) * this.config.nEmbd) : undefined,
        resolve,
        reject,
      };
      for (let i = 0; i < n; i++) seq.tokens.push(request.tokens[i]);
      if (signal) {
        req.onAbort = () => this.abortRequest(req);
        signal.addEventListener("abort", req.onAbort, { once: true });
      }
      this.requests.set(seq, req);
      this.queue.push(req);
      this.schedule();
    });
  }

  /** Whether the model is an encoder (see EngineConfig.causal). */
  get encoder(): boolean {
    return this.config.causal === false;
  }

  /** The coded error for text generation (or logits) on an encoder model. */
  encoderRefusal(): TesseraError {
    return new TesseraError(
      "ERR_UNSUPPORTED",
      `the model is an encoder (${this.config.architecture ?? "embedding model"}): it has no LM head and cannot generate text or give logits; use model.embed() (tessera embed, the server's /v1/embeddings)`,
    );
  }

  private checkEncoderRequest(seq: Sequence, request: EvaluateRequest): void {
    if (!request.hidden || request.trace) throw this.encoderRefusal();
    if (seq.tokens.length > 0)
      throw new TesseraError("ERR_INVALID_ARGUMENT", "an encoder evaluates each input whole on a fresh sequence; it cannot append to one");
    if (request.tokens.length > this.config.stepTokens)
      throw new TesseraError(
        "ERR_OUT_OF_CONTEXT",
        `an encoder input runs in one step: ${request.tokens.length} tokens exceed the batch size ${this.config.stepTokens}; load the model with a larger batchSize`,
      );
  }

  dispose(): void {
    if (this.disposed) return;
    for (const req of [...this.queue]) this.cancel(req, new TesseraError("ERR_DISPOSED", "the model was disposed"));
    for (const s of this.sequences) s.dispose();
    this.sequences.clear();
    this.disposed = true;
    this.native.dispose();
  }

  private live(): void {
    if (this.disposed) throw new TesseraError("ERR_DISPOSED", "the model was disposed; load it again");
  }

  private schedule(): void {
    if (this.scheduled || this.running || this.disposed || this.queue.length === 0) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.runStep();
    });
  }

  private abortRequest(req: Pending): void {
    req.aborted = true;
    if (!this.running?.some((e) => e.req === req)) {
      this.cancel(req, new TesseraError("ERR_ABORTED", "evaluation aborted"));
      return;
    }
    // In the running step: stop it natively when it runs nothing else; otherwise its rows
    // finish with the others and the request is dropped then.
    if (this.running.every((e) => e.req === req)) this.native.abort();
  }

  /** Removes req from the queue, rolls its sequence back and rejects it. */
  private cancel(req: Pending, error: unknown): void {
    const i = this.queue.indexOf(req);
    if (i >= 0) this.queue.splice(i, 1);
    this.requests.delete(req.seq);
    if (req.onAbort) req.signal?.removeEventListener("abort", req.onAbort);
    if (!req.seq.disposed) {
      req.seq.truncate(req.base);
      req.seq.discardPartialState();
    }
    req.reject(error);
  }

  /**
   * Frees blocks for `seq` by evicting an idle sequence (least recently used) or preempting
   * the newest running one not already in the step (stamp: the step being built). False
   * when nothing can be freed.
   */
  private makeRoom(seq: Sequence, stamp: number): boolean {
    // Sequences already in the step being built carry its stamp in lastUsed.
    let victim: Sequence | undefined;
    for (const s of this.sequences) {
      if (s === seq || s.lastUsed === stamp || s.table.length === 0 || this.requests.has(s)) continue;
      if (!victim || s.lastUsed < victim.lastUsed) victim = s;
    }
    if (!victim) {
      for (const req of this.queue) {
        const s = req.seq;
        if (s === seq || s.lastUsed === stamp || s.table.length === 0) continue;
        if (!victim || s.arrival > victim.arrival) victim = s;
      }
    }
    if (!victim) return false;
    victim.evict();
    this.preemptions++;
    return true;
  }

  private runStep(): void {
    if (this.disposed) return;
    const plan = this.build();
    if (!plan) return;
    const { entries, tokens, positions, rowSeq, tableStart, tables, logitRows, copies, trace, hiddenRows } = plan;
    const nLogits = logitRows.length;
    const nHidden = hiddenRows.length;
    if (this.hidden.length < nHidden * this.config.nEmbd) this.hidden = new Float32Array(nHidden * this.config.nEmbd);
    // Steps without hidden rows pass nothing, so decoding pays nothing for the option.
    const hRows = nHidden > 0 ? hiddenRows : undefined;
    const hOut = nHidden > 0 ? this.hidden : undefined;
    if (this.logits.length < nLogits * this.config.nVocab) this.logits = new Float32Array(nLogits * this.config.nVocab);
    if (this.nonFinite.length < nLogits) this.nonFinite = new Uint8Array(nLogits);
    if (this.argmax.length < nLogits) this.argmax = new Int32Array(nLogits);
    const flags = this.nonFinite;
    this.running = entries;
    this.steps++;
    if (this.config.synchronous) {
      let error: unknown;
      try {
        this.native.stepSync(tokens, positions, rowSeq, tableStart, tables, logitRows, copies, this.logits, flags, trace, hRows, hOut, this.argmax);
      } catch (e) {
        error = fromNativeError(e);
      }
      this.complete(entries, error);
      return;
    }
    this.native.step(tokens, positions, rowSeq, tableStart, tables, logitRows, copies, this.logits, flags, trace, hRows, hOut, this.argmax).then(
      () => this.complete(entries, undefined),
      (e: unknown) => this.complete(entries, fromNativeError(e)),
    );
  }

  /** The arrays a traced step of `rows` rows writes (the request's own rows from firstRow). */
  private traceArrays(spec: TraceSpec, rows: number, firstRow: number, positions: number): NativeTrace {
    const { nLayer, nHead, nExpertUsed } = this.config;
    const recorded = spec.attentionLayers ? spec.attentionLayers.reduce((a, m) => a + (m ? 1 : 0), 0) : 0;
    return {
      residualNorm: new Float32Array(nLayer * rows),
      topK: spec.topK,
      lensIds: new Int32Array(nLayer * rows * spec.topK),
      lensProbs: new Float32Array(nLayer * rows * spec.topK),
      attentionLayers: spec.attentionLayers,
      attention: spec.attentionLayers ? new Float32Array(recorded * rows * nHead * positions) : undefined,
      positions,
      experts: nExpertUsed > 0 ? new Int32Array(nLayer * rows * nExpertUsed) : undefined,
      expertWeights: nExpertUsed > 0 ? new Float32Array(nLayer * rows * nExpertUsed) : undefined,
      rows,
      firstRow,
    };
  }

  private complete(entries: StepEntry[], error: unknown): void {
    this.running = undefined;
    if (this.disposed) return;
    for (const e of entries) {
      // Non-finite logits fail only the requests whose rows they were in.
      const fails = error && ((error as TesseraError).code !== "ERR_NON_FINITE" || this.nonFinite.subarray(e.logitIndex, e.logitIndex + e.logitCount).includes(1));
      this.finish(e, fails ? error : undefined);
    }
    this.schedule();
  }

  /** Applies a step's outcome to one entry's request. */
  private finish(e: StepEntry, error: unknown): void {
    const req = e.req;
    const seq = req.seq;
    if (req.aborted || seq.disposed) {
      if (this.requests.get(seq) === req) this.cancel(req, new TesseraError("ERR_ABORTED", "evaluation aborted"));
      return;
    }
    if (error) {
      this.cancel(req, error);
      return;
    }
    const from = seq.computed;
    seq.computed += e.count;
    req.rows += e.count;
    if (this.config.causal !== false) seq.publishFull(from);
    const nVocab = this.config.nVocab;
    if (req.out && e.logitCount > 0) {
      req.argmaxOut?.set(this.argmax.subarray(e.logitIndex, e.logitIndex + e.logitCount), e.logitPos - req.base);
      let count = e.logitCount;
      if (req.greedyRows) {
        // Row i predicts the token at position logitPos + i + 1; the caller reads the row
        // after it only when that is the request's token there.
        if (req.greedyMissed) count = 0;
        for (let i = 0; i < count; i++) {
          const next = e.logitPos + i + 1;
          if (next < seq.tokens.length && this.argmax[e.logitIndex + i] !== seq.tokens[next]) {
            count = i + 1;
            req.greedyMissed = true;
          }
        }
      }
      const dst = (e.logitPos - req.base) * nVocab;
      req.out.set(this.logits.subarray(e.logitIndex * nVocab, (e.logitIndex + count) * nVocab), dst);
    }
    if (req.hiddenOut && e.hiddenCount > 0) {
      const nEmbd = this.config.nEmbd;
      const dst = req.hidden === "all" ? (e.hiddenPos - req.base) * nEmbd : 0;
      req.hiddenOut.set(this.hidden.subarray(e.hiddenIndex * nEmbd, (e.hiddenIndex + e.hiddenCount) * nEmbd), dst);
    }
    if (seq.computed < seq.tokens.length) return;  // more rows in later steps
    const i = this.queue.indexOf(req);
    if (i >= 0) this.queue.splice(i, 1);
    this.requests.delete(seq);
    if (req.onAbort) req.signal?.removeEventListener("abort", req.onAbort);
    if (req.hiddenOut) {
      req.resolve({ logits: new Float32Array(0), hidden: req.hiddenOut, cachedTokens: seq.tokens.length - req.rows, computedTokens: req.rows });
      return;
    }
    const logits = req.out ?? this.logits.subarray(e.logitIndex * nVocab, (e.logitIndex + 1) * nVocab);
    const argmax = req.out ? undefined : this.argmax[e.logitIndex];
    req.resolve({ logits: req.traceOut ? logits.slice() : logits, cachedTokens: seq.tokens.length - req.rows, computedTokens: req.rows, trace: req.traceOut, argmax, argmaxRows: req.argmaxOut });
  }

  /** The next step's rows, or undefined when no request can run. */
  private build(): StepPlan | undefined {
    const budget = this.config.stepTokens;
    const stamp = this.steps + 1;
    const a = this.arrays.reset(budget);
    const entries: StepEntry[] = [];
    // A traced request runs alone (its arrays index the step's rows); others wait a step.
    const traced = this.queue.find((r) => r.trace && !r.aborted);
    // Decode rows first (one row left), so running generations keep streaming; then
    // prompts in arrival order.
    for (const decode of traced ? [undefined] : [true, false]) {
      for (const req of this.queue) {
        if (a.rows >= budget) break;
        if (traced && req !== traced) continue;
        if (req.aborted || (decode !== undefined && (rowsLeft(req) === 1) !== decode)) continue;
        const seq = req.seq;
        if (seq.lastUsed === stamp) continue;  // already has its rows in this step
        const encoder = this.config.causal === false;
        if (!encoder && seq.computed === 0 && seq.table.length === 0) seq.reusePrefix(req.allLogits || req.trace || req.hidden ? req.base : seq.tokens.length - 1);
        const start = seq.computed;
        // An encoder's input runs whole or waits for a step with room for it.
        if (encoder && seq.tokens.length - start > budget - a.rows) continue;
        const want = Math.min(seq.tokens.length - start, budget - a.rows, encoder ? Infinity : req.maxChunk);
        let count = 0;
        while (count < want) {
          if (!seq.prepareWrite(start + count, a.copies)) {
            if (this.makeRoom(seq, stamp)) continue;
            break;
          }
          count++;
        }
        if (count === 0 || (encoder && count < want)) continue;  // blocks it got are kept for its next try
        seq.lastUsed = stamp;
        const first = a.rows;
        a.addSequence(seq, start, count);
        const entry: StepEntry = { req, first, count, logitIndex: -1, logitPos: -1, logitCount: 0, hiddenIndex: -1, hiddenPos: -1, hiddenCount: 0 };
        const end = start + count;
        if (req.hidden) {
          // Hidden rows in place of logit rows: the positions of the request's tokens wanted.
          const lo = req.hidden === "last" ? seq.tokens.length - 1 : Math.max(start, req.base);
          const hi = req.hidden === "all" ? end : Math.min(end, lo + 1);
          if (lo >= start && lo < hi) {
            entry.hiddenIndex = a.hidden;
            entry.hiddenPos = lo;
            entry.hiddenCount = hi - lo;
            for (let p = lo; p < hi; p++) a.addHiddenRow(first + p - start);
          }
        } else if (req.allLogits) {
          const lo = Math.max(start, req.base);
          if (lo < end) {
            entry.logitIndex = a.logits;
            entry.logitPos = lo;
            entry.logitCount = end - lo;
            for (let p = lo; p < end; p++) a.addLogitRow(first + p - start);
          }
        } else if (end === seq.tokens.length) {
          entry.logitIndex = a.logits;
          entry.logitCount = 1;
          a.addLogitRow(first + count - 1);
        }
        entries.push(entry);
      }
    }
    if (entries.length === 0) {
      // Nothing could get a block: fail what can never fit now that nothing else runs.
      for (const req of [...this.queue]) this.cancel(req, new TesseraError("ERR_OUT_OF_CONTEXT", "the KV cache pool cannot hold this sequence; load the model with a larger kvCacheTokens"));
      return undefined;
    }
    if (traced) {
      if (entries[0].count !== rowsLeftAtBuild(entries[0])) {
        // Not every row got a block: it waits for room rather than being traced in part.
        this.cancel(traced, new TesseraError("ERR_OUT_OF_CONTEXT", "the KV cache pool cannot hold this trace in one step; load the model with a larger kvCacheTokens"));
        return undefined;
      }
      traced.traceOut = this.traceArrays(traced.trace!, a.rows, traced.base - (traced.seq.computed), Math.max(...a.positionsView()) + 1);
    }
    return { entries, ...a.views(), trace: traced?.traceOut };
  }
}

interface StepPlan {
  entries: StepEntry[];
  trace?: NativeTrace;
  hiddenRows: Int32Array;
  tokens: Int32Array;
  positions: Int32Array;
  rowSeq: Int32Array;
  tableStart: Int32Array;
  tables: Int32Array;
  logitRows: Int32Array;
  copies: Int32Array;
}

/**
 * The arrays a step hands the native engine, kept between steps and grown as needed (a
 * decode step of one sequence would otherwise allocate seven arrays per token).
 */
class StepArrays {
  rows = 0;
  seqs = 0;
  logits = 0;
  hidden = 0;
  private nTables = 0;
  /** Copy-on-write pairs of this step, filled by Sequence.prepareWrite. */
  readonly copies: BlockCopies = [];
  private tokens = new Int32Array(0);
  private positions = new Int32Array(0);
  private rowSeq = new Int32Array(0);
  private logitRows = new Int32Array(0);
  private hiddenRows = new Int32Array(0);
  private tableStart = new Int32Array(1);
  private tables = new Int32Array(64);

  reset(budget: number): this {
    if (this.tokens.length < budget) {
      this.tokens = new Int32Array(budget);
      this.positions = new Int32Array(budget);
      this.rowSeq = new Int32Array(budget);
      this.logitRows = new Int32Array(budget);
      this.hiddenRows = new Int32Array(budget);
      this.tableStart = new Int32Array(budget + 1);
    }
    this.rows = this.seqs = this.logits = this.hidden = this.nTables = 0;
    this.copies.length = 0;
    return this;
  }

  /** Rows [start, start + count) of seq, with its block table as it stands now. */
  addSequence(seq: Sequence, start: number, count: number): void {
    for (let k = 0; k < count; k++) {
      this.tokens[this.rows] = seq.tokens[start + k];
      this.positions[this.rows] = start + k;
      this.rowSeq[this.rows++] = this.seqs;
    }
    const table = seq.table;
    if (this.nTables + table.length > this.tables.length) {
      const grown = new Int32Array(Math.max(2 * this.tables.length, this.nTables + table.length));
      grown.set(this.tables.subarray(0, this.nTables));
      this.tables = grown;
    }
    for (let i = 0; i < table.length; i++) this.tables[this.nTables++] = table[i];
    this.tableStart[++this.seqs] = this.nTables;
  }

  addLogitRow(row: number): void {
    this.logitRows[this.logits++] = row;
  }

  addHiddenRow(row: number): void {
    this.hiddenRows[this.hidden++] = row;
  }

  positionsView(): Int32Array {
    return this.positions.subarray(0, this.rows);
  }

  views(): Omit<StepPlan, "entries" | "trace"> {
    return {
      tokens: this.tokens.subarray(0, this.rows),
      positions: this.positions.subarray(0, this.rows),
      rowSeq: this.rowSeq.subarray(0, this.rows),
      tableStart: this.tableStart.subarray(0, this.seqs + 1),
      tables: this.tables.subarray(0, this.nTables),
      logitRows: this.logitRows.subarray(0, this.logits),
      hiddenRows: this.hiddenRows.subarray(0, this.hidden),
      copies: Int32Array.from(this.copies),
    };
  }
}

/** The rows an entry's request had left when its step was built (its count if it all fit). */
function rowsLeftAtBuild(e: StepEntry): number {
  return e.req.seq.tokens.length - (e.req.seq.computed);
}

function rowsLeft(req: Pending): number {
  return req.seq.tokens.length - req.seq.computed;
}

/** The caller's array (a view of its first `size` floats) when it has room, else a new one. */
function logitsArray(out: Float32Array | undefined, size: number): Float32Array {
  if (out === undefined) return new Float32Array(size);
  if (!(out instanceof Float32Array) || out.length < size)
    throw new TesseraError("ERR_INVALID_ARGUMENT", `the logits array must be a Float32Array of at least ${size} floats`);
  return out.subarray(0, size);
}
