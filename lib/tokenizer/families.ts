/**
 * What GPT-2-style vocabulary files (vocab.json + merges.txt, encoder.json + vocab.bpe) leave
 * out and a model family fixes: the special tokens appended after the merged vocabulary and
 * which of them are BOS/EOS. Published with each family's tokenizer configuration.
 */

export interface FamilyDefaults {
  /** Special tokens by id, when the files do not list them. */
  specialTokens(firstId: number): Map<number, string>;
  bos?: string;
  eos?: string;
  addBos: boolean;
}

/** Llama 3.1+: 256 special tokens after the 128000 merged ones. */
function llama3Specials(firstId: number): Map<number, string> {
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
  const tokens = new Map<number, string>();
  for (let i = 0; i < 256; i++) tokens.set(firstId + i, named[i] ?? `<|reserved_special_token_${i - 8}|>`);
  return tokens;
}

/** Qwen2: the three chat tokens after the merged vocabulary. */
function qwen2Specials(firstId: number): Map<number, string> {
  return new Map([
    [firstId, "<|endoftext|>"],
    [firstId + 1, "<|im_start|>"],
    [firstId + 2, "<|im_end|>"],
  ]);
}

const FAMILY_DEFAULTS: Record<string, FamilyDefaults> = {
  llama3: { specialTokens: llama3Specials, bos: "<|begin_of_text|>", eos: "<|end_of_text|>", addBos: true },
  qwen2: { specialTokens: qwen2Specials, eos: "<|endoftext|>", addBos: false },
  gpt2: { specialTokens: () => new Map(), eos: "<|endoftext|>", bos: "<|endoftext|>", addBos: false },
};

export function familyDefaults(family: string): FamilyDefaults | undefined {
  return FAMILY_DEFAULTS[family];
}
