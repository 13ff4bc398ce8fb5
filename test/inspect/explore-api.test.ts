/**
 * The explorer's computations (lib/inspect/explore.ts) without a browser, on stories260K:
 * the embedding projection's axes are orthonormal principal components (no direction
 * spreads the sample more than the first), steps reuse the KV cache and cut it back when
 * the sequence is edited, kept sessions are bounded, and the limits hold.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_MODEL } from "../../lib/default-model.js";
import { loadModel, type Model } from "../../lib/index.js";
import { EMBEDDING_POINTS, Explorer, STEP_SESSIONS } from "../../lib/inspect/explore.js";
import { Rng } from "../../lib/sampling/rng.js";

describe("Explorer", () => {
  let model: Model;
  let ex: Explorer;
  beforeAll(async () => {
    model = await loadModel(DEFAULT_MODEL, { backend: "cpu", threads: 2, contextSize: 256 });
    ex = new Explorer(model);
  });
  afterAll(() => {
    ex?.dispose();
    model?.dispose();
  });

  it("projects embeddings on their first two principal components", () => {
    const ids = model.tokenizer.encode("The cat sat");
    const v = ex.embeddings(ids, ids[1], 5);
    expect(v.background.length).toBe(Math.min(model.info.nVocab, EMBEDDING_POINTS));
    expect(v.tokens.map((p) => p.token)).toEqual(ids);
    expect(v.nearest!.map((n) => n.token)).toEqual(model.nearestTokens(ids[1], 5).map((n) => n.token));
    // The variance along PC1 (as a share of the total) beats any random direction's.
    const rows = v.background.map((p) => model.tokenEmbedding(p.token));
    const d = rows[0].length;
    const mean = new Float64Array(d);
    for (const r of rows) r.forEach((x, i) => (mean[i] += x / rows.length));
    let total = 0;
    for (const r of rows) r.forEach((x, i) => (total += (x - mean[i]) ** 2));
    const rng = new Rng(1);
    for (let k = 0; k < 50; k++) {
      const dir = Float64Array.from({ length: d }, () => rng.next() - 0.5);
      const n = Math.hypot(...dir);
      let spread = 0;
      for (const r of rows) {
        let p = 0;
        r.forEach((x, i) => (p += ((x - mean[i]) * dir[i]) / n));
        spread += p * p;
      }
      expect(spread / total).toBeLessThanOrEqual(v.explained[0] + 1e-9);
    }
    // The plotted coordinates carry exactly the explained variance.
    const varX = v.background.reduce((a, p) => a + p.x * p.x, 0) / total;
    const varY = v.background.reduce((a, p) => a + p.y * p.y, 0) / total;
    expect(varX).toBeCloseTo(v.explained[0], 6);
    expect(varY).toBeCloseTo(v.explained[1], 6);
    expect(v.explained[1]).toBeLessThanOrEqual(v.explained[0]);
    // And the axes are orthogonal: the coordinates are uncorrelated over the (centred) sample.
    const cov = v.background.reduce((a, p) => a + p.x * p.y, 0) / total;
    expect(Math.abs(cov)).toBeLessThan(1e-3 * v.explained[0]);
  });

  it("steps on a kept session: one new token per step, cut back to the common prefix after an edit", async () => {
    const controls = { temperature: 0, topK: 0, topP: 1, minP: 0 };
    const seq = model.tokenizer.encode("Once upon a time");
    const a = await ex.step("a", seq, controls, 1);
    expect(a).toMatchObject({ evaluated: seq.length, kvLength: seq.length, final: 1 });
    const logits = await (async () => {
      const s = model.createSession();
      try {
        return await s.evaluate(seq);
      } finally {
        s.dispose();
      }
    })();
    expect(a.token.id).toBe(logits.indexOf(Math.max(...logits)));
    seq.push(a.token.id);
    const b = await ex.step("a", seq, controls, 2);
    expect(b).toMatchObject({ evaluated: 1, kvLength: seq.length });
    // An edit in the middle: only the tokens from the edit on are evaluated again.
    const edited = [...seq.slice(0, 3), model.tokenizer.encode(" dog", { addSpecial: false })[0], ...seq.slice(4)];
    const c = await ex.step("a", edited, controls, 3);
    expect(c).toMatchObject({ evaluated: edited.length - 3, kvLength: edited.length });
    // Asking again for the same sequence evaluates its last token again (its logits are needed).
    expect(await ex.step("a", edited, controls, 3)).toMatchObject({ evaluated: 1, kvLength: edited.length, token: c.token });
    // Kept sessions are bounded: the oldest goes.
    for (let i = 0; i < STEP_SESSIONS + 2; i++) await ex.step(`s${i}`, [1], controls, 1);
    expect(model.stats().inUse).toBeGreaterThan(0);
    expect((await ex.step("a", edited, controls, 3)).evaluated).toBe(edited.length);
  });

  it("refuses what it will not run", async () => {
    await expect(ex.trace([])).rejects.toMatchObject({ code: "ERR_INVALID_ARGUMENT" });
    await expect(ex.trace([model.info.nVocab])).rejects.toMatchObject({ code: "ERR_INVALID_ARGUMENT" });
    await expect(ex.trace(Array(ex.maxTokens() + 1).fill(1))).rejects.toMatchObject({ code: "ERR_INVALID_ARGUMENT" });
    await expect(ex.attention([1, 2], model.info.nLayer)).rejects.toMatchObject({ code: "ERR_INVALID_ARGUMENT" });
    expect(() => ex.tokenize("a ".repeat(3000))).toThrow(expect.objectContaining({ code: "ERR_INVALID_ARGUMENT" }));
    await expect(ex.step("x", Array(ex.maxTokens()).fill(1), { temperature: 1, topK: 0, topP: 1, minP: 0 }, 1)).rejects.toMatchObject({ code: "ERR_INVALID_ARGUMENT" });
  });
});
