/**
 * A vocabulary: token texts as the model stores them, their attributes and scores, the
 * reverse map from text to id, and the bytes each token contributes to decoded text.
 */
import { TesseraError } from "../errors.js";
import { TokenAttr } from "./types.js";

const utf8 = new TextEncoder();
const EMPTY = new Uint8Array(0);

/** How a model family spells the bytes of a normal token in its stored text. */
export type PieceSpelling = (text: string) => Uint8Array;

export class Vocabulary {
  readonly size: number;
  /** Decoded bytes per token; control and unknown tokens hold their text (shown unless skipped). */
  readonly pieces: Uint8Array[];
  private readonly ids = new Map<string, number>();

  constructor(
    readonly texts: readonly string[],
    readonly attrs: Uint16Array,
    readonly scores: Float32Array | undefined,
    spelling: PieceSpelling,
  ) {
    this.size = texts.length;
    if (attrs.length !== this.size) throw new TesseraError("ERR_TOKENIZER", `the vocabulary has ${this.size} tokens but ${attrs.length} token types; the tokenizer metadata is inconsistent`);
    if (scores && scores.length !== this.size) throw new TesseraError("ERR_TOKENIZER", `the vocabulary has ${this.size} tokens but ${scores.length} scores; the tokenizer metadata is inconsistent`);
    this.pieces = new Array<Uint8Array>(this.size);
    for (let id = 0; id < this.size; id++) {
      const text = texts[id];
      // A later duplicate wins, as in llama.cpp's text-to-id map.
      this.ids.set(text, id);
      const attr = attrs[id];
      if (attr & (TokenAttr.Control | TokenAttr.Unknown | TokenAttr.UserDefined)) this.pieces[id] = utf8.encode(text);
      else if (attr & TokenAttr.Byte) this.pieces[id] = byteTokenPiece(text);
      else if (attr & TokenAttr.Normal) this.pieces[id] = spelling(text);
      else this.pieces[id] = EMPTY;
    }
  }

  idOf(text: string): number | undefined {
    return this.ids.get(text);
  }

  has(id: number): boolean {
    return Number.isInteger(id) && id >= 0 && id < this.size;
  }

  /** Marks a token with an extra attribute (e.g. a control-looking token stored as normal). */
  setAttr(id: number, attr: TokenAttr, on: boolean): void {
    const was = this.attrs[id];
    const now = on ? was | attr : was & ~attr;
    if (now === was) return;
    this.attrs[id] = now;
    // Tokens that turn control keep their text as their piece.
    if (attr & (TokenAttr.Control | TokenAttr.Unknown | TokenAttr.UserDefined)) this.pieces[id] = utf8.encode(this.texts[id]);
  }
}

/** "<0x0A>" -> [0x0a]; SentencePiece byte-fallback tokens. */
function byteTokenPiece(text: string): Uint8Array {
  const m = /^<0x([0-9A-Fa-f]{2})>$/.exec(text);
  if (!m) throw new TesseraError("ERR_TOKENIZER", `byte token "${text}" is not of the form <0xNN>; the vocabulary is damaged`);
  return Uint8Array.of(parseInt(m[1], 16));
}

/** The stored text of the byte-fallback token for one byte. */
export function byteTokenText(byte: number): string {
  return `<0x${byte.toString(16).toUpperCase().padStart(2, "0")}>`;
}
