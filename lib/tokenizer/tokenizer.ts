/**
 * The Tokenizer implementation shared by every vocabulary kind: special-token
 * partitioning, BOS/EOS, decoding with byte-exact pieces, and streaming. What differs per
 * kind (how raw text becomes ids, how a token spells bytes) is a TextModel.
 */
import { TesseraError } from "../errors.js";
import type { DecodeOptions, EncodeOptions, StreamDecoder, Tokenizer } from "./types.js";
import { TokenType } from "./types.js";
import { Utf8Stream } from "./utf8-stream.js";
import type { Vocab } from "./vocab.js";

export interface TextModel {
  /** Appends the ids of a raw-text fragment; `afterSpecial` is true at the start and after a special token. */
  encode(text: string, afterSpecial: boolean, out: number[]): void;
  /** The bytes a normal (non-control) token spells. */
  pieceBytes(id: number): Uint8Array;
  /** Decoding drops one leading space of the first piece (SentencePiece's added prefix). */
  readonly stripsLeadingSpace: boolean;
}

export interface SpecialIds {
  bos?: number;
  eos?: number;
  eot?: number;
  eom?: number;
  addBos: boolean;
  addEos: boolean;
}

/** Control tokens that end a turn in common chat formats. */
const END_OF_GENERATION_TEXTS = new Set([
  "<|eot_id|>",
  "<|eom_id|>",
  "<|im_end|>",
  "<|end|>",
  "<end_of_turn>",
  "<|endoftext|>",
  "<|return|>",
  "<|end_of_text|>",
  "</s>",
  "<｜end▁of▁sentence｜>",
]);

const EMPTY = new Uint8Array(0);
const encoder = new TextEncoder();

export class VocabTokenizer implements Tokenizer {
  readonly bos: number | undefined;
  readonly eos: number | undefined;
  readonly addBos: boolean;
  readonly addEos: boolean;
  private readonly endOfGeneration = new Set<number>();
  private readonly pieces: Array<Uint8Array | undefined>;

  constructor(
    private readonly vocab: Vocab,
    private readonly model: TextModel,
    special: SpecialIds,
    readonly warnings: readonly string[] = [],
  ) {
    const valid = (id: number | undefined) => (id !== undefined && id >= 0 && id < vocab.size ? id : undefined);
    this.bos = valid(special.bos);
    this.eos = valid(special.eos);
    this.addBos = special.addBos && this.bos !== undefined;
    this.addEos = special.addEos && this.eos !== undefined;
    for (const id of [this.eos, valid(special.eot), valid(special.eom)]) if (id !== undefined) this.endOfGeneration.add(id);
    for (let i = 0; i < vocab.size; i++)
      if (vocab.type(i) === TokenType.Control && END_OF_GENERATION_TEXTS.has(vocab.tokens[i])) this.endOfGeneration.add(i);
    if (this.bos !== undefined && this.bos !== this.eos) this.endOfGeneration.delete(this.bos);
    this.pieces = new Array(vocab.size);
  }

  get vocabSize(): number {
    return this.vocab.size;
  }

  encode(text: string, options: EncodeOptions = {}): number[] {
    if (typeof text !== "string") throw new TesseraError("ERR_INVALID_TEXT", "encode expects a string");
    const addSpecial = options.addSpecial ?? true;
    const out: number[] = [];
    if (addSpecial && this.addBos) out.push(this.bos!);
    let afterSpecial = true;
    for (const part of this.vocab.partition(text, options.parseSpecial ?? false)) {
      if (typeof part === "number") {
        out.push(part);
        afterSpecial = true;
      } else {
        this.model.encode(part, afterSpecial, out);
        afterSpecial = false;
      }
    }
    if (addSpecial && this.addEos) out.push(this.eos!);
    return out;
  }

  tokenBytes(id: number): Uint8Array {
    this.check(id);
    let p = this.pieces[id];
    if (p === undefined) {
      const type = this.vocab.type(id);
      if (type === TokenType.Control || type === TokenType.Unused) p = EMPTY;
      else if (type === TokenType.UserDefined) p = encoder.encode(this.vocab.tokens[id]);
      else p = this.model.pieceBytes(id);
      this.pieces[id] = p;
    }
    return p;
  }

  /** Control tokens spell their own text when not skipped (e.g. to show a chat template). */
  private bytesFor(id: number, skipSpecial: boolean): Uint8Array {
    if (!skipSpecial && this.vocab.type(id) === TokenType.Control) return encoder.encode(this.vocab.tokens[id]);
    return this.tokenBytes(id);
  }

  decode(ids: ArrayLike<number>, options: DecodeOptions = {}): string {
    const d = this.createStreamDecoder(options);
    let s = "";
    for (let i = 0; i < ids.length; i++) s += d.push(ids[i]);
    return s + d.flush();
  }

  createStreamDecoder(options: DecodeOptions = {}): StreamDecoder {
    const skipSpecial = options.skipSpecial ?? true;
    const utf8 = new Utf8Stream();
    let strip = this.model.stripsLeadingSpace;
    return {
      push: (id: number) => {
        let bytes = this.bytesFor(id, skipSpecial);
        if (bytes.length === 0) return "";
        if (strip && bytes[0] === 0x20) bytes = bytes.subarray(1);
        strip = false;
        return utf8.push(bytes);
      },
      flush: () => utf8.flush(),
    };
  }

  isEndOfGeneration(id: number): boolean {
    return this.endOfGeneration.has(id);
  }

  isSpecial(id: number): boolean {
    this.check(id);
    const t = this.vocab.type(id);
    return t === TokenType.Control || t === TokenType.Unknown;
  }

  private check(id: number): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocab.size)
      throw new TesseraError("ERR_INVALID_ARGUMENT", `token id ${id} is outside the vocabulary (0..${this.vocab.size - 1})`);
  }
}
