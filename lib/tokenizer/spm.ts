/**
 * SentencePiece BPE with scores (GGUF `tokenizer.ggml.model` = "llama").
 *
 * The text (spaces already written as U+2581) starts as one symbol per code point. Any two
 * adjacent symbols whose concatenation is a vocabulary token are a candidate; the candidate
 * whose token has the highest score is merged first, ties going to the leftmost. Symbols left
 * that are not tokens are written as their UTF-8 bytes with the <0xNN> byte tokens.
 */
import { MergeQueue } from "./merge-queue.js";
import { byteTokenText, type PieceSpelling, type Vocabulary } from "./vocab.js";

export const SPM_SPACE = "\u2581";
const utf8 = new TextEncoder();

/** SentencePiece text: U+2581 stands for a space. */
export const spmSpelling: PieceSpelling = (text) => utf8.encode(text.replaceAll(SPM_SPACE, " "));

export class SentencePieceModel {
  private readonly queue = new MergeQueue();
  private readonly byteIds = new Int32Array(256);
  private start = new Int32Array(64);
  private end = new Int32Array(64);
  private prev = new Int32Array(64);
  private next = new Int32Array(64);

  constructor(
    private readonly vocab: Vocabulary,
    unk: number | undefined,
  ) {
    for (let b = 0; b < 256; b++) {
      // Vocabularies without <0xNN> tokens may still hold the byte as a one-character token.
      this.byteIds[b] = vocab.idOf(byteTokenText(b)) ?? (b < 0x80 ? vocab.idOf(String.fromCharCode(b)) : undefined) ?? unk ?? -1;
    }
  }

  /** Appends the tokens of `text` (whitespace already escaped) to `out`. */
  encode(text: string, out: number[]): void {
    const n = this.split(text);
    if (n === 0) return;
    const { start, end, prev, next, queue, vocab } = this;
    const scores = vocab.scores;
    queue.clear();
    const table = vocab.table;
    const tryPair = (left: number, right: number): void => {
      if (left < 0 || right < 0) return;
      const id = table.getRange(text, start[left], end[right]);
      if (id < 0) return;
      // Highest score first: the queue pops the lowest priority.
      queue.push(-(scores ? scores[id] : 0), left, right, end[right] - start[left]);
    };
    for (let i = 1; i < n; i++) tryPair(i - 1, i);
    while (queue.pop()) {
      const left = queue.topLeft;
      const right = queue.topRight;
      // Stale if either side was merged away or grew since the candidate was made.
      if (end[left] === start[left] || end[right] === start[right]) continue;
      if (end[right] - start[left] !== queue.topAux || end[left] !== start[right]) continue;
      end[left] = end[right];
      start[right] = end[right];
      next[left] = next[right];
      if (next[right] >= 0) prev[next[right]] = left;
      tryPair(prev[left], left);
      tryPair(left, next[left]);
    }
    for (let i = 0; i !== -1; i = next[i]) {
      const id = table.getRange(text, start[i], end[i]);
      if (id >= 0) {
        out.push(id);
        continue;
      }
      for (const b of utf8.encode(text.slice(start[i], end[i]))) {
        const byteId = this.byteIds[b];
        if (byteId >= 0) out.push(byteId);
      }
    }
  }

  /** One symbol per code point; returns the count. */
  private split(text: string): number {
    const len = text.length;
    if (this.start.length < len) {
      const cap = Math.max(len, this.start.length * 2);
      this.start = new Int32Array(cap);
      this.end = new Int32Array(cap);
      this.prev = new Int32Array(cap);
      this.next = new Int32Array(cap);
    }
    let n = 0;
    for (let i = 0; i < len; ) {
      const c = text.charCodeAt(i);
      const w = c >= 0xd800 && c <= 0xdbff && i + 1 < len ? 2 : 1;
      this.start[n] = i;
      this.end[n] = i + w;
      this.prev[n] = n - 1;
      this.next[n] = n + 1;
      n++;
      i += w;
    }
    if (n > 0) this.next[n - 1] = -1;
    return n;
  }
}

/**
 * llama.cpp's text handling around the SentencePiece model: a space goes in front of text
 * that starts the input or follows a token matched whole, and every space becomes U+2581.
 */
export class SentencePieceEncoder {
  constructor(
    private readonly model: SentencePieceModel,
    private readonly addSpacePrefix: boolean,
  ) {}

  encode(text: string, _first: boolean, afterSpecial: boolean, out: number[]): void {
    const prefixed = this.addSpacePrefix && afterSpecial ? " " + text : text;
    this.model.encode(prefixed.replaceAll(" ", SPM_SPACE), out);
  }
}
