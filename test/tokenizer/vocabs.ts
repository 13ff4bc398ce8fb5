/** The vocabularies the tokenizer tests run on, from ../shared/tokenizers and ../shared/models. */
import fs from "node:fs";
import path from "node:path";
import { readGGUF } from "../../lib/gguf/reader.js";
import type { GGUFFile } from "../../lib/gguf/types.js";
import { tokenizerFromGGUF, tokenizerFromHuggingFace, type Tokenizer } from "../../lib/tokenizer/index.js";
import { loadVocab } from "../../dev/synthetic-model.js";
import { sharedDir } from "../helpers/paths.js";

export const tokenizersDir = path.join(sharedDir, "tokenizers");
export const vocabDir = path.join(tokenizersDir, "vocab");
export const hasTokenizerData = fs.existsSync(vocabDir);

/** Conformance pairs without a vocab GGUF: the Hugging Face files that hold the same vocabulary. */
export const HF_SOURCES: Record<string, { dir: string; preTokenizer?: string }> = {
  "llama-bpe": { dir: "llama3", preTokenizer: "llama-bpe" },
  qwen2: { dir: "qwen2" },
};

export interface VocabSource {
  name: string;
  load: () => Tokenizer;
}

const cache = new Map<string, Tokenizer>();

function cached(key: string, load: () => Tokenizer): () => Tokenizer {
  return () => {
    let t = cache.get(key);
    if (!t) {
      t = load();
      cache.set(key, t);
    }
    return t;
  };
}

export function ggufVocab(file: string): () => Tokenizer {
  return cached(file, () => tokenizerFromGGUF(readGGUF(file)));
}

export function hfVocab(dir: string, preTokenizer?: string): () => Tokenizer {
  return cached(`${dir}|${preTokenizer}`, () => tokenizerFromHuggingFace(path.join(tokenizersDir, dir), { preTokenizer }));
}

/**
 * The Llama 3 or Qwen2 vocabulary written as GGUF metadata (dev/synthetic-model.ts, as a
 * converter would), so the GGUF loader runs on the two vocabularies that have no vocab GGUF.
 */
export function ggufMetadataVocab(source: "llama3" | "qwen2"): () => Tokenizer {
  return cached(`gguf-metadata|${source}`, () => tokenizerFromGGUF({ metadata: new Map(loadVocab(source).metadata) } as GGUFFile));
}

/** Every vocabulary in the shared data, by a short name. */
export function allVocabs(): VocabSource[] {
  const out: VocabSource[] = [];
  for (const f of fs.readdirSync(vocabDir).sort()) {
    const m = /^ggml-vocab-(.+)\.gguf$/.exec(f);
    if (m) out.push({ name: m[1], load: ggufVocab(path.join(vocabDir, f)) });
  }
  for (const [name, src] of Object.entries(HF_SOURCES)) out.push({ name: `${name} (hf)`, load: hfVocab(src.dir, src.preTokenizer) });
  out.push({ name: "smollm2 (tokenizer.json)", load: hfVocab("smollm2") });
  out.push({ name: "mistral-v0.3 (tokenizer.json)", load: hfVocab("mistral-v0.3") });
  out.push({ name: "llama-2-tiny-random", load: ggufVocab(path.join(sharedDir, "models/llama-2-tiny-random.gguf")) });
  out.push({ name: "stories260K", load: ggufVocab(path.join(sharedDir, "models/stories260K.gguf")) });
  return out;
}
