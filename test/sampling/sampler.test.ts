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

describe("sampler", () => {
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
  });
});
