/**
 * samplerStages (what the explorer shows of the sampler) against the real Sampler: for every
 * combination of truncations and temperatures, on spread, peaked, flat and wide logits with
 * -Infinity and NaN among them, the Sampler's draw for a seed is the token the stages'
 * final probabilities give for that seed's random number, walked the same way. So the set
 * the page says survives is exactly the set the Sampler draws from, with those odds.
 */
import { describe, expect, it } from "vitest";
import { isTesseraError } from "../../lib/errors.js";
import { samplerStages } from "../../lib/inspect/sampler-stages.js";
import { Rng } from "../../lib/sampling/rng.js";
import { Sampler } from "../../lib/sampling/sampler.js";

describe("samplerStages", () => {
  it("reports the set and the odds the real Sampler draws from", () => {
    const gen = new Rng(7);
    const shapes: [string, number, (i: number) => number][] = [
      ["spread", 3001, () => (gen.next() - 0.5) * 12],
      ["peaked", 5000, (i) => (i % 613 === 0 ? 9 : 0) + (gen.next() - 0.5) * 4],
      ["flat", 777, () => 1.5],
      ["wide", 10_003, () => (gen.next() - 0.5) * 30],
    ];
    let checked = 0;
    for (const [name, n, value] of shapes) {
      const logits = Float32Array.from({ length: n }, (_, i) => value(i));
      logits[7] = -Infinity;
      logits[n - 2] = Number.NaN;
      for (const topK of [0, 1, 40, n])
        for (const topP of [1, 0.9, 0.4])
          for (const minP of [0, 0.05, 0.3])
            for (const temperature of [0, 0.4, 1, 2.5]) {
              const o = { temperature, topK, topP, minP };
              const stages = samplerStages(logits, o, 1000);
              expect(stages.afterMinP).toBeLessThanOrEqual(stages.afterTopP);
              expect(stages.afterTopP).toBeLessThanOrEqual(stages.afterTopK);
              const survivors = stages.candidates.filter((c) => c.minP);
              expect(stages.candidates.every((c) => (c.final > 0) === c.minP || temperature === 0)).toBe(true);
              expect(survivors.length).toBe(Math.min(1000, stages.afterMinP));
              if (stages.afterMinP <= 1000) expect(survivors.reduce((a, c) => a + c.final, 0)).toBeCloseTo(1, 9);
              // One draw consumes one random number: a sampler and an Rng of the same seed stay in step.
              const sampler = new Sampler({ ...o, seed: checked });
              const rng = new Rng(checked);
              for (let draw = 0; draw < 5; draw++) {
                const got = sampler.sample(logits.slice());
                if (temperature === 0) {
                  expect(got).toBe(stages.candidates[0].token);
                  continue;
                }
                if (stages.afterMinP > 1000) {
                  // Beyond what the page lists: the draw is still one of the finite logits.
                  expect(Number.isFinite(logits[got])).toBe(true);
                  continue;
                }
                let r = rng.next();
                let want = survivors[survivors.length - 1].token;
                for (const c of survivors)
                  if ((r -= c.final) < 0) {
                    want = c.token;
                    break;
                  }
                expect(got, `${name} ${JSON.stringify(o)} draw ${draw}`).toBe(want);
              }
              checked++;
            }
    }
    expect(checked).toBe(4 * 4 * 3 * 3 * 4);
  });

  it("at temperature T with no truncation, the final distribution is softmax(logits / T)", () => {
    const logits = Float32Array.from({ length: 300 }, (_, i) => Math.sin(i * 1.7) * 6);
    const s = samplerStages(logits, { temperature: 1.7, topK: 0, topP: 1, minP: 0 }, 300);
    const m = Math.max(...logits);
    const z = logits.reduce((a, v) => a + Math.exp((v - m) / 1.7), 0);
    for (const c of s.candidates) expect(c.final).toBeCloseTo(Math.exp((c.logit - m) / 1.7) / z, 12);
    expect(s.afterMinP).toBe(300);
  });

  it("refuses what the sampler refuses", () => {
    const logits = new Float32Array([1, 2, 3]);
    for (const bad of [{ temperature: -1 }, { topP: 2 }, { minP: -0.1 }, { topK: 1.5 }])
      expect(() => samplerStages(logits, { temperature: 1, topK: 0, topP: 1, minP: 0, ...bad })).toThrow(expect.objectContaining({ code: "ERR_INVALID_ARGUMENT" }));
    let thrown: unknown;
    try {
      samplerStages(new Float32Array([NaN, -Infinity]), { temperature: 1 });
    } catch (e) {
      thrown = e;
    }
    expect(isTesseraError(thrown) && thrown.code).toBe("ERR_NON_FINITE");
  });
});
