/**
 * Greedy picks computed natively with each step (core/argmax.h): the same index as the JS scan
 * (lowest on ties, across chunk boundaries, signed zeros, -Infinity rows), used by the sampler
 * only when it changes no logit, and generations identical with and without it.
 */
import { describe, expect, it } from "vitest";
import { kernels } from "../../dev/kernels/harness.js";
import { loadModel } from "../../lib/index.js";
import { Sampler, argmax } from "../../lib/sampling/sampler.js";
import { Rng } from "../../lib/sampling/rng.js";
import { hasShared, stories260K } from "../helpers/paths.js";

function randomLogits(n: number, rng: Rng): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (rng.next() - 0.5) * 20;
  return out;
}

describe("native argmax", () => {
  const k = kernels();
  it("matches the JS scan on random rows of odd sizes", () => {
    const rng = new Rng(Date.now() >>> 0);
    for (const n of [1, 2, 15, 16, 17, 1023, 1024, 1025, 4097, 32000, 49153, 151936]) {
      const x = randomLogits(n, rng);
      expect(k.argmax(x), `n=${n}`).toBe(argmax(x));
    }
  });

  it("keeps the lowest index among ties, inside a chunk and across chunks", () => {
    const rng = new Rng(7);
    for (const [n, at] of [
      [5000, [3, 9]],
      [5000, [1023, 1024]],
      [5000, [2048, 4999]],
      [5000, [17, 2000, 4000]],
      [49152, [49151, 40000]],
    ] as Array<[number, number[]]>) {
      const x = randomLogits(n, rng);
      for (const i of at) x[i] = 100;
      expect(k.argmax(x)).toBe(Math.min(...at));
      expect(k.argmax(x)).toBe(argmax(x));
    }
  });

  it("treats -0 and +0 as equal and rows of -Infinity as the scan does", () => {
    const z = new Float32Array(3000).fill(-1);
    z[1500] = -0;
    z[2500] = 0;
    expect(k.argmax(z)).toBe(1500);
    expect(argmax(z)).toBe(1500);
    const inf = new Float32Array(2049).fill(-Infinity);
    expect(k.argmax(inf)).toBe(argmax(inf));
    inf[2048] = -1e30;
    expect(k.argmax(inf)).toBe(2048);
  });
});

describe("Sampler with an argmax hint", () => {
  const logits = Float32Array.of(0.5, 3, 1, 2.5);
  it("returns the hint when greedy sampling changes no logit", () => {
    // A hint that disagrees with the row shows the scan was skipped.
    expect(new Sampler({ temperature: 0 }).sample(logits.slice(), [], undefined, 3)).toBe(3);
    expect(new Sampler({ temperature: 0, repeatPenalty: 1.3, repeatLastN: 0 }).sample(logits.slice(), [1], undefined, 3)).toBe(3);
  });

  it("scans when a bias, a penalty, a mask or temperature changes the pick", () => {
    expect(new Sampler({ temperature: 0, logitBias: { 3: 1 } }).sample(logits.slice(), [], undefined, 1)).toBe(3);
    expect(new Sampler({ temperature: 0, repeatPenalty: 2 }).sample(logits.slice(), [1], undefined, 1)).toBe(3);
    expect(new Sampler({ temperature: 0, presencePenalty: 1 }).sample(logits.slice(), [1], undefined, 1)).toBe(3);
    const mask = { count: 1, bits: Uint32Array.of(1 << 2), ids: Int32Array.of(2) };
    expect(new Sampler({ temperature: 0 }).sample(logits.slice(), [], mask, 1)).toBe(2);
    expect(new Sampler({ temperature: 1, topK: 1, seed: 1 }).sample(logits.slice(), [], undefined, 3)).toBe(1);
  });

  it("ignores a hint outside the row and refuses a row with nothing to sample", () => {
    expect(new Sampler({ temperature: 0 }).sample(logits.slice(), [], undefined, 99)).toBe(1);
    expect(() => new Sampler({ temperature: 0 }).sample(new Float32Array(4).fill(-Infinity), [], undefined, 0)).toThrow(/nothing|sample/i);
  });
});

describe.skipIf(!hasShared)("generations with the engine's argmax", () => {
  it("gives the tokens of the JS scan, alone and 6 at once (stories260K)", async () => {
    const model = await loadModel(stories260K, { threads: 1 });
    try {
      const prompts = ["Once upon a time", "The cat", "Lily and Ben", "A big red", "The sun", "Tom had"];
      // logitBias 0 changes no value but turns the hint off: the sampler scans the row itself.
      const scan = [];
      for (const p of prompts) scan.push((await model.complete(p, { maxTokens: 40, temperature: 0, logitBias: { 0: 0 } })).tokens);
      const alone = [];
      for (const p of prompts) alone.push((await model.complete(p, { maxTokens: 40, temperature: 0 })).tokens);
      const together = (await Promise.all(prompts.map((p) => model.complete(p, { maxTokens: 40, temperature: 0 })))).map((c) => c.tokens);
      expect(alone).toEqual(scan);
      expect(together).toEqual(scan);
    } finally {
      model.dispose();
    }
  });
});
