/**
 * Builds a tokenizer from Hugging Face files in a directory: tokenizer.json (BPE with a
 * ByteLevel or Metaspace/byte-fallback setup), or GPT-2 style vocab.json + merges.txt /
 * encoder.json + vocab.bpe (byte-level, GPT-2 regex), plus added_tokens.json and
 * tokenizer_config.json when present.
 */
import fs from "node:fs";
import path from "node:path";
import { TesseraError } from "../errors.js";
import { GPT2_PATTERN, regexPreTokenizer } from "./pretokenizers.js";
import { byteLevelTextModel, metaspaceBpeTextModel } from "./text-models.js";
import { VocabTokenizer } from "./tokenizer.js";
import { TokenType, type Tokenizer } from "./types.js";
import { Vocab } from "./vocab.js";

interface AddedToken {
  id: number;
  content: string;
  special?: boolean;
}

type Json = Record<string, unknown>;

function readJson(file: string): Json | undefined {
  if (!fs.existsSync(file)) return undefined;
  try {
    return JSON.parse(fs.readFileSync(file, "utf8")) as Json;
  } catch (e) {
    throw new TesseraError("ERR_TOKENIZER", `${file} is not valid JSON: ${(e as Error).message}`);
  }
}

function buildVocab(encoder: Record<string, number>, added: AddedToken[]): Vocab {
  let size = 0;
  for (const id of Object.values(encoder)) size = Math.max(size, id + 1);
  for (const t of added) size = Math.max(size, t.id + 1);
  const tokens = new Array<string>(size).fill("");
  const types = new Int32Array(size).fill(TokenType.Unused);
  for (const [piece, id] of Object.entries(encoder)) {
    tokens[id] = piece;
    types[id] = /^<0x[0-9A-F]{2}>$/.test(piece) ? TokenType.Byte : TokenType.Normal;
  }
  for (const t of added) {
    tokens[t.id] = t.content;
    types[t.id] = t.special ? TokenType.Control : TokenType.UserDefined;
  }
  return new Vocab({ tokens, types });
}

/** Walks a (possibly Sequence-nested) pre_tokenizer/normalizer into its parts. */
function flatten(node: unknown): Json[] {
  if (!node || typeof node !== "object") return [];
  const n = node as Json;
  if (n.type === "Sequence") return ((n.pretokenizers ?? n.normalizers ?? []) as unknown[]).flatMap(flatten);
  return [n];
}

function tokenName(v: unknown): string | undefined {
  if (typeof v === "string") return v;
  if (v && typeof v === "object" && typeof (v as Json).content === "string") return (v as Json).content as string;
  return undefined;
}

function specials(vocab: Vocab, config: Json | undefined, bosGuess: string[], eosGuess: string[], addBosDefault: boolean) {
  const find = (names: Array<string | undefined>) => {
    for (const n of names) if (n !== undefined && vocab.ids.has(n)) return vocab.ids.get(n);
    return undefined;
  };
  return {
    bos: find([tokenName(config?.bos_token), ...bosGuess]),
    eos: find([tokenName(config?.eos_token), ...eosGuess]),
    addBos: typeof config?.add_bos_token === "boolean" ? (config.add_bos_token as boolean) : addBosDefault,
    addEos: typeof config?.add_eos_token === "boolean" ? (config.add_eos_token as boolean) : false,
  };
}

function fromTokenizerJson(json: Json, config: Json | undefined): Tokenizer {
  const model = json.model as Json | undefined;
  if (!model || model.type !== "BPE")
    throw new TesseraError("ERR_TOKENIZER", `tokenizer.json model type ${String(model?.type)} is not supported; Tessera reads BPE tokenizers`);
  const vocab = buildVocab(model.vocab as Record<string, number>, (json.added_tokens ?? []) as AddedToken[]);
  const merges = ((model.merges ?? []) as Array<string | [string, string]>).map((m) => (typeof m === "string" ? m : `${m[0]} ${m[1]}`));
  const unk = typeof model.unk_token === "string" ? vocab.ids.get(model.unk_token) : undefined;
  const pre = flatten(json.pre_tokenizer);
  const norm = flatten(json.normalizer);
  const byteLevel = pre.find((p) => p.type === "ByteLevel");
  const metaspace = pre.find((p) => p.type === "Metaspace");
  const prepends = norm.some((n) => n.type === "Prepend" && n.prepend === "\u2581");
  const postTemplate = JSON.stringify(json.post_processor ?? {});
  if (byteLevel) {
    const patterns: string[] = [];
    for (const p of pre) {
      if (p.type === "Split" && p.pattern && typeof (p.pattern as Json).Regex === "string") patterns.push((p.pattern as Json).Regex as string);
      else if (p.type === "Digits") patterns.push(p.individual_digits ? String.raw`\p{N}` : String.raw`\p{N}+`);
      else if (p.type === "ByteLevel" && p.use_regex !== false) patterns.push(GPT2_PATTERN);
    }
    const text = byteLevelTextModel(vocab, merges, regexPreTokenizer(patterns), model.ignore_merges === true, unk);
    const s = specials(vocab, config, ["<|begin_of_text|>", "<s>", "<|endoftext|>"], ["<|end_of_text|>", "<|endoftext|>", "</s>"], postTemplate.includes("SpecialToken"));
    return new VocabTokenizer(vocab, text, s);
  }
  if (metaspace || prepends || model.byte_fallback) {
    const scheme = metaspace ? ((metaspace.prepend_scheme as "first" | "always" | "never" | undefined) ?? (metaspace.add_prefix_space === false ? "never" : "always")) : prepends ? "always" : "never";
    const text = metaspaceBpeTextModel(vocab, merges, scheme === "always" ? "first" : scheme, unk);
    const s = specials(vocab, config, ["<s>"], ["</s>"], postTemplate.includes("<s>") || postTemplate.includes("SpecialToken"));
    return new VocabTokenizer(vocab, text, s);
  }
  throw new TesseraError("ERR_TOKENIZER", "tokenizer.json has neither a ByteLevel nor a Metaspace setup; this BPE variant is not supported");
}

export function tokenizerFromHuggingFace(dir: string): Tokenizer {
  const config = readJson(path.join(dir, "tokenizer_config.json"));
  const json = readJson(path.join(dir, "tokenizer.json"));
  if (json) return fromTokenizerJson(json, config);
  const pairs: Array<[string, string]> = [
    ["vocab.json", "merges.txt"],
    ["encoder.json", "vocab.bpe"],
  ];
  for (const [vocabFile, mergesFile] of pairs) {
    const encoder = readJson(path.join(dir, vocabFile));
    if (!encoder || !fs.existsSync(path.join(dir, mergesFile))) continue;
    const addedJson = (readJson(path.join(dir, "added_tokens.json")) ?? {}) as Record<string, number>;
    const added = Object.entries(addedJson).map(([content, id]) => ({ id, content, special: true }));
    const vocab = buildVocab(encoder as Record<string, number>, added);
    const merges = fs
      .readFileSync(path.join(dir, mergesFile), "utf8")
      .split(/\r?\n/)
      .filter((l) => l.length > 0 && !l.startsWith("#version"));
    const text = byteLevelTextModel(vocab, merges, regexPreTokenizer([GPT2_PATTERN]), false);
    return new VocabTokenizer(vocab, text, specials(vocab, config, ["<|endoftext|>"], ["<|endoftext|>", "<|im_end|>"], false));
  }
  throw new TesseraError("ERR_TOKENIZER", `${dir} has no tokenizer.json, vocab.json+merges.txt or encoder.json+vocab.bpe`);
}
