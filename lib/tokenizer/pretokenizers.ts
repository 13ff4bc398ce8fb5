/**
 * Pre-tokenizers of byte-level BPE vocabularies: the regular expressions that cut text into
 * words before merging, per `tokenizer.ggml.pre` name. Each entry is a list applied in turn:
 * every regex splits every current piece into its matches and the text between them.
 *
 * The patterns are llama.cpp's versions of those published with each model's tokenizer
 * (Hugging Face tokenizer.json): `(?i:...)` spelled out, cased letter runs written with
 * lookaheads. `\s` means Unicode White_Space, as in llama.cpp and the Rust and Python regex
 * engines. Non-ASCII characters are written as escapes so no editor can normalize them.
 */

import { TesseraError } from "../errors.js";

const GPT2 = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
const CONTRACTIONS = "'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD]";
const LLAMA3 = `(?:${CONTRACTIONS})|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+`;
const QWEN2 = `(?:${CONTRACTIONS})|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+`;
// llama.cpp's spelling of the "upper* lower+ | upper+ lower*" letter runs: a letter that is not
// a-z, then letters that are not A-Z (so non-ASCII letters count on both sides).
const CASED_RUNS = "[^\\r\\n\\p{L}\\p{N}]?(?:(?=\\p{L})[^a-z])*(?:(?=\\p{L})[^A-Z])+";
const CASED_RUNS_2 = "[^\\r\\n\\p{L}\\p{N}]?(?:(?=\\p{L})[^a-z])+(?:(?=\\p{L})[^A-Z])*";
const TEKKEN = `${CASED_RUNS}|${CASED_RUNS_2}|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+`;
const GPT4O = `${CASED_RUNS}(?:${CONTRACTIONS})?|${CASED_RUNS_2}(?:${CONTRACTIONS})?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+`;
const BLOOM =
  " ?[^(\\s|.,!?\u2026\u3002\uFF0C\u3001\u0964\u06D4\u060C)]+";
const QWEN35 = `(?:${CONTRACTIONS})|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| ?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+`;
const JAIS2 =
  `(?:${CONTRACTIONS})|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|` +
  "\\s{512}(?!\\S)|\\s{256}(?!\\S)|\\s{128}(?!\\S)|\\s{64}(?!\\S)|\\s{32}(?!\\S)|\\s{16}(?!\\S)|\\s{8}(?!\\S)|\\s{4}(?!\\S)|\\s{1,2}(?!\\S)|\\s{1}";
const GRANITE_EMB_MULTI = `[^\\r\\n\\p{L}\\p{N}]?(?:(?=[\\p{L}\\p{M}])[^a-z])*(?:(?=[\\p{L}\\p{M}])[^A-Z])+(?:${CONTRACTIONS})?|[^\\r\\n\\p{L}\\p{N}]?(?:(?=[\\p{L}\\p{M}])[^a-z])+(?:(?=[\\p{L}\\p{M}])[^A-Z])*(?:${CONTRACTIONS})?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+`;
const DEEPSEEK_V3_MAIN =
  "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\\r\\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const CJK_KANA =
  "[\u4E00-\u9FA5\u3040-\u309F\u30A0-\u30FF]+";
const CJK =
  "[\u4E00-\u9FA5\u0800-\u4E00\uAC00-\uD7FF]+";
const DEEPSEEK_LLM_LETTERS =
  "\\s?[A-Za-z\u00B5\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u01BA\u01BC-\u01BF\u01C4-\u0293\u0295-\u02AF\u0370-\u0373\u0376\u0377\u037B-\u037D\u037F\u0386\u0388-\u038A\u038C\u038E-\u03A1\u03A3-\u03F5\u03F7-\u0481\u048A-\u052F\u0531-\u0556\u10A0-\u10C5\u13A0-\u13F5\u13F8-\u13FD\u1C90-\u1CBA\u1CBD-\u1CBF\u1D00-\u1D2B\u1D6B-\u1D77\u1D79-\u1D9A\u1E00-\u1F15\u1F18-\u1F1D\u1F20-\u1F45\u1F48-\u1F4D\u1F50-\u1F57\u1F59\u1F5B\u1F5D\u1F5F-\u1F7D\u1F80-\u1FB4\u1FB6-\u1FBC\u1FBE\u1FC2-\u1FC4\u1FC6-\u1FCC\u1FD0-\u1FD3\u1FD6-\u1FDB\u1FE0-\u1FEC\u1FF2-\u1FF4\u1FF6-\u1FFC\u2102\u2107\u210A-\u2113\u2115\u2119-\u211D\u2124\u2126\u2128\u212A-\u212D\u212F-\u2134\u2139\u213C-\u213F\u2145-\u2149\u214E\u2183\u2184\u2C00-\u2C7B\u2C7E-\u2CE4\u2CEB-\u2CEE\u2CF2\u2CF3\uA640-\uA66D\uA680-\uA69B\uA722-\uA76F\uA771-\uA787\uA78B-\uA78E\uAB70-\uABBF\uFB00-\uFB06\uFB13-\uFB17\uFF21-\uFF3A\uFF41-\uFF5A\u{10400}-\u{1044F}\u{104B0}-\u{104D3}\u{104D8}-\u{104FB}\u{10C80}-\u{10CB2}\u{10CC0}-\u{10CF2}\u{118A0}-\u{118DF}\u{1E900}-\u{1E943}]+";

const DEEPSEEK_LLM_PUNCT = "\\s?[!-/:-~\uFF01-\uFF0F\uFF1A-\uFF5E\u2018-\u201F\u3000-\u3002]+";
const DEFAULT = ["[\\p{P}\\$\\+<=>\\^~\\|]+", GPT2, "\\p{N}+", "[0-9][0-9][0-9]"];

/** Pattern lists by pre-tokenizer family. */
const FAMILIES: Record<string, string[]> = {
  default: DEFAULT,
  llama3: [LLAMA3],
  "deepseek-llm": ["[\\r\\n]", DEEPSEEK_LLM_LETTERS, DEEPSEEK_LLM_PUNCT, "\\s+$", CJK, "\\p{N}+"],
  "deepseek-v3": ["\\p{N}{1,3}", CJK_KANA, DEEPSEEK_V3_MAIN],
  spark2_5: [
    "\\p{N}{1,3}",
    CJK_KANA,
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\\r\\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+|[\\r\\n]|\\s+(?!\\S)|\\s+",
    "\\p{N}",
  ],
  qwen35: [QWEN35],
  jais2: [JAIS2],
  "granite-emb-multi": [GRANITE_EMB_MULTI],
  bailingmoe: ["'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+"],
  "seed-coder": [`(?:${CONTRACTIONS})|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1}| ?[^\\s\\p{L}\\p{N}\\r\\n]+|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+`],
  ufakzeka: ["[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"],
  laguna: ["[^\\n]+|[\\n]+", QWEN2],
  "exaone-moe": [
    `(?:${CONTRACTIONS})|[^\\r\\n\\p{L}\\p{N}]?(?:\\p{L}\\p{M}*(?: \\p{L}\\p{M}*)*)+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]?|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+`,
  ],
  minicpm5: ["\\p{N}{1,3}", `(?:${CONTRACTIONS})|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}+| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+`],
  "deepseek-coder": ["[\\r\\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", CJK, "\\p{N}"],
  falcon: ["[\\p{P}\\$\\+<=>\\^~\\|`]+", GPT2, "[0-9][0-9][0-9]"],
  starcoder: ["\\p{N}", GPT2],
  gpt2: [GPT2],
  qwen2: [QWEN2],
  bloom: [BLOOM],
  viking: [BLOOM, "\\p{N}"],
  tekken: [TEKKEN],
  gpt4o: [GPT4O],
  chameleon: ["<sentinel:[0-9]+>", "(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z", "([\\t\\n]|    |  )", "\\p{N}", "[\\p{P}!-/:-@\\[-`{-~]", GPT2],
};

/** `tokenizer.ggml.pre` names and the family each uses (as llama.cpp maps them). */
const NAMES: Record<string, string> = {
  default: "default",
  ...named("llama3", ["llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2", "jina-v5-nano", "dbrx", "smaug-bpe", "chatglm-bpe", "glm4"]),
  ...named("deepseek-llm", ["deepseek-llm"]),
  ...named("deepseek-coder", ["deepseek-coder"]),
  ...named("deepseek-v3", ["deepseek-v3", "hunyuan-dense", "hy_v4", "joyai-llm"]),
  ...named("spark2_5", ["spark2_5"]),
  ...named("falcon", ["falcon"]),
  ...named("starcoder", ["starcoder", "refact", "command-r", "smollm", "codeshell", "exaone", "minerva-7b", "mellum2"]),
  ...named("gpt2", [
    "gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v1-en", "jina-v2-es", "jina-v2-de", "jina-v2-code", "roberta-bpe",
    "a.x-4.0", "mellum", "modern-bert", "exaone4", "mpt", "olmo", "jais", "trillion", "granite-docling",
  ]),
  ...named("qwen2", ["qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "stablelm2", "megrez", "hunyuan", "solar-open", "grok-2"]),
  ...named("qwen35", ["qwen35"]),
  ...named("jais2", ["jais-2"]),
  ...named("bloom", ["poro-chat", "bloom", "gpt3-finnish"]),
  ...named("viking", ["viking"]),
  ...named("tekken", ["tekken"]),
  ...named("chameleon", ["chameleon"]),
  ...named("gpt4o", ["gpt-4o", "llama4", "kanana2", "talkie", "minimax-m2"]),
  ...named("granite-emb-multi", ["granite-embed-multi-97m"]),
  ...named("bailingmoe", ["bailingmoe", "bailingmoe2", "llada-moe"]),
  ...named("seed-coder", ["seed-coder"]),
  ...named("ufakzeka", ["ufakzeka"]),
  ...named("laguna", ["laguna"]),
  ...named("exaone-moe", ["exaone-moe"]),
  ...named("minicpm5", ["minicpm5"]),
};

function named(family: string, names: string[]): Record<string, string> {
  return Object.fromEntries(names.map((n) => [n, family]));
}

/** Names whose vocabularies llama.cpp encodes without merging words that are tokens. */
const LLAMA3_NAMES = ["llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2", "jina-v5-nano"];
const IGNORE_MERGES = new Set([...LLAMA3_NAMES, "tekken", "granite-embed-multi-97m", "minicpm5"]);
/** Names whose BPE vocabularies add BOS by default. */
const ADD_BOS = new Set([...LLAMA3_NAMES, "tekken", "chameleon"]);
/** Names whose vocabularies have no BOS token. */
const NO_BOS = new Set(["chatglm-bpe", "glm4"]);

export function ignoresMerges(name: string): boolean {
  return IGNORE_MERGES.has(name);
}

export function addsBosByDefault(name: string): boolean {
  return ADD_BOS.has(name);
}

export function hasNoBos(name: string): boolean {
  return NO_BOS.has(name);
}

export interface PreTokenizer {
  /** The family the name resolved to. */
  readonly family: string;
  readonly regexes: readonly RegExp[];
}

/** The pre-tokenizer for a `tokenizer.ggml.pre` name; undefined for an unknown name. */
export function preTokenizerByName(name: string): PreTokenizer | undefined {
  const family = NAMES[name];
  return family === undefined ? undefined : preTokenizerOfFamily(family);
}

export function preTokenizerOfFamily(family: string): PreTokenizer {
  const patterns = FAMILIES[family];
  if (!patterns) throw new Error(`no pre-tokenizer family ${family}`);
  return { family, regexes: patterns.map(compilePattern) };
}

/**
 * A pattern written for Python/Rust regex engines as a global, Unicode-aware JavaScript
 * RegExp: `\s`/`\S` become White_Space classes, and `(?i:...)` groups (which V8 in Node 20
 * does not parse) spell each ASCII letter in both cases.
 */
export function compilePattern(pattern: string): RegExp {
  let out = "";
  /** Per open group: whether it is case-insensitive. */
  const groups: boolean[] = [];
  let inClass = false;
  const caseless = (): boolean => groups.includes(true);
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === "\\" && i + 1 < pattern.length) {
      const n = pattern[i + 1];
      if (n === "s") out += "\\p{White_Space}";
      else if (n === "S") out += "\\P{White_Space}";
      else if ((n === "p" || n === "P") && pattern[i + 2] === "{") {
        // A property name is copied whole, never case-folded.
        const end = pattern.indexOf("}", i);
        out += pattern.slice(i, end + 1);
        i = end - 1;
      } else out += c + n;
      i++;
    } else if (inClass) {
      if (c === "]") inClass = false;
      const other = swapCase(c);
      out += caseless() && other !== c && pattern[i - 1] !== "-" && pattern[i + 1] !== "-" ? c + other : c;
    } else if (c === "[") {
      inClass = true;
      out += c;
    } else if (c === "(") {
      if (pattern.startsWith("(?i:", i)) {
        groups.push(true);
        out += "(?:";
        i += 3;
      } else {
        groups.push(false);
        out += c;
      }
    } else if (c === ")") {
      groups.pop();
      out += c;
    } else {
      const other = swapCase(c);
      out += caseless() && other !== c ? `[${c}${other}]` : c;
    }
  }
  try {
    return new RegExp(out, "gu");
  } catch (e) {
    throw new TesseraError("ERR_TOKENIZER", `pre-tokenizer pattern ${JSON.stringify(pattern)} is not supported here: ${(e as Error).message}`);
  }
}

function swapCase(c: string): string {
  if (c >= "a" && c <= "z") return c.toUpperCase();
  if (c >= "A" && c <= "Z") return c.toLowerCase();
  return c;
}

/** Calls `emit` with each piece of `text`: the matches of `regex` and the text between them. */
export function splitWith(text: string, regex: RegExp, emit: (piece: string) => void): void {
  const pieces = new RegexSplitter(text, regex);
  for (let p = pieces.next(); p !== undefined; p = pieces.next()) emit(p);
}

/** Splits `text` with each regex in turn. */
export function preTokenize(text: string, regexes: readonly RegExp[], emit: (piece: string) => void): void {
  const pieces = new PieceWalker(text, regexes);
  for (let p = pieces.next(); p !== undefined; p = pieces.next()) emit(p);
}

/** Pieces of a text, one per call; undefined when there are no more. */
export interface PieceSource {
  next(): string | undefined;
}

/** A text as a single piece. */
export class OnePiece implements PieceSource {
  constructor(private piece: string | undefined) {}

  next(): string | undefined {
    const p = this.piece;
    this.piece = undefined;
    return p;
  }
}

/**
 * The pieces of `text` split with `regex`: its matches and the text between them. The regex
 * position is set before every search, not kept in the RegExp between calls, so walkers over
 * different texts can take turns with one RegExp.
 */
export class RegexSplitter implements PieceSource {
  /** End of the last piece handed out. */
  private at = 0;
  private searchFrom = 0;
  /** A match waiting behind the text before it. */
  private pending: string | undefined;
  private done = false;

  constructor(
    private readonly text: string,
    private readonly regex: RegExp,
  ) {}

  next(): string | undefined {
    const pending = this.pending;
    if (pending !== undefined) {
      this.pending = undefined;
      return pending;
    }
    if (this.done) return undefined;
    const { text, regex } = this;
    for (;;) {
      regex.lastIndex = this.searchFrom;
      const m = regex.exec(text);
      if (m === null) {
        this.done = true;
        const last = this.at;
        return last < text.length ? (last === 0 ? text : text.slice(last)) : undefined;
      }
      const at = m.index;
      const matched = m[0];
      if (matched.length === 0) {
        // An empty match splits nothing; step past it (by code point) to avoid looping.
        this.searchFrom = at + (isHighSurrogate(text.charCodeAt(at)) ? 2 : 1);
        continue;
      }
      const last = this.at;
      this.at = this.searchFrom = at + matched.length;
      if (at > last) {
        this.pending = matched;
        return text.slice(last, at);
      }
      return matched;
    }
  }
}

/**
 * The pieces of `text` split with each regex in turn, depth first: the first piece of the
 * first regex is split by the second before the first regex looks further, so a large text
 * is cut as it is walked. Each regex splits each piece on its own, so the pieces come out as
 * splitting the whole text with one regex after the other would give them.
 */
export class PieceWalker implements PieceSource {
  private readonly stack: PieceSource[];

  constructor(
    text: string,
    private readonly regexes: readonly RegExp[],
  ) {
    this.stack = [regexes.length === 0 ? new OnePiece(text) : new RegexSplitter(text, regexes[0])];
  }

  next(): string | undefined {
    const { stack, regexes } = this;
    for (;;) {
      const depth = stack.length;
      if (depth === 0) return undefined;
      const piece = stack[depth - 1].next();
      if (piece === undefined) stack.pop();
      else if (depth >= regexes.length) return piece;
      else stack.push(new RegexSplitter(piece, regexes[depth]));
    }
  }
}

function isHighSurrogate(c: number): boolean {
  return c >= 0xd800 && c <= 0xdbff;
}
