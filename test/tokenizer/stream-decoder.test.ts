/**
 * Streaming detokenization: pushing tokens one at a time yields only whole characters, and all
 * the pieces plus flush() equal decode() of the same tokens, for real text and for random
 * token sequences (which may hold invalid UTF-8).
 */
import path from "node:path";
import { describe, expect, it } from "vitest";
import { generateCorpus, seededRandom } from "../../bench/corpus.js";
import type { Tokenizer } from "../../lib/tokenizer/index.js";
import { ggufVocab, hasTokenizerData, hfVocab, vocabDir } from "./vocabs.js";

function streamAll(tok: Tokenizer, ids: number[], options?: Parameters<Tokenizer["createStreamDecoder"]>[0]): string[] {
  const d = tok.createStreamDecoder(options);
  const chunks = ids.map((id) => d.push(id));
  chunks.push(d.flush());
  return chunks;
}

describe.runIf(hasTokenizerData)("stream decoder", () => {
  const vocabs: [string, () => Tokenizer][] = [
    ["llama-spm (byte fallback)", ggufVocab(path.join(vocabDir, "ggml-vocab-llama-spm.gguf"))],
    ["gpt-2 (byte-level)", ggufVocab(path.join(vocabDir, "ggml-vocab-gpt-2.gguf"))],
    ["llama3 (byte-level)", hfVocab("llama3", "llama-bpe")],
    ["mistral-v0.3 (tokenizer.json)", hfVocab("mistral-v0.3")],
  ];
  const text = generateCorpus(20_000, { seed: 11, rare: true });

  for (const [name, load] of vocabs) {
    it(`${name}: pieces of real text join to decode() and hold only whole characters`, () => {
      const tok = load();
      const ids = tok.encode(text, { addSpecial: true });
      const chunks = streamAll(tok, ids);
      expect(chunks.join("")).toBe(tok.decode(ids));
      // The text is well-formed, so no chunk may show a replacement character for a split one.
      const hasReplacement = tok.decode(ids).includes("\ufffd");
      for (const c of chunks) {
        if (!hasReplacement) expect(c.includes("\ufffd")).toBe(false);
        expect(Buffer.from(c).toString()).toBe(c); // no lone surrogate halves
      }
      expect(chunks.filter((c) => c === "").length).toBeGreaterThan(0); // some tokens end mid-character
    });

    it(`${name}: random token sequences stream to the same text as decode()`, () => {
      const tok = load();
      const rnd = seededRandom(name.length);
      for (let trial = 0; trial < 50; trial++) {
        const ids = Array.from({ length: 1 + Math.floor(rnd() * 40) }, () => Math.floor(rnd() * tok.vocabSize));
        expect(streamAll(tok, ids).join("")).toBe(tok.decode(ids));
        expect(streamAll(tok, ids, { skipSpecial: false }).join("")).toBe(tok.decode(ids, { skipSpecial: false }));
      }
    });
  }

  it("a character split over byte tokens comes out once complete", () => {
    const spm = vocabs[0][1]();
    const ids = spm.encode("🦙", { addSpecial: false });
    // "▁" then the four UTF-8 bytes of the llama as <0xNN> tokens.
    expect(ids.length).toBe(5);
    const d = spm.createStreamDecoder();
    expect(ids.map((id) => d.push(id))).toEqual(["", "", "", "", "🦙"]);
    expect(d.flush()).toBe("");
    // Cut short, the partial character becomes U+FFFD at flush.
    const cut = spm.createStreamDecoder();
    expect(ids.slice(0, 3).map((id) => cut.push(id)).join("")).toBe("");
    expect(cut.flush()).toBe("\ufffd");
  });

  it("continues after a prompt: `prefix` keeps the first space and completes split characters", () => {
    const spm = vocabs[0][1]();
    const prompt = spm.encode("Once upon a");
    const next = spm.encode("Once upon a time").slice(prompt.length);
    expect(spm.decode(next)).toBe("time"); // decoded alone, it starts the text
    const d = spm.createStreamDecoder({ prefix: prompt });
    expect(next.map((id) => d.push(id)).join("") + d.flush()).toBe(" time");
    // A prompt ending inside a character: the rest of its bytes complete it.
    const llama = spm.encode("x🦙", { addSpecial: false });
    const split = llama.length - 2;
    const d2 = spm.createStreamDecoder({ prefix: llama.slice(0, split) });
    expect(llama.slice(split).map((id) => d2.push(id)).join("")).toBe("🦙");
  });

  it("without a prefix the first token starts the text (SentencePiece drops its added space)", () => {
    const spm = vocabs[0][1]();
    const ids = spm.encode("Hello world", { addSpecial: false });
    expect(streamAll(spm, ids).join("")).toBe("Hello world");
    expect(streamAll(spm, [1, ...ids]).join("")).toBe("Hello world");
    expect(streamAll(spm, [1, ...ids], { skipSpecial: false }).join("")).toBe("<s>Hello world");
  });
});
