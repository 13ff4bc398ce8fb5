/**
 * Long texts, where the encoders cut the input before merging: SentencePiece has no
 * pre-tokenizer, so prose is cut where no token can span (join-set.ts), and a long word of any
 * BPE or WordPiece vocabulary is cut or merged in steps. Same tokens as llama.cpp (and, for
 * tokenizer.json, @huggingface/tokenizers) on a megabyte without a space, CJK, runs of one
 * character, long prose, and a vocabulary whose tokens hold U+2581 in the middle so that
 * cutting before every "▁" would be wrong. Nothing here is timed: bench/tokenizer.ts measures.
 */
import fs from "node:fs";
import path from "node:path";
import { Tokenizer as HfTokenizer } from "@huggingface/tokenizers";
import { afterAll, describe, expect, it } from "vitest";
import { generateCorpus, generateProse, seededRandom } from "../../bench/corpus.js";
import { readGGUF } from "../../lib/gguf/reader.js";
import type { GGUFArray } from "../../lib/gguf/types.js";
import { kv, writeGGUF } from "../../lib/gguf/writer.js";
import { tokenizerFromGGUF, type Tokenizer } from "../../lib/tokenizer/index.js";
import { sharedDir, tempDir } from "../helpers/paths.js";
import { hasTokenizerData, hfVocab, tokenizersDir, vocabDir } from "./vocabs.js";

type LlamaModule = typeof import("node-llama-cpp");
type Llama = Awaited<ReturnType<LlamaModule["getLlama"]>>;
type LlamaModel = Awaited<ReturnType<Llama["loadModel"]>>;

async function openLlama(): Promise<Llama | undefined> {
  try {
    const m = await import("node-llama-cpp");
    return await m.getLlama({ gpu: false, build: "never", skipDownload: true, logLevel: m.LlamaLogLevel.disabled, progressLogs: false });
  } catch {
    return undefined;
  }
}

const llama = hasTokenizerData ? await openLlama() : undefined;

function randomText(n: number, alphabet: readonly string[], seed: number): string {
  const rnd = seededRandom(seed);
  const parts: string[] = [];
  for (let i = 0; i < n; i++) parts.push(alphabet[Math.floor(rnd() * alphabet.length)]);
  return parts.join("");
}

const MB = 1 << 20;
/** CJK characters with and without tokens of their own in the Llama vocabulary, and a few pairs that are tokens. */
const CJK = Array.from("我能吞下玻璃而不伤身体自然语言处理很有趣的中文文本还有一些常用字测试龘齉爩鱻");

/** Inputs by name; `size` scales them (the Hugging Face reference is slow on long words). */
function inputs(size: number, loneSurrogates = true): [string, string][] {
  return [
    ["prose without spaces", generateProse(size, { seed: 2 }).replace(/\s/g, "")],
    ["CJK", randomText(size, CJK, 3)],
    ["one letter repeated", "a".repeat(size)],
    ["spaces", " ".repeat(size / 4)],
    ["U+2581 and spaces", randomText(size / 4, [" ", "\u2581", "a"], 4)],
    ["prose", generateProse(size, { seed: 5 })],
    ["mixed scripts, code and rare code points", generateCorpus(size / 2, { seed: 6, rare: true, loneSurrogates })],
  ];
}

/** Where two token lists part, for a readable failure. */
function firstDifference(want: number[], got: number[]): string {
  if (want.length === got.length && want.every((t, i) => t === got[i])) return "";
  let at = 0;
  while (want[at] === got[at]) at++;
  return `lengths ${want.length} / ${got.length}, first difference at token ${at}: want ${want.slice(at, at + 6).join(" ")}, got ${got.slice(at, at + 6).join(" ")}`;
}

/**
 * The llama-spm vocabulary with some token texts replaced by ones that hold "▁" after other
 * characters (and a newline), scored to win: no shared vocabulary has such tokens, and they
 * are what makes a cut before "▁" unsafe.
 */
const SPANNING = ["s\u2581t", "e\u2581", "\u2581\u2581a", ".\u2581T", "a\u2581b\u2581c", "t\u2581\u2581", "\n\u2581", "\u2581\n", "\u4e2d\u2581\u6587"];
const SPANNING_ALPHABET = ["s", "t", "e", "a", "b", "c", ".", "T", " ", " ", " ", "\n", "\u4e2d", "\u6587", "x"];

function writeSpanningVocab(): string {
  const base = readGGUF(path.join(vocabDir, "ggml-vocab-llama-spm.gguf"));
  const tokens = ((base.metadata.get("tokenizer.ggml.tokens")!.value as GGUFArray).items as string[]).slice();
  const scores = Float32Array.from((base.metadata.get("tokenizer.ggml.scores")!.value as GGUFArray).items as Float32Array);
  SPANNING.forEach((text, i) => {
    expect(tokens.includes(text)).toBe(false);
    // Normal tokens near the end of the merged vocabulary.
    tokens[31000 + i] = text;
    scores[31000 + i] = -1 - i;
  });
  const metadata = new Map(base.metadata);
  metadata.set("tokenizer.ggml.tokens", kv.strArray(tokens));
  metadata.set("tokenizer.ggml.scores", kv.f32Array(scores));
  const file = path.join(tempDir("spanning-vocab"), "spanning.gguf");
  writeGGUF(file, { metadata, tensors: [] });
  return file;
}

describe.runIf(hasTokenizerData)("long texts", () => {
  it("has llama.cpp to compare with (node-llama-cpp's prebuilt binary)", () => {
    expect(llama, "node-llama-cpp could not load its CPU binary").toBeDefined();
  });

  const models: LlamaModel[] = [];
  afterAll(async () => {
    for (const m of models) await m.dispose();
  });

  /** Each input: our tokens equal llama.cpp's on the same file. */
  function againstLlamaCpp(name: string, file: () => string, size: number, extra: [string, string][] = []): void {
    it.runIf(llama !== undefined)(`${name}: same tokens as llama.cpp`, async () => {
      const modelPath = file();
      const reference = await llama!.loadModel({ modelPath, vocabOnly: true, gpuLayers: 0 });
      models.push(reference);
      const ours: Tokenizer = tokenizerFromGGUF(readGGUF(modelPath));
      const bad: string[] = [];
      for (const [label, text] of [...inputs(size), ...extra]) {
        const want = reference.tokenize(text, false).map(Number);
        const diff = firstDifference(want, ours.encode(text, { addSpecial: false }));
        if (diff) bad.push(`${label}: ${diff}`);
      }
      expect(bad.join("\n")).toBe("");
    });
  }

  againstLlamaCpp("llama-spm (SentencePiece)", () => path.join(vocabDir, "ggml-vocab-llama-spm.gguf"), MB);
  againstLlamaCpp("llama-2-tiny-random (SentencePiece)", () => path.join(sharedDir, "models/llama-2-tiny-random.gguf"), MB / 4);
  againstLlamaCpp("baichuan (SentencePiece, CJK tokens)", () => path.join(vocabDir, "ggml-vocab-baichuan.gguf"), MB / 4);
  againstLlamaCpp("phi-3 (SentencePiece)", () => path.join(vocabDir, "ggml-vocab-phi-3.gguf"), MB / 4);
  againstLlamaCpp("gpt-2 (byte-level BPE: long words)", () => path.join(vocabDir, "ggml-vocab-gpt-2.gguf"), MB / 4);
  againstLlamaCpp("bert-bge (WordPiece: long words)", () => path.join(vocabDir, "ggml-vocab-bert-bge.gguf"), MB / 4);
  againstLlamaCpp("SentencePiece with tokens spanning U+2581", writeSpanningVocab, MB / 8, [
    ["spanning alphabet", randomText(MB / 4, SPANNING_ALPHABET, 7)],
    ["spanning alphabet, no spaces", randomText(MB / 4, SPANNING_ALPHABET.filter((c) => c !== " "), 8)],
    ["spanning tokens in prose", generateProse(MB / 8, { seed: 9 }).replaceAll(". T", ". T s t e a b c\n \n")],
  ]);

  it("mistral-v0.3 tokenizer.json (one Metaspace word for the whole text): same tokens as @huggingface/tokenizers", () => {
    const json = JSON.parse(fs.readFileSync(path.join(tokenizersDir, "mistral-v0.3/tokenizer.json"), "utf8"));
    const config = JSON.parse(fs.readFileSync(path.join(tokenizersDir, "mistral-v0.3/tokenizer_config.json"), "utf8"));
    const reference = new HfTokenizer(json, config);
    const ours = hfVocab("mistral-v0.3")();
    const bad: string[] = [];
    // Its BPE runs at about 0.1 MB/s on one long word: smaller inputs.
    for (const [label, text] of inputs(1 << 15, false)) {
      const diff = firstDifference(reference.encode(text, { add_special_tokens: false }).ids, ours.encode(text, { addSpecial: false, parseSpecial: true }));
      if (diff) bad.push(`${label}: ${diff}`);
    }
    expect(bad.join("\n")).toBe("");
  });
});
