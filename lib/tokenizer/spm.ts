/**
 * SentencePiece BPE with scores (GGUF `tokenizer.ggml.model` = "llama").
 *
 * The text (a space written as U+2581) starts as one symbol per code point. Any two
 * adjacent symbols whose concatenation is a vocabulary token are a candidate; the candidate
 * whose token has the highest score is merged first, ties going to the leftmost. Symbols left
 * that are not tokens are written as their UTF-8 bytes with the <0xNN> byte tokens.
 *
 * There is no pre-tokenizer: the whole text is one symbol sequence. It is cut where no token
 * can span (JoinSet: in prose, before each "▁" that follows a letter), which gives the same
 * tokens, and the pieces are merged one by one: short ones with shared buffers and a cache
 * (prose repeats its words), long ones (an unspaced run) by a merge of their own that works
 * in steps. Merging the whole text at once kept a heap and symbol arrays as long as the text
 * (hundreds of MB for 20 MB of prose) and ran at about 1 MB/s.
 *
 * The merge reads the caller's text as it is, with spaces, against token texts that spell
 * U+2581 as a space: writing every space of 20 MB of prose as U+2581 first (replaceAll) took
 * longer than all the merging, most of it in the garbage collector.
 */
import { JoinSet } from "./join-set.js";
import { MergeQueue } from "./merge-queue.js";
import { PieceCache } from "./piece-cache.js";
import { STEP_UNITS, type Steps } from "./steps.js";
import { TokenTextTable } from "./text-table.js";
import { byteTokenText, type PieceSpelling, type Vocabulary } from "./vocab.js";

export const SPM_SPACE = "\u2581";
const utf8 = new TextEncoder();

/** SentencePiece text: U+2581 stands for a space. */
export const spmSpelling: PieceSpelling = (text) => utf8.encode(text.replaceAll(SPM_SPACE, " "));

/** Pieces up to this length are remembered with their tokens. */
const MAX_CACHED_PIECE = 64;
const MAX_CACHED_PIECES = 1 << 17;
/** Pieces longer than this get a merge of their own and are merged in steps. */
const LONG_PIECE = 1 << 12;

export class SentencePieceModel {
  private readonly byteIds = new Int32Array(256);
  /** Token texts with U+2581 spelled as a space. */
  private readonly table: TokenTextTable;
  private readonly joins: JoinSet;
  private readonly cache = new PieceCache(MAX_CACHED_PIECES);
  /** For pieces merged in one go. */
  private readonly shared: SymbolMerge;

  constructor(
    private readonly vocab: Vocabulary,
    unk: number | undefined,
  ) {
    for (let b = 0; b < 256; b++) {
      // Vocabularies without <0xNN> tokens may still hold the byte as a one-character token.
      this.byteIds[b] = vocab.idOf(byteTokenText(b)) ?? (b < 0x80 ? vocab.idOf(String.fromCharCode(b)) : undefined) ?? unk ?? -1;
    }
    // A token holding a real space never matches (every space of the input is a U+2581):
    // an empty text, which no symbol range is.
    const texts = vocab.texts.map((t) => (t.includes(" ") ? "" : t.replaceAll(SPM_SPACE, " ")));
    this.table = new TokenTextTable(texts);
    // Every token takes part in merging (llama.cpp looks the concatenation up among all of them).
    this.joins = new JoinSet(texts);
    this.shared = new SymbolMerge(this.table, vocab.scores, this.byteIds);
  }

  /**
   * Appends the tokens of `text` (spaces as " " or U+2581) to `out`, in steps (see steps.ts).
   * `spacePrefix` puts a space in front.
   */
  *encodeSteps(text: string, out: number[], spacePrefix: boolean): Steps {
    // The rare input that holds U+2581 itself: it is the same symbol as a space.
    if (text.includes(SPM_SPACE)) text = text.replaceAll(SPM_SPACE, " ");
    let from = 0;
    if (spacePrefix) {
      // The space changes the first piece only: it goes in front of that, not of the whole
      // text (" " + text would copy all of it).
      from = this.nextCut(text, 0);
      yield* this.pieces(" " + text.slice(0, from), 0, out);
    }
    yield* this.pieces(text, from, out);
  }

  /** The tokens of text[from, ...), where `from` is 0 or a cut. */
  private *pieces(text: string, from: number, out: number[]): Steps {
    const len = text.length;
    let pause = from + STEP_UNITS;
    while (from < len) {
      const to = this.nextCut(text, from);
      if (to - from > LONG_PIECE) yield* this.mergeLong(text, from, to, out);
      else this.encodePiece(text, from, to, out);
      from = to;
      if (from >= pause) {
        pause = from + STEP_UNITS;
        yield;
      }
    }
  }

  /** The first point after `from` where no token can span (see JoinSet), or the text's end. */
  private nextCut(text: string, from: number): number {
    const len = text.length;
    const joins = this.joins;
    let a = text.charCodeAt(from);
    for (let i = from + 1; i < len; i++) {
      const b = text.charCodeAt(i);
      // Never between the two halves of a surrogate pair (one symbol).
      if (!joins.has(a, b) && !((b & 0xfc00) === 0xdc00 && (a & 0xfc00) === 0xd800)) return i;
      a = b;
    }
    return len;
  }

  private encodePiece(text: string, from: number, to: number, out: number[]): void {
    const n = to - from;
    if (n === 1 || (n === 2 && (text.charCodeAt(from) & 0xfc00) === 0xd800)) {
      this.shared.emitSymbol(text, from, to, out);
      return;
    }
    if (n > MAX_CACHED_PIECE) {
      this.shared.merge(text, from, to, out);
      return;
    }
    const cache = this.cache;
    if (cache.find(text, from, to)) {
      const ids = cache.ids;
      for (let i = cache.hitOffset, end = i + cache.hitLength; i < end; i++) out.push(ids[i]);
      return;
    }
    const start = out.length;
    this.shared.merge(text, from, to, out);
    cache.add(text, from, to, out, start);
  }

  private *mergeLong(text: string, from: number, to: number, out: number[]): Steps {
    const m = new SymbolMerge(this.table, this.vocab.scores, this.byteIds);
    m.reset(text, from, to);
    m.reserveQueue();
    while (!m.run(STEP_UNITS)) yield;
    while (!m.emit(out, STEP_UNITS)) yield;
  }
}

/**
 * The merge of one piece of text: symbols as [start, end) ranges of the text in a doubly
 * linked list, candidates in a MergeQueue. Resumable: run() and emit() do a bounded amount of
 * work per call and carry on where they stopped.
 */
class SymbolMerge {
  private readonly queue = new MergeQueue();
  private start = new Int32Array(64);
  private end = new Int32Array(64);
  private prev = new Int32Array(64);
  private next = new Int32Array(64);
  private text = "";
  private n = 0;
  /** Next symbol whose pair with its right neighbour is still to be queued. */
  private paired = 0;
  /** Next symbol to emit. */
  private emitted = 0;

  constructor(
    private readonly table: TokenTextTable,
    private readonly scores: Float32Array | undefined,
    private readonly byteIds: Int32Array,
  ) {}

  /** Merges text[from, to) and appends its tokens, in one go. */
  merge(text: string, from: number, to: number, out: number[]): void {
    this.reset(text, from, to);
    this.run(Infinity);
    this.emit(out, Infinity);
  }

  /** One symbol per code point of text[from, to). */
  reset(text: string, from: number, to: number): void {
    const len = to - from;
    if (this.start.length < len) {
      const cap = Math.max(len, this.start.length * 2);
      this.start = new Int32Array(cap);
      this.end = new Int32Array(cap);
      this.prev = new Int32Array(cap);
      this.next = new Int32Array(cap);
    }
    const { start, end, prev, next } = this;
    let n = 0;
    for (let i = from; i < to; ) {
      const c = text.charCodeAt(i);
      const w = c >= 0xd800 && c <= 0xdbff && i + 1 < to ? 2 : 1;
      start[n] = i;
      end[n] = i + w;
      prev[n] = n - 1;
      next[n] = n + 1;
      n++;
      i += w;
    }
    if (n > 0) next[n - 1] = -1;
    this.text = text;
    this.n = n;
    this.paired = 0;
    this.emitted = n > 0 ? 0 : -1;
    this.queue.clear();
  }

  /** Room in the queue for every first pair. */
  reserveQueue(): void {
    this.queue.reserve(this.n);
  }

  /** Queues the first pairs, then merges; at most about `budget` of either. True when done. */
  run(budget: number): boolean {
    const { start, end, prev, next, queue } = this;
    let work = 0;
    while (this.paired < this.n - 1) {
      this.tryPair(this.paired, this.paired + 1);
      this.paired++;
      if (++work >= budget) return false;
    }
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
      this.tryPair(prev[left], left);
      this.tryPair(left, next[left]);
      if (++work >= budget) return false;
    }
    return true;
  }

  /** Appends the tokens of up to `budget` symbols; true when all are out. */
  emit(out: number[], budget: number): boolean {
    const { start, end, next, text } = this;
    let i = this.emitted;
    for (let k = 0; i !== -1 && k < budget; i = next[i], k++) this.emitSymbol(text, start[i], end[i], out);
    this.emitted = i;
    return i === -1;
  }

  /** The token of text[from, to), or its UTF-8 bytes as byte tokens. */
  emitSymbol(text: string, from: number, to: number, out: number[]): void {
    const id = this.table.getRange(text, from, to);
    if (id >= 0) {
      out.push(id);
      return;
    }
    // Not a token: its UTF-8 bytes (a symbol is one code point).
    let cp = text.charCodeAt(from);
    if (cp === 0x20) cp = 0x2581;
    if (to - from === 2) cp = 0x10000 + ((cp - 0xd800) << 10) + (text.charCodeAt(from + 1) - 0xdc00);
    else if ((cp & 0xf800) === 0xd800) cp = 0xfffd; // a lone surrogate, as TextEncoder writes it
    if (cp < 0x80) this.pushByte(cp, out);
    else if (cp < 0x800) {
      this.pushByte(0xc0 | (cp >> 6), out);
      this.pushByte(0x80 | (cp & 0x3f), out);
    } else if (cp < 0x10000) {
      this.pushByte(0xe0 | (cp >> 12), out);
      this.pushByte(0x80 | ((cp >> 6) & 0x3f), out);
      this.pushByte(0x80 | (cp & 0x3f), out);
    } else {
      this.pushByte(0xf0 | (cp >> 18), out);
      this.pushByte(0x80 | ((cp >> 12) & 0x3f), out);
      this.pushByte(0x80 | ((cp >> 6) & 0x3f), out);
      this.pushByte(0x80 | (cp & 0x3f), out);
    }
  }

  private pushByte(b: number, out: number[]): void {
    const id = this.byteIds[b];
    if (id >= 0) out.push(id);
  }

  private tryPair(left: number, right: number): void {
    if (left < 0 || right < 0) return;
    const { start, end } = this;
    const id = this.table.getRange(this.text, start[left], end[right]);
    if (id < 0) return;
    // Highest score first: the queue pops the lowest priority.
    this.queue.push(-(this.scores ? this.scores[id] : 0), left, right, end[right] - start[left]);
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

  encodeSteps(text: string, _first: boolean, afterSpecial: boolean, out: number[]): Steps {
    return this.model.encodeSteps(text, out, this.addSpacePrefix && afterSpecial);
  }
}
