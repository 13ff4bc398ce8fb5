/**
 * session.trace (issue 23) on stories260K against a float64 reference forward in
 * TypeScript: every layer's residual norm, its logit lens top-k and their probabilities,
 * and every head's attention weights (rows sum to 1, within budget of the reference); the
 * last layer's lens top-1 is the model's own prediction; tracing leaves the session as an
 * evaluate would; a mixture-of-experts model reports its routing; bad options are refused.
 */
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isTesseraError, loadModel, type Model } from "../../lib/index.js";
import { writeSyntheticModel } from "../../dev/synthetic-model.js";
import { hasShared, stories260K, tempDir } from "../helpers/paths.js";
import { referenceLogits } from "../helpers/reference-forward.js";

describe.runIf(hasShared)("trace", () => {
  let model: Model;
  beforeAll(async () => {
    model = await loadModel(stories260K, { backend: "cpu", threads: 2, contextSize: 128 });
  });
  afterAll(() => model?.dispose());

  it("residual norms, logit lens and attention match a float64 reference forward", async () => {
    const prefix = model.tokenizer.encode("Once upon a time");
    const more = model.tokenizer.encode(" there was a dog", { addSpecial: false });
    const s = model.createSession();
    await s.evaluate(prefix);
    const t = await s.trace(more, { attention: true, topK: 3 });
    expect(s.tokens.length).toBe(prefix.length + more.length);
    const all = [...prefix, ...more];
    const ref = new Map<string, { x: Float64Array; probs: Float64Array[]; lens: Float64Array }>();
    referenceLogits(stories260K, all, (pos, layer, x, probs, lens) => {
      if (pos >= prefix.length) ref.set(`${pos}:${layer}`, { x, probs, lens: lens() });
    });
    expect(t.layers.length).toBe(model.info.nLayer);
    let worstNorm = 0, worstAttn = 0, worstLens = 0;
    for (const L of t.layers)
      for (let i = 0; i < more.length; i++) {
        const r = ref.get(`${prefix.length + i}:${L.layer}`)!;
        const norm = Math.hypot(...r.x);
        worstNorm = Math.max(worstNorm, Math.abs(L.residualNorm[i] - norm) / norm);
        // Lens: the top-3 tokens and their probabilities under the reference's lens logits.
        const lse = (() => {
          const m = Math.max(...r.lens);
          return m + Math.log(r.lens.reduce((a, v) => a + Math.exp(v - m), 0));
        })();
        const refTop = Array.from(r.lens.keys()).sort((a, b) => r.lens[b] - r.lens[a]).slice(0, 3);
        expect(L.lens[i][0].token).toBe(refTop[0]);
        for (const e of L.lens[i]) worstLens = Math.max(worstLens, Math.abs(e.prob - Math.exp(r.lens[e.token] - lse)));
        // Attention: each head's weights over positions 0..pos, summing to 1.
        expect(L.attention![i].length).toBe(model.info.nHead);
        L.attention![i].forEach((w, h) => {
          expect(w.length).toBe(prefix.length + i + 1);
          expect(w.reduce((a, v) => a + v, 0)).toBeCloseTo(1, 2);
          for (let j = 0; j < w.length; j++) worstAttn = Math.max(worstAttn, Math.abs(w[j] - r.probs[h][j]));
        });
      }
    console.log(`trace vs float64: residual norm rel ${worstNorm.toExponential(2)}, lens prob abs ${worstLens.toExponential(2)}, attention abs ${worstAttn.toExponential(2)}`);
    // The engine holds q, K and V in fp16 and rounds the weights to fp16 before the value sum,
    // as llama.cpp does (~5e-4 relative each), and that compounds over the 5 layers: the
    // residual drifts ~3e-4, lens probabilities and weights by a few 1e-3. A wrong head,
    // position or layer would be off by 0.1 or more.
    expect(worstNorm).toBeLessThan(1e-3);
    expect(worstLens).toBeLessThan(5e-3);
    expect(worstAttn).toBeLessThan(1e-2);
    // The last layer's lens is the model's own prediction.
    const last = t.layers[t.layers.length - 1];
    const logits = t.logits;
    let arg = 0;
    for (let k = 1; k < logits.length; k++) if (logits[k] > logits[arg]) arg = k;
    expect(last.lens[more.length - 1][0].token).toBe(arg);
    // The session continues as if evaluate had run.
    const next = await s.evaluate([5]);
    const plain = model.createSession();
    const ref5 = await plain.evaluate([...all, 5]);
    expect(Array.from(next)).toEqual(Array.from(ref5));
    s.dispose();
    plain.dispose();
  });

  it("reports only the layers asked for; topK 0 gives no lens; bad options refused", async () => {
    const s = model.createSession();
    const t = await s.trace(model.tokenizer.encode("Lily"), { layers: [0, 3], topK: 0 });
    expect(t.layers.map((l) => l.layer)).toEqual([0, 3]);
    expect(t.layers[0].attention).toBeUndefined();
    expect(t.layers[0].lens[0]).toEqual([]);
    await expect(s.trace([1], { layers: [99] })).rejects.toSatisfy((e: unknown) => isTesseraError(e, "ERR_INVALID_ARGUMENT"));
    await expect(s.trace([1], { topK: -1 })).rejects.toSatisfy((e: unknown) => isTesseraError(e, "ERR_INVALID_ARGUMENT"));
    s.dispose();
  });

  it("a mixture-of-experts model reports each token's experts and router weights", async () => {
    const file = path.join(tempDir("trace"), "moe.gguf");
    writeSyntheticModel(file, { architecture: "qwen3moe", nLayer: 2, nEmbd: 128, nHead: 4, nHeadKv: 2, headDim: 32, nFf: 256, contextLength: 4096, qkNorm: true, moe: { nExpert: 8, nExpertUsed: 2, nFfExp: 64, normTopK: true } }, { weights: "F32", vocab: "stories", seed: 3 });
    const m = await loadModel(file, { backend: "cpu", threads: 1, contextSize: 64 });
    const t = await m.createSession().trace([1, 20, 30], { topK: 1 });
    for (const L of t.layers) {
      expect(L.experts!.length).toBe(3);
      for (const e of L.experts!) {
        expect(e.length).toBe(2);
        for (const x of e) expect(x.expert).toBeGreaterThanOrEqual(0);
        expect(e[0].weight + e[1].weight).toBeCloseTo(1, 5);
      }
    }
    m.dispose();
  });
});
