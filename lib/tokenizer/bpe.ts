/**
 * Byte-pair encoding over token ids. A word starts as one symbol per byte (byte-level BPE)
 * or per character (character BPE, with <0xNN> byte fallback or an unknown token for
 * characters outside the vocabulary); then the adjacent pair with the lowest merge rank is
 * joined, leftmost first on ties, until no pair has a merge. Merges are looked up by id pair
 * in a PairTable and ordered with a MergeQueue: O(n log n) per word. Results are cached per
 * word, since text repeats words a lot.
 *
 * A long word (Metaspace without splitting makes the whole text one word) is cut where no
 * merge can cross (JoinSet), which gives the same tokens, and its pieces are merged one by
 * one; a piece that stays long gets a merge of its own, run in steps.
 */
import { TesseraError } from "../errors.js";
import { BYTE_TO_CHAR } from "./byte-level.js";
import { JoinSet } from "./join-set.js";
import { MergeQueue } from "./merge-queue.js";
import { PairTable } from "./pair-table.js";
import { PieceWalker } from "./pretokenizers.js";
import { drain, STEP_UNITS, type Steps } from "./steps.js";
import { byteTokenText, type Vocabulary } from "./vocab.js";

export interface BpeOptions {
  /** Words start as bytes spelled with the GPT-2 byte alphabet; otherwise as characters. */
  byteLevel: boolean;
  /** Character BPE: characters not in the vocabulary become <0xNN> tokens. */
  byteFallback: boolean;
  /** A word that is itself a token is not merged (Llama 3, Tekken). */
  ignoreMerges: boolean;
  /** Character BPE without byte fallback: the token for unknown characters. */
  unk: number | undefined;
  /** Character BPE: consecutive unknown characters give one unknown token. */
  fuseUnk: boolean;
}

/**
 * Merges, best first: "left right" lines (the first space after the first character
 * separates the parts) or [left, right] pairs (tokenizer.json's newer form, whose parts may
 * hold spaces).
 */
export type MergeList = readonly (string | readonly [string, string])[];

const MAX_CACHED_WORDS = 1 << 17;
const MAX_CACHED_WORD_LENGTH = 64;
/** Words longer than this are cut into pieces first, in steps. */
export const LONG_WORD = 256;
/** Pieces longer than this get a merge of their own and are merged in steps. */
const LONG_PIECE = 1 << 12;
/** Code of each byte's spelling in the byte-level alphabet. */
const BYTE_CHAR_CODES = Int32Array.from(BYTE_TO_CHAR, (c) => c.charCodeAt(0));

export class BpeModel {
  /** Byte-level: bytes without a token, which encoding drops (as llama.cpp does). */
  readonly missingBytes: number[] = [];
  private readonly pairs: PairTable;
  /** Byte-level: the token of each byte; character BPE: the <0xNN> token of each byte. */
  private readonly byteIds = new Int32Array(256).fill(-1);
  /** Words that are tokens, by their decoded text (for ignoreMerges). */
  private readonly wholeWords: Map<string, number> | undefined;
  private readonly cache = new Map<string, number[]>();
  private readonly utf8 = new TextEncoder();
  private bytes = new Uint8Array(256);
  /** For words and pieces merged in one go. */
  private readonly shared: IdMerge;
  /** Built on the first long word. */
  private joins: JoinSet | undefined;

  constructor(
    private readonly vocab: Vocabulary,
    merges: MergeList,
    private readonly options: BpeOptions,
  ) {
    this.pairs = new PairTable(merges.length);
    const table = vocab.table;
    for (let rank = 0; rank < merges.length; rank++) {
      const m = merges[rank];
      let left: number;
      let right: number;
      let joined: number;
      if (typeof m === "string") {
        const at = m.indexOf(" ", 1);
        if (at < 0) throw new TesseraError("ERR_TOKENIZER", `BPE merge "${m}" has no space between its two parts; the merges are damaged`);
        left = table.getRange(m, 0, at);
        right = table.getRange(m, at + 1, m.length);
        joined = table.getJoined(m, 0, at, m, at + 1, m.length);
      } else {
        left = table.get(m[0]);
        right = table.get(m[1]);
        joined = table.getJoined(m[0], 0, m[0].length, m[1], 0, m[1].length);
      }
      // A merge whose parts or result are not tokens can never apply to a tokenized word.
      if (left < 0 || right < 0 || joined < 0) continue;
      this.pairs.add(left, right, rank, joined);
    }
    for (let b = 0; b < 256; b++) {
      const id = vocab.idOf(options.byteLevel ? BYTE_TO_CHAR[b] : byteTokenText(b));
      if (id !== undefined) this.byteIds[b] = id;
    }
    if (options.byteLevel) for (let b = 0; b < 256; b++) if (this.byteIds[b] < 0) this.missingBytes.push(b);
    this.shared = new IdMerge(this.pairs);
    if (options.ignoreMerges) {
      this.wholeWords = new Map();
      const decoder = new TextDecoder("utf-8", { ignoreBOM: true });
      for (let id = 0; id < vocab.size; id++) {
        const piece = vocab.pieces[id];
        const text = decoder.decode(piece);
        // Tokens that are not whole UTF-8 text (decoding had to substitute U+FFFD) cannot equal a word.
        if (text.includes("\ufffd") && !hasReplacementBytes(piece)) continue;
        this.wholeWords.set(text, id);
      }
    }
  }

  /** Appends the tokens of one pre-tokenized word. */
  encodeWord(word: string, out: number[]): void {
    if (word.length > LONG_WORD) {
      drain(this.encodeWordSteps(word, out));
      return;
    }
    if (this.wholeWords) {
      const id = this.wholeWords.get(word);
      if (id !== undefined) {
        out.push(id);
        return;
      }
    }
    this.encodePiece(word, out);
  }

  /** encodeWord() in steps (see steps.ts). */
  *encodeWordSteps(word: string, out: number[]): Steps {
    if (word.length <= LONG_WORD) {
      this.encodeWord(word, out);
      return;
    }
    if (this.wholeWords) {
      const id = this.wholeWords.get(word);
      if (id !== undefined) {
        out.push(id);
        return;
      }
    }
    const joins = (this.joins ??= new JoinSet(this.vocab.texts));
    const len = word.length;
    let from = 0;
    let pause = STEP_UNITS;
    for (let i = 1; i <= len; i++) {
      if (i < len && !this.canCut(word, i, joins)) continue;
      // The pieces skip the whole-word check: only the word as a whole may be a token as is.
      const piece = word.slice(from, i);
      if (piece.length > LONG_PIECE) yield* this.mergeLong(piece, out);
      else this.encodePiece(piece, out);
      from = i;
      if (i >= pause) {
        pause = i + STEP_UNITS;
        yield;
      }
    }
  }

  /** No merge joins symbols across word[i - 1] | word[i] (see JoinSet). */
  private canCut(word: string, i: number, joins: JoinSet): boolean {
    const a = word.charCodeAt(i - 1);
    const b = word.charCodeAt(i);
    // Only between code points.
    if ((b & 0xfc00) === 0xdc00 && (a & 0xfc00) === 0xd800) return false;
    if (this.options.byteLevel) return !joins.has(BYTE_CHAR_CODES[lastUtf8Byte(word, i)], BYTE_CHAR_CODES[firstUtf8Byte(word, i)]);
    if (joins.has(a, b)) return false;
    // Characters without a token of their own become byte or unknown symbols, which the
    // token texts do not describe (and unknown ones fuse): no cut next to them.
    return this.vocab.idOf(codePointBefore(word, i)) !== undefined && this.vocab.idOf(codePointAt(word, i)) !== undefined;
  }

  /** Merges a word or a piece of one (no whole-word check), through the cache when short. */
  private encodePiece(piece: string, out: number[]): void {
    const cacheable = piece.length <= MAX_CACHED_WORD_LENGTH;
    if (cacheable) {
      const hit = this.cache.get(piece);
      if (hit) {
        for (let i = 0; i < hit.length; i++) out.push(hit[i]);
        return;
      }
    }
    const m = this.shared;
    const n = this.symbols(piece, m);
    if (!cacheable) {
      m.merge(n, out);
      return;
    }
    const result: number[] = [];
    m.merge(n, result);
    if (this.cache.size >= MAX_CACHED_WORDS) this.cache.clear();
    this.cache.set(piece, result);
    for (let i = 0; i < result.length; i++) out.push(result[i]);
  }

  private *mergeLong(piece: string, out: number[]): Steps {
    const m = new IdMerge(this.pairs);
    m.reset(this.symbols(piece, m));
    m.reserveQueue();
    while (!m.run(STEP_UNITS)) yield;
    while (!m.emit(out, STEP_UNITS)) yield;
  }

  /** Fills `m`'s symbols with those of `word`; returns the count. */
  private symbols(word: string, m: IdMerge): number {
    m.reserve(word.length * 3);
    return this.options.byteLevel ? this.byteSymbols(word, m.ids) : this.charSymbols(word, m.ids);
  }

  /** Fills `ids` with one symbol per UTF-8 byte; returns the count. */
  private byteSymbols(word: string, ids: Int32Array): number {
    if (this.bytes.length < word.length * 3) this.bytes = new Uint8Array(ids.length);
    const { written } = this.utf8.encodeInto(word, this.bytes);
    const { bytes, byteIds } = this;
    for (let i = 0; i < written; i++) ids[i] = byteIds[bytes[i]];
    return written;
  }

  /** Fills `ids` with one symbol per character (or per byte of a character not in the vocabulary). */
  private charSymbols(word: string, ids: Int32Array): number {
    const { vocab, options } = this;
    let n = 0;
    for (const ch of word) {
      const id = vocab.idOf(ch);
      if (id !== undefined) {
        ids[n++] = id;
        continue;
      }
      if (options.byteFallback) {
        const bytes = this.utf8.encode(ch);
        let all = true;
        for (const b of bytes) if (this.byteIds[b] < 0) all = false;
        if (all) {
          for (const b of bytes) ids[n++] = this.byteIds[b];
          continue;
        }
      }
      if (options.unk === undefined) {
        throw new TesseraError("ERR_TOKENIZER", `the vocabulary has no token for "${ch}" and no unknown token; it cannot encode this text`);
      }
      if (options.fuseUnk && n > 0 && ids[n - 1] === options.unk) continue;
      ids[n++] = options.unk;
    }
    return n;
  }
}

/**
 * The merge of one word's symbols (token ids, -1 for a byte without a token) in a doubly
 * linked list, candidates in a MergeQueue. Resumable: run() and emit() do a bounded amount
 * of work per call and carry on where they stopped.
 */
class IdMerge {
  ids = new Int32Array(256);
  private prev = new Int32Array(256);
  private next = new Int32Array(256);
  private readonly queue = new MergeQueue();
  private n = 0;
  /** Next symbol whose pair with its right neighbour is still to be queued. */
  private paired = 0;
  /** Next symbol to emit. */
  private emitted = 0;

  constructor(private readonly pairs: PairTable) {}

  reserve(n: number): void {
    if (this.ids.length >= n) return;
    let cap = this.ids.length;
    while (cap < n) cap *= 2;
    const ids = new Int32Array(cap);
    this.ids = ids;
    this.prev = new Int32Array(cap);
    this.next = new Int32Array(cap);
  }

  /** Merges the first `n` symbols in `ids` and appends the resulting tokens, in one go. */
  merge(n: number, out: number[]): void {
    if (n === 1) {
      if (this.ids[0] >= 0) out.push(this.ids[0]);
      return;
    }
    this.reset(n);
    this.run(Infinity);
    this.emit(out, Infinity);
  }

  /** Starts on the first `n` symbols in `ids`. */
  reset(n: number): void {
    const { prev, next } = this;
    for (let i = 0; i < n; i++) {
      prev[i] = i - 1;
      next[i] = i + 1;
    }
    if (n > 0) next[n - 1] = -1;
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
    const { ids, prev, next, pairs, queue } = this;
    let work = 0;
    while (this.paired < this.n - 1) {
      const i = this.paired++;
      const slot = pairs.find(ids[i], ids[i + 1]);
      if (slot >= 0) queue.push(pairs.rankAt(slot), i, i + 1, 0);
      if (++work >= budget) return false;
    }
    while (queue.pop()) {
      const left = queue.topLeft;
      const right = queue.topRight;
      // Stale: a side was merged away, or the pair there is no longer this merge.
      if (ids[left] < 0 || next[left] !== right) continue;
      const slot = pairs.find(ids[left], ids[right]);
      if (slot < 0 || pairs.rankAt(slot) !== queue.topPriority) continue;
      ids[left] = pairs.resultAt(slot);
      ids[right] = -1;
      const after = next[right];
      next[left] = after;
      if (after >= 0) prev[after] = left;
      const before = prev[left];
      if (before >= 0) {
        const s = pairs.find(ids[before], ids[left]);
        if (s >= 0) queue.push(pairs.rankAt(s), before, left, 0);
      }
      if (after >= 0) {
        const s = pairs.find(ids[left], ids[after]);
        if (s >= 0) queue.push(pairs.rankAt(s), left, after, 0);
      }
      if (++work >= budget) return false;
    }
    return true;
  }

  /** Appends the tokens of up to `budget` symbols; true when all are out. */
  emit(out: number[], budget: number): boolean {
    const { ids, next } = this;
    let i = this.emitted;
    for (let k = 0; i !== -1 && k < budget; i = next[i], k++) if (ids[i] >= 0) out.push(ids[i]);
    this.emitted = i;
    return i === -1;
  }
}

/** The code point that ends at s[i - 1], as a string. */
function codePointBefore(s: string, i: number): string {
  const c = s.charCodeAt(i - 1);
  return (c & 0xfc00) === 0xdc00 && i >= 2 && (s.charCodeAt(i - 2) & 0xfc00) === 0xd800 ? s.slice(i - 2, i) : s[i - 1];
}

/** The code point that starts at s[i], as a string. */
function codePointAt(s: string, i: number): string {
  const c = s.charCodeAt(i);
  return (c & 0xfc00) === 0xd800 && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00 ? s.slice(i, i + 2) : s[i];
}

/** The first UTF-8 byte of the code point at s[i] (a lone surrogate is written as U+FFFD). */
function firstUtf8Byte(s: string, i: number): number {
  const c = s.charCodeAt(i);
  if (c < 0x80) return c;
  if (c < 0x800) return 0xc0 | (c >> 6);
  if ((c & 0xfc00) === 0xd800 && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) return 0xf0;
  if ((c & 0xf800) === 0xd800) return 0xef;
  return 0xe0 | (c >> 12);
}

/** The last UTF-8 byte of the code point that ends at s[i - 1]. */
function lastUtf8Byte(s: string, i: number): number {
  const c = s.charCodeAt(i - 1);
  if (c < 0x80) return c;
  if ((c & 0xfc00) === 0xdc00 && i >= 2 && (s.charCodeAt(i - 2) & 0xfc00) === 0xd800) return 0x80 | (c & 0x3f);
  if ((c & 0xf800) === 0xd800) return 0xbd;
  return 0x80 | (c & 0x3f);
}

/** The piece holds U+FFFD itself (EF BF BD), rather than invalid bytes decoding turned into it. */
function hasReplacementBytes(piece: Uint8Array): boolean {
  for (let i = 0; i + 2 < piece.length; i++) if (piece[i] === 0xef && piece[i + 1] === 0xbf && piece[i + 2] === 0xbd) return true;
  return false;
}

/** A warning for byte-level vocabularies that cannot spell some UTF-8 bytes; undefined if none. */
export function missingBytesWarning(model: BpeModel): string | undefined {
  // 0xC0, 0xC1 and 0xF5..0xFF never occur in UTF-8: lacking them loses nothing.
  const lost = model.missingBytes.filter((b) => b < 0xf5 && b !== 0xc0 && b !== 0xc1);
  if (lost.length === 0) return undefined;
  return `the vocabulary has no token for bytes ${lost.map((b) => "0x" + b.toString(16)).join(", ")}; characters using them are dropped when encoding`;
}

/** Raw text -> words (pre-tokenizer regexes) -> BPE per word. */
export class PreTokenizedBpeEncoder {
  constructor(
    private readonly model: BpeModel,
    private readonly regexes: readonly RegExp[],
  ) {}

  *encodeSteps(text: string, _first: boolean, _afterSpecial: boolean, out: number[]): Steps {
    const words = new PieceWalker(text, this.regexes);
    let units = 0;
    for (let w = words.next(); w !== undefined; w = words.next()) {
      if (w.length > LONG_WORD) yield* this.model.encodeWordSteps(w, out);
      else this.model.encodeWord(w, out);
      units += w.length;
      if (units >= STEP_UNITS) {
        units = 0;
        yield;
      }
    }
  }
}
