/**
 * llama.cpp's tokenizer conformance vectors (test-tokenizer-0 format): `X.gguf.inp` holds the
 * inputs separated by "\n__ggml_vocab_test__\n", `X.gguf.out` one line of expected ids per
 * input, produced with add_special = false and parse_special = false. Every pair runs against
 * its vocab GGUF, or for llama-bpe and qwen2 against the same vocabulary's Hugging Face files
 * and against GGUF metadata built from those files (as a converter writes it).
 */
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import type { Tokenizer } from "../../lib/tokenizer/index.js";
import { ggufMetadataVocab, ggufVocab, hasTokenizerData, HF_SOURCES, hfVocab, vocabDir } from "./vocabs.js";

interface Case {
  input: string;
  expected: number[];
}

function readCases(name: string): Case[] {
  const inputs = fs.readFileSync(path.join(vocabDir, `${name}.gguf.inp`), "utf8").split("\n__ggml_vocab_test__\n");
  // The file ends with a separator, which leaves nothing after it.
  if (inputs[inputs.length - 1] === "") inputs.pop();
  const lines = fs.readFileSync(path.join(vocabDir, `${name}.gguf.out`), "utf8").split("\n");
  if (lines[lines.length - 1] === "") lines.pop();
  if (lines.length !== inputs.length) throw new Error(`${name}: ${inputs.length} inputs but ${lines.length} outputs`);
  return inputs.map((input, i) => {
    const line = lines[i].trim();
    return { input, expected: line === "" ? [] : line.split(" ").map(Number) };
  });
}

const pairs = hasTokenizerData
  ? fs
      .readdirSync(vocabDir)
      .filter((f) => f.endsWith(".gguf.inp"))
      .map((f) => f.replace(/^ggml-vocab-/, "").replace(/\.gguf\.inp$/, ""))
      .sort()
  : [];

describe.runIf(hasTokenizerData)("llama.cpp tokenizer conformance vectors", () => {
  it("covers every pair in the shared data", () => {
    for (const name of pairs) {
      const hasGGUF = fs.existsSync(path.join(vocabDir, `ggml-vocab-${name}.gguf`));
      expect(hasGGUF || name in HF_SOURCES, `no vocabulary for conformance pair ${name}`).toBe(true);
    }
    expect(pairs.length).toBeGreaterThanOrEqual(8);
  });

  const GGUF_METADATA: Record<string, "llama3" | "qwen2"> = { "llama-bpe": "llama3", qwen2: "qwen2" };
  for (const name of pairs) {
    const gguf = path.join(vocabDir, `ggml-vocab-${name}.gguf`);
    const sources: [string, () => Tokenizer][] = [];
    if (fs.existsSync(gguf)) sources.push(["vocab GGUF", ggufVocab(gguf)]);
    if (HF_SOURCES[name]) sources.push(["Hugging Face files", hfVocab(HF_SOURCES[name].dir, HF_SOURCES[name].preTokenizer)]);
    if (GGUF_METADATA[name]) sources.push(["GGUF metadata", ggufMetadataVocab(GGUF_METADATA[name])]);
    for (const [source, load] of sources) {
      describe(`${name} (${source})`, () => {
        const table = readCases(`ggml-vocab-${name}`);
        it("has the 46 standard inputs", () => {
          expect(table.length).toBe(46);
        });
        it.each(table.map((c, i) => [i, JSON.stringify(c.input).slice(0, 60), c] as const))("#%i %s", (_i, _label, c) => {
          expect(load().encode(c.input, { addSpecial: false, parseSpecial: false })).toEqual(c.expected);
        });
      });
    }
  }
});
