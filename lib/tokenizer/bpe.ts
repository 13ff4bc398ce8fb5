/**
 * Rank-based BPE over one pre-tokenized word (byte-level vocabularies, and Hugging Face
 * BPE files): start from one symbol per code point and repeatedly merge the adjacent pair
 * with the lowest merge rank (ties: leftmost). A heap makes a word O(n log n); repeated
 * words hit a cache. Symbols that end up outside the vocabulary fall back per character
 * (byte-level) or to <0xNN> byte tokens (byte_fallback vocabularies).
 */
import { Heap } from "./heap.js";
import type { Vocab } from "./vocab.js";

interface Pair {
  left: number;
  right: number;
  rank: number;
  leftLen: number;
  rightLen: number;
}

const CACHE_LIMIT = 1 << 16;
const encoder = new TextEncoder();

export interface BpeOptions {
  /** A word that is itself a token is emitted whole (llama3's `ignore_merges`). */
  ignoreMerges: boolean;
  /** Unknown symbols become <0xNN> tokens (else: per-character tokens, or unk). */
  byteFallback: boolean;
  unk: number | undefined;
}

export class BpeModel {
  private readonly ranks = new Map<string, number>();
  private readonly cache = new Map<string, number[]>();
  private readonly byteTokens = new Int32Array(256).fill(-1);

  constructor(
    private readonly vocab: Vocab,
    merges: readonly string[],
    private readonly options: BpeOptions,
  ) {
    merges.forEach((m, rank) => {
      // "a b" — the separator is the first space after the first character (tokens may be " ").
      const sep = m.indexOf(" ", 1);
      if (sep < 0) return;
      const key = m.slice(0, sep) + "\u0000" + m.slice(sep + 1);
      if (!this.ranks.has(key)) this.ranks.set(key, rank);
    });
    if (options.byteFallback)
      for (let b = 0; b < 256; b++) {
        const id = vocab.ids.get(`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`);
        if (id !== undefined) this.byteTokens[b] = id;
      }
  }

  encodeWord(word: string, out: number[]): void {
    const cached = this.cache.get(word);
    if (cached) {
      for (const id of cached) out.push(id);
      return;
    }
    const ids = this.merge(word);
    if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
    this.cache.set(word, ids);
    for (const id of ids) out.push(id);
  }

  private merge(word: string): number[] {
    if (this.options.ignoreMerges) {
      const whole = this.vocab.ids.get(word);
      if (whole !== undefined) return [whole];
    }
    const sym = Array.from(word);
    const n = sym.length;
    const next = new Int32Array(n);
    const prev = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      prev[i] = i - 1;
      next[i] = i + 1 < n ? i + 1 : -1;
    }
    const heap = new Heap<Pair>((a, b) => a.rank < b.rank || (a.rank === b.rank && a.left < b.left));
    const tryAdd = (l: number, r: number) => {
      if (l < 0 || r < 0) return;
      const rank = this.ranks.get(sym[l] + "\u0000" + sym[r]);
      if (rank !== undefined) heap.push({ left: l, right: r, rank, leftLen: sym[l].length, rightLen: sym[r].length });
    };
    for (let i = 1; i < n; i++) tryAdd(i - 1, i);
    for (let p = heap.pop(); p; p = heap.pop()) {
      const { left, right } = p;
      // Stale: one side merged since this pair was queued.
      if (next[left] !== right || sym[left].length !== p.leftLen || sym[right].length !== p.rightLen || sym[right] === "") continue;
      sym[left] += sym[right];
      sym[right] = "";
      next[left] = next[right];
      if (next[right] >= 0) prev[next[right]] = left;
      tryAdd(prev[left], left);
      tryAdd(left, next[left]);
    }
    const ids: number[] = [];
    for (let i = 0; i >= 0; i = next[i]) {
      const id = this.vocab.ids.get(sym[i]);
      if (id !== undefined) {
        ids.push(id);
        continue;
      }
      if (this.options.byteFallback) {
        for (const b of encoder.encode(sym[i])) {
          const t = this.byteTokens[b];
          if (t >= 0) ids.push(t);
          else if (this.options.unk !== undefined) ids.push(this.options.unk);
        }
        continue;
      }
      for (const ch of sym[i]) {
        const t = this.vocab.ids.get(ch);
        if (t !== undefined) ids.push(t);
        else if (this.options.unk !== undefined) ids.push(this.options.unk);
      }
    }
    return ids;
  }
}
