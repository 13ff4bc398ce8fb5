/**
 * WordPiece (GGUF `tokenizer.ggml.model` = "bert"): text is NFD-normalized, lowercased,
 * stripped of accents and control characters, split on whitespace and around punctuation
 * and CJK ideographs; each word ("▁" + word) is then covered greedily by the longest
 * vocabulary prefix, left to right. A word that cannot be covered becomes [UNK].
 */
import type { Vocab } from "./vocab.js";

const PUNCT = /[\p{P}]/u;
const ASCII_SYMBOL = /[\p{S}]/u;
const ACCENT = /\p{Mn}/u;
const CONTROL = /[\p{Cc}\p{Cf}]/u;
const SPACE = /\s/u;

function isChinese(cp: number): boolean {
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

export function wpmWords(text: string): string[] {
  const words: string[] = [];
  let cur = "";
  const flush = () => {
    if (cur.length > 0) words.push(cur);
    cur = "";
  };
  for (const ch of text.normalize("NFD")) {
    const cp = ch.codePointAt(0)!;
    if (SPACE.test(ch)) {
      flush();
      continue;
    }
    if (cp === 0 || cp === 0xfffd || CONTROL.test(ch) || ACCENT.test(ch)) continue;
    if (PUNCT.test(ch) || (cp < 0x7f && ASCII_SYMBOL.test(ch)) || isChinese(cp)) {
      flush();
      words.push(ch.toLowerCase());
      continue;
    }
    cur += ch.toLowerCase();
  }
  flush();
  return words;
}

export class WpmModel {
  private readonly maxLen: number;
  constructor(
    private readonly vocab: Vocab,
    private readonly unk: number | undefined,
  ) {
    this.maxLen = vocab.tokens.reduce((m, t) => Math.max(m, t.length), 0);
  }

  encode(text: string, out: number[]): void {
    for (const w of wpmWords(text)) {
      const word = "\u2581" + w;
      const start = out.length;
      let i = 0;
      let ok = true;
      while (i < word.length) {
        let found = -1;
        let j = Math.min(word.length, i + this.maxLen);
        for (; j > i; j--) {
          const id = this.vocab.ids.get(word.slice(i, j));
          if (id !== undefined) {
            found = id;
            break;
          }
        }
        if (found < 0) {
          ok = false;
          break;
        }
        out.push(found);
        i = j;
      }
      if (!ok) {
        out.length = start;
        if (this.unk !== undefined) out.push(this.unk);
      }
    }
  }
}
