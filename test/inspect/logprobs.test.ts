/**
 * Logprobs (issue 23): each generated token's logprob, entropy and top alternatives equal a
 * float64 log-softmax of the raw logits session.evaluate gives at that step (1e-5), with and
 * without sampling filters and penalties (which must not leak into them); the confidence
 * summary agrees with the per-token values.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isTesseraError, loadModel, type Model } from "../../lib/index.js";
import { LOW_CONFIDENCE_ENTROPY, LOW_CONFIDENCE_MARGIN } from "../../lib/inspect/logprobs.js";
import { hasShared, stories260K } from "../helpers/paths.js";

function logSoftmax(x: Float32Array): Float64Array {
  let max = -Infinity;
  for (const v of x) max = Math.max(max, v);
  let sum = 0;
  for (const v of x) sum += Math.exp(v - max);
  const lse = max + Math.log(sum);
  return Float64Array.from(x, (v) => v - lse);
}

describe.runIf(hasShared)("logprobs on stories260K", () => {
  let model: Model;
  beforeAll(async () => {
    model = await loadModel(stories260K, { backend: "cpu", threads: 2, contextSize: 256 });
  });
  afterAll(() => model?.dispose());

  for (const [name, opts] of [
    ["greedy", { temperature: 0 }],
    ["sampled with filters and penalties", { temperature: 0.7, topK: 10, topP: 0.9, minP: 0.02, repeatPenalty: 1.3, seed: 3 }],
  ] as const) {
    it(`${name}: every token's logprob, entropy and top-5 match a log-softmax of evaluate's logits`, async () => {
      const out = await model.complete("Once upon a time", { ...opts, maxTokens: 30, logprobs: 5, ignoreEos: true });
      expect(out.logprobs!.length).toBe(out.tokens.length);
      const session = model.createSession();
      let logits = await session.evaluate(model.tokenizer.encode("Once upon a time"));
      for (let i = 0; i < out.tokens.length; i++) {
        const ref = logSoftmax(logits);
        const lp = out.logprobs![i];
        expect(lp.token).toBe(out.tokens[i]);
        expect(Math.abs(lp.logprob - ref[lp.token])).toBeLessThan(1e-5);
        let entropy = 0;
        for (const v of ref) if (v > -Infinity) entropy -= Math.exp(v) * v;
        expect(Math.abs(lp.entropy - entropy)).toBeLessThan(1e-5);
        const order = Array.from(ref.keys()).sort((a, b) => ref[b] - ref[a] || a - b).slice(0, 5);
        expect(lp.top.map((t) => t.token)).toEqual(order);
        for (const t of lp.top) expect(Math.abs(t.logprob - ref[t.token])).toBeLessThan(1e-5);
        logits = await session.evaluate([out.tokens[i]]);
      }
      session.dispose();
      const c = out.confidence!;
      const mean = out.logprobs!.reduce((a, l) => a + l.logprob, 0) / out.logprobs!.length;
      expect(c.meanLogprob).toBeCloseTo(mean, 10);
      expect(c.perplexity).toBeCloseTo(Math.exp(-mean), 8);
      for (const span of c.lowConfidence)
        for (let i = span.start; i < span.end; i++) {
          const l = out.logprobs![i];
          const margin = Math.exp(l.top[0].logprob) - Math.exp(l.top[1].logprob);
          expect(l.entropy > LOW_CONFIDENCE_ENTROPY || margin < LOW_CONFIDENCE_MARGIN).toBe(true);
        }
    });
  }

  it("streamed chunks carry one logprob per token; logprobs: 0 gives no alternatives; bad values are refused", async () => {
    let tokens = 0;
    for await (const chunk of model.generate("Lily", { maxTokens: 12, temperature: 0, logprobs: 0 })) {
      expect(chunk.logprobs!.length).toBe(chunk.tokens.length);
      for (const l of chunk.logprobs!) expect(l.top).toEqual([]);
      tokens += chunk.tokens.length;
    }
    expect(tokens).toBeGreaterThan(0);
    const plain = await model.complete("Lily", { maxTokens: 5, temperature: 0 });
    expect(plain.logprobs).toBeUndefined();
    for (const bad of [-1, 21, 1.5, "3"])
      await expect(model.complete("Lily", { logprobs: bad as never })).rejects.toSatisfy((e: unknown) => isTesseraError(e, "ERR_INVALID_ARGUMENT"));
  });
});
