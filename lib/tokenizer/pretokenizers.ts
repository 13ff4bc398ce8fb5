/**
 * Pre-tokenizers of byte-level BPE vocabularies: the regular expressions that cut text into
 * words before merging, per `tokenizer.ggml.pre` name. Each entry is a list applied in turn:
 * every regex splits every current piece into its matches and the text between them.
 *
 * The patterns are those published with each model's tokenizer (Hugging Face
 * tokenizer.json), with `(?i:...)` spelled out because JavaScript lacks inline flags. `\s`
 * means Unicode White_Space, as in the Rust and Python regex engines those tokenizers use.
 */

const GPT2 = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
const CONTRACTIONS = "'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD]";
const LLAMA3 = `(?:${CONTRACTIONS})|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+`;
const QWEN2 = `(?:${CONTRACTIONS})|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+`;
const UPPER = "[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]";
const LOWER = "[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]";
const TEKKEN = `[^\\r\\n\\p{L}\\p{N}]?${UPPER}*${LOWER}+|[^\\r\\n\\p{L}\\p{N}]?${UPPER}+${LOWER}*|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+`;
const GPT4O = `[^\\r\\n\\p{L}\\p{N}]?${UPPER}*${LOWER}+(?:${CONTRACTIONS})?|[^\\r\\n\\p{L}\\p{N}]?${UPPER}+${LOWER}*(?:${CONTRACTIONS})?|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+`;
const BLOOM = " ?[^(\\s|.,!?…。，、।۔،)]+";
const CJK = "[一-龥ࠀ-一가-퟿]+";
const DEEPSEEK_LLM_LETTERS =
  "\\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-ώᾀ-ᾴᾶ-ᾼιῂ-ῄῆ-ῌῐ-ΐῖ-Ίῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤΩℨK-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+";

const DEFAULT = ["[\\p{P}\\$\\+<=>\\^~\\|]+", GPT2, "\\p{N}+", "[0-9][0-9][0-9]"];

/** Pattern lists by pre-tokenizer family. */
const FAMILIES: Record<string, string[]> = {
  default: DEFAULT,
  llama3: [LLAMA3],
  "deepseek-llm": ["[\\r\\n]", DEEPSEEK_LLM_LETTERS, "\\s?[!-/:-~！-／：-～‘-‟　-。]+", "\\s+$", CJK, "\\p{N}+"],
  "deepseek-v3": [
    "\\p{N}{1,3}",
    "[一-龥぀-ゟ゠-ヿ]+",
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\\r\\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
  ],
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
  llama3: "llama3",
  "llama-v3": "llama3",
  "llama-bpe": "llama3",
  falcon3: "llama3",
  dbrx: "llama3",
  "smaug-bpe": "llama3",
  pixtral: "tekken",
  "deepseek-llm": "deepseek-llm",
  "deepseek-coder": "deepseek-coder",
  "deepseek-v3": "deepseek-v3",
  falcon: "falcon",
  starcoder: "starcoder",
  refact: "starcoder",
  "command-r": "starcoder",
  smollm: "starcoder",
  codeshell: "starcoder",
  exaone: "starcoder",
  "minerva-7b": "starcoder",
  "gpt-2": "gpt2",
  "phi-2": "gpt2",
  "jina-es": "gpt2",
  "jina-de": "gpt2",
  gigachat: "gpt2",
  "jina-v1-en": "gpt2",
  "jina-v2-es": "gpt2",
  "jina-v2-de": "gpt2",
  "jina-v2-code": "gpt2",
  "roberta-bpe": "gpt2",
  mpt: "gpt2",
  olmo: "gpt2",
  jais: "gpt2",
  qwen2: "qwen2",
  stablelm2: "qwen2",
  megrez: "qwen2",
  "poro-chat": "bloom",
  bloom: "bloom",
  "gpt3-finnish": "bloom",
  "chatglm-bpe": "llama3",
  viking: "viking",
  tekken: "tekken",
  chameleon: "chameleon",
  "gpt-4o": "gpt4o",
  llama4: "gpt4o",
};

/** Names whose vocabularies llama.cpp encodes without merging words that are tokens. */
const IGNORE_MERGES = new Set(["llama3", "llama-v3", "llama-bpe", "falcon3", "tekken"]);
/** Names whose BPE vocabularies add BOS by default. */
const ADD_BOS = new Set(["llama3", "llama-v3", "llama-bpe", "falcon3", "tekken", "chameleon"]);

export function ignoresMerges(name: string): boolean {
  return IGNORE_MERGES.has(name);
}

export function addsBosByDefault(name: string): boolean {
  return ADD_BOS.has(name);
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
  return new RegExp(out, "gu");
}

function swapCase(c: string): string {
  if (c >= "a" && c <= "z") return c.toUpperCase();
  if (c >= "A" && c <= "Z") return c.toLowerCase();
  return c;
}

/** Calls `emit` with each piece of `text`: the matches of `regex` and the text between them. */
export function splitWith(text: string, regex: RegExp, emit: (piece: string) => void): void {
  regex.lastIndex = 0;
  let last = 0;
  for (let m = regex.exec(text); m !== null; m = regex.exec(text)) {
    const at = m.index;
    const matched = m[0];
    if (matched.length === 0) {
      // An empty match splits nothing; step past it (by code point) to avoid looping.
      regex.lastIndex = at + (isHighSurrogate(text.charCodeAt(at)) ? 2 : 1);
      continue;
    }
    if (at > last) emit(text.slice(last, at));
    emit(matched);
    last = at + matched.length;
  }
  if (last < text.length) emit(last === 0 ? text : text.slice(last));
}

/** Splits `text` with each regex in turn. */
export function preTokenize(text: string, regexes: readonly RegExp[], emit: (piece: string) => void): void {
  if (regexes.length === 0) {
    emit(text);
    return;
  }
  if (regexes.length === 1) {
    splitWith(text, regexes[0], emit);
    return;
  }
  let pieces = [text];
  for (let r = 0; r < regexes.length - 1; r++) {
    const next: string[] = [];
    const push = (p: string): void => {
      next.push(p);
    };
    for (const p of pieces) splitWith(p, regexes[r], push);
    pieces = next;
  }
  const lastRegex = regexes[regexes.length - 1];
  for (const p of pieces) splitWith(p, lastRegex, emit);
}

function isHighSurrogate(c: number): boolean {
  return c >= 0xd800 && c <= 0xdbff;
}
