/** Builds the tokenizer a GGUF file describes (tokenizer.ggml.* metadata). */
import { TesseraError } from "../errors.js";
import type { GGUFArray, GGUFFile } from "../gguf/types.js";
import { preTokenizerFor } from "./pretokenizers.js";
import { byteLevelTextModel, spmTextModel, wpmTextModel } from "./text-models.js";
import { VocabTokenizer, type SpecialIds } from "./tokenizer.js";
import type { Tokenizer } from "./types.js";
import { Vocab } from "./vocab.js";

function meta(file: GGUFFile, key: string): unknown {
  const v = file.metadata.get(`tokenizer.ggml.${key}`)?.value;
  if (v !== null && typeof v === "object" && "items" in v) return (v as GGUFArray).items;
  return v;
}

function id(file: GGUFFile, key: string): number | undefined {
  const v = meta(file, key);
  return typeof v === "number" ? v : typeof v === "bigint" ? Number(v) : undefined;
}

function flag(file: GGUFFile, key: string, fallback: boolean): boolean {
  const v = meta(file, key);
  return typeof v === "boolean" ? v : fallback;
}

/** Pre-types whose llama.cpp defaults emit whole-word tokens before merging and add BOS. */
const LLAMA3_FAMILY = new Set(["llama3", "llama-bpe", "llama-v3", "falcon3", "dbrx", "smaug"]);

export function tokenizerFromGGUF(file: GGUFFile): Tokenizer {
  const model = meta(file, "model");
  const tokens = meta(file, "tokens");
  if (typeof model !== "string" || !Array.isArray(tokens) || tokens.some((t) => typeof t !== "string"))
    throw new TesseraError("ERR_TOKENIZER", "the file has no usable tokenizer (tokenizer.ggml.model/tokens); re-convert it with its vocabulary");
  const types = meta(file, "token_type") as ArrayLike<number> | undefined;
  const scores = meta(file, "scores") as ArrayLike<number> | undefined;
  const vocab = new Vocab({ tokens: tokens as string[], types, scores });
  const warnings: string[] = [];
  const unk = id(file, "unknown_token_id");
  const special = (bos: number | undefined, eos: number | undefined, addBos: boolean, addEos: boolean): SpecialIds => ({
    bos: id(file, "bos_token_id") ?? bos,
    eos: id(file, "eos_token_id") ?? eos,
    eot: id(file, "eot_token_id"),
    eom: id(file, "eom_token_id"),
    addBos: flag(file, "add_bos_token", addBos),
    addEos: flag(file, "add_eos_token", addEos),
  });

  switch (model) {
    case "llama": {
      const text = spmTextModel(vocab, unk ?? 0, flag(file, "add_space_prefix", true));
      return new VocabTokenizer(vocab, text, special(1, 2, true, false), warnings);
    }
    case "gpt2": {
      const preName = meta(file, "pre");
      const { pre, known } = preTokenizerFor(typeof preName === "string" ? preName : undefined);
      if (!known) warnings.push(`unknown pre-tokenizer "${String(preName)}"; using the default regexes, so splits may differ from the model's`);
      const merges = meta(file, "merges");
      if (!Array.isArray(merges)) throw new TesseraError("ERR_TOKENIZER", "a gpt2 vocabulary needs tokenizer.ggml.merges; re-convert the model");
      const llama3 = typeof preName === "string" && LLAMA3_FAMILY.has(preName);
      const text = byteLevelTextModel(vocab, merges as string[], pre, llama3, unk);
      return new VocabTokenizer(vocab, text, special(undefined, undefined, llama3, false), warnings);
    }
    case "bert": {
      const text = wpmTextModel(vocab, unk);
      return new VocabTokenizer(vocab, text, special(id(file, "cls_token_id"), id(file, "seperator_token_id"), true, true), warnings);
    }
    default:
      throw new TesseraError("ERR_TOKENIZER", `tokenizer model "${model}" is not supported; Tessera reads llama (SentencePiece), gpt2 (byte-level BPE) and bert (WordPiece)`);
  }
}
