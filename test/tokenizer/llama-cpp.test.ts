/**
 * The tokenizer against llama.cpp itself (node-llama-cpp's prebuilt binary, vocab-only
 * loads): many short mixed texts (prose, code, scripts, emoji, rare code points) per GGUF
 * vocabulary, with special-token parsing off and on. Broader than the 46 fixed conformance
 * vectors; covers vocabularies that have none (baichuan, gpt-neox, stories260K)
 * and the Llama 3 / Qwen2 vocabularies written as GGUF metadata.
 */
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateCorpus } from "../../bench/corpus.js";
import { readGGUF } from "../../lib/gguf/reader.js";
import { writeGGUF } from "../../lib/gguf/writer.js";
import { tokenizerFromGGUF, type Tokenizer } from "../../lib/tokenizer/index.js";
import { loadVocab } from "../../dev/synthetic-model.js";
import { sharedDir, tempDir } from "../helpers/paths.js";
import { hasTokenizerData, vocabDir } from "./vocabs.js";

type LlamaModule = typeof import("node-llama-cpp");
type Llama = Awaited<ReturnType<LlamaModule["getLlama"]>>;

async function openLlama(): Promise<Llama | undefined> {
  try {
    const m = await import("node-llama-cpp");
    return await m.getLlama({ gpu: false, build: "never", skipDownload: true, logLevel: m.LlamaLogLevel.disabled, progressLogs: false });
  } catch {
    return undefined;
  }
}

const llama = hasTokenizerData ? await openLlama() : undefined;

/** A vocab-only GGUF for a vocabulary given as metadata: gpt2 hyperparameters plus the tokenizer. */
function writeVocabGGUF(source: "llama3" | "qwen2"): string {
  const base = readGGUF(path.join(vocabDir, "ggml-vocab-gpt-2.gguf"));
  const metadata = [...base.metadata].filter(([k]) => !k.startsWith("tokenizer."));
  const file = path.join(tempDir(`vocab-${source}`), `${source}.gguf`);
  writeGGUF(file, { metadata: [...metadata, ...loadVocab(source).metadata], tensors: [] });
  return file;
}

const TEXTS = [
  ...Array.from({ length: 100 }, (_, i) => generateCorpus(120, { seed: 5000 + i, rare: true })),
  generateCorpus(12_000, { seed: 77, rare: true }),
  "<s>Hi</s> <|endoftext|><|im_start|>user\nHello<|im_end|> <|begin_of_text|><|eot_id|> [CLS] x [SEP] <unk>",
  "   leading and trailing   ",
  "\n\n\n",
  "",
];

describe.runIf(hasTokenizerData)("tokenizer vs llama.cpp", () => {
  it("has llama.cpp to compare with (node-llama-cpp's prebuilt binary)", () => {
    expect(llama, "node-llama-cpp could not load its CPU binary").toBeDefined();
  });

  const files: [string, () => string][] = [
    ...["llama-spm", "phi-3", "baichuan", "gpt-2", "gpt-neox", "starcoder", "deepseek-coder", "bert-bge"].map(
      (n): [string, () => string] => [n, () => path.join(vocabDir, `ggml-vocab-${n}.gguf`)],
    ),
    ["stories260K", () => path.join(sharedDir, "models/stories260K.gguf")],
    ["llama3 (GGUF metadata)", () => writeVocabGGUF("llama3")],
    ["qwen2 (GGUF metadata)", () => writeVocabGGUF("qwen2")],
  ];
  const disposers: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const d of disposers) await d();
  });

  for (const [name, file] of files) {
    describe.runIf(llama !== undefined)(name, () => {
      let reference: Awaited<ReturnType<Llama["loadModel"]>>;
      let ours: Tokenizer;
      beforeAll(async () => {
        const modelPath = file();
        expect(fs.existsSync(modelPath)).toBe(true);
        reference = await llama!.loadModel({ modelPath, vocabOnly: true, gpuLayers: 0 });
        disposers.push(() => reference.dispose());
        ours = tokenizerFromGGUF(readGGUF(modelPath));
      });

      it.each([false, true])("parseSpecial %s: same tokens on every text", (parseSpecial) => {
        const bad: string[] = [];
        for (const text of TEXTS) {
          const want = reference.tokenize(text, parseSpecial).map(Number);
          const got = ours.encode(text, { addSpecial: false, parseSpecial });
          if (JSON.stringify(want) !== JSON.stringify(got)) {
            let at = 0;
            while (want[at] === got[at]) at++;
            bad.push(`${JSON.stringify(text.slice(0, 200))}\n  at token ${at}: llama.cpp ${want.slice(at, at + 8).join(" ")}\n  at token ${at}: tessera   ${got.slice(at, at + 8).join(" ")}`);
          }
        }
        expect(bad.slice(0, 3).join("\n"), `${bad.length} of ${TEXTS.length} texts differ`).toBe("");
      });
    });
  }
});
