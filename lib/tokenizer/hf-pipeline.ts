/**
 * The text side of a Hugging Face tokenizer.json: its normalizer and pre-tokenizer, turned
 * into a FragmentEncoder over a BpeModel. Supported are the lossless building blocks byte-level
 * and SentencePiece-style BPE tokenizers use; anything else is refused with ERR_TOKENIZER
 * rather than tokenized differently from the original.
 */
import { TesseraError } from "../errors.js";
import type { BpeModel } from "./bpe.js";
import { compilePattern, preTokenizerOfFamily, splitWith } from "./pretokenizers.js";

type Json = Record<string, unknown>;
type Normalize = (text: string, first: boolean) => string;
/** One pre-tokenizer step: pieces in, pieces out. */
type Split = (piece: string, first: boolean, emit: (piece: string) => void) => void;

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
        pipeline.splits.push((piece, first, emit) => emit(first && !piece.startsWith(" ") ? " " + piece : piece));
        pipeline.prefix = "start";
      }
      if (p.use_regex !== false) {
        const [gpt2] = preTokenizerOfFamily("gpt2").regexes;
        pipeline.splits.push((piece, _first, emit) => splitWith(piece, gpt2, emit));
      }
      return;
    }
    case "Digits": {
      const re = p.individual_digits ? /\p{N}/gu : /\p{N}+/gu;
      pipeline.splits.push((piece, _first, emit) => splitWith(piece, re, emit));
      return;
    }
    case "Split": {
      if (p.invert) throw unsupported("an inverted Split pre-tokenizer");
      const re = patternOf(p.pattern, "Split pre-tokenizer");
      const behavior = String(p.behavior);
      if (behavior === "Isolated") pipeline.splits.push((piece, _first, emit) => splitWith(piece, re, emit));
      else if (behavior === "MergedWithPrevious" || behavior === "MergedWithNext") pipeline.splits.push(mergedSplit(re, behavior === "MergedWithNext"));
      else throw unsupported(`a Split pre-tokenizer with behavior ${behavior}`);
      return;
    }
    case "Metaspace": {
      const replacement = String(p.replacement ?? "\u2581");
      const scheme = String(p.prepend_scheme ?? (p.add_prefix_space === false ? "never" : "always"));
      if (scheme !== "never" && scheme !== "first" && scheme !== "always") throw unsupported(`Metaspace prepend_scheme ${scheme}`);
      pipeline.splits.push((piece, first, emit) => {
        let t = piece.replaceAll(" ", replacement);
        if ((scheme === "always" || (scheme === "first" && first)) && !t.startsWith(replacement)) t = replacement + t;
        emit(t);
      });
      if (scheme === "always") pipeline.prefix = "always";
      else if (scheme === "first") pipeline.prefix = "start";
      if (p.split !== false) {
        const re = new RegExp(replacement.replace(/[.*+?^${}()|[\]\\/-]/g, "\\$&"), "gu");
        pipeline.splits.push(mergedSplit(re, true));
      }
      return;
    }
    default:
      throw unsupported(`the ${String(p.type)} pre-tokenizer`);
  }
}

/** Split keeping each match with the text before it (or, for `withNext`, after it). */
function mergedSplit(re: RegExp, withNext: boolean): Split {
  return (piece, _first, emit) => {
    re.lastIndex = 0;
    let start = 0;
    for (let m = re.exec(piece); m !== null; m = re.exec(piece)) {
      if (m[0].length === 0) {
        re.lastIndex++;
        continue;
      }
      if (withNext) {
        if (m.index > start) emit(piece.slice(start, m.index));
        start = m.index;
      } else {
        const end = m.index + m[0].length;
        emit(piece.slice(start, end));
        start = end;
      }
    }
    if (start < piece.length) emit(piece.slice(start));
  };
}

/** Raw text between added tokens -> normalizer -> pre-tokenizer steps -> BPE per piece. */
export class HfBpeEncoder {
  constructor(
    private readonly pipeline: HfPipeline,
    private readonly model: BpeModel,
  ) {}

  encode(text: string, first: boolean, _afterSpecial: boolean, out: number[]): void {
    const { pipeline, model } = this;
    if (pipeline.normalize) text = pipeline.normalize(text, first);
    let pieces = [text];
    for (const split of pipeline.splits) {
      const next: string[] = [];
      for (let i = 0; i < pieces.length; i++) split(pieces[i], first && i === 0, (p) => next.push(p));
      pieces = next;
    }
    for (const piece of pieces) if (piece.length > 0) model.encodeWord(piece, out);
  }
}
