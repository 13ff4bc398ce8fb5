/**
 * Splits text around tokens that are matched as whole strings before any merging: user-defined
 * tokens always, control and unknown tokens only when the caller asks to parse them. Longer
 * tokens are matched first, so "<|im_end|>" wins over a token that is a part of it. A token
 * marked LStrip/RStrip also swallows the ASCII whitespace next to it.
 */
import { STEP_UNITS, type Steps } from "./steps.js";
import { MATCHED_WHOLE_ATTRS, TokenAttr } from "./types.js";
import type { Vocabulary } from "./vocab.js";

/** Raw text to tokenize, or the id of a token matched whole. */
export type Fragment = string | number;

export class SpecialTokenMatcher {
  /** Candidates, longest text first. */
  private readonly candidates: number[];
  /** The candidates matched without parseSpecial (user-defined ones): often none. */
  private readonly alwaysMatched: number[];

  constructor(private readonly vocab: Vocabulary) {
    const ids: number[] = [];
    for (let id = 0; id < vocab.size; id++) {
      if (vocab.attrs[id] & MATCHED_WHOLE_ATTRS && vocab.texts[id].length > 0) ids.push(id);
    }
    // Stable for equal lengths: lower id first.
    ids.sort((a, b) => vocab.texts[b].length - vocab.texts[a].length || a - b);
    this.candidates = ids;
    this.alwaysMatched = ids.filter((id) => !(vocab.attrs[id] & (TokenAttr.Control | TokenAttr.Unknown)));
  }

  /** Appends the fragments of `text` to `out`, in steps (see steps.ts). */
  *partitionSteps(text: string, parseSpecial: boolean, out: Fragment[]): Steps {
    let fragments: Fragment[] = [text];
    const { vocab } = this;
    let units = 0;
    for (const id of parseSpecial ? this.candidates : this.alwaysMatched) {
      const attr = vocab.attrs[id];
      const token = vocab.texts[id];
      // Each search reads the whole text.
      units += text.length;
      if (units >= STEP_UNITS) {
        units = 0;
        yield;
      }
      if (!text.includes(token)) continue;
      const split: Fragment[] = [];
      for (const fragment of fragments) {
        if (typeof fragment !== "string") {
          split.push(fragment);
          continue;
        }
        let from = 0;
        for (;;) {
          const at = fragment.indexOf(token, from);
          if (at < 0) break;
          let leftEnd = at;
          if (attr & TokenAttr.LStrip) while (leftEnd > from && isAsciiSpace(fragment.charCodeAt(leftEnd - 1))) leftEnd--;
          if (leftEnd > from) split.push(fragment.slice(from, leftEnd));
          split.push(id);
          from = at + token.length;
          if (attr & TokenAttr.RStrip) while (from < fragment.length && isAsciiSpace(fragment.charCodeAt(from))) from++;
        }
        if (from < fragment.length) split.push(from === 0 ? fragment : fragment.slice(from));
      }
      fragments = split;
    }
    for (const f of fragments) out.push(f);
  }
}

/** C isspace(): the whitespace llama.cpp strips next to LStrip/RStrip tokens. */
function isAsciiSpace(c: number): boolean {
  return c === 0x20 || (c >= 0x09 && c <= 0x0d);
}
