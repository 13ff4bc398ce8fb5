/**
 * The text side of a Hugging Face tokenizer.json: its normalizer and pre-tokenizer, turned
 * into a FragmentEncoder over a BpeModel. Supported are the lossless building blocks byte-level
 * and SentencePiece-style BPE tokenizers use; anything else is refused with ERR_TOKENIZER
 * rather than tokenized differently from the original.
 */
import { TesseraError } from "../errors.js";
import { LONG_WORD, type BpeModel } from "./bpe.js";
import { compilePattern, OnePiece, preTokenizerOfFamily, RegexSplitter, type PieceSource } from "./pretokenizers.js";
import { STEP_UNITS, type Steps } from "./steps.js";

type Json = Record<string, unknown>;
type Normalize = (text: string, first: boolean) => string;
/**
 * Pieces one at a time, like PieceSource; null means "not ready, call again": a step over a
 * large piece does its work in parts.
 */
interface StepSource {
  next(): string | undefined | null;
}

/** One pre-tokenizer step: a piece in, its pieces out (`first`: it starts the input). */
type Split = (piece: string, first: boolean) => StepSource;

export interface HfPipeline {
  normalize: Normalize | undefined;
  splits: Split[];
  /** A ByteLevel step is present: the model works on bytes. */
  byteLevel: boolean;
  /** Where a "▁"/space prefix is added: never, at the input start, or at every fragment. */
  prefix: "none" | "start" | "always";
}

function unsupported(what: string): TesseraError {
  return new TesseraError("ERR_TOKENIZER", `tokenizer.json uses ${what}, which Tessera does not implement; convert the model to GGUF instead`);
}

function patternOf(pattern: unknown, what: string): RegExp {
  const p = pattern as { String?: string; Regex?: string } | undefined;
  if (p && typeof p.String === "string") return new RegExp(p.String.replace(/[.*+?^${}()|[\]\\/-]/g, "\\$&"), "gu");
  if (p && typeof p.Regex === "string") return compilePattern(p.Regex);
  throw new TesseraError("ERR_TOKENIZER", `tokenizer.json ${what} has no String or Regex pattern`);
}

export function buildPipeline(normalizer: unknown, preTokenizer: unknown): HfPipeline {
  const pipeline: HfPipeline = { normalize: undefined, splits: [], byteLevel: false, prefix: "none" };
  const normalizers: Normalize[] = [];
  addNormalizer(normalizer as Json | null, normalizers, pipeline);
  if (normalizers.length > 0) {
    pipeline.normalize = (text, first) => {
      for (const n of normalizers) text = n(text, first);
      return text;
    };
  }
  addPreTokenizer(preTokenizer as Json | null, pipeline);
  return pipeline;
}

function addNormalizer(n: Json | null, out: Normalize[], pipeline: HfPipeline): void {
  if (n === null || n === undefined) return;
  switch (n.type) {
    case "Sequence":
      for (const child of n.normalizers as Json[]) addNormalizer(child, out, pipeline);
      return;
    case "Prepend": {
      const prepend = String(n.prepend);
      out.push((t) => prepend + t);
      // Every fragment between added tokens is normalized on its own.
      pipeline.prefix = "always";
      return;
    }
    case "Replace": {
      const re = patternOf(n.pattern, "Replace normalizer");
      const content = String(n.content);
      out.push((t) => t.replace(re, () => content));
      return;
    }
    case "NFC":
    case "NFD":
    case "NFKC":
    case "NFKD": {
      const form = n.type;
      out.push((t) => t.normalize(form));
      return;
    }
    case "Lowercase":
      out.push((t) => t.toLowerCase());
      return;
    default:
      throw unsupported(`the ${String(n.type)} normalizer`);
  }
}

function addPreTokenizer(p: Json | null, pipeline: HfPipeline): void {
  if (p === null || p === undefined) return;
  switch (p.type) {
    case "Sequence":
      for (const child of p.pretokenizers as Json[]) addPreTokenizer(child, pipeline);
      return;
    case "ByteLevel": {
      pipeline.byteLevel = true;
      if (p.add_prefix_space) {
        pipeline.splits.push((piece, first) => new OnePiece(first && !piece.startsWith(" ") ? " " + piece : piece));
        pipeline.prefix = "start";
      }
      if (p.use_regex !== false) {
        const [gpt2] = preTokenizerOfFamily("gpt2").regexes;
        pipeline.splits.push((piece) => new RegexSplitter(piece, gpt2));
      }
      return;
    }
    case "Digits": {
      const re = p.individual_digits ? /\p{N}/gu : /\p{N}+/gu;
      pipeline.splits.push((piece) => new RegexSplitter(piece, re));
      return;
    }
    case "Split": {
      if (p.invert) throw unsupported("an inverted Split pre-tokenizer");
      const re = patternOf(p.pattern, "Split pre-tokenizer");
      const behavior = String(p.behavior);
      if (behavior === "Isolated") pipeline.splits.push((piece) => new RegexSplitter(piece, re));
      else if (behavior === "MergedWithPrevious" || behavior === "MergedWithNext") {
        const withNext = behavior === "MergedWithNext";
        pipeline.splits.push((piece) => new MergedSplitter(piece, re, withNext));
      }
      else throw unsupported(`a Split pre-tokenizer with behavior ${behavior}`);
      return;
    }
    case "Metaspace": {
      const replacement = String(p.replacement ?? "\u2581");
      const scheme = String(p.prepend_scheme ?? (p.add_prefix_space === false ? "never" : "always"));
      if (scheme !== "never" && scheme !== "first" && scheme !== "always") throw unsupported(`Metaspace prepend_scheme ${scheme}`);
      pipeline.splits.push((piece, first) => new Metaspace(piece, replacement, scheme === "always" || (scheme === "first" && first)));
      if (scheme === "always") pipeline.prefix = "always";
      else if (scheme === "first") pipeline.prefix = "start";
      if (p.split !== false) {
        const re = new RegExp(replacement.replace(/[.*+?^${}()|[\]\\/-]/g, "\\$&"), "gu");
        pipeline.splits.push((piece) => new MergedSplitter(piece, re, true));
      }
      return;
    }
    default:
      throw unsupported(`the ${String(p.type)} pre-tokenizer`);
  }
}

/**
 * Metaspace's piece: every space written as `replacement`, which also goes in front when
 * `prepend` asks and the piece does not start with it. A large piece is written into a UTF-16
 * buffer, a part per call: replaceAll on megabytes of prose took seconds in one go (most of
 * it in the garbage collector), longer than tokenizing them.
 */
class Metaspace implements StepSource {
  private units: Uint16Array | undefined;
  /** Where the piece's first unit goes in `units` (1 after a prepended replacement). */
  private offset = 0;
  private at = 0;
  private done = false;

  constructor(
    private readonly piece: string,
    private readonly replacement: string,
    private readonly prepend: boolean,
  ) {}

  next(): string | undefined | null {
    if (this.done) return undefined;
    const { piece, replacement } = this;
    if (piece.length < LARGE_PIECE || replacement.length !== 1) {
      this.done = true;
      const t = piece.replaceAll(" ", replacement);
      return this.prepend && !t.startsWith(replacement) ? replacement + t : t;
    }
    const r = replacement.charCodeAt(0);
    let units = this.units;
    if (!units) {
      const c = piece.charCodeAt(0);
      this.offset = this.prepend && c !== 0x20 && c !== r ? 1 : 0;
      units = this.units = new Uint16Array(this.offset + piece.length);
      if (this.offset) units[0] = r;
    }
    const { offset } = this;
    const stop = Math.min(piece.length, this.at + LARGE_PIECE);
    for (let i = this.at; i < stop; i++) {
      const c = piece.charCodeAt(i);
      units[offset + i] = c === 0x20 ? r : c;
    }
    this.at = stop;
    if (stop < piece.length) return null;
    this.done = true;
    return utf16.decode(units);
  }
}

const LARGE_PIECE = 1 << 16;
const utf16 = new TextDecoder("utf-16le");

/** Split keeping each match with the text before it (or, for `withNext`, after it). */
class MergedSplitter implements PieceSource {
  private start = 0;
  private searchFrom = 0;
  private done = false;

  constructor(
    private readonly piece: string,
    private readonly re: RegExp,
    private readonly withNext: boolean,
  ) {}

  next(): string | undefined {
    if (this.done) return undefined;
    const { piece, re } = this;
    for (;;) {
      re.lastIndex = this.searchFrom;
      const m = re.exec(piece);
      if (m === null) {
        this.done = true;
        return this.start < piece.length ? piece.slice(this.start) : undefined;
      }
      if (m[0].length === 0) {
        this.searchFrom = m.index + 1;
        continue;
      }
      this.searchFrom = m.index + m[0].length;
      const start = this.start;
      if (this.withNext) {
        this.start = m.index;
        if (m.index > start) return piece.slice(start, m.index);
      } else {
        this.start = m.index + m[0].length;
        return piece.slice(start, this.start);
      }
    }
  }
}

/**
 * The pieces of one fragment through every pre-tokenizer step, depth first (see PieceWalker):
 * each step splits each piece on its own, so the order of the work does not change the
 * pieces. A piece is "first" when it starts the input, as in a step over the whole list.
 */
class StepWalker implements StepSource {
  private readonly sources: StepSource[];
  /** Per source: the next piece it gives starts the input. */
  private readonly firsts: boolean[];

  constructor(
    text: string,
    first: boolean,
    private readonly splits: readonly Split[],
  ) {
    this.sources = [new OnePiece(text)];
    this.firsts = [first];
  }

  next(): string | undefined | null {
    const { sources, firsts, splits } = this;
    for (;;) {
      const depth = sources.length;
      if (depth === 0) return undefined;
      const piece = sources[depth - 1].next();
      if (piece === null) return null;
      if (piece === undefined) {
        sources.pop();
        firsts.pop();
        continue;
      }
      const first = firsts[depth - 1];
      firsts[depth - 1] = false;
      if (depth > splits.length) return piece;
      sources.push(splits[depth - 1](piece, first));
      firsts.push(first);
    }
  }
}

/** Raw text between added tokens -> normalizer -> pre-tokenizer steps -> BPE per piece. */
export class HfBpeEncoder {
  constructor(
    private readonly pipeline: HfPipeline,
    private readonly model: BpeModel,
  ) {}

  *encodeSteps(text: string, first: boolean, _afterSpecial: boolean, out: number[]): Steps {
    const { pipeline, model } = this;
    if (pipeline.normalize) text = pipeline.normalize(text, first);
    const pieces = new StepWalker(text, first, pipeline.splits);
    let units = 0;
    for (let p = pieces.next(); p !== undefined; p = pieces.next()) {
      if (p === null) {
        yield;
        continue;
      }
      if (p.length === 0) continue;
      if (p.length > LONG_WORD) yield* model.encodeWordSteps(p, out);
      else model.encodeWord(p, out);
      units += p.length;
      if (units >= STEP_UNITS) {
        units = 0;
        yield;
      }
    }
  }
}
