/**
 * A Hugging Face tokenizer.json for Llama 3, assembled from the GPT-2-style files in
 * ../shared/tokenizers/llama3 (encoder.json + vocab.bpe) with the structure Meta publishes:
 * the Llama 3 split regex, byte-level BPE that ignores merges for whole-token words, the 256
 * special tokens and a BOS template. Lets tokenizer.json readers run on the same vocabulary.
 */
import fs from "node:fs";
import path from "node:path";

const LLAMA3_SPLIT =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

function specialTokenText(i: number): string {
  const named: Record<number, string> = {
    0: "<|begin_of_text|>",
    1: "<|end_of_text|>",
    2: "<|reserved_special_token_0|>",
    3: "<|reserved_special_token_1|>",
    4: "<|finetune_right_pad_id|>",
    5: "<|reserved_special_token_2|>",
    6: "<|start_header_id|>",
    7: "<|end_header_id|>",
    8: "<|eom_id|>",
    9: "<|eot_id|>",
    10: "<|python_tag|>",
  };
  return named[i] ?? `<|reserved_special_token_${i - 8}|>`;
}

export function llama3TokenizerJson(dir: string): Record<string, unknown> {
  const vocab = JSON.parse(fs.readFileSync(path.join(dir, "encoder.json"), "utf8")) as Record<string, number>;
  const merges = fs
    .readFileSync(path.join(dir, "vocab.bpe"), "utf8")
    .split("\n")
    .filter((l, i) => l.length > 0 && !(i === 0 && l.startsWith("#version")));
  const first = Object.keys(vocab).length;
  const added = Array.from({ length: 256 }, (_, i) => ({
    id: first + i,
    content: specialTokenText(i),
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  }));
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: {
      type: "Sequence",
      pretokenizers: [
        { type: "Split", pattern: { Regex: LLAMA3_SPLIT }, behavior: "Isolated", invert: false },
        { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    },
    post_processor: {
      type: "TemplateProcessing",
      single: [{ SpecialToken: { id: "<|begin_of_text|>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
      pair: [
        { SpecialToken: { id: "<|begin_of_text|>", type_id: 0 } },
        { Sequence: { id: "A", type_id: 0 } },
        { SpecialToken: { id: "<|begin_of_text|>", type_id: 1 } },
        { Sequence: { id: "B", type_id: 1 } },
      ],
      special_tokens: { "<|begin_of_text|>": { id: "<|begin_of_text|>", ids: [first], tokens: ["<|begin_of_text|>"] } },
    },
    decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: true,
      vocab,
      merges,
    },
  };
}
