/**
 * Hash table from a pair of adjacent token ids to the merge that joins them: its rank (lower
 * merges first) and the id of the joined token. Open addressing over typed arrays, so the
 * inner loop of BPE does no string building and no allocation.
 */
export class PairTable {
  private readonly mask: number;
  private readonly left: Int32Array;
  private readonly right: Int32Array;
  private readonly ranks: Int32Array;
  private readonly results: Int32Array;
  private count = 0;

  constructor(expected: number) {
    let cap = 16;
    while (cap < expected * 2) cap *= 2;
    this.mask = cap - 1;
    this.left = new Int32Array(cap).fill(-1);
    this.right = new Int32Array(cap);
    this.ranks = new Int32Array(cap);
    this.results = new Int32Array(cap);
  }

  get size(): number {
    return this.count;
  }

  /** Adds a merge; an earlier (lower-ranked) merge of the same pair is kept. */
  add(a: number, b: number, rank: number, result: number): void {
    for (let slot = hash(a, b) & this.mask; ; slot = (slot + 1) & this.mask) {
      const l = this.left[slot];
      if (l === -1) {
        if (this.count * 2 >= this.mask) throw new Error("PairTable over capacity");
        this.left[slot] = a;
        this.right[slot] = b;
        this.ranks[slot] = rank;
        this.results[slot] = result;
        this.count++;
        return;
      }
      if (l === a && this.right[slot] === b) {
        if (rank < this.ranks[slot]) {
          this.ranks[slot] = rank;
          this.results[slot] = result;
        }
        return;
      }
    }
  }

  /** Slot of the merge of (a, b), or -1 when they do not merge. */
  find(a: number, b: number): number {
    if (a < 0 || b < 0) return -1;
    for (let slot = hash(a, b) & this.mask; ; slot = (slot + 1) & this.mask) {
      const l = this.left[slot];
      if (l === -1) return -1;
      if (l === a && this.right[slot] === b) return slot;
    }
  }

  rankAt(slot: number): number {
    return this.ranks[slot];
  }

  resultAt(slot: number): number {
    return this.results[slot];
  }
}

function hash(a: number, b: number): number {
  let h = Math.imul(a, 0x9e3779b1) ^ Math.imul(b + 0x7f4a7c15, 0x85ebca77);
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b3c6d);
  return (h ^ (h >>> 12)) >>> 0;
}
