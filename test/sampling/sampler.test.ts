import { describe, expect, it } from "vitest";
import { Sampler, argmax } from "../../lib/sampling/sampler.js";
import { Rng } from "../../lib/sampling/rng.js";

function randomLogits(n: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (rng.next() - 0.5) * 8;
  return out;
}

/** Empirical distribution of `draws` samples. */
function histogram(sampler: Sampler, logits: Float32Array, draws: number): Map<number, number> {
  const h = new Map<number, number>();
  for (let i = 0; i < draws; i++) {
    const id = sampler.sample(logits.slice());
    h.set(id, (h.get(id) ?? 0) + 1);
  }
  return h;
}

function softmax(x: ArrayLike<number>, t = 1): number[] {
  const m = Math.max(...Array.from(x));
  const e = Array.from(x, (v) => Math.exp((v - m) / t));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

/**
 * The sampler's chain written the plain way: every candidate sorted, softmax over the top-k
 * (or all), top-p, min-p, temperature, one draw from `rng`. The Sampler selects and sorts
 * only what can be drawn; it must pick the same token for the same random number.
 */
function sortedCandidates(logits: Float32Array): { id: number; v: number }[] {
  return Array.from(logits, (v, id) => ({ id, v }))
    .filter((x) => x.v > -Infinity)
    .sort((a, b) => b.v - a.v || a.id - b.id);
}

function plainSample(
  sorted: { id: number; v: number }[],
  o: { temperature: number; topK: number; topP: number; minP: number },
  rng: Rng,
): number {
  const c = o.topK > 0 ? sorted.slice(0, o.topK) : sorted;
  const e = c.map((x) => Math.exp(x.v - c[0].v));
  const z = e.reduce((a, b) => a + b, 0);
  let p = e.map((x) => x / z);
  if (o.topP < 1) {
    let cum = 0;
    const cut = p.findIndex((x) => (cum += x) >= o.topP);
    if (cut >= 0) p = p.slice(0, cut + 1);
  }
  if (o.minP > 0) {
    const keep = p.findIndex((x) => x < p[0] * o.minP);
    if (keep > 0) p = p.slice(0, keep);
  }
  const w = p.map((x) => Math.exp((Math.log(x) - Math.log(p[0])) / o.temperature));
  let r = rng.next() * w.reduce((a, b) => a + b, 0);
  for (let i = 0; i < w.length; i++) if ((r -= w[i]) < 0) return c[i].id;
  return c[w.length - 1].id;
}

describe("sampler", () => {
  it("draws exactly what the plain full-sort chain draws, for every combination of truncations", () => {
    const seed = (Math.random() * 2 ** 32) >>> 0;
    const gen = new Rng(seed);
    // Spread, peaked, flat (ties everywhere) and wide vocabularies, with -Infinity and NaN.
    const shapes: [string, number, (i: number) => number][] = [
      ["spread", 3001, () => (gen.next() - 0.5) * 12],
      ["peaked", 5000, (i) => (i % 613 === 0 ? 9 : 0) + (gen.next() - 0.5) * 4],
      ["flat", 777, () => 1.5],
      ["wide", 50_003, () => (gen.next() - 0.5) * 30],
    ];
    let checked = 0;
    for (const [name, n, value] of shapes) {
      const logits = Float32Array.from({ length: n }, (_, i) => value(i));
      logits[7] = -Infinity;
      logits[n - 2] = Number.NaN;
      const sorted = sortedCandidates(logits);
      for (const topK of [0, 1, 40, n])
        for (const topP of [1, 0.9, 0.4])
          for (const minP of [0, 0.05, 0.3])
            for (const temperature of [0.4, 1, 2.5]) {
              const o = { temperature, topK, topP, minP, seed: checked };
              const sampler = new Sampler(o);
              const rng = new Rng(checked);
              for (let draw = 0; draw < 3; draw++) {
                const got = sampler.sample(logits.slice());
                expect(got, `${name} ${JSON.stringify(o)} draw ${draw} (vocabulary seed ${seed})`).toBe(plainSample(sorted, o, rng));
              }
              checked++;
            }
    }
    expect(checked).toBe(4 * 4 * 3 * 3 * 3);
  });


  it("is greedy at temperature 0 and breaks ties toward the lower id", () => {
    const logits = randomLogits(1000, 1);
    const s = new Sampler({ temperature: 0 });
    expect(s.sample(logits.slice())).toBe(argmax(logits));
    const tie = new Float32Array([0.5, 2, 2, -1]);
    expect(new Sampler({ temperature: 0 }).sample(tie)).toBe(1);
  });

  it("gives the same tokens for the same seed and different ones for another", () => {
    const logits = randomLogits(500, 2);
    const run = (seed: number) => {
      const s = new Sampler({ seed, temperature: 1.5, topK: 0, topP: 1, minP: 0 });
      return Array.from({ length: 50 }, () => s.sample(logits.slice()));
    };
    expect(run(42)).toEqual(run(42));
    expect(run(42)).not.toEqual(run(43));
  });

  it("draws from softmax(logits / T) when no truncation is active", () => {
    const logits = new Float32Array([1.0, 0.2, -0.5, 2.0, 0.7]);
    const T = 0.7;
    const s = new Sampler({ seed: 7, temperature: T, topK: 0, topP: 1, minP: 0 });
    const draws = 40000;
    const h = histogram(s, logits, draws);
    const p = softmax(logits, T);
    for (let i = 0; i < p.length; i++) {
      const observed = (h.get(i) ?? 0) / draws;
      const sigma = Math.sqrt((p[i] * (1 - p[i])) / draws);
      expect(Math.abs(observed - p[i])).toBeLessThan(5 * sigma + 1e-9);
    }
  });

  it("top-k keeps only the k most likely tokens", () => {
    const logits = randomLogits(300, 3);
    const top = Array.from(logits.keys()).sort((a, b) => logits[b] - logits[a]).slice(0, 5);
    const h = histogram(new Sampler({ seed: 1, temperature: 5, topK: 5, topP: 1, minP: 0 }), logits, 3000);
    for (const id of h.keys()) expect(top).toContain(id);
    expect(h.size).toBe(5);
  });

  it("top-p keeps the smallest prefix reaching p", () => {
    const logits = new Float32Array([3, 2, 1, 0, -1]);
    const p = softmax(logits);
    // p[0] + p[1] ≈ 0.89 < 0.9 <= p[0]+p[1]+p[2]: three tokens survive.
    expect(p[0] + p[1]).toBeLessThan(0.9);
    const h = histogram(new Sampler({ seed: 2, temperature: 1, topK: 0, topP: 0.9, minP: 0 }), logits, 5000);
    expect([...h.keys()].sort()).toEqual([0, 1, 2]);
  });

  it("min-p drops tokens below minP times the best probability", () => {
    const logits = new Float32Array([0, Math.log(0.5), Math.log(0.09), Math.log(0.2)]);
    const h = histogram(new Sampler({ seed: 3, temperature: 1, topK: 0, topP: 1, minP: 0.1 }), logits, 5000);
    expect([...h.keys()].sort()).toEqual([0, 1, 3]);
  });

  it("applies repetition, frequency and presence penalties to recent tokens only", () => {
    const logits = new Float32Array([2, -2, 1, 1]);
    const s = new Sampler({ temperature: 0, repeatPenalty: 2, frequencyPenalty: 0.25, presencePenalty: 0.5, repeatLastN: 3 });
    const l = logits.slice();
    s.sample(l, [3, 0, 1, 0]); // last 3: 0, 1, 0
    expect(l[0]).toBeCloseTo(2 / 2 - 2 * 0.25 - 0.5);
    expect(l[1]).toBeCloseTo(-2 * 2 - 0.25 - 0.5);
    expect(l[2]).toBe(1);
    expect(l[3]).toBe(1); // outside the window
  });

  it("rejects invalid options with a coded error", () => {
    expect(() => new Sampler({ topP: 1.5 })).toThrow(expect.objectContaining({ code: "ERR_INVALID_ARGUMENT" }));
    expect(() => new Sampler({ topK: 2.5 })).toThrow(expect.objectContaining({ code: "ERR_INVALID_ARGUMENT" }));
    expect(() => new Sampler({ seed: 0.5 })).toThrow(expect.objectContaining({ code: "ERR_INVALID_ARGUMENT" }));
    const huge = randomLogits(2 ** 21 + 1, 5);
    expect(() => new Sampler({ seed: 1 }).sample(huge)).toThrow(expect.objectContaining({ code: "ERR_INVALID_ARGUMENT" }));
  });
});
