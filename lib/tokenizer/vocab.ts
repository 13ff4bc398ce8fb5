/**
 * A vocabulary: token texts as the model stores them, their attributes and scores, the
 * reverse map from text to id, and the bytes each token contributes to decoded text.
 */
import { TesseraError } from "../errors.js";
import { TokenTextTable } from "./text-table.js";
import { TokenAttr } from "./types.js";

const utf8 = new TextEncoder();
const EMPTY = new Uint8Array(0);

/** How a model family spells the bytes of a normal token in its stored text. */
export type PieceSpelling = (text: string) => Uint8Array;

export class Vocabulary {
  readonly size: number;
  /** Decoded bytes per token; control and unknown tokens hold their text (shown unless skipped). */
  readonly pieces: Uint8Array[];
  /** Text -> id, also over ranges of larger strings. */
  readonly table: TokenTextTable;

  constructor(
    readonly texts: readonly string[],
    readonly attrs: Uint16Array,
    readonly scores: Float32Array | undefined,
    private readonly spelling: PieceSpelling,
  ) {
    this.size = texts.length;
    if (attrs.length !== this.size) throw new TesseraError("ERR_TOKENIZER", `the vocabulary has ${this.size} tokens but ${attrs.length} token types; the tokenizer metadata is inconsistent`);
    if (scores && scores.length !== this.size) throw new TesseraError("ERR_TOKENIZER", `the vocabulary has ${this.size} tokens but ${scores.length} scores; the tokenizer metadata is inconsistent`);
    this.table = new TokenTextTable(texts);
    this.pieces = new Array<Uint8Array>(this.size);
    for (let id = 0; id < this.size; id++) this.pieces[id] = this.pieceOf(id);
  }

  idOf(text: string): number | undefined {
    const id = this.table.get(text);
    return id < 0 ? undefined : id;
  }

  has(id: number): boolean {
    return Number.isInteger(id) && id >= 0 && id < this.size;
  }

  /** Turns one attribute of a token on or off (e.g. a control-looking token stored as normal). */
  setAttr(id: number, attr: TokenAttr, on: boolean): void {
    this.replaceAttrs(id, on ? this.attrs[id] | attr : this.attrs[id] & ~attr);
  }

  /** Gives a token new attributes; its decoded piece follows. */
  replaceAttrs(id: number, attrs: number): void {
    if (attrs === this.attrs[id]) return;
    this.attrs[id] = attrs;
    this.pieces[id] = this.pieceOf(id);
  }

  private pieceOf(id: number): Uint8Array {
    const text = this.texts[id];
    const attr = this.attrs[id];
    // Control, unknown and user-defined tokens spell their own text (control ones only when shown).
    if (attr & (TokenAttr.Control | TokenAttr.Unknown | TokenAttr.UserDefined)) return utf8.encode(text);
    if (attr & TokenAttr.Byte) return byteTokenPiece(text);
    if (attr & TokenAttr.Normal) return this.spelling(text);
    return EMPTY;
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
