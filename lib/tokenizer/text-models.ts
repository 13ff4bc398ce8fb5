/** The TextModel of each vocabulary kind: how raw text becomes ids and tokens become bytes. */
import { BpeModel } from "./bpe.js";
import { byteLevelDecode, byteLevelEncode } from "./byte-level.js";
import type { PreTokenizer } from "./pretokenizers.js";
import { SpmModel } from "./spm.js";
import type { TextModel } from "./tokenizer.js";
import { TokenType } from "./types.js";
import type { Vocab } from "./vocab.js";
import { WpmModel } from "./wpm.js";

const SPACE_MARK = "\u2581";
const encoder = new TextEncoder();
const UNKNOWN_PIECE = encoder.encode("\u2585");

/** Bytes of a SentencePiece-style token: ▁ is a space, <0xNN> one raw byte. */
function metaspacePiece(vocab: Vocab, id: number): Uint8Array {
  const text = vocab.tokens[id];
  const type = vocab.type(id);
  if (type === TokenType.Unknown) return UNKNOWN_PIECE;
  const byte = /^<0x([0-9A-Fa-f]{2})>$/.exec(text);
  if (byte && (type === TokenType.Byte || type === TokenType.Normal)) return Uint8Array.of(parseInt(byte[1], 16));
  return encoder.encode(text.replaceAll(SPACE_MARK, " "));
}

/** SentencePiece BPE with scores (GGUF "llama"). */
export function spmTextModel(vocab: Vocab, unk: number | undefined, addSpacePrefix: boolean): TextModel {
  const spm = new SpmModel(vocab, unk);
  return {
    stripsLeadingSpace: addSpacePrefix,
    encode(text, afterSpecial, out) {
      const prefixed = addSpacePrefix && afterSpecial ? " " + text : text;
      spm.encode(prefixed.replaceAll(" ", SPACE_MARK), out);
    },
    pieceBytes: (id) => metaspacePiece(vocab, id),
  };
}

/** Byte-level BPE (GGUF "gpt2", Hugging Face ByteLevel): pre-tokenize, spell bytes, merge by rank. */
export function byteLevelTextModel(vocab: Vocab, merges: readonly string[], pre: PreTokenizer, ignoreMerges: boolean, unk?: number): TextModel {
  const bpe = new BpeModel(vocab, merges, { ignoreMerges, byteFallback: false, unk });
  return {
    stripsLeadingSpace: false,
    encode(text, _afterSpecial, out) {
      for (const word of pre.split(text)) bpe.encodeWord(byteLevelEncode(word), out);
    },
    pieceBytes: (id) => byteLevelDecode(vocab.tokens[id]),
  };
}

/**
 * Rank-merged BPE over Metaspace text with byte fallback (Hugging Face Llama/Mistral
 * tokenizer.json): spaces become ▁, a ▁ is prepended to the first fragment.
 */
export function metaspaceBpeTextModel(vocab: Vocab, merges: readonly string[], prependScheme: "first" | "always" | "never", unk?: number): TextModel {
  const bpe = new BpeModel(vocab, merges, { ignoreMerges: false, byteFallback: true, unk });
  return {
    stripsLeadingSpace: prependScheme !== "never",
    encode(text, afterSpecial, out) {
      const prepend = prependScheme === "always" || (prependScheme === "first" && afterSpecial);
      bpe.encodeWord((prepend ? SPACE_MARK : "") + text.replaceAll(" ", SPACE_MARK), out);
    },
    pieceBytes: (id) => metaspacePiece(vocab, id),
  };
}

/** WordPiece (GGUF "bert"). Decoding is lossy by design: the text was lowercased and split. */
export function wpmTextModel(vocab: Vocab, unk: number | undefined): TextModel {
  const wpm = new WpmModel(vocab, unk);
  return {
    stripsLeadingSpace: true,
    encode: (text, _afterSpecial, out) => wpm.encode(text, out),
    pieceBytes: (id) => encoder.encode(vocab.tokens[id].replaceAll(SPACE_MARK, " ")),
  };
}
