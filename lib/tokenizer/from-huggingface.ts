/**
 * Builds a tokenizer from Hugging Face files in a directory: tokenizer.json (BPE, byte-level or
 * SentencePiece-style with byte fallback), or the GPT-2-style pairs vocab.json + merges.txt and
 * encoder.json + vocab.bpe, with tokenizer_config.json / added_tokens.json / config.json when
 * present. GPT-2-style files do not say how text is pre-tokenized nor list every special
 * token; the pre-tokenizer comes from the options (or tokenizer_class), the missing special
 * tokens from the family's published set.
 */
import fs from "node:fs";
import path from "node:path";
import { TesseraError } from "../errors.js";
import { byteLevelDecode } from "./byte-level.js";
import { BpeModel, missingBytesWarning, PreTokenizedBpeEncoder, type MergeList } from "./bpe.js";
import { familyDefaults } from "./families.js";
import { buildPipeline, HfBpeEncoder } from "./hf-pipeline.js";
import { addsBosByDefault, ignoresMerges, preTokenizerByName } from "./pretokenizers.js";
import { spmSpelling } from "./spm.js";
import { markControlTokens, type SpecialIds } from "./special-ids.js";
import { TokenizerCore, type FragmentEncoder, type SpacePrefix } from "./tokenizer.js";
import { TokenAttr, type Tokenizer } from "./types.js";
import { Vocabulary, type PieceSpelling } from "./vocab.js";

export interface HuggingFaceOptions {
  /**
   * How GPT-2-style files (vocab.json, encoder.json) pre-tokenize, as a `tokenizer.ggml.pre`
   * name ("llama-bpe", "qwen2", "gpt-2"...). Default: "qwen2" for a Qwen2Tokenizer config,
   * else "gpt-2". tokenizer.json files carry their own.
   */
  preTokenizer?: string;
}

type Json = Record<string, unknown>;

interface AddedToken {
  id: number;
  content: string;
  special: boolean;
  lstrip: boolean;
  rstrip: boolean;
}

export function tokenizerFromHuggingFace(dir: string, options: HuggingFaceOptions = {}): Tokenizer {
  const has = (name: string): boolean => fs.existsSync(path.join(dir, name));
  if (has("tokenizer.json")) return fromTokenizerJson(dir);
  if (has("vocab.json") && has("merges.txt")) return fromGpt2Files(dir, "vocab.json", "merges.txt", options);
  if (has("encoder.json") && has("vocab.bpe")) return fromGpt2Files(dir, "encoder.json", "vocab.bpe", options);
  throw new TesseraError("ERR_TOKENIZER", `${dir} has no tokenizer.json, vocab.json + merges.txt or encoder.json + vocab.bpe`);
}

function readText(file: string): string {
  try {
    return fs.readFileSync(file, "utf8");
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new TesseraError("ERR_IO", `cannot read ${file}: ${err.code ?? err.message}`);
  }
}

function readJson(file: string): unknown {
  const text = readText(file);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new TesseraError("ERR_TOKENIZER", `${file} is not valid JSON: ${(e as Error).message}`);
  }
}

function readOptionalJson(dir: string, name: string): Json | undefined {
  const file = path.join(dir, name);
  return fs.existsSync(file) ? (readJson(file) as Json) : undefined;
}

/** A token given as "text" or { content: "text" } in tokenizer_config.json. */
function tokenText(v: unknown): string | undefined {
  if (typeof v === "string") return v;
  if (v && typeof v === "object" && typeof (v as Json).content === "string") return (v as Json).content as string;
  return undefined;
}

function firstId(v: unknown): number | undefined {
  if (typeof v === "number") return v;
  if (Array.isArray(v) && typeof v[0] === "number") return v[0];
  return undefined;
}

function vocabMap(v: unknown, file: string): Map<string, number> {
  if (!v || typeof v !== "object" || Array.isArray(v)) throw new TesseraError("ERR_TOKENIZER", `${file}: the vocabulary is not an object of token -> id`);
  const map = new Map<string, number>();
  const obj = v as Json;
  for (const text in obj) {
    const id = obj[text];
    if (typeof id !== "number" || !Number.isInteger(id) || id < 0) throw new TesseraError("ERR_TOKENIZER", `${file}: token ${JSON.stringify(text)} has id ${String(id)}`);
    map.set(text, id);
  }
  return map;
}

/** Token texts by id from the merged vocabulary and the added tokens; gaps become unused placeholders. */
function layOut(vocab: Map<string, number>, added: AddedToken[], byteFallback: boolean): { texts: string[]; attrs: Uint16Array } {
  let size = 0;
  for (const id of vocab.values()) size = Math.max(size, id + 1);
  for (const t of added) size = Math.max(size, t.id + 1);
  const texts = new Array<string>(size);
  const attrs = new Uint16Array(size);
  const byteToken = /^<0x[0-9A-Fa-f]{2}>$/;
  for (const [text, id] of vocab) {
    texts[id] = text;
    attrs[id] = byteFallback && byteToken.test(text) ? TokenAttr.Byte : TokenAttr.Normal;
  }
  for (const t of added) {
    texts[t.id] = t.content;
    let attr = t.special ? TokenAttr.Control : TokenAttr.UserDefined;
    if (t.lstrip) attr |= TokenAttr.LStrip;
    if (t.rstrip) attr |= TokenAttr.RStrip;
    attrs[t.id] = attr;
  }
  for (let id = 0; id < size; id++) {
    if (texts[id] === undefined) {
      texts[id] = `[UNUSED_${id}]`;
      attrs[id] = TokenAttr.Unused;
    }
  }
  return { texts, attrs };
}

function addedFromConfig(config: Json | undefined): AddedToken[] {
  const decoder = config?.added_tokens_decoder as Record<string, Json> | undefined;
  if (!decoder) return [];
  return Object.entries(decoder).map(([id, t]) => ({
    id: Number(id),
    content: String(t.content),
    special: t.special !== false,
    lstrip: t.lstrip === true,
    rstrip: t.rstrip === true,
  }));
}

interface Roles {
  bos?: number;
  eos?: number;
}

function rolesFromConfigs(vocab: Vocabulary, tokenizerConfig: Json | undefined, modelConfig: Json | undefined): Roles {
  const roles: Roles = {};
  const byText = (v: unknown): number | undefined => {
    const t = tokenText(v);
    return t === undefined ? undefined : vocab.idOf(t);
  };
  roles.bos = byText(tokenizerConfig?.bos_token) ?? firstId(modelConfig?.bos_token_id);
  roles.eos = byText(tokenizerConfig?.eos_token) ?? firstId(modelConfig?.eos_token_id);
  for (const k of ["bos", "eos"] as const) if (roles[k] !== undefined && !vocab.has(roles[k]!)) delete roles[k];
  return roles;
}

function finish(
  vocab: Vocabulary,
  encoder: FragmentEncoder,
  roles: Roles,
  prefixIds: number[],
  suffixIds: number[],
  spacePrefix: SpacePrefix,
  warnings: string[],
): Tokenizer {
  const ids: SpecialIds = { bos: roles.bos, eos: roles.eos };
  const eog = markControlTokens(vocab, ids);
  return new TokenizerCore({
    vocab,
    encoder,
    bos: roles.bos,
    eos: roles.eos,
    addBos: roles.bos !== undefined && prefixIds.includes(roles.bos),
    addEos: roles.eos !== undefined && suffixIds.includes(roles.eos),
    prefixIds,
    suffixIds,
    endOfGeneration: eog,
    spacePrefix,
    warnings,
  });
}

function fromGpt2Files(dir: string, vocabFile: string, mergesFile: string, options: HuggingFaceOptions): Tokenizer {
  const tokenizerConfig = readOptionalJson(dir, "tokenizer_config.json");
  const modelConfig = readOptionalJson(dir, "config.json");
  const addedJson = readOptionalJson(dir, "added_tokens.json");
  const merged = vocabMap(readJson(path.join(dir, vocabFile)), vocabFile);
  const merges = readText(path.join(dir, mergesFile))
    .split(/\r?\n/)
    .filter((l, i) => l.length > 0 && !(i === 0 && l.startsWith("#version")));

  const preName = options.preTokenizer ?? (tokenizerConfig?.tokenizer_class === "Qwen2Tokenizer" ? "qwen2" : "gpt-2");
  const pre = preTokenizerByName(preName);
  if (!pre) throw new TesseraError("ERR_TOKENIZER", `unknown pre-tokenizer "${preName}"; pass a tokenizer.ggml.pre name such as "llama-bpe", "qwen2" or "gpt-2"`);
  const defaults = familyDefaults(pre.family);

  const added = addedFromConfig(tokenizerConfig);
  if (addedJson) {
    for (const [content, id] of Object.entries(addedJson)) {
      if (typeof id === "number" && !added.some((t) => t.id === id)) added.push({ id, content, special: true, lstrip: false, rstrip: false });
    }
  }
  if (added.length === 0 && defaults) {
    let next = 0;
    for (const id of merged.values()) next = Math.max(next, id + 1);
    for (const [id, content] of defaults.specialTokens(next)) {
      if (!merged.has(content)) added.push({ id, content, special: true, lstrip: false, rstrip: false });
    }
  }
  const { texts, attrs } = layOut(merged, added, false);
  const vocab = new Vocabulary(texts, attrs, undefined, byteLevelDecode);
  const warnings: string[] = [];
  const bpe = new BpeModel(vocab, merges, { byteLevel: true, byteFallback: false, ignoreMerges: ignoresMerges(preName), unk: undefined, fuseUnk: false });
  const encoder = new PreTokenizedBpeEncoder(bpe, pre.regexes);
  const lost = missingBytesWarning(bpe);
  if (lost) warnings.push(lost);

  const roles = rolesFromConfigs(vocab, tokenizerConfig, modelConfig);
  if (roles.bos === undefined && defaults?.bos) roles.bos = vocab.idOf(defaults.bos);
  if (roles.eos === undefined && defaults?.eos) roles.eos = vocab.idOf(defaults.eos);
  const addBos = (tokenizerConfig?.add_bos_token as boolean | undefined) ?? (defaults?.addBos || addsBosByDefault(preName));
  const addEos = (tokenizerConfig?.add_eos_token as boolean | undefined) ?? false;
  const prefixIds = addBos && roles.bos !== undefined ? [roles.bos] : [];
  const suffixIds = addEos && roles.eos !== undefined ? [roles.eos] : [];
  return finish(vocab, encoder, roles, prefixIds, suffixIds, "none", warnings);
}

function fromTokenizerJson(dir: string): Tokenizer {
  const file = path.join(dir, "tokenizer.json");
  const j = readJson(file) as Json;
  const model = j.model as Json | undefined;
  if (!model || model.type !== "BPE") {
    throw new TesseraError("ERR_TOKENIZER", `${file}: model type ${String(model?.type)} is not supported; Tessera reads BPE tokenizer.json files`);
  }
  if (model.continuing_subword_prefix || model.end_of_word_suffix) {
    throw new TesseraError("ERR_TOKENIZER", `${file}: BPE with subword prefixes or word suffixes is not supported`);
  }
  const merged = vocabMap(model.vocab, file);
  const merges = (model.merges ?? []) as MergeList;
  for (const m of merges) {
    if (typeof m !== "string" && !(Array.isArray(m) && m.length === 2 && typeof m[0] === "string" && typeof m[1] === "string")) {
      throw new TesseraError("ERR_TOKENIZER", `${file}: merge ${JSON.stringify(m)} is neither "a b" nor ["a", "b"]`);
    }
  }
  const added: AddedToken[] = ((j.added_tokens as Json[]) ?? []).map((t) => ({
    id: Number(t.id),
    content: String(t.content),
    special: t.special === true,
    lstrip: t.lstrip === true,
    rstrip: t.rstrip === true,
  }));
  const pipeline = buildPipeline(j.normalizer, j.pre_tokenizer);
  const decoderType = (j.decoder as Json | null)?.type;
  const byteLevel = pipeline.byteLevel || decoderType === "ByteLevel";
  const byteFallback = model.byte_fallback === true;
  const { texts, attrs } = layOut(merged, added, byteFallback);
  const spelling: PieceSpelling = byteLevel ? byteLevelDecode : spmSpelling;
  const vocab = new Vocabulary(texts, attrs, undefined, spelling);
  const unkText = typeof model.unk_token === "string" ? model.unk_token : undefined;
  const unk = unkText === undefined ? undefined : vocab.idOf(unkText);
  const bpe = new BpeModel(vocab, merges, {
    byteLevel,
    byteFallback,
    ignoreMerges: model.ignore_merges === true,
    unk,
    fuseUnk: model.fuse_unk === true,
  });
  const encoder = new HfBpeEncoder(pipeline, bpe);
  const warnings: string[] = [];
  const lost = missingBytesWarning(bpe);
  if (lost) warnings.push(lost);

  const { prefix, suffix } = templateIds(j.post_processor as Json | null, vocab);
  const roles = rolesFromConfigs(vocab, readOptionalJson(dir, "tokenizer_config.json"), readOptionalJson(dir, "config.json"));
  if (roles.bos === undefined && prefix.length > 0) roles.bos = prefix[0];
  const spacePrefix: SpacePrefix = pipeline.prefix === "always" ? "afterSpecial" : pipeline.prefix;
  return finish(vocab, encoder, roles, prefix, suffix, spacePrefix, warnings);
}

/** Tokens the post-processor puts before and after a single sequence. */
function templateIds(post: Json | null, vocab: Vocabulary): { prefix: number[]; suffix: number[] } {
  const prefix: number[] = [];
  const suffix: number[] = [];
  if (!post) return { prefix, suffix };
  switch (post.type) {
    case "Sequence": {
      for (const p of post.processors as Json[]) {
        const r = templateIds(p, vocab);
        prefix.push(...r.prefix);
        suffix.push(...r.suffix);
      }
      break;
    }
    case "TemplateProcessing": {
      const specials = (post.special_tokens ?? {}) as Record<string, { ids?: number[] }>;
      let seenSequence = false;
      for (const item of post.single as Json[]) {
        if (item.Sequence) {
          seenSequence = true;
          continue;
        }
        const special = item.SpecialToken as { id: string } | undefined;
        if (!special) continue;
        const ids = specials[special.id]?.ids ?? [vocab.idOf(special.id)].filter((x): x is number => x !== undefined);
        (seenSequence ? suffix : prefix).push(...ids);
      }
      break;
    }
    case "RobertaProcessing":
    case "BertProcessing": {
      const cls = post.cls as [string, number];
      const sep = post.sep as [string, number];
      prefix.push(cls[1]);
      suffix.push(sep[1]);
      break;
    }
    case "ByteLevel":
      break;
    default:
      throw new TesseraError("ERR_TOKENIZER", `tokenizer.json post-processor ${String(post.type)} is not supported`);
  }
  return { prefix, suffix };
}
