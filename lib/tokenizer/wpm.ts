/**
 * WordPiece (GGUF `tokenizer.ggml.model` = "bert"), as llama.cpp runs it. With accent
 * stripping on, each code point becomes the first code point of its NFD form and combining
 * marks vanish; with lowercasing on, each is lowercased. Whitespace separates words, control,
 * format, private-use and surrogate code points vanish, and punctuation, ASCII symbols and
 * CJK ideographs are words of their own. Each word, with a leading U+2581 (how GGUF stores
 * word-initial pieces), is cut greedily into the longest vocabulary tokens; a word with a
 * part that matches nothing becomes the unknown token.
 */
import { SPM_SPACE } from "./spm.js";
import { STEP_UNITS, type Steps } from "./steps.js";
import type { Vocabulary } from "./vocab.js";

const WHITESPACE = /\p{White_Space}/u;
// Unassigned code points (Cn) are not dropped: they end up in an unknown word.
const CONTROL = /[\p{Cc}\p{Cf}\p{Co}\p{Cs}]/u;
const MARK = /\p{M}/u;

export interface WordPieceOptions {
  lowercase: boolean;
  stripAccents: boolean;
}
const PUNCTUATION = /\p{P}/u;
const SYMBOL = /\p{S}/u;

export class WordPieceEncoder {
  private readonly maxTokenLength: number;
  private readonly folded = new Map<number, number>();

  constructor(
    private readonly vocab: Vocabulary,
    private readonly unk: number,
    private readonly options: WordPieceOptions,
  ) {
    let max = 0;
    for (const t of vocab.texts) max = Math.max(max, t.length);
    this.maxTokenLength = max;
  }

  *encodeSteps(text: string, _first: boolean, _afterSpecial: boolean, out: number[]): Steps {
    const words = new WordWalker(text, this.options, (cp) => this.fold(cp));
    let units = 0;
    for (let word = words.next(); word !== undefined; word = words.next()) {
      const w = SPM_SPACE + word;
      if (w.length <= STEP_UNITS) {
        const start = out.length;
        if (this.match(w, 0, Infinity, out) < 0) out.length = start;
        if (out.length === start) out.push(this.unk);
      } else {
        // A long word is matched in steps, into an array of its own: between steps the
        // caller may take the tokens already in `out` away.
        const ids: number[] = [];
        let at = 0;
        while (at >= 0 && at < w.length) {
          at = this.match(w, at, STEP_UNITS, ids);
          if (at >= 0 && at < w.length) yield;
        }
        if (at < 0 || ids.length === 0) out.push(this.unk);
        else for (const id of ids) out.push(id);
      }
      units += word.length;
      if (units >= STEP_UNITS) {
        units = 0;
        yield;
      }
    }
  }

  /**
   * Greedy longest tokens of word[at, ...) for up to about `budget` code units; returns where
   * it stopped (word.length at the end), or -1 when some part matches no token.
   */
  private match(word: string, at: number, budget: number, out: number[]): number {
    const n = word.length;
    const stop = Math.min(n, at + budget);
    let i = at;
    while (i < stop) {
      let matched = false;
      for (let j = Math.min(n, i + this.maxTokenLength); j > i; j--) {
        const id = this.vocab.table.getRange(word, i, j);
        if (id >= 0) {
          out.push(id);
          i = j;
          matched = true;
          break;
        }
      }
      if (!matched) return -1;
    }
    return i;
  }

  /** First code point of the canonical decomposition. */
  private fold(cp: number): number {
    if (cp < 0xc0) return cp;
    let f = this.folded.get(cp);
    if (f === undefined) {
      f = String.fromCodePoint(cp).normalize("NFD").codePointAt(0)!;
      this.folded.set(cp, f);
    }
    return f;
  }
}

/** The words of a text, one per call: what remains of it after folding, cut as described above. */
class WordWalker {
  private at = 0;
  /** A punctuation word waiting behind the word it ended. */
  private pending: string | undefined;

  constructor(
    private readonly text: string,
    private readonly options: WordPieceOptions,
    private readonly fold: (cp: number) => number,
  ) {}

  next(): string | undefined {
    const pending = this.pending;
    if (pending !== undefined) {
      this.pending = undefined;
      return pending;
    }
    const { text, options } = this;
    const { lowercase, stripAccents } = options;
    let word = "";
    while (this.at < text.length) {
      const raw = text.codePointAt(this.at)!;
      this.at += raw > 0xffff ? 2 : 1;
      const cp = stripAccents ? this.fold(raw) : raw;
      const c = String.fromCodePoint(cp);
      if (WHITESPACE.test(c)) {
        if (word) return word;
        continue;
      }
      if (cp === 0 || cp === 0xfffd || CONTROL.test(c)) continue;
      if (stripAccents && MARK.test(c)) continue;
      const out = lowercase ? String.fromCodePoint(c.toLowerCase().codePointAt(0)!) : c;
      if (PUNCTUATION.test(c) || (cp < 0x7f && SYMBOL.test(c)) || isChineseChar(cp)) {
        if (!word) return out;
        this.pending = out;
        return word;
      }
      word += out;
    }
    return word || undefined;
  }
}

function isChineseChar(cp: number): boolean {
  return (
    (cp >= 0x4e00 && cp <= 0x9fff) ||
    (cp >= 0x3400 && cp <= 0x4dbf) ||
    (cp >= 0x20000 && cp <= 0x2a6df) ||
    (cp >= 0x2a700 && cp <= 0x2b73f) ||
    (cp >= 0x2b740 && cp <= 0x2b81f) ||
    (cp >= 0x2b920 && cp <= 0x2ceaf) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0x2f800 && cp <= 0x2fa1f)
  );
}
