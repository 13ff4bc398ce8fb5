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
}

export interface EvaluateRequest {
  /** Tokens to append to the sequence. */
  tokens: ArrayLike<number>;
  /** Logits of every appended token ([n][nVocab]) rather than of the last one. */
  allLogits?: boolean;
  signal?: AbortSignal;
  /** Most rows of this request per step (a session's batchSize). */
  maxChunk?: number;
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
  rows: number;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  aborted: boolean;
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
}

export class Engine {
  private readonly pool: BlockPool;
  private readonly sequences = new Set<Sequence>();
  /** Requests in arrival order. */
  private readonly queue: Pending[] = [];
  private readonly requests = new Map<Sequence, Pending>();
  private logits = new Float32Array(0);
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
    this.pool = new BlockPool(native.blocks);
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
    const signal = request.signal;
    if (signal?.aborted) throw new TesseraError("ERR_ABORTED", "evaluation aborted before it started");
    return new Promise<EvaluateResult>((resolve, reject) => {
      const req: Pending = {
        seq,
        base: seq.tokens.length,
        allLogits: request.allLogits ?? false,
        maxChunk: request.maxChunk ?? Infinity,
        out: request.allLogits ? new Float32Array(n * this.config.nVocab) : undefined,
        rows: 0,
        signal,
        onAbort: undefined,
        aborted: false,
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
      void this.runStep();
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
    if (!req.seq.disposed) req.seq.truncate(req.base);
    req.reject(error);
  }

  /**
   * Frees blocks for `seq` by evicting an idle sequence (least recently used) or preempting
   * the newest running one not already in the step. False when nothing can be freed.
   */
  private makeRoom(seq: Sequence, inStep: Set<Sequence>): boolean {
    let victim: Sequence | undefined;
    for (const s of this.sequences) {
      if (s === seq || inStep.has(s) || s.table.length === 0 || this.requests.has(s)) continue;
      if (!victim || s.lastUsed < victim.lastUsed) victim = s;
    }
    if (!victim) {
      for (const req of this.queue) {
        const s = req.seq;
        if (s === seq || inStep.has(s) || s.table.length === 0) continue;
        if (!victim || s.arrival > victim.arrival) victim = s;
      }
    }
    if (!victim) return false;
    victim.evict();
    this.preemptions++;
    return true;
  }

  private async runStep(): Promise<void> {
    if (this.disposed) return;
    const plan = this.build();
    if (!plan) return;
    const { entries, tokens, positions, rowSeq, tableStart, tables, logitRows, copies } = plan;
    const nLogits = logitRows.length;
    if (this.logits.length < nLogits * this.config.nVocab) this.logits = new Float32Array(nLogits * this.config.nVocab);
    this.running = entries;
    this.steps++;
    let error: unknown;
    try {
      if (this.config.synchronous) this.native.stepSync(tokens, positions, rowSeq, tableStart, tables, logitRows, copies, this.logits);
      else await this.native.step(tokens, positions, rowSeq, tableStart, tables, logitRows, copies, this.logits);
    } catch (e) {
      error = fromNativeError(e);
    }
    this.running = undefined;
    if (this.disposed) return;
    for (const e of entries) this.finish(e, error);
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
    seq.publishFull(from);
    const nVocab = this.config.nVocab;
    if (req.out && e.logitCount > 0) {
      const dst = (e.logitPos - req.base) * nVocab;
      req.out.set(this.logits.subarray(e.logitIndex * nVocab, (e.logitIndex + e.logitCount) * nVocab), dst);
    }
    if (seq.computed < seq.tokens.length) return;  // more rows in later steps
    const i = this.queue.indexOf(req);
    if (i >= 0) this.queue.splice(i, 1);
    this.requests.delete(seq);
    if (req.onAbort) req.signal?.removeEventListener("abort", req.onAbort);
    const logits = req.out ?? this.logits.subarray(e.logitIndex * nVocab, (e.logitIndex + 1) * nVocab);
    req.resolve({ logits, cachedTokens: seq.tokens.length - req.rows, computedTokens: req.rows });
  }

  /** The next step's rows, or undefined when no request can run. */
  private build() {
    const budget = this.config.stepTokens;
    const stamp = this.steps + 1;
    const tokens: number[] = [];
    const positions: number[] = [];
    const rowSeq: number[] = [];
    const tableStart: number[] = [0];
    const tables: number[] = [];
    const logitRows: number[] = [];
    const copies: BlockCopies = [];
    const entries: StepEntry[] = [];
    const inStep = new Set<Sequence>();
    // Decode rows first (one row left), so running generations keep streaming; then
    // prompts in arrival order.
    const order = [...this.queue.filter((r) => rowsLeft(r) === 1), ...this.queue.filter((r) => rowsLeft(r) !== 1)];
    for (const req of order) {
      if (tokens.length >= budget) break;
      const seq = req.seq;
      if (req.aborted) continue;
      if (seq.computed === 0 && seq.table.length === 0) seq.reusePrefix(req.allLogits ? req.base : seq.tokens.length - 1);
      const start = seq.computed;
      const want = Math.min(seq.tokens.length - start, budget - tokens.length, req.maxChunk);
      let count = 0;
      while (count < want) {
        if (!seq.prepareWrite(start + count, copies)) {
          if (this.makeRoom(seq, inStep)) continue;
          break;
        }
        count++;
      }
      if (count === 0) continue;
      seq.lastUsed = stamp;
      inStep.add(seq);
      const s = entries.length;
      const first = tokens.length;
      for (let k = 0; k < count; k++) {
        tokens.push(seq.tokens[start + k]);
        positions.push(start + k);
        rowSeq.push(s);
      }
      for (const b of seq.table) tables.push(b);
      tableStart.push(tables.length);
      const entry: StepEntry = { req, first, count, logitIndex: -1, logitPos: -1, logitCount: 0 };
      const end = start + count;
      if (req.allLogits) {
        const lo = Math.max(start, req.base);
        if (lo < end) {
          entry.logitIndex = logitRows.length;
          entry.logitPos = lo;
          entry.logitCount = end - lo;
          for (let p = lo; p < end; p++) logitRows.push(first + p - start);
        }
      } else if (end === seq.tokens.length) {
        entry.logitIndex = logitRows.length;
        entry.logitCount = 1;
        logitRows.push(first + count - 1);
      }
      entries.push(entry);
    }
    if (entries.length === 0) {
      // Nothing could get a block: fail what can never fit now that nothing else runs.
      for (const req of [...this.queue]) this.cancel(req, new TesseraError("ERR_OUT_OF_CONTEXT", "the KV cache pool cannot hold this sequence; load the model with a larger kvCacheTokens"));
      return undefined;
    }
    return {
      entries,
      tokens: Int32Array.from(tokens),
      positions: Int32Array.from(positions),
      rowSeq: Int32Array.from(rowSeq),
      tableStart: Int32Array.from(tableStart),
      tables: Int32Array.from(tables),
      logitRows: Int32Array.from(logitRows),
      copies: Int32Array.from(copies),
    };
  }
}

function rowsLeft(req: Pending): number {
  return req.seq.tokens.length - req.seq.computed;
}
