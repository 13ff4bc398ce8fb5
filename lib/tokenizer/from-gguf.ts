/**
 * Builds a tokenizer from GGUF metadata (`tokenizer.ggml.*`), following llama.cpp's reading
 * of it: model type, token texts/types/scores, merges, special-token ids and flags, the
 * pre-tokenizer named by `tokenizer.ggml.pre`, and llama.cpp's fix-ups by token text.
 */
import { TesseraError } from "../errors.js";
import { GGUFValueType, type GGUFArray, type GGUFFile, type GGUFKV } from "../gguf/types.js";
import { byteLevelDecode } from "./byte-level.js";
import { BpeModel, missingBytesWarning, PreTokenizedBpeEncoder } from "./bpe.js";
import { addsBosByDefault, hasNoBos, ignoresMerges, preTokenizerByName, preTokenizerOfFamily } from "./pretokenizers.js";
import { WordPieceEncoder } from "./wpm.js";
import { SentencePieceEncoder, SentencePieceModel, spmSpelling } from "./spm.js";
import { TokenizerCore, type FragmentEncoder, type SpacePrefix } from "./tokenizer.js";
import { attrFromGGUFType, TokenAttr, type Tokenizer } from "./types.js";
import { markControlTokens, type SpecialIds } from "./special-ids.js";
import { Vocabulary } from "./vocab.js";

export function tokenizerFromGGUF(file: GGUFFile): Tokenizer {
  const meta = file.metadata;
  const model = getString(meta, "tokenizer.ggml.model");
  if (model === undefined) throw new TesseraError("ERR_TOKENIZER", "the GGUF file has no tokenizer (tokenizer.ggml.model is missing); use a model file converted with its vocabulary");
  if (model !== "llama" && model !== "gpt2" && model !== "bert") {
    throw new TesseraError("ERR_TOKENIZER", `tokenizer.ggml.model "${model}" is not supported; supported are "llama" (SentencePiece), "gpt2" (byte-level BPE) and "bert" (WordPiece)`);
  }
  const texts = getStrings(meta, "tokenizer.ggml.tokens");
  if (!texts || texts.length === 0) throw new TesseraError("ERR_TOKENIZER", "the GGUF file has no tokenizer.ggml.tokens; re-convert the model with its vocabulary");
  const n = texts.length;
  for (let i = 0; i < n; i++) if (texts[i].length === 0) texts[i] = `[EMPTY_${i}]`;
  const scores = getTyped(meta, "tokenizer.ggml.scores", n);
  const types = getTyped(meta, "tokenizer.ggml.token_type", n);
  const attrs = new Uint16Array(n);
  for (let i = 0; i < n; i++) attrs[i] = types ? attrFromGGUFType(types[i]) : TokenAttr.Normal;
  const scoreArray = scores ? Float32Array.from(scores) : undefined;

  const warnings: string[] = [];
  const special = readSpecialIds(meta, model, getString(meta, "tokenizer.ggml.pre") ?? "", n, warnings);

  let vocab: Vocabulary;
  let encoder: FragmentEncoder;
  let spacePrefix: SpacePrefix = "none";
  let addBos: boolean;
  let addEos = false;
  if (model === "llama") {
    vocab = new Vocabulary(texts, attrs, scoreArray, spmSpelling);
    const addSpacePrefix = getBool(meta, "tokenizer.ggml.add_space_prefix") ?? true;
    encoder = new SentencePieceEncoder(new SentencePieceModel(vocab, special.unk), addSpacePrefix);
    if (addSpacePrefix) spacePrefix = "afterSpecial";
    addBos = true;
  } else if (model === "gpt2") {
    vocab = new Vocabulary(texts, attrs, scoreArray, byteLevelDecode);
    const merges = getStrings(meta, "tokenizer.ggml.merges");
    if (!merges) throw new TesseraError("ERR_TOKENIZER", "the GGUF BPE vocabulary has no tokenizer.ggml.merges; re-convert the model");
    const pre = getString(meta, "tokenizer.ggml.pre") ?? "";
    let preTokenizer = preTokenizerByName(pre);
    if (!preTokenizer) {
      warnings.push(
        pre === ""
          ? "tokenizer.ggml.pre is missing; using the default BPE pre-tokenizer (text may split differently from the original tokenizer)"
          : `unknown tokenizer.ggml.pre "${pre}"; using the default BPE pre-tokenizer (text may split differently from the original tokenizer)`,
      );
      preTokenizer = preTokenizerOfFamily("default");
    }
    const bpe = new BpeModel(vocab, merges, {
      byteLevel: true,
      byteFallback: false,
      ignoreMerges: ignoresMerges(pre),
      unk: undefined,
      fuseUnk: false,
    });
    const lost = missingBytesWarning(bpe);
    if (lost) warnings.push(lost);
    encoder = new PreTokenizedBpeEncoder(bpe, preTokenizer.regexes);
    addBos = addsBosByDefault(pre);
  } else {
    vocab = new Vocabulary(texts, attrs, scoreArray, spmSpelling);
    if (special.unk === undefined) throw new TesseraError("ERR_TOKENIZER", "the WordPiece vocabulary has no unknown token (tokenizer.ggml.unknown_token_id)");
    const lowercase = getBool(meta, "tokenizer.ggml.normalizer.lowercase") ?? true;
    const stripAccents = getBool(meta, "tokenizer.ggml.normalizer.strip_accents") ?? lowercase;
    encoder = new WordPieceEncoder(vocab, special.unk, { lowercase, stripAccents });
    spacePrefix = "afterSpecial";
    addBos = true;
  }
  addBos = getBool(meta, "tokenizer.ggml.add_bos_token") ?? addBos;
  addEos = getBool(meta, "tokenizer.ggml.add_eos_token") ?? addEos;

  const eog = markControlTokens(vocab, special);
  applyNameFixups(vocab, getString(meta, "general.name") ?? "", getString(meta, "tokenizer.ggml.pre") ?? "", getString(meta, "general.architecture") ?? "");

  const prefixIds: number[] = [];
  const suffixIds: number[] = [];
  if (model === "bert") {
    // BERT inputs are [CLS] text [SEP] whatever the add_bos/add_eos flags say.
    if (special.bos === undefined || special.sep === undefined) throw new TesseraError("ERR_TOKENIZER", "the WordPiece vocabulary lacks its CLS or SEP token id");
    prefixIds.push(special.bos);
    suffixIds.push(special.sep);
  } else if (addBos) {
    if (special.bos === undefined) throw new TesseraError("ERR_TOKENIZER", "the vocabulary asks for a BOS token but has none (tokenizer.ggml.bos_token_id)");
    prefixIds.push(special.bos);
  }
  if (addEos && model !== "bert") {
    if (special.eos === undefined) throw new TesseraError("ERR_TOKENIZER", "the vocabulary asks for an EOS token but has none (tokenizer.ggml.eos_token_id)");
    suffixIds.push(special.eos);
  }
  return new TokenizerCore({
    vocab,
    encoder,
    bos: special.bos,
    eos: special.eos,
    addBos,
    addEos,
    prefixIds,
    suffixIds,
    endOfGeneration: eog,
    spacePrefix,
    warnings,
    unk: special.unk,
  });
}


/** llama.cpp's defaults per model type, then the ids the metadata gives (when in range). */
function readSpecialIds(meta: Map<string, GGUFKV>, model: string, pre: string, n: number, warnings: string[]): SpecialIds {
  const ids: SpecialIds =
    model === "llama" ? { bos: 1, eos: 2, unk: 0 } : model === "bert" ? { bos: 101, unk: 100, sep: 102, pad: 0, mask: 103 } : { bos: 11, eos: 11 };
  if (model === "gpt2" && hasNoBos(pre)) delete ids.bos;
  // Defaults outside the vocabulary are dropped before the metadata is read.
  for (const field of Object.keys(ids) as (keyof SpecialIds)[]) if (ids[field]! >= n) delete ids[field];
  const keys: [keyof SpecialIds, string][] = [
    ["bos", "bos_token_id"],
    ["eos", "eos_token_id"],
    ["eot", "eot_token_id"],
    ["eom", "eom_token_id"],
    ["unk", "unknown_token_id"],
    ["sep", "seperator_token_id"],
    ["pad", "padding_token_id"],
    ["mask", "mask_token_id"],
    ["fimPre", "fim_pre_token_id"],
    ["fimSuf", "fim_suf_token_id"],
    ["fimMid", "fim_mid_token_id"],
    ["fimPad", "fim_pad_token_id"],
    ["fimRep", "fim_rep_token_id"],
    ["fimSep", "fim_sep_token_id"],
    ["fimPre", "prefix_token_id"],
    ["fimSuf", "suffix_token_id"],
    ["fimMid", "middle_token_id"],
  ];
  for (const [field, key] of keys) {
    const v = getInt(meta, `tokenizer.ggml.${key}`);
    if (v === undefined) continue;
    if (v < 0 || v >= n) {
      if (v !== 0xffffffff && v !== -1) warnings.push(`tokenizer.ggml.${key} = ${v} is outside the vocabulary; ignored`);
      continue;
    }
    ids[field] = v;
  }
  return ids;
}

/** Per-model token attributes llama.cpp sets by model, pre-tokenizer or architecture name. */
function applyNameFixups(vocab: Vocabulary, modelName: string, pre: string, arch: string): void {
  const name = modelName.toLowerCase();
  const lstrip = (text: string): void => {
    const id = vocab.idOf(text);
    if (id !== undefined) vocab.setAttr(id, TokenAttr.LStrip, true);
  };
  if (["jina-v2-de", "jina-v2-es", "jina-v2-code"].some((p) => pre.includes(p)) || ["nomic-bert-moe", "jina-bert-v3"].some((a) => arch.includes(a))) {
    lstrip("<mask>");
  } else if (name.includes("phi-3") || name.includes("phi3")) {
    for (let id = 0; id < vocab.size; id++) {
      if (vocab.attrs[id] & (TokenAttr.Control | TokenAttr.UserDefined | TokenAttr.Unknown)) vocab.setAttr(id, TokenAttr.RStrip, true);
    }
    const set = (text: string, on: boolean): void => {
      const id = vocab.idOf(text);
      if (id !== undefined) vocab.setAttr(id, TokenAttr.RStrip, on);
    };
    set("</s>", true);
    for (const t of ["<unk>", "<s>", "<|endoftext|>"]) set(t, false);
  } else if (name.includes("modern-bert")) {
    lstrip("[MASK]");
  }
}

// Metadata accessors. Wrong types are treated as missing only where llama.cpp would ignore them.

function getString(meta: Map<string, GGUFKV>, key: string): string | undefined {
  const kv = meta.get(key);
  if (!kv) return undefined;
  if (kv.type !== GGUFValueType.STRING) throw badType(key, "a string");
  return kv.value as string;
}

function getBool(meta: Map<string, GGUFKV>, key: string): boolean | undefined {
  const kv = meta.get(key);
  if (!kv) return undefined;
  if (kv.type !== GGUFValueType.BOOL) throw badType(key, "a boolean");
  return kv.value as boolean;
}

function getInt(meta: Map<string, GGUFKV>, key: string): number | undefined {
  const kv = meta.get(key);
  if (!kv) return undefined;
  const v = kv.value;
  if (typeof v === "number" && Number.isInteger(v)) return v;
  if (typeof v === "bigint") return Number(v);
  throw badType(key, "an integer");
}

function getArray(meta: Map<string, GGUFKV>, key: string): GGUFArray | undefined {
  const kv = meta.get(key);
  if (!kv) return undefined;
  if (kv.type !== GGUFValueType.ARRAY) throw badType(key, "an array");
  return kv.value as GGUFArray;
}

function getStrings(meta: Map<string, GGUFKV>, key: string): string[] | undefined {
  const arr = getArray(meta, key);
  if (!arr) return undefined;
  if (arr.itemType !== GGUFValueType.STRING) throw badType(key, "an array of strings");
  return (arr.items as string[]).slice();
}

/** A numeric array of exactly `n` items (one per token). */
function getTyped(meta: Map<string, GGUFKV>, key: string, n: number): ArrayLike<number> | undefined {
  const arr = getArray(meta, key);
  if (!arr) return undefined;
  const items = arr.items;
  if (Array.isArray(items) || items instanceof BigInt64Array || items instanceof BigUint64Array) throw badType(key, "a numeric array");
  if (items.length !== n) throw new TesseraError("ERR_TOKENIZER", `${key} has ${items.length} items but the vocabulary has ${n} tokens; the GGUF tokenizer metadata is inconsistent`);
  return items;
}

function badType(key: string, what: string): TesseraError {
  return new TesseraError("ERR_TOKENIZER", `GGUF metadata ${key} is not ${what}; the tokenizer metadata is damaged`);
}
