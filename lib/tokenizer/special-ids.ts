/**
 * Ids of the tokens with a role (BOS, EOS, end of turn, fill-in-the-middle...), and the
 * by-text detection llama.cpp applies when a converter did not record them.
 */
import { TokenAttr } from "./types.js";
import type { Vocabulary } from "./vocab.js";

export interface SpecialIds {
  bos?: number;
  eos?: number;
  eot?: number;
  eom?: number;
  unk?: number;
  sep?: number;
  pad?: number;
  mask?: number;
  fimPre?: number;
  fimSuf?: number;
  fimMid?: number;
  fimPad?: number;
  fimRep?: number;
  fimSep?: number;
}

const EOT_TEXTS = ["<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<EOT>", "<｜end▁of▁sentence｜>"];
const EOG_TEXTS = ["<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|eom_id|>", "<EOT>"];
const FIM_TEXTS: [keyof SpecialIds, string[]][] = [
  ["fimPre", ["<|fim_prefix|>", "<fim-prefix>", "<｜fim▁begin｜>", "<PRE>"]],
  ["fimSuf", ["<|fim_suffix|>", "<fim-suffix>", "<｜fim▁hole｜>", "<SUF>"]],
  ["fimMid", ["<|fim_middle|>", "<fim-middle>", "<｜fim▁end｜>", "<MID>"]],
  ["fimPad", ["<|fim_pad|>", "<fim-pad>", "<PAD>"]],
  ["fimRep", ["<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>"]],
  ["fimSep", ["<|file_sep|>"]],
];

/**
 * Finds end-of-turn and fill-in-the-middle tokens by their text when the metadata does not
 * name them, makes such tokens control tokens, and returns the end-of-generation set
 * (llama.cpp does the same: converters do not always record these ids).
 */
export function markControlTokens(vocab: Vocabulary, ids: SpecialIds): Set<number> {
  const find = (texts: string[]): number | undefined => {
    for (const t of texts) {
      const id = vocab.idOf(t);
      if (id !== undefined) return id;
    }
    return undefined;
  };
  const control = (id: number | undefined): void => {
    if (id !== undefined) vocab.setAttr(id, TokenAttr.Control, true);
  };
  if (ids.eot === undefined) {
    ids.eot = find(EOT_TEXTS);
    control(ids.eot);
  }
  if (ids.eom === undefined) {
    ids.eom = find(["<|eom_id|>"]);
    control(ids.eom);
  }
  for (const [field, texts] of FIM_TEXTS) {
    if (ids[field] === undefined) {
      ids[field] = find(texts);
      control(ids[field]);
    }
  }
  const eog = new Set<number>();
  for (const id of [ids.fimPad, ids.fimRep, ids.fimSep, ids.eos, ids.eot, ids.eom]) if (id !== undefined) eog.add(id);
  for (const t of EOG_TEXTS) {
    const id = vocab.idOf(t);
    if (id !== undefined) {
      eog.add(id);
      control(id);
    }
  }
  return eog;
}

