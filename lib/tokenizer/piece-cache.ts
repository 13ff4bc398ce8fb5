/**
 * Tokens of pieces of text seen before, looked up by a range of a larger string so a hit
 * builds no substring and allocates nothing: open addressing keyed by an FNV-1a hash of the
 * UTF-16 code units, token ids in one growing pool. When full it starts over.
 */
export class PieceCache {
  private readonly mask: number;
  private readonly keys: (string | undefined)[];
  private readonly hashes: Int32Array;
  private readonly offsets: Int32Array;
  private readonly lengths: Int32Array;
  private pool = new Int32Array(1 << 16);
  private poolUsed = 0;
  private count = 0;
  /** Where find() put the ids of its hit. */
  hitOffset = 0;
  hitLength = 0;

  constructor(private readonly maxPieces: number) {
    let cap = 16;
    while (cap < maxPieces * 2) cap *= 2;
    this.mask = cap - 1;
    this.keys = new Array<string | undefined>(cap).fill(undefined);
    this.hashes = new Int32Array(cap);
    this.offsets = new Int32Array(cap);
    this.lengths = new Int32Array(cap);
  }

  get ids(): Int32Array {
    return this.pool;
  }

  /** True when text[from, to) is cached; its ids are then ids[hitOffset, hitOffset + hitLength). */
  find(text: string, from: number, to: number): boolean {
    const h = hashRange(text, from, to);
    const len = to - from;
    for (let slot = h & this.mask; ; slot = (slot + 1) & this.mask) {
      const k = this.keys[slot];
      if (k === undefined) return false;
      if (this.hashes[slot] !== h || k.length !== len) continue;
      let i = 0;
      while (i < len && k.charCodeAt(i) === text.charCodeAt(from + i)) i++;
      if (i === len) {
        this.hitOffset = this.offsets[slot];
        this.hitLength = this.lengths[slot];
        return true;
      }
    }
  }

  /** Remembers that text[from, to) gives ids[start, ids.length). */
  add(text: string, from: number, to: number, ids: readonly number[], start: number): void {
    const n = ids.length - start;
    if (this.count >= this.maxPieces) this.clear();
    if (this.poolUsed + n > this.pool.length) {
      const pool = new Int32Array(Math.max(this.pool.length * 2, this.poolUsed + n));
      pool.set(this.pool.subarray(0, this.poolUsed));
      this.pool = pool;
    }
    const h = hashRange(text, from, to);
    let slot = h & this.mask;
    while (this.keys[slot] !== undefined) slot = (slot + 1) & this.mask;
    this.keys[slot] = text.slice(from, to);
    this.hashes[slot] = h;
    this.offsets[slot] = this.poolUsed;
    this.lengths[slot] = n;
    for (let i = 0; i < n; i++) this.pool[this.poolUsed + i] = ids[start + i];
    this.poolUsed += n;
    this.count++;
  }

  private clear(): void {
    this.keys.fill(undefined);
    this.poolUsed = 0;
    this.count = 0;
  }
}

function hashRange(s: string, from: number, to: number): number {
  let h = 0x811c9dc5;
  for (let i = from; i < to; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h ^ (h >>> 15);
}
