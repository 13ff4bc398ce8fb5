/**
 * The pairs of UTF-16 code units that stand next to each other inside some token's text.
 *
 * Merging (SentencePiece or BPE) only ever joins two symbols into a token whose text is their
 * concatenation, so a token that spans the point between code units a and b holds "ab". Where
 * (a, b) is not in this set no merge can cross: the text on either side merges on its own, in
 * the same order as it would inside the whole (the merge order only compares candidates, and
 * no candidate straddles the point), and the tokens of the whole are those of the parts, one
 * after the other. This is what lets SentencePiece, which has no pre-tokenizer, cut prose into
 * words without changing a token.
 *
 * Open addressing over typed arrays: the check runs once per character of the input.
 */
export class JoinSet {
  private readonly keys: Int32Array;
  private readonly used: Uint8Array;
  private readonly mask: number;

  constructor(texts: readonly string[]) {
    let pairs = 0;
    for (const t of texts) pairs += Math.max(0, t.length - 1);
    let cap = 16;
    while (cap < pairs * 2) cap *= 2;
    this.mask = cap - 1;
    this.keys = new Int32Array(cap);
    this.used = new Uint8Array(cap);
    for (const t of texts) {
      for (let i = 1; i < t.length; i++) {
        const k = key(t.charCodeAt(i - 1), t.charCodeAt(i));
        let slot = hash(k) & this.mask;
        while (this.used[slot] && this.keys[slot] !== k) slot = (slot + 1) & this.mask;
        this.used[slot] = 1;
        this.keys[slot] = k;
      }
    }
  }

  /** Some token holds code unit `a` immediately followed by code unit `b`. */
  has(a: number, b: number): boolean {
    const k = key(a, b);
    for (let slot = hash(k) & this.mask; this.used[slot]; slot = (slot + 1) & this.mask) if (this.keys[slot] === k) return true;
    return false;
  }
}

function key(a: number, b: number): number {
  return (a << 16) | b;
}

function hash(k: number): number {
  const h = Math.imul(k, 0x9e3779b1);
  return (h ^ (h >>> 16)) >>> 0;
}
