/**
 * Speculative decoding (issue 24): greedy output is identical with and without speculation
 * — draft = target, a truncated copy of the target, an unrelated draft, prompt lookup — on
 * stories260K and on a synthetic model; sampling keeps the target's distribution (a
 * chi-square homogeneity test over many draws of the second token, where the speculator's
 * logits are used, restricted by top-k to a tiny vocabulary); speculative generations batch
 * with each other; stats count proposals and passes; a draft of another vocabulary is
 * refused.
 */
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isTesseraError, loadModel, type Model } from "../../lib/index.js";
import { writeSyntheticModel, syntheticTokens, type ModelShape } from "../../dev/synthetic-model.js";
import { hasShared, stories260K, tempDir } from "../helpers/paths.js";
import { cycleNext, writeCycleModel, writeTruncatedModel } from "../../dev/truncate-model.js";

const dir = tempDir("speculative");

describe.runIf(hasShared)("speculative decoding", () => {
  let target: Model;
  let truncated: Model;
  let unrelated: Model;
  let synth: Model;
  let synthDraft: Model;
  beforeAll(async () => {
    target = await loadModel(stories260K, { backend: "cpu", threads: 2, contextSize: 512 });
    const cut = path.join(dir, "stories-2-blocks.gguf");
    writeTruncatedModel(stories260K, cut, 2);
    truncated = await loadModel(cut, { backend: "cpu", threads: 1, contextSize: 512 });
    const shape: ModelShape = { architecture: "llama", nLayer: 3, nEmbd: 128, nHead: 4, nHeadKv: 2, nFf: 256, contextLength: 4096 };
    const other = path.join(dir, "unrelated.gguf");
    writeSyntheticModel(other, shape, { weights: "F32", vocab: "stories", seed: 99 });
    unrelated = await loadModel(other, { backend: "cpu", threads: 1, contextSize: 512 });
    const synthFile = path.join(dir, "synthetic.gguf");
    writeSyntheticModel(synthFile, shape, { weights: "Q8_0", vocab: "stories", seed: 5 });
    synth = await loadModel(synthFile, { backend: "cpu", threads: 2, contextSize: 512 });
    const synthCut = path.join(dir, "synthetic-1-block.gguf");
    writeTruncatedModel(synthFile, synthCut, 1);
    synthDraft = await loadModel(synthCut, { backend: "cpu", threads: 1, contextSize: 512 });
  }, 60_000);
  afterAll(() => {
    for (const m of [target, truncated, unrelated, synth, synthDraft]) m?.dispose();
  });

  const greedy = { maxTokens: 80, temperature: 0, ignoreEos: true };

  it("greedy: identical tokens with draft = target, a truncated copy, an unrelated draft, prompt lookup", async () => {
    const plain = await target.complete("Once upon a time", greedy);
    for (const [name, speculative] of [
      ["draft = target", { draft: target }],
      ["truncated copy", { draft: truncated }],
      ["unrelated draft", { draft: unrelated, maxDraftTokens: 3 }],
      ["prompt lookup", { promptLookup: true }],
    ] as const) {
      const out = await target.complete("Once upon a time", { ...greedy, speculative });
      expect(out.tokens, name).toEqual(plain.tokens);
      const s = out.stats.speculative!;
      expect(s.targetPasses, name).toBeGreaterThan(0);
      expect(s.accepted, name).toBeLessThanOrEqual(s.proposed);
      if (name === "draft = target") {
        expect(s.accepted).toBe(s.proposed);
        expect(s.tokensPerPass).toBeGreaterThan(3);
      }
    }
    expect(target.stats().inUse).toBe(0);
    expect(truncated.stats().inUse).toBe(0);
  });

  it("greedy on a synthetic model with its 1-block truncated copy as draft; prompt lookup on repetitive text", async () => {
    const prompt = syntheticTokens(40, 512, 7);
    const plain = await synth.complete(prompt, greedy);
    const spec = await synth.complete(prompt, { ...greedy, speculative: { draft: synthDraft } });
    expect(spec.tokens).toEqual(plain.tokens);
    // A prompt that repeats itself: lookup guesses the repeats.
    const cycle = [...syntheticTokens(12, 512, 3), ...syntheticTokens(12, 512, 3), ...syntheticTokens(12, 512, 3)];
    const a = await target.complete(cycle, greedy);
    const b = await target.complete(cycle, { ...greedy, speculative: { promptLookup: true } });
    expect(b.tokens).toEqual(a.tokens);
    expect(b.stats.speculative!.proposed).toBeGreaterThan(0);
  });

  it("prompt lookup on a model that quotes a passage: every guess taken, k guesses per pass, same tokens", async () => {
    // The benchmark's quoting model (writeCycleModel) at a small shape: greedy decoding emits
    // t, next(t), ... whatever came before, so a passage and its first tokens again are
    // continued by the rest of the passage; lookup reads that continuation, and where it
    // reaches the text's end (a loop) on into its own guesses.
    const base = path.join(dir, "cycle-base.gguf");
    const file = path.join(dir, "cycle.gguf");
    writeSyntheticModel(base, { architecture: "llama", nLayer: 2, nEmbd: 256, nHead: 4, nHeadKv: 2, nFf: 384, contextLength: 4096 }, { weights: "Q8_0", vocab: "stories", seed: 21 });
    writeCycleModel(base, file, 0.03);
    const m = await loadModel(file, { backend: "cpu", threads: 1, contextSize: 512 });
    try {
      const passage = [300];
      while (passage.length < 120) passage.push(cycleNext(passage.at(-1)!, m.info.nVocab));
      const prompt = [1, ...passage, ...passage.slice(0, 4)];
      const plain = await m.complete(prompt, { ...greedy, maxTokens: 100 });
      expect(plain.tokens).toEqual(passage.slice(4, 104));
      const spec = await m.complete(prompt, { ...greedy, maxTokens: 100, speculative: { promptLookup: true, maxDraftTokens: 8 } });
      expect(spec.tokens).toEqual(plain.tokens);
      const s = spec.stats.speculative!;
      expect(s.accepted).toBe(s.proposed);
      expect(s.tokensPerPass).toBeGreaterThan(7);
      // A constant run: guesses continue the run for all k tokens, not the one before the end.
      const loop = [1, 50, 50, 50, 50, 50];
      const looped = await target.complete(loop, { ...greedy, maxTokens: 24, speculative: { promptLookup: true, maxDraftTokens: 6 } });
      expect(looped.tokens).toEqual((await target.complete(loop, { ...greedy, maxTokens: 24 })).tokens);
    } finally {
      m.dispose();
    }
  });

  it("speculative generations batch with each other and each equals its solo run", async () => {
    const prompts = ["Once upon a time", "Lily", "The dog", "One day"];
    const solo = [];
    for (const p of prompts) solo.push(await target.complete(p, greedy));
    const together = await Promise.all(prompts.map((p, i) => target.complete(p, { ...greedy, speculative: i % 2 ? { draft: truncated } : { promptLookup: true } })));
    for (let i = 0; i < prompts.length; i++) expect(together[i].tokens).toEqual(solo[i].tokens);
  });

  it("sampling: the same seed gives the same tokens, and the second token's distribution matches plain sampling (chi-square)", async () => {
    const opts = { maxTokens: 2, temperature: 1.5, topK: 4, topP: 1, minP: 0, ignoreEos: true };
    const same = await Promise.all([1, 2, 3].map((seed) => target.complete("Once upon a time", { ...opts, maxTokens: 30, seed, speculative: { draft: truncated } })));
    for (const [i, seed] of [1, 2, 3].entries()) expect(same[i].tokens).toEqual((await target.complete("Once upon a time", { ...opts, maxTokens: 30, seed })).tokens);
    // Different seeds for the two sets: a distribution test, not a replay.
    const N = 600;
    const count = async (offset: number, speculative: boolean) => {
      const counts = new Map<string, number>();
      for (let i = 0; i < N; i += 50) {
        const outs = await Promise.all(
          Array.from({ length: 50 }, (_, j) => target.complete("Once upon a time", { ...opts, seed: offset + i + j, ...(speculative ? { speculative: { draft: truncated } } : {}) })),
        );
        for (const o of outs) counts.set(o.tokens.join(","), (counts.get(o.tokens.join(",")) ?? 0) + 1);
      }
      return counts;
    };
    const a = await count(10_000, true);
    const b = await count(50_000, false);
    // Chi-square homogeneity over the (first, second) token pairs seen at least 10 times in all.
    const keys = [...new Set([...a.keys(), ...b.keys()])].filter((k) => (a.get(k) ?? 0) + (b.get(k) ?? 0) >= 10);
    let chi = 0;
    for (const k of keys) {
      const x = a.get(k) ?? 0, y = b.get(k) ?? 0, e = (x + y) / 2;
      chi += ((x - e) ** 2 + (y - e) ** 2) / e;
    }
    const dof = keys.length - 1;
    // 99.9th percentile of chi-square: dof + 3.1 sqrt(2 dof) + ... (Wilson-Hilferty bound, generous).
    const limit = dof * (1 - 2 / (9 * dof) + 3.09 * Math.sqrt(2 / (9 * dof))) ** 3;
    console.log(`chi-square ${chi.toFixed(1)} over ${keys.length} token pairs (99.9% limit ${limit.toFixed(1)})`);
    expect(keys.length).toBeGreaterThan(4);
    expect(chi).toBeLessThan(limit);
  });

  it("refuses a draft of another vocabulary and bad options with coded errors", async () => {
    const shape: ModelShape = { architecture: "llama", nLayer: 1, nEmbd: 64, nHead: 2, nHeadKv: 1, nFf: 128, contextLength: 4096 };
    const file = path.join(dir, "smollm-vocab.gguf");
    writeSyntheticModel(file, shape, { weights: "F32", vocab: "smollm2", seed: 1 });
    const foreign = await loadModel(file, { backend: "cpu", threads: 1, contextSize: 128 });
    await expect(target.complete("Once", { speculative: { draft: foreign } })).rejects.toSatisfy((e: unknown) => isTesseraError(e, "ERR_MODEL_INCOMPATIBLE"));
    foreign.dispose();
    await expect(target.complete("Once", { speculative: {} })).rejects.toSatisfy((e: unknown) => isTesseraError(e, "ERR_INVALID_ARGUMENT"));
    await expect(target.complete("Once", { speculative: { promptLookup: true, maxDraftTokens: 0 } })).rejects.toSatisfy((e: unknown) => isTesseraError(e, "ERR_INVALID_ARGUMENT"));
  });
});
