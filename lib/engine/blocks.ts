/**
 * The KV block pool of one model's engine, as TypeScript sees it: which of the native pool's
 * blocks are free, how many sequences reference each, and the prefix cache.
 *
 * Prefix cache (as vLLM's automatic prefix caching): a full block whose keys and values are
 * written is published under a key made of its parent block's publication id and its own
 * tokens, so the key names every token up to and including the block exactly (no hash, no
 * collision). A new sequence walks its prompt block by block through these keys and
 * references the blocks it finds instead of computing them. Publication ids are never
 * reused, so a key whose parent was evicted can no longer be reached (it ages out of the
 * LRU like any other unreferenced block). Published blocks are immutable: a sequence that
 * must write into one (after truncating into it) copies it first, as it does a block
 * another sequence shares (copy-on-write).
 *
 * Unreferenced published blocks stay cached and are reused least-recently-released first;
 * sequences release their blocks last-first, so a prefix's tail is evicted before its head.
 */
import { TesseraError } from "../errors.js";

/** Positions per KV block; the native kKvBlock (native/core/kv_cache.h). */
export const KV_BLOCK_SIZE = 32;

export interface BlockStats {
  /** Blocks in the pool. */
  total: number;
  /** Blocks referenced by at least one sequence. */
  inUse: number;
  /** Unreferenced blocks holding a published prefix (reusable until evicted). */
  cached: number;
  /** Blocks never written or freed without a prefix. */
  free: number;
}

export class BlockPool {
  private readonly refs: Int32Array;
  /** Free blocks, most recently freed last (their pages are the likeliest to be resident). */
  private readonly freeList: number[] = [];
  /** Publication of each block: its id and key, or 0 / undefined. */
  private readonly uid: Float64Array;
  private readonly keyOf: (string | undefined)[];
  private readonly byKey = new Map<string, number>();
  /** Unreferenced published blocks in release order (Map iteration order: oldest first). */
  private readonly lru = new Map<number, true>();
  private nextUid = 1;
  private referenced = 0;

  constructor(
    readonly total: number,
    /**
     * Blocks hold recurrent-state checkpoints (SSM models, native/core/kv_cache.h): the state
     * after the last position written into each block. A sequence then resumes only from a
     * block boundary or from where it stopped (Sequence rounds its rollbacks down).
     */
    readonly checkpointed = false,
  ) {
    this.refs = new Int32Array(total);
    this.uid = new Float64Array(total);
    this.keyOf = new Array(total).fill(undefined);
    for (let b = total - 1; b >= 0; b--) this.freeList.push(b);
  }

  /** Blocks a new allocation can take now (free ones, then evictable cached ones). */
  get available(): number {
    return this.freeList.length + this.lru.size;
  }

  stats(): BlockStats {
    return { total: this.total, inUse: this.referenced, cached: this.lru.size, free: this.freeList.length };
  }

  /** A block with one reference, or undefined when every block is referenced. */
  allocate(): number | undefined {
    let b = this.freeList.pop();
    if (b === undefined) {
      const oldest = this.lru.keys().next();
      if (oldest.done) return undefined;
      b = oldest.value;
      this.lru.delete(b);
      this.unpublish(b);
    }
    this.refs[b] = 1;
    this.referenced++;
    return b;
  }

  ref(b: number): void {
    if (this.refs[b]++ === 0) {
      this.referenced++;
      this.lru.delete(b);
    }
  }

  unref(b: number): void {
    if (this.refs[b] <= 0) throw new TesseraError("ERR_INTERNAL", `KV block ${b} released more often than referenced`);
    if (--this.refs[b] > 0) return;
    this.referenced--;
    if (this.keyOf[b] !== undefined) this.lru.set(b, true);
    else this.freeList.push(b);
  }

  refCount(b: number): number {
    return this.refs[b];
  }

  /** Whether b is published (then immutable: copy before writing). */
  isPublished(b: number): boolean {
    return this.keyOf[b] !== undefined;
  }

  /** Publication id of b (0: not published). */
  publicationOf(b: number): number {
    return this.uid[b];
  }

  /**
   * The published block holding `tokens` (KV_BLOCK_SIZE of them) after the block published
   * as parentUid (0: at the start of a sequence), referenced for the caller; or undefined.
   */
  lookup(parentUid: number, tokens: ArrayLike<number>, from: number): number | undefined {
    const b = this.byKey.get(blockKey(parentUid, tokens, from));
    if (b === undefined) return undefined;
    this.ref(b);
    return b;
  }

  /**
   * Publishes b (full, written) as holding tokens[from, from + KV_BLOCK_SIZE) after the
   * block published as parentUid. Returns b's publication id, or 0 when the key is taken
   * (another sequence published the same prefix first: b stays private).
   */
  publish(b: number, parentUid: number, tokens: ArrayLike<number>, from: number): number {
    if (this.keyOf[b] !== undefined) return this.uid[b];
    const key = blockKey(parentUid, tokens, from);
    if (this.byKey.has(key)) return 0;
    this.byKey.set(key, b);
    this.keyOf[b] = key;
    this.uid[b] = this.nextUid++;
    return this.uid[b];
  }

  private unpublish(b: number): void {
    const key = this.keyOf[b];
    if (key === undefined) return;
    this.byKey.delete(key);
    this.keyOf[b] = undefined;
    this.uid[b] = 0;
  }
}

function blockKey(parentUid: number, tokens: ArrayLike<number>, from: number): string {
  let key = String(parentUid);
  for (let i = from; i < from + KV_BLOCK_SIZE; i++) key += "," + tokens[i];
  return key;
}
