/**
 * One sequence's KV state in the engine's block pool: its tokens, how many of their
 * positions have keys and values written, and its block table. The block-table operations
 * (copy-on-write before a write, prefix-cache lookup and publication, truncation, forks)
 * live here; the scheduler (engine.ts) decides when they run.
 */
import { BlockPool, KV_BLOCK_SIZE } from "./blocks.js";

/** Native block copies to run before a step's rows: (source, destination) pairs. */
export type BlockCopies = number[];

export class Sequence {
  /** Tokens of the sequence, oldest first: its history and the request in flight. */
  readonly tokens: number[] = [];
  /** Positions [0, computed) have their keys and values in the table's blocks. */
  computed = 0;
  /** Block ids: position p is in table[p / KV_BLOCK_SIZE]. */
  readonly table: number[] = [];
  /** Last scheduler step that used the sequence (for choosing preemption victims). */
  lastUsed = 0;
  disposed = false;

  constructor(
    private readonly pool: BlockPool,
    /** Order of creation: the newest sequence is preempted first. */
    readonly arrival: number,
  ) {}

  /**
   * Makes position p writable: its block exists and is this sequence's alone and
   * unpublished. A shared or published block is copied first (only when it holds computed
   * positions before p) and the copy pushed to `copies`. False when no block is available.
   */
  prepareWrite(p: number, copies: BlockCopies): boolean {
    const i = Math.floor(p / KV_BLOCK_SIZE);
    if (i < this.table.length) {
      const b = this.table[i];
      if (this.pool.refCount(b) === 1 && !this.pool.isPublished(b)) return true;
      const d = this.pool.allocate();
      if (d === undefined) return false;
      if (this.computed > i * KV_BLOCK_SIZE && p > i * KV_BLOCK_SIZE) copies.push(b, d);
      this.pool.unref(b);
      this.table[i] = d;
      return true;
    }
    const d = this.pool.allocate();
    if (d === undefined) return false;
    this.table.push(d);
    return true;
  }

  /**
   * With nothing computed and no blocks, references the longest run of published blocks
   * holding this sequence's tokens from the start (the prefix cache) and counts their
   * positions as computed, up to `limit` positions (the rows whose logits are wanted must
   * run: at least the last token). Returns the positions reused.
   */
  reusePrefix(limit: number): number {
    if (this.computed > 0 || this.table.length > 0) return 0;
    let parent = 0;
    for (let i = 0; i * KV_BLOCK_SIZE < limit && (i + 1) * KV_BLOCK_SIZE <= this.tokens.length; i++) {
      const b = this.pool.lookup(parent, this.tokens, i * KV_BLOCK_SIZE);
      if (b === undefined) break;
      this.table.push(b);
      parent = this.pool.publicationOf(b);
    }
    // A prompt cached through its last token keeps that last block too: the last position
    // is written again (identically) into a copy of it, so only one row runs. A
    // checkpointed block holds the state after its last position only: the positions of
    // that last block run again from its start, into a fresh block.
    this.computed = this.resumable(Math.min(this.table.length * KV_BLOCK_SIZE, limit));
    return this.computed;
  }

  /** Publishes the blocks that became full between positions `from` and this.computed. */
  publishFull(from: number): void {
    for (let i = Math.floor(from / KV_BLOCK_SIZE); (i + 1) * KV_BLOCK_SIZE <= this.computed; i++) {
      const parent = i === 0 ? 0 : this.pool.publicationOf(this.table[i - 1]);
      // A block whose parent is not published has a key nobody can reach: skip it.
      if (i > 0 && parent === 0) return;
      this.pool.publish(this.table[i], parent, this.tokens, i * KV_BLOCK_SIZE);
    }
  }

  /**
   * Keeps the first n tokens; blocks past them are released. With checkpointed blocks a cut
   * into the computed positions falls back to the cut's block boundary (that block's state
   * is past the cut); the positions after it run again when needed.
   */
  truncate(n: number): void {
    this.tokens.length = n;
    this.computed = n < this.computed ? this.resumable(n) : this.computed;
    this.releaseFrom(Math.ceil(n / KV_BLOCK_SIZE));
  }

  /**
   * After a failed or aborted step: with checkpointed blocks, the step may have advanced the
   * state in the block of `computed` before it stopped, so computing resumes from that
   * block's start. Nothing to do for plain KV blocks (rows past `computed` are rewritten).
   */
  discardPartialState(): void {
    this.computed = this.resumable(this.computed);
  }

  /** Where computing may resume at or before position p: p itself, or with checkpointed blocks its block's start. */
  private resumable(p: number): number {
    return this.pool.checkpointed ? Math.floor(p / KV_BLOCK_SIZE) * KV_BLOCK_SIZE : p;
  }

  /** Drops the keys and values but keeps the tokens (they are recomputed when next needed). */
  evict(): void {
    this.computed = 0;
    this.releaseFrom(0);
  }

  /** A new sequence sharing this one's tokens and blocks (copy-on-write). */
  fork(arrival: number): Sequence {
    const s = new Sequence(this.pool, arrival);
    s.tokens.push(...this.tokens);
    s.computed = this.computed;
    for (const b of this.table) {
      this.pool.ref(b);
      s.table.push(b);
    }
    return s;
  }

  /** Blocks the sequence would need to hold n tokens. */
  static blocksFor(n: number): number {
    return Math.ceil(n / KV_BLOCK_SIZE);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.releaseFrom(0);
    this.tokens.length = 0;
    this.computed = 0;
  }

  /** Releases table[i..], last first (so a cached prefix's tail is evicted before its head). */
  private releaseFrom(i: number): void {
    while (this.table.length > i) this.pool.unref(this.table.pop()!);
  }
}
