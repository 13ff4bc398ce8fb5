/**
 * Pre-tokenizers of byte-level BPE vocabularies: each `tokenizer.ggml.pre` family is a
 * sequence of regexes; every regex splits each fragment into its matches and the text
 * between them (both kept, in order), as the Hugging Face `Split(..., "isolated")` and
 * llama.cpp's unicode_regex_split do.
 */
const GPT2 = String.raw`'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`;
const LLAMA3 = String.raw`(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`;
const QWEN2 = String.raw`(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`;
const CJK = "[\u4e00-\u9fa5\u0800-\u4e00\uac00-\ud7ff]+";

const FAMILIES: Record<string, string[]> = {
  default: [String.raw`[\p{P}\$\+<=>\^~\|]+`, GPT2, String.raw`\p{N}+`, "[0-9][0-9][0-9]"],
  "gpt-2": [GPT2],
  llama3: [LLAMA3],
  qwen2: [QWEN2],
  "deepseek-coder": ["[\r\n]", String.raw`\s?\p{L}+`, String.raw`\s?\p{P}+`, CJK, String.raw`\p{N}`],
  "deepseek-llm": ["[\r\n]", String.raw`\s?\p{L}+`, String.raw`\s?[!-/:-~！-／：-～‘-‟　-。]+`, String.raw`\s+$`, CJK, String.raw`\p{N}+`],
  "deepseek-v3": [String.raw`\p{N}{1,3}`, CJK, String.raw`[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_\`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`],
  falcon: [String.raw`[\p{P}\$\+<=>\^~\|\`]+`, GPT2, "[0-9][0-9][0-9]"],
  starcoder: [String.raw`\p{N}`, GPT2],
  mpt: [GPT2],
  "gpt-neox": [GPT2],
};

/** Pre-type names as llama.cpp's converters write them, mapped to a family above. */
const ALIASES: Record<string, string> = {
  "llama-bpe": "llama3",
  llama3: "llama3",
  "llama-v3": "llama3",
  dbrx: "llama3",
  smaug: "llama3",
  "falcon3": "llama3",
  qwen2: "qwen2",
  "qwen35": "qwen2",
  "gpt-2": "gpt-2",
  "gpt-4o": "qwen2",
  olmo: "gpt-2",
  jais: "gpt-2",
  mpt: "mpt",
  "gpt-neox": "gpt-neox",
  refact: "starcoder",
  starcoder: "starcoder",
  smollm: "starcoder",
  "command-r": "starcoder",
  codeshell: "starcoder",
  exaone: "starcoder",
  minerva: "starcoder",
  "deepseek-coder": "deepseek-coder",
  "deepseek-llm": "deepseek-llm",
  "deepseek-v3": "deepseek-v3",
  falcon: "falcon",
  default: "default",
};

export interface PreTokenizer {
  family: string;
  split(text: string): string[];
}

export function regexPreTokenizer(patterns: string[], family = "custom"): PreTokenizer {
  const regexes = patterns.map((p) => new RegExp(p, "gu"));
  return {
    family,
    split(text: string): string[] {
      let parts = [text];
      for (const re of regexes) {
        const next: string[] = [];
        for (const part of parts) {
          let last = 0;
          re.lastIndex = 0;
          for (const m of part.matchAll(re)) {
            if (m[0].length === 0) continue;
            if (m.index! > last) next.push(part.slice(last, m.index));
            next.push(m[0]);
            last = m.index! + m[0].length;
          }
          if (last < part.length) next.push(part.slice(last));
        }
        parts = next;
      }
      return parts;
    },
  };
}

/** The pre-tokenizer for a GGUF `tokenizer.ggml.pre` value; unknown names fall back to the default. */
export function preTokenizerFor(pre: string | undefined): { pre: PreTokenizer; known: boolean } {
  const family = ALIASES[pre ?? "default"];
  return { pre: regexPreTokenizer(FAMILIES[family ?? "default"], family ?? "default"), known: family !== undefined };
}

export const GPT2_PATTERN = GPT2;
