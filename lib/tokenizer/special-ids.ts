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

// Token texts llama.cpp recognizes when the metadata does not give the ids.
const EOT_TEXTS = [
  "<|eot_id|>",
  "<|im_end|>",
  "<|end|>",
  "<end_of_turn>",
  "<|endoftext|>",
  "<|end_of_text|>",
  "<EOT>",
  "_<EOT>",
  "[EOT]",
  "<｜end▁of▁sentence｜>",
  "<end_of_utterance>",
];
const EOG_TEXTS = [
  "<|eot_id|>",
  "<|im_end|>",
  "<|end|>",
  "<|return|>",
  "<|call|>",
  "<|flush|>",
  "<|calls|>",
  "<end_of_turn>",
  "<|endoftext|>",
  "</s>",
  "<|eom_id|>",
  "<EOT>",
  "_<EOT>",
  "[EOT]",
  "[EOS]",
  "<|end_of_text|>",
  "<end_of_utterance>",
  "<eos>",
  "<turn|>",
  "<|tool_response>",
  "<｜end▁of▁sentence｜>",
  "[e~[",
];
const FIM_TEXTS: [keyof SpecialIds, string[]][] = [
  ["fimPre", ["<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<｜fim▁begin｜>", "<PRE>", "▁<PRE>", "<|code_prefix|>", "<|prefix|>"]],
  ["fimSuf", ["<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<｜fim▁hole｜>", "<SUF>", "▁<SUF>", "<|code_suffix|>", "<|suffix|>"]],
  ["fimMid", ["<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<｜fim▁end｜>", "<MID>", "▁<MID>", "<|code_middle|>", "<|middle|>"]],
  ["fimPad", ["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"]],
  ["fimRep", ["<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"]],
  ["fimSep", ["<|file_sep|>"]],
];
/** gpt-oss channel tokens: always rendered, so user-defined. */
const ALWAYS_RENDERED = ["<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"];

/**
 * Finds end-of-turn and fill-in-the-middle tokens by their text when the metadata does not
 * name them, makes such tokens control tokens, and returns the end-of-generation set, with
 * the same fix-ups llama.cpp applies (converters do not always record these ids).
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
  // Control tokens named "unused" are placeholders.
  for (let id = 0; id < vocab.size; id++) {
    if (vocab.attrs[id] & TokenAttr.Control && vocab.texts[id].includes("unused")) vocab.setAttr(id, TokenAttr.Unused, true);
  }
  const eog = new Set<number>();
  for (const id of [ids.fimPad, ids.fimRep, ids.fimSep]) if (id !== undefined) eog.add(id);
  for (const t of EOG_TEXTS) {
    const id = vocab.idOf(t);
    if (id !== undefined) {
      eog.add(id);
      control(id);
    }
  }
  for (const t of ALWAYS_RENDERED) {
    const id = vocab.idOf(t);
    if (id !== undefined) vocab.replaceAttrs(id, TokenAttr.UserDefined);
  }
  for (const id of [ids.eos, ids.eot, ids.eom]) if (id !== undefined) eog.add(id);
  const eogText = (text: string): number | undefined => {
    const id = vocab.idOf(text);
    return id !== undefined && eog.has(id) ? id : undefined;
  };
  // Harmony-style vocabularies end a message with <|end|> but a turn with <|return|>/<|call|>.
  const end = eogText("<|end|>");
  const call = eogText("<|call|>") ?? eogText("<|calls|>");
  if (end !== undefined && call !== undefined && (eogText("<|return|>") !== undefined || eogText("<|flush|>") !== undefined)) {
    eog.delete(end);
    vocab.replaceAttrs(end, TokenAttr.UserDefined);
  }
  // Gemma 4 writes "</s>" as ordinary text.
  const closeS = eogText("</s>");
  if (closeS !== undefined && eogText("<|tool_response>") !== undefined) {
    eog.delete(closeS);
    vocab.replaceAttrs(closeS, TokenAttr.Normal);
  }
  return eog;
}
