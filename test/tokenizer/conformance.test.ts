/**
 * Acceptance: llama.cpp's tokenizer conformance vectors (test-tokenizer-0 format: inputs
 * split by "__ggml_vocab_test__" lines, one output line of ids per input; no BOS, special
 * tokens not parsed). Every pair whose vocabulary is in ../shared, plus llama-bpe and qwen2
 * built from the Hugging Face files.
 */
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { readGGUF } from "../../lib/gguf/reader.js";
import type { GGUFFile } from "../../lib/gguf/types.js";
import { tokenizerFromGGUF, type Tokenizer } from "../../lib/tokenizer/index.js";
import { loadVocab } from "../../scripts/synthetic-model.js";
import { hasShared, sharedDir } from "../helpers/paths.js";

const vocabDir = path.join(sharedDir, "tokenizers/vocab");

function readPairs(name: string): Array<{ input: string; ids: number[] }> {
  const inp = fs.readFileSync(path.join(vocabDir, `ggml-vocab-${name}.gguf.inp`), "utf8");
  const out = fs.readFileSync(path.join(vocabDir, `ggml-vocab-${name}.gguf.out`), "utf8");
  const inputs = inp.split("\n__ggml_vocab_test__\n");
  // The file ends with a separator line; the last split piece is what follows it.
  if (inputs[inputs.length - 1] === "" || inputs[inputs.length - 1] === "\n") inputs.pop();
  const outputs = out.split("\n");
  if (outputs[outputs.length - 1] === "") outputs.pop();
  expect(outputs.length).toBe(inputs.length);
  return inputs.map((input, i) => ({ input, ids: outputs[i].trim() === "" ? [] : outputs[i].trim().split(/\s+/).map(Number) }));
}

function fromSyntheticVocab(source: "llama3" | "qwen2"): Tokenizer {
  const v = loadVocab(source);
  return tokenizerFromGGUF({ metadata: new Map(v.metadata) } as GGUFFile);
}

const CASES: Array<{ name: string; tokenizer: () => Tokenizer }> = [
  ...["llama-spm", "phi-3", "gpt-2", "deepseek-coder", "starcoder", "bert-bge"].map((name) => ({
    name,
    tokenizer: () => tokenizerFromGGUF(readGGUF(path.join(vocabDir, `ggml-vocab-${name}.gguf`))),
  })),
  { name: "llama-bpe", tokenizer: () => fromSyntheticVocab("llama3") },
  { name: "qwen2", tokenizer: () => fromSyntheticVocab("qwen2") },
];

describe.runIf(hasShared)("llama.cpp tokenizer conformance vectors", () => {
  for (const c of CASES) {
    it(`${c.name}: every vector`, () => {
      const tok = c.tokenizer();
      const pairs = readPairs(c.name);
      const failures: string[] = [];
      for (const { input, ids } of pairs) {
        const got = tok.encode(input, { addSpecial: false, parseSpecial: false });
        if (JSON.stringify(got) !== JSON.stringify(ids)) failures.push(`${JSON.stringify(input)}\n    want ${ids.join(" ")}\n    got  ${got.join(" ")}`);
      }
      console.log(`${c.name}: ${pairs.length - failures.length}/${pairs.length} vectors match`);
      expect(failures, failures.slice(0, 5).join("\n")).toEqual([]);
    });
  }
});
