/**
 * SentencePiece BPE (GGUF `tokenizer.ggml.model` = "llama"): the text (spaces spelled "▁")
 * starts as one symbol per code point; the adjacent pair whose concatenation is the
 * highest-scoring vocabulary token merges first (ties: leftmost), until no pair is a token.
 * Symbols that are not tokens fall back to their UTF-8 bytes as <0xNN> tokens.
 */
import { Heap } from "./heap.js";
import type { Vocab } from "./vocab.js";

interface Bigram {
  left: number;
  right: number;
  score: number;
  /** Combined length when queued; a stale entry no longer matches. */
  length: number;
}

const encoder = new TextEncoder();

export class SpmModel {
  private readonly byteTokens: Int32Array;

  constructor(
    private readonly vocab: Vocab,
    private readonly unk: number | undefined,
  ) {
    this.byteTokens = new Int32Array(256).fill(-1);
    for (let b = 0; b < 256; b++) {
      const id = vocab.ids.get(`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`) ?? vocab.ids.get(String.fromCharCode(b));
      if (id !== undefined) this.byteTokens[b] = id;
    }
  }

  /** Tokens of already-escaped text ("▁" for spaces). */
  encode(text: string, out: number[]): void {
    if (text.length === 0) return;
    const sym = Array.from(text);
    const n = sym.length;
    const prev = new Int32Array(n);
    const next = new Int32Array(n);
    const len = new Int32Array(n).fill(1);
    for (let i = 0; i < n; i++) {
      prev[i] = i - 1;
      next[i] = i + 1 < n ? i + 1 : -1;
    }
    const heap = new Heap<Bigram>((a, b) => a.score > b.score || (a.score === b.score && a.left < b.left));
    const tryAdd = (l: number, r: number) => {
      if (l < 0 || r < 0) return;
      const id = this.vocab.ids.get(sym[l] + sym[r]);
      if (id === undefined) return;
      heap.push({ left: l, right: r, score: this.vocab.scores[id], length: len[l] + len[r] });
    };
    for (let i = 1; i < n; i++) tryAdd(i - 1, i);
    for (let b = heap.pop(); b; b = heap.pop()) {
      const { left, right } = b;
      if (len[left] === 0 || len[right] === 0 || len[left] + len[right] !== b.length || next[left] !== right) continue;
      sym[left] += sym[right];
      len[left] += len[right];
      len[right] = 0;
      next[left] = next[right];
      if (next[right] >= 0) prev[next[right]] = left;
      tryAdd(prev[left], left);
      tryAdd(left, next[left]);
    }
    for (let i = 0; i >= 0; i = next[i]) {
      const id = this.vocab.ids.get(sym[i]);
      if (id !== undefined) {
        out.push(id);
        continue;
      }
      for (const byte of encoder.encode(sym[i])) {
        const t = this.byteTokens[byte];
        if (t >= 0) out.push(t);
        else if (this.unk !== undefined) out.push(this.unk);
      }
    }
  }
}
