/**
 * The tokenizer every loader builds: special-token partitioning, then a model-specific
 * encoder for the raw text between special tokens; decoding concatenates token bytes.
 *
 * encodeAsync runs the same steps as encode (steps.ts), pausing for the event loop between
 * them once a slice of time is used up, so a large text neither blocks the loop for long nor
 * tokenizes differently.
 */
import { TesseraError } from "../errors.js";
import { SpecialTokenMatcher, type Fragment } from "./special-tokens.js";
import type { Steps } from "./steps.js";
import { TokenStreamDecoder } from "./stream-decoder.js";
import {
  MATCHED_WHOLE_ATTRS,
  SKIPPABLE_ATTRS,
  TokenAttr,
  type DecodeOptions,
  type EncodeAsyncOptions,
  type EncodeOptions,
  type StreamDecoder,
  type StreamDecoderOptions,
  type Tokenizer,
} from "./types.js";
import type { Vocabulary } from "./vocab.js";

/** Encodes raw text that holds no special tokens. */
export interface FragmentEncoder {
  /**
   * Appends the tokens of `text` to `out`, in steps (see steps.ts).
   * @param first the fragment starts the input text
   * @param afterSpecial the fragment starts the input or follows a token matched whole
   */
  encodeSteps(text: string, first: boolean, afterSpecial: boolean, out: number[]): Steps;
}

/**
 * Where the encoder put a space in front of text (SentencePiece's "▁" prefix), which
 * decoding takes away again: never, only at the start of the input, or also after every
 * token matched whole (llama.cpp's rule).
 */
export type SpacePrefix = "none" | "start" | "afterSpecial";

export interface TokenizerParts {
  vocab: Vocabulary;
  encoder: FragmentEncoder;
  bos: number | undefined;
  eos: number | undefined;
  addBos: boolean;
  addEos: boolean;
  /** Tokens encode puts around the text when asked to add special tokens. */
  prefixIds: number[];
  suffixIds: number[];
  endOfGeneration: ReadonlySet<number>;
  spacePrefix: SpacePrefix;
  warnings: string[];
  /** The unknown token (often typed CONTROL in GGUF vocabularies, so named here). */
  unk?: number;
}

/** What decoding carries from one token to the next. */
export interface DecodeState {
  /** No text has been produced since the input start (or since a token matched whole). */
  atStart: boolean;
}

const EMPTY = new Uint8Array(0);
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
/** encodeAsync holds the event loop this long at most between pauses (plus one step). */
const SLICE_MS = 8;
/** Texts up to this length are encoded at once by encodeAsync: there is nothing to pause for. */
const ASYNC_MIN_LENGTH = 1 << 15;
/**
 * Tokens move from the encoders' output array into a chunk of this many: one array grown to
 * millions of tokens was copied again at each growth, and those copies (and the collections
 * they set off) were 40% of encoding 20 MB and the longest waits of encodeAsync.
 */
const OUT_CHUNK = 1 << 16;

export class TokenizerCore implements Tokenizer {
  readonly vocabSize: number;
  readonly bos: number | undefined;
  readonly eos: number | undefined;
  readonly addBos: boolean;
  readonly addEos: boolean;
  readonly warnings: readonly string[];
  private readonly vocab: Vocabulary;
  private readonly encoder: FragmentEncoder;
  private readonly matcher: SpecialTokenMatcher;
  private readonly prefixIds: number[];
  private readonly suffixIds: number[];
  private readonly eog: ReadonlySet<number>;
  private readonly spacePrefix: SpacePrefix;
  private readonly unk: number | undefined;

  constructor(parts: TokenizerParts) {
    this.vocab = parts.vocab;
    this.vocabSize = parts.vocab.size;
    this.encoder = parts.encoder;
    this.bos = parts.bos;
    this.eos = parts.eos;
    this.addBos = parts.addBos;
    this.addEos = parts.addEos;
    this.prefixIds = parts.prefixIds;
    this.suffixIds = parts.suffixIds;
    this.eog = parts.endOfGeneration;
    this.spacePrefix = parts.spacePrefix;
    this.unk = parts.unk;
    this.warnings = parts.warnings;
    this.matcher = new SpecialTokenMatcher(parts.vocab);
  }

  encode(text: string, options?: EncodeOptions): number[] {
    checkText(text, "encode");
    checkEncodeOptions(options, "encode");
    const run = this.run(text, options);
    for (;;) {
      const r = run.next();
      if (r.done) return r.value;
    }
  }

  async encodeAsync(text: string, options?: EncodeAsyncOptions): Promise<number[]> {
    checkText(text, "encodeAsync");
    checkEncodeOptions(options, "encodeAsync");
    const signal = options?.signal;
    if (signal !== undefined && !isAbortSignal(signal)) {
      throw new TesseraError("ERR_INVALID_ARGUMENT", `encodeAsync: signal must be an AbortSignal, got ${describe(signal)}`);
    }
    throwIfAborted(signal);
    const run = this.run(text, options);
    let sliceStart = performance.now();
    for (;;) {
      const r = run.next();
      if (r.done) return r.value;
      if (text.length <= ASYNC_MIN_LENGTH || performance.now() - sliceStart < SLICE_MS) continue;
      await new Promise<void>((resolve) => setImmediate(resolve));
      throwIfAborted(signal);
      sliceStart = performance.now();
    }
  }

  /** The steps of an encode; returns the tokens. */
  private *run(text: string, options: EncodeOptions | undefined): Generator<void, number[], undefined> {
    const out: number[] = [];
    let chunks: number[][] | undefined;
    const steps = this.encodeSteps(text, options, out);
    while (!steps.next().done) {
      if (out.length >= OUT_CHUNK) (chunks ??= []).push(out.splice(0));
      yield;
    }
    if (!chunks) return out;
    chunks.push(out);
    return ([] as number[]).concat(...chunks);
  }

  private *encodeSteps(text: string, options: EncodeOptions | undefined, out: number[]): Steps {
    // Lone surrogates cannot be written as UTF-8; they become U+FFFD, as Buffer.from does.
    LONE_SURROGATE.lastIndex = 0;
    if (LONE_SURROGATE.test(text)) text = text.replace(LONE_SURROGATE, "\uFFFD");
    const addSpecial = options?.addSpecial ?? true;
    if (addSpecial) for (const id of this.prefixIds) out.push(id);
    if (text.length > 0) {
      const fragments: Fragment[] = [];
      yield* this.matcher.partitionSteps(text, options?.parseSpecial ?? false, fragments);
      let afterSpecial = true;
      for (let i = 0; i < fragments.length; i++) {
        const f = fragments[i];
        if (typeof f === "number") {
          out.push(f);
          afterSpecial = true;
        } else {
          yield* this.encoder.encodeSteps(f, i === 0, afterSpecial, out);
          afterSpecial = false;
        }
      }
    }
    if (addSpecial) for (const id of this.suffixIds) out.push(id);
  }

  decode(ids: ArrayLike<number>, options?: DecodeOptions): string {
    checkIds(ids, "decode");
    checkDecodeOptions(options, "decode");
    const skip = options?.skipSpecial ?? true;
    const state: DecodeState = { atStart: true };
    const pieces: Uint8Array[] = [];
    let total = 0;
    for (let i = 0; i < ids.length; i++) {
      const piece = this.piece(this.checkId(ids[i]), skip, state);
      pieces.push(piece);
      total += piece.length;
    }
    const bytes = new Uint8Array(total);
    let at = 0;
    for (const p of pieces) {
      bytes.set(p, at);
      at += p.length;
    }
    return new TextDecoder("utf-8", { ignoreBOM: true }).decode(bytes);
  }

  tokenBytes(id: number): Uint8Array {
    this.checkId(id);
    return this.vocab.attrs[id] & SKIPPABLE_ATTRS ? new Uint8Array(0) : this.vocab.pieces[id].slice();
  }

  isEndOfGeneration(id: number): boolean {
    checkNumber(id, "isEndOfGeneration");
    return this.eog.has(id);
  }

  isSpecial(id: number): boolean {
    checkNumber(id, "isSpecial");
    return this.vocab.has(id) && (this.vocab.attrs[id] & SKIPPABLE_ATTRS) !== 0;
  }

  createStreamDecoder(options?: StreamDecoderOptions): StreamDecoder {
    checkDecodeOptions(options, "createStreamDecoder");
    if (options?.prefix !== undefined) checkIds(options.prefix, "createStreamDecoder: prefix");
    return new TokenStreamDecoder(this, options);
  }

  /** The token's bytes in decoded text at this point; advances `state`. */
  piece(id: number, skipSpecial: boolean, state: DecodeState): Uint8Array {
    const attr = this.vocab.attrs[id];
    if (attr & MATCHED_WHOLE_ATTRS) {
      // An unknown token stands for a word the vocabulary lacks, not a boundary: the word
      // after it keeps its space ("hello [UNK] world" decodes to "hello world", not
      // "helloworld"), and at the start the next word still loses its prefix space.
      if (attr & TokenAttr.Unknown || id === this.unk) return skipSpecial ? EMPTY : this.vocab.pieces[id];
      if (this.spacePrefix === "afterSpecial") state.atStart = true;
      else if (!(state.atStart && id === this.bos)) state.atStart = false;
      return skipSpecial && attr & SKIPPABLE_ATTRS ? EMPTY : this.vocab.pieces[id];
    }
    let piece = this.vocab.pieces[id];
    if (state.atStart && piece.length > 0) {
      state.atStart = false;
      if (this.spacePrefix !== "none" && piece[0] === 0x20) piece = piece.subarray(1);
    }
    return piece;
  }

  checkId(id: number): number {
    if (!this.vocab.has(id)) {
      const what = typeof id === "number" ? String(id) : describe(id);
      throw new TesseraError("ERR_INVALID_ARGUMENT", `token id ${what} is not in the vocabulary (0..${this.vocab.size - 1})`);
    }
    return id;
  }
}

// Argument checks for the public entries: JavaScript callers can pass anything, and a wrong
// type must give a coded error, not a TypeError from deep inside.

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "string") return `a string (${JSON.stringify(v.length > 20 ? v.slice(0, 20) + "..." : v)})`;
  if (typeof v === "object" || typeof v === "function") return `a ${typeof v}`;
  return `${typeof v} ${String(v)}`;
}

function checkText(text: unknown, where: string): asserts text is string {
  if (typeof text !== "string") throw new TesseraError("ERR_INVALID_ARGUMENT", `${where} takes a string, got ${describe(text)}`);
}

function checkNumber(id: unknown, where: string): void {
  if (typeof id !== "number") throw new TesseraError("ERR_INVALID_ARGUMENT", `${where} takes a token id (a number), got ${describe(id)}`);
}

/** An array or typed array of token ids (each id is checked as it is read). */
function checkIds(ids: unknown, where: string): void {
  const ok =
    typeof ids === "object" &&
    ids !== null &&
    Number.isSafeInteger((ids as { length?: unknown }).length) &&
    (ids as { length: number }).length >= 0 &&
    !(ids instanceof DataView);
  if (!ok) throw new TesseraError("ERR_INVALID_ARGUMENT", `${where} takes an array of token ids, got ${describe(ids)}`);
}

function checkOptions(options: unknown, where: string, booleans: readonly string[]): void {
  if (options === undefined) return;
  if (typeof options !== "object" || options === null || Array.isArray(options)) {
    throw new TesseraError("ERR_INVALID_ARGUMENT", `${where}: options must be an object, got ${describe(options)}`);
  }
  for (const name of booleans) {
    const v = (options as Record<string, unknown>)[name];
    if (v !== undefined && typeof v !== "boolean") throw new TesseraError("ERR_INVALID_ARGUMENT", `${where}: ${name} must be a boolean, got ${describe(v)}`);
  }
}

function checkEncodeOptions(options: unknown, where: string): void {
  checkOptions(options, where, ["addSpecial", "parseSpecial"]);
}

function checkDecodeOptions(options: unknown, where: string): void {
  checkOptions(options, where, ["skipSpecial"]);
}

function isAbortSignal(v: unknown): v is AbortSignal {
  // Duck-typed: signals from another realm or polyfill are welcome.
  return typeof v === "object" && v !== null && typeof (v as AbortSignal).aborted === "boolean" && typeof (v as AbortSignal).addEventListener === "function";
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new TesseraError("ERR_ABORTED", "encodeAsync aborted", { cause: signal.reason });
}
