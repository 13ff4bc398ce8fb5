/** A vocabulary: token strings, types, scores, and the special tokens found in text. */
import { TesseraError } from "../errors.js";
import { TokenType } from "./types.js";

export interface VocabSpec {
  tokens: string[];
  types?: ArrayLike<number>;
  scores?: ArrayLike<number>;
}

export class Vocab {
  readonly tokens: string[];
  readonly types: Int32Array;
  readonly scores: Float32Array;
  readonly ids: Map<string, number>;
  /** Tokens that are matched as whole strings before the model splits text, longest first. */
  private readonly specials: Array<{ id: number; text: string; always: boolean }>;

  constructor(spec: VocabSpec) {
    const n = spec.tokens.length;
    if (n === 0) throw new TesseraError("ERR_TOKENIZER", "the vocabulary is empty; the file has no tokenizer.ggml.tokens");
    if ((spec.types && spec.types.length !== n) || (spec.scores && spec.scores.length !== n))
      throw new TesseraError("ERR_TOKENIZER", "token types/scores do not match the token count; the vocabulary is damaged");
    this.tokens = spec.tokens;
    this.types = spec.types ? Int32Array.from(spec.types) : new Int32Array(n).fill(TokenType.Normal);
    this.scores = spec.scores ? Float32Array.from(spec.scores) : new Float32Array(n);
    this.ids = new Map();
    // Duplicate strings: the first id wins, as in llama.cpp.
    for (let i = 0; i < n; i++) if (!this.ids.has(this.tokens[i])) this.ids.set(this.tokens[i], i);
    this.specials = [];
    for (let i = 0; i < n; i++) {
      const t = this.types[i];
      if ((t === TokenType.Control || t === TokenType.UserDefined || t === TokenType.Unknown) && this.tokens[i].length > 0)
        this.specials.push({ id: i, text: this.tokens[i], always: t === TokenType.UserDefined });
    }
    this.specials.sort((a, b) => b.text.length - a.text.length);
  }

  get size(): number {
    return this.tokens.length;
  }

  type(id: number): number {
    return this.types[id];
  }

  /**
   * Splits text into raw fragments and special-token ids. User-defined tokens always
   * match; control and unknown tokens only when `parseSpecial`.
   */
  partition(text: string, parseSpecial: boolean): Array<string | number> {
    if (text.length === 0) return [];
    let parts: Array<string | number> = [text];
    const candidates = this.specials.filter((s) => s.always || parseSpecial);
    for (const s of candidates) {
      const next: Array<string | number> = [];
      for (const part of parts) {
        if (typeof part !== "string" || !part.includes(s.text)) {
          next.push(part);
          continue;
        }
        const pieces = part.split(s.text);
        pieces.forEach((p, i) => {
          if (i > 0) next.push(s.id);
          if (p.length > 0) next.push(p);
        });
      }
      parts = next;
    }
    return parts;
  }
}
