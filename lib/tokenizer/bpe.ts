/**
 * Byte-pair encoding over token ids. A word starts as one symbol per byte (byte-level BPE)
 * or per character (character BPE, with <0xNN> byte fallback or an unknown token for
 * characters outside the vocabulary); then the adjacent pair with the lowest merge rank is
 * joined, leftmost first on ties, until no pair has a merge. Merges are looked up by id pair
 * in a PairTable and ordered with a MergeQueue: O(n log n) per word. Results are cached per
 * word, since text repeats words a lot.
 */
import { TesseraError } from "../errors.js";
import { BYTE_TO_CHAR } from "./byte-level.js";
import { MergeQueue } from "./merge-queue.js";
import { PairTable } from "./pair-table.js";
import { preTokenize } from "./pretokenizers.js";
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

export class BpeModel {
  /** Byte-level: bytes without a token, which encoding drops (as llama.cpp does). */
  readonly missingBytes: number[] = [];
  private readonly pairs: PairTable;
  /** Byte-level: the token of each byte; character BPE: the <0xNN> token of each byte. */
  private readonly byteIds = new Int32Array(256).fill(-1);
  /** Words that are tokens, by their decoded text (for ignoreMerges). */
  private readonly wholeWords: Map<string, number> | undefined;
  private readonly cache = new Map<string, number[]>();
  private readonly queue = new MergeQueue();
  private readonly utf8 = new TextEncoder();
  private bytes = new Uint8Array(256);
  private ids = new Int32Array(256);
  private prev = new Int32Array(256);
  private next = new Int32Array(256);

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
    if (this.wholeWords) {
      const id = this.wholeWords.get(word);
      if (id !== undefined) {
        out.push(id);
        return;
      }
    }
    const cacheable = word.length <= MAX_CACHED_WORD_LENGTH;
    if (cacheable) {
      const hit = this.cache.get(word);
      if (hit) {
        for (let i = 0; i < hit.length; i++) out.push(hit[i]);
        return;
      }
    }
    const n = this.options.byteLevel ? this.byteSymbols(word) : this.charSymbols(word);
    if (!cacheable) {
      this.merge(n, out);
      return;
    }
    const result: number[] = [];
    this.merge(n, result);
    if (this.cache.size >= MAX_CACHED_WORDS) this.cache.clear();
    this.cache.set(word, result);
    for (let i = 0; i < result.length; i++) out.push(result[i]);
  }

  /** Fills `ids` with one symbol per UTF-8 byte; returns the count. */
  private byteSymbols(word: string): number {
    this.reserve(word.length * 3);
    const { written } = this.utf8.encodeInto(word, this.bytes);
    const { ids, bytes, byteIds } = this;
    for (let i = 0; i < written; i++) ids[i] = byteIds[bytes[i]];
    return written;
  }

  /** Fills `ids` with one symbol per character (or per byte of a character not in the vocabulary). */
  private charSymbols(word: string): number {
    this.reserve(word.length * 3);
    const { ids, vocab, options } = this;
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

  /** Merges the first `n` symbols in `ids` and appends the resulting tokens. */
  private merge(n: number, out: number[]): void {
    const { ids, prev, next, pairs, queue } = this;
    if (n === 1) {
      if (ids[0] >= 0) out.push(ids[0]);
      return;
    }
    queue.clear();
    for (let i = 0; i < n; i++) {
      prev[i] = i - 1;
      next[i] = i + 1;
    }
    next[n - 1] = -1;
    for (let i = 0; i + 1 < n; i++) {
      const slot = pairs.find(ids[i], ids[i + 1]);
      if (slot >= 0) queue.push(pairs.rankAt(slot), i, i + 1, 0);
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
    }
    for (let i = 0; i !== -1; i = next[i]) if (ids[i] >= 0) out.push(ids[i]);
  }

  private reserve(n: number): void {
    if (this.ids.length >= n) return;
    let cap = this.ids.length;
    while (cap < n) cap *= 2;
    this.bytes = new Uint8Array(cap);
    this.ids = new Int32Array(cap);
    this.prev = new Int32Array(cap);
    this.next = new Int32Array(cap);
  }
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

  encode(text: string, _first: boolean, _afterSpecial: boolean, out: number[]): void {
    preTokenize(text, this.regexes, (word) => this.model.encodeWord(word, out));
  }
}
