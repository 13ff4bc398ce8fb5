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

  encode(text: string, _first: boolean, _afterSpecial: boolean, out: number[]): void {
    for (const word of this.words(text)) this.encodeWord(SPM_SPACE + word, out);
  }

  private encodeWord(word: string, out: number[]): void {
    const start = out.length;
    const n = word.length;
    for (let i = 0; i < n; ) {
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
      if (!matched) {
        out.length = start;
        break;
      }
    }
    if (out.length === start) out.push(this.unk);
  }

  private words(text: string): string[] {
    const { lowercase, stripAccents } = this.options;
    const words: string[] = [];
    let word = "";
    for (const ch of text) {
      const cp = stripAccents ? this.fold(ch.codePointAt(0)!) : ch.codePointAt(0)!;
      const c = String.fromCodePoint(cp);
      if (WHITESPACE.test(c)) {
        if (word) words.push(word);
        word = "";
        continue;
      }
      if (cp === 0 || cp === 0xfffd || CONTROL.test(c)) continue;
      if (stripAccents && MARK.test(c)) continue;
      const out = lowercase ? String.fromCodePoint(c.toLowerCase().codePointAt(0)!) : c;
      if (PUNCTUATION.test(c) || (cp < 0x7f && SYMBOL.test(c)) || isChineseChar(cp)) {
        if (word) words.push(word);
        words.push(out);
        word = "";
      } else word += out;
    }
    if (word) words.push(word);
    return words;
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
