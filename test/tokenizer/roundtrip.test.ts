/**
 * encode → decode is byte-exact for every vocabulary on a large multilingual text with rare
 * and invalid Unicode (lone surrogates cannot be UTF-8: they must come back as U+FFFD, as
 * Buffer/TextEncoder write them). WordPiece normalizes text by design (lowercase, accents,
 * spacing), so for it the property is that decoding is stable: encode(decode(ids)) = ids.
 * The streaming decoder must emit exactly decode()'s text, never a partial character.
 */
import path from "node:path";
import { describe, expect, it } from "vitest";
import { readGGUF } from "../../lib/gguf/reader.js";
import type { GGUFFile } from "../../lib/gguf/types.js";
import { tokenizerFromGGUF, tokenizerFromHuggingFace, type Tokenizer } from "../../lib/tokenizer/index.js";
import { loadVocab } from "../../scripts/synthetic-model.js";
import { hasShared, sharedDir } from "../helpers/paths.js";
import { Gaussian } from "../helpers/random.js";

const SAMPLES = [
  "Hello, world! The quick brown fox jumps over the lazy dog.",
  "  leading spaces, trailing spaces   \n\n\ttabs\tand\r\nCRLF\n",
  "function fib(n: number): number {\n  return n < 2 ? n : fib(n - 1) + fib(n - 2); // 🦙\n}\n",
  "Ünïcödé façade naïve coöperate — “quotes” ‘single’ …",
  "Привет, мир! Съешь же ещё этих мягких французских булок.",
  "日本語のテキストと中文文本，还有한국어 텍스트。",
  "العربية مع الأرقام ١٢٣ و עברית עם ניקוד",
  "Emoji: 👨‍👩‍👧‍👦 🏳️‍🌈 🇯🇵 👍🏽 and math 𝔸𝔹ℂ ∀x∈ℝ: x²≥0",
  "Rare: \u0000 \u0007 \u00ad \u200b \u2028 \ufeff \ufffd \u{10ffff} \u{1f600}",
  "Numbers 1234567890 3.14159 1e-10 0xDEADBEEF 1,000,000",
];
/** Control-token names as plain text (user-defined tokens excepted: see below). */
const SPECIAL_LOOKING = "<s> </s> <|endoftext|> <|im_start|> [CLS] literal special-looking text";

function corpus(): string {
  const g = new Gaussian();
  // Random code points from many blocks, including combining marks and astral planes.
  const ranges: Array<[number, number]> = [[0x20, 0x7e], [0xa0, 0x24f], [0x370, 0x3ff], [0x400, 0x4ff], [0x590, 0x6ff], [0x900, 0x97f], [0xe00, 0xe7f], [0x3040, 0x30ff], [0x4e00, 0x9fff], [0xac00, 0xd7a3], [0x1f300, 0x1faff], [0x300, 0x36f]];
  let random = "";
  for (let i = 0; i < 3000; i++) {
    const [lo, hi] = ranges[g.int(ranges.length)];
    random += String.fromCodePoint(lo + g.int(hi - lo + 1));
    if (g.int(6) === 0) random += " ";
  }
  return SAMPLES.join("\n").repeat(3) + random;
}

const VOCABS: Array<{ name: string; lossy?: boolean; userDefinedSpecials?: boolean; make: () => Tokenizer }> = [
  // phi-3 marks "</s>" and its chat tokens user-defined: they always match as tokens, and the
  // SentencePiece space prefix is re-added after them (as llama.cpp does), so text containing
  // them cannot round-trip.
  { name: "phi-3", userDefinedSpecials: true, make: () => tokenizerFromGGUF(readGGUF(path.join(sharedDir, "tokenizers/vocab/ggml-vocab-phi-3.gguf"))) },
  ...["llama-spm", "gpt-2", "deepseek-coder", "starcoder", "gpt-neox", "baichuan"].map((n) => ({
    name: n,
    make: () => tokenizerFromGGUF(readGGUF(path.join(sharedDir, `tokenizers/vocab/ggml-vocab-${n}.gguf`))),
  })),
  { name: "bert-bge", lossy: true, make: () => tokenizerFromGGUF(readGGUF(path.join(sharedDir, "tokenizers/vocab/ggml-vocab-bert-bge.gguf"))) },
  { name: "llama-2 32k (llama-2-tiny-random.gguf)", make: () => tokenizerFromGGUF(readGGUF(path.join(sharedDir, "models/llama-2-tiny-random.gguf"))) },
  { name: "llama3 (GGUF metadata)", make: () => tokenizerFromGGUF({ metadata: new Map(loadVocab("llama3").metadata) } as GGUFFile) },
  { name: "qwen2 (GGUF metadata)", make: () => tokenizerFromGGUF({ metadata: new Map(loadVocab("qwen2").metadata) } as GGUFFile) },
  { name: "smollm2 tokenizer.json", make: () => tokenizerFromHuggingFace(path.join(sharedDir, "tokenizers/smollm2")) },
  { name: "mistral-v0.3 tokenizer.json", make: () => tokenizerFromHuggingFace(path.join(sharedDir, "tokenizers/mistral-v0.3")) },
  { name: "qwen2 vocab.json+merges.txt", make: () => tokenizerFromHuggingFace(path.join(sharedDir, "tokenizers/qwen2")) },
  { name: "llama3 encoder.json+vocab.bpe", make: () => tokenizerFromHuggingFace(path.join(sharedDir, "tokenizers/llama3")) },
];

describe.runIf(hasShared)("encode → decode round trip", () => {
  const text = corpus();
  const illFormed = "lone \ud800 high and \udc00 low surrogates, then 🦙 again \ud83e";
  for (const v of VOCABS) {
    it(v.name, () => {
      const tok = v.make();
      if (v.lossy) {
        // WordPiece lowercases, strips accents and re-spaces: decoding is stable instead.
        const unk = tok.encode("\u{10fffd}", { addSpecial: false })[0];
        const ids = tok.encode(SAMPLES.join("\n"), { addSpecial: false }).filter((id) => id !== unk);
        expect(tok.encode(tok.decode(ids), { addSpecial: false }).filter((id) => id !== unk)).toEqual(ids);
        return;
      }
      const ids = tok.encode(text + (v.userDefinedSpecials ? "" : SPECIAL_LOOKING), { addSpecial: false });
      expect(ids.length).toBeGreaterThan(100);
      for (const id of ids) expect(id >= 0 && id < tok.vocabSize).toBe(true);
      const decoded = tok.decode(ids);
      expect(decoded).toBe(text + (v.userDefinedSpecials ? "" : SPECIAL_LOOKING));
      expect(tok.decode(tok.encode(illFormed, { addSpecial: false }))).toBe(Buffer.from(illFormed).toString());
      for (const s of SAMPLES) expect(tok.decode(tok.encode(s, { addSpecial: false }))).toBe(s);
      // Streaming: concatenated chunks equal decode(), and no chunk ends mid-character.
      const stream = tok.createStreamDecoder();
      let streamed = "";
      for (const id of ids) {
        const chunk = stream.push(id);
        expect(chunk.includes("\ufffd") && !decoded.includes("\ufffd")).toBe(false);
        streamed += chunk;
      }
      expect(streamed + stream.flush()).toBe(decoded);
    });
  }
});

describe.runIf(hasShared)("special tokens and flags", () => {
  it("llama3: BOS added, control tokens parsed only when asked, EOG set", () => {
    const tok = tokenizerFromGGUF({ metadata: new Map(loadVocab("llama3").metadata) } as GGUFFile);
    const text = "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>";
    const parsed = tok.encode(text, { parseSpecial: true });
    expect(parsed[0]).toBe(128000);
    expect(parsed).toContain(128006);
    expect(parsed).toContain(128009);
    expect(tok.encode(text, { parseSpecial: false })).not.toContain(128009);
    expect(tok.isEndOfGeneration(128009)).toBe(true);
    expect(tok.isEndOfGeneration(128000)).toBe(false);
    expect(tok.decode(parsed)).toBe("user\n\nHi");
    expect(tok.decode(parsed, { skipSpecial: false })).toBe("<|begin_of_text|>" + text);
  });
  it("SentencePiece: BOS flag, leading-space handling", () => {
    const tok = tokenizerFromGGUF(readGGUF(path.join(sharedDir, "tokenizers/vocab/ggml-vocab-llama-spm.gguf")));
    expect(tok.encode("Hello")[0]).toBe(1);
    expect(tok.encode("Hello", { addSpecial: false })[0]).not.toBe(1);
    expect(tok.decode(tok.encode(" Hello"))).toBe(" Hello");
    expect(() => tok.decode([32000])).toThrow();
  });
});
