/**
 * Round trip: decode(encode(s)) gives s back, byte for byte, on a large mixed text (prose,
 * code, many scripts, emoji, rare and unassigned code points, controls, noncharacters) for
 * every vocabulary. The contract:
 * - well-formed strings come back unchanged;
 * - lone surrogates cannot be written as UTF-8 and come back as U+FFFD, i.e. the result is
 *   `Buffer.from(s).toString()`;
 * - SentencePiece vocabularies store a space as U+2581, so a U+2581 in the input comes back
 *   as a space (llama.cpp and Hugging Face behave the same);
 * - Hugging Face Metaspace with prepend_scheme "first" (Mistral's tokenizer.json) adds its "▁"
 *   only when the text does not already start with a space, so " x" and "x" give the same
 *   tokens and one leading space is lost (Hugging Face behaves the same);
 * - a byte-level vocabulary lacking a token for some byte (SmolLM2 has none for a few ASCII
 *   controls) drops the characters that need it, as Hugging Face does, and warns at load;
 * - WordPiece (BERT) lowercases and drops accents, so it cannot round-trip; its check is that
 *   re-encoding the decoded text gives the same tokens.
 */
import { describe, expect, it } from "vitest";
import { generateCorpus } from "../../bench/corpus.js";
import type { Tokenizer } from "../../lib/tokenizer/index.js";
import { allVocabs, hasTokenizerData } from "./vocabs.js";

/** Vocabularies that spell spaces as U+2581 (SentencePiece style). */
const SPACE_SYMBOL_VOCABS = new Set(["baichuan", "llama-spm", "phi-3", "mistral-v0.3 (tokenizer.json)", "llama-2-tiny-random", "stories260K"]);
const LOSSY_VOCABS = new Set(["bert-bge"]);
const LEADING_SPACE_LOST = new Set(["mistral-v0.3 (tokenizer.json)"]);

/** Short texts with the usual trouble spots: edges of whitespace, scripts, emoji, rare code points. */
const SAMPLES = [
  "Hello, world! The quick brown fox jumps over the lazy dog.",
  "  leading spaces, trailing spaces   \n\n\ttabs\tand\r\nCRLF\n",
  " one leading space",
  "function fib(n: number): number {\n  return n < 2 ? n : fib(n - 1) + fib(n - 2); // 🦙\n}\n",
  "Ünïcödé façade naïve coöperate — “quotes” ‘single’ …",
  "日本語のテキストと中文文本，还有한국어 텍스트。",
  "العربية مع الأرقام ١٢٣ و עברית עם ניקוד",
  "Emoji: 👨‍👩‍👧‍👦 🏳️‍🌈 🇯🇵 👍🏽 and math 𝔸𝔹ℂ ∀x∈ℝ: x²≥0",
  "Rare: \u0000 \u0007 \u00ad \u200b \u2028 \ufeff \ufffd \u{10ffff} \u{1f600}",
  "Numbers 1234567890 3.14159 1e-10 0xDEADBEEF 1,000,000",
  "\n",
  " ",
];
/** Control-token names as plain text: without parseSpecial they are just text. */
const SPECIAL_LOOKING = " <s> </s> <|endoftext|> <|im_start|> <|eot_id|> [CLS] <unk> literal special-looking text";

const corpus = generateCorpus(60_000, { seed: 7, rare: true, loneSurrogates: true });
const wellFormed = Buffer.from(corpus).toString();

/** Bytes that occur in UTF-8 but no single token stands for, read from the vocabulary's token bytes. */
function bytesWithoutToken(tok: Tokenizer): Set<number> {
  const have = new Set<number>();
  for (let id = 0; id < tok.vocabSize; id++) {
    const b = tok.tokenBytes(id);
    if (b.length === 1 && !tok.isSpecial(id)) have.add(b[0]);
  }
  const missing = new Set<number>();
  for (let b = 0; b < 0xf5; b++) if (!have.has(b) && b !== 0xc0 && b !== 0xc1) missing.add(b);
  return missing;
}

describe.runIf(hasTokenizerData)("encode -> decode round trip", () => {
  it("the corpus really holds the hard cases", () => {
    expect(corpus).not.toBe(wellFormed); // lone surrogates present
    for (const probe of ["\u2581", "\u0000", "\ufeff", "🦙", "👩‍👩‍👧‍👦", "\r\n", "Äpfel", "我"]) {
      expect(corpus.includes(probe), JSON.stringify(probe)).toBe(true);
    }
    expect(/[\u{10000}-\u{10FFFF}]/u.test(corpus)).toBe(true);
    expect(/\p{Cn}/u.test(corpus)).toBe(true);
  });

  for (const v of allVocabs()) {
    if (LOSSY_VOCABS.has(v.name)) continue;
    it(v.name, () => {
      const tok = v.load();
      let expected = SPACE_SYMBOL_VOCABS.has(v.name) ? wellFormed.replaceAll("\u2581", " ") : wellFormed;
      const missing = bytesWithoutToken(tok);
      if (missing.size > 0) {
        expect(tok.warnings.join(" ")).toContain("no token for bytes");
        expected = Array.from(expected)
          .filter((ch) => !Array.from(Buffer.from(ch)).some((b) => missing.has(b)))
          .join("");
      }
      expected += SPECIAL_LOOKING;
      const ids = tok.encode(corpus + SPECIAL_LOOKING);
      expect(ids.length).toBeGreaterThan(corpus.length / 20);
      const decoded = tok.decode(ids);
      if (decoded !== expected) {
        let at = 0;
        while (decoded[at] === expected[at]) at++;
        expect(JSON.stringify(decoded.slice(at - 20, at + 20))).toBe(JSON.stringify(expected.slice(at - 20, at + 20)));
      }
      expect(decoded).toBe(expected);
      // The stream decoder yields the same text (whole characters only: stream-decoder.test.ts).
      const stream = tok.createStreamDecoder();
      let streamed = "";
      for (const id of ids) streamed += stream.push(id);
      expect(streamed + stream.flush()).toBe(decoded);
      for (const sample of SAMPLES) {
        const want = LEADING_SPACE_LOST.has(v.name) && sample.startsWith(" ") ? sample.slice(1) : sample;
        expect(tok.decode(tok.encode(sample)), JSON.stringify(sample)).toBe(want);
      }
    });
  }

  it("bert-bge: re-encoding decoded text gives the same tokens", () => {
    const bert = allVocabs().find((v) => v.name === "bert-bge")!.load();
    // ASCII prose and code only: every word is in the vocabulary, so no [UNK] hides a difference.
    const text = generateCorpus(20_000, { seed: 3 }).replace(/[^\x20-\x7e\n\t]/g, "");
    const ids = bert.encode(text);
    expect(ids.length).toBeGreaterThan(1000);
    expect(bert.encode(bert.decode(ids))).toEqual(ids);
  });
});
