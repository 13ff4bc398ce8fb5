/**
 * Perplexity (issue 23) by llama-perplexity's method equals the same method over
 * llama.cpp's logits of the same file and text (through node-llama-cpp) to 4 significant
 * digits, on stories260K and on a synthetic model; KL divergence between a model and itself
 * is 0 with full top-1 agreement, between F32 and Q8_0 files of one model small and
 * positive; the CLI's --json prints the fields.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { klDivergence, loadModel, perplexity, type Model } from "../../lib/index.js";
import { LlamaCppPeer } from "../../dev/llama-cpp-peer.js";
import { writeSyntheticModel, type ModelShape } from "../../dev/synthetic-model.js";
import { hasShared, repoRoot, stories260K, tempDir } from "../helpers/paths.js";

const TEXT = Array.from({ length: 12 }, (_, i) =>
  `Once upon a time, there was a little ${["girl", "boy", "dog", "cat"][i % 4]} named ${["Lily", "Tom", "Sam", "Mia"][i % 4]}. ` +
  `${["She", "He", "It", "She"][i % 4]} loved to play in the park with ${["her", "his", "its", "her"][i % 4]} friends. One day, they found a big red ball under a tree. ` +
  `They were very happy and played until the sun went down.`,
).join(" ");
const CTX = 64;

/** llama-perplexity over llama.cpp's own logits: chunk i from an empty cache, BOS first, second half scored. */
async function llamaCppPerplexity(file: string, model: Model): Promise<number> {
  const tokens = model.tokenizer.encode(TEXT, { addSpecial: true });
  const peer = await LlamaCppPeer.open(file, { threads: 2, contextSize: 128, flashAttention: false });
  let nll = 0;
  let count = 0;
  try {
    for (let start = 0; start + CTX <= tokens.length; start += CTX) {
      const chunk = tokens.slice(start, start + CTX);
      chunk[0] = model.tokenizer.bos!;
      const logits = await peer.logitsPerPosition(chunk, model.info.nVocab);
      for (let j = CTX / 2; j < CTX - 1; j++) {
        const x = logits[j];
        let max = -Infinity;
        for (const v of x) max = Math.max(max, v);
        let sum = 0;
        for (const v of x) sum += Math.exp(v - max);
        nll -= x[tokens[start + j + 1]] - max - Math.log(sum);
        count++;
      }
    }
  } finally {
    await peer.dispose();
  }
  return Math.exp(nll / count);
}

const sig4 = (x: number) => Number(x.toPrecision(4));

describe.runIf(hasShared)("perplexity and KL divergence", () => {
  const dir = tempDir("ppl");
  const shape: ModelShape = { architecture: "llama", nLayer: 2, nEmbd: 256, nHead: 4, nHeadKv: 2, nFf: 512, contextLength: 4096 };
  const f32 = path.join(dir, "synthetic-F32.gguf");
  const q8 = path.join(dir, "synthetic-Q8_0.gguf");
  let stories: Model;
  beforeAll(async () => {
    writeSyntheticModel(f32, shape, { weights: "F32", vocab: "stories", seed: 13 });
    writeSyntheticModel(q8, shape, { weights: "Q8_0", vocab: "stories", seed: 13 });
    stories = await loadModel(stories260K, { backend: "cpu", threads: 2, contextSize: 256 });
  });
  afterAll(() => stories?.dispose());

  it("stories260K: the same perplexity as llama.cpp's logits give, to 4 significant digits", async () => {
    const r = await perplexity(stories, TEXT, { ctx: CTX });
    const ref = await llamaCppPerplexity(stories260K, stories);
    console.log(`stories260K perplexity ${r.perplexity.toFixed(5)} (llama.cpp ${ref.toFixed(5)}), ${r.tokens} tokens in ${r.chunks} chunks`);
    expect(r.chunks).toBe(Math.floor(stories.tokenizer.encode(TEXT).length / CTX));
    expect(r.tokens).toBe(r.chunks * (CTX / 2 - 1));
    expect(sig4(r.perplexity)).toBe(sig4(ref));
  });

  it("a synthetic model: the same as llama.cpp to 4 digits; KL to itself 0, F32 vs Q8_0 small", async () => {
    const m = await loadModel(f32, { backend: "cpu", threads: 2, contextSize: 256 });
    const r = await perplexity(m, TEXT, { ctx: CTX });
    const ref = await llamaCppPerplexity(f32, m);
    console.log(`synthetic F32 perplexity ${r.perplexity.toFixed(4)} (llama.cpp ${ref.toFixed(4)})`);
    expect(sig4(r.perplexity)).toBe(sig4(ref));
    const self = await klDivergence(m, m, TEXT, { ctx: CTX, chunks: 2 });
    expect(self.meanKl).toBeLessThan(1e-12);
    expect(self.top1Agreement).toBe(1);
    const quant = await loadModel(q8, { backend: "cpu", threads: 2, contextSize: 256 });
    const kl = await klDivergence(m, quant, TEXT, { ctx: CTX, chunks: 2 });
    console.log(`KL(F32 || Q8_0) ${kl.meanKl.toExponential(3)}, top-1 agreement ${(kl.top1Agreement * 100).toFixed(1)}%`);
    expect(kl.meanKl).toBeGreaterThan(0);
    expect(kl.meanKl).toBeLessThan(0.05);
    expect(kl.top1Agreement).toBeGreaterThan(0.8);
    quant.dispose();
    m.dispose();
  });

  it("tessera perplexity --json prints perplexity, tokens and chunks", () => {
    const textFile = path.join(dir, "text.txt");
    fs.writeFileSync(textFile, TEXT);
    const out = execFileSync(process.execPath, [path.join(repoRoot, "dist/lib/cli/main.js"), "perplexity", stories260K, textFile, "--ctx", String(CTX), "--json", "--threads", "1"], { encoding: "utf8" });
    const r = JSON.parse(out.trim().split("\n").pop()!);
    expect(r.perplexity).toBeGreaterThan(1);
    expect(r.tokens).toBeGreaterThan(0);
    expect(r.chunks).toBeGreaterThanOrEqual(2);
  });
});
