/**
 * Granite's multipliers on the CPU backend: each one the file sets changes the logits the way
 * llama.cpp's build_granite applies it (so an executor that ignored one fails here), the
 * logit scale divides exactly, `rope.scaling.finetuned = false` turns RoPE off, and damaged
 * values are refused with a coded error. Agreement with llama.cpp on the same files is in
 * test/conformance/architectures.test.ts.
 */
import path from "node:path";
import { describe, expect, it } from "vitest";
import { loadModel } from "../../lib/index.js";
import { writeSyntheticModel, type ModelShape } from "../../dev/synthetic-model.js";
import { randomTokens } from "../helpers/compare-llama-cpp.js";
import { relativeError } from "../../dev/kernels/harness.js";
import { code } from "../helpers/error-code.js";
import { hasShared, tempDir } from "../helpers/paths.js";

const BASE: ModelShape = {
  architecture: "granite", nLayer: 2, nEmbd: 128, nHead: 4, nHeadKv: 2, nFf: 256, contextLength: 4096,
  ropeFreqBase: 1e4, normEps: 1e-5, multipliers: { logit: 1 },
};

describe.runIf(hasShared)("granite multipliers (CPU)", () => {
  const dir = tempDir("granite");
  let n = 0;
  const write = (shape: ModelShape) => {
    const file = path.join(dir, `granite-${n++}.gguf`);
    writeSyntheticModel(file, shape, { weights: "F32", vocab: "stories", seed: 9 });
    return file;
  };
  const tokens = randomTokens(12, 512, 4);
  async function logits(shape: ModelShape): Promise<Float32Array> {
    const model = await loadModel(write(shape), { backend: "cpu", threads: 2, contextSize: 64 });
    try {
      return Float32Array.from(await model.createSession().evaluateAll(tokens));
    } finally {
      model.dispose();
    }
  }

  it("each multiplier changes the logits; a residual scale of 1 changes nothing", async () => {
    const base = await logits(BASE);
    const m = BASE.multipliers!;
    for (const changed of [{ ...m, embedding: 12 }, { ...m, residual: 0.22 }, { ...m, attention: 0.05 }])
      expect(relativeError(await logits({ ...BASE, multipliers: changed }), base), JSON.stringify(changed)).toBeGreaterThan(1e-2);
    expect(await logits({ ...BASE, multipliers: { ...m, residual: 1 } })).toEqual(base);
    // attention.scale 1/sqrt(head_dim) is the default softmax scale.
    expect(await logits({ ...BASE, multipliers: { ...m, attention: 1 / Math.sqrt(32) } })).toEqual(base);
  });

  it("the logits are divided by logit_scale (a power of two: exactly)", async () => {
    const base = await logits(BASE);
    const quarter = await logits({ ...BASE, multipliers: { logit: 4 } });
    expect(quarter.map((v) => v * 4)).toEqual(base);
  });

  it("rope.scaling.finetuned = false turns RoPE off, true leaves it on", async () => {
    const base = await logits(BASE);
    expect(await logits({ ...BASE, ropeFinetuned: true })).toEqual(base);
    expect(relativeError(await logits({ ...BASE, ropeFinetuned: false }), base)).toBeGreaterThan(1e-2);
  });

  it("a missing or zero logit scale and a negative residual scale are refused", async () => {
    // Absent where the recipe requires it: the file is not a Granite model Tessera can run;
    // present but out of range: a damaged key.
    const cases: Array<[ModelShape["multipliers"], string]> = [
      [{}, "ERR_MODEL_INCOMPATIBLE"],
      [{ logit: 0 }, "ERR_GGUF_MALFORMED"],
      [{ logit: 1, residual: -0.5 }, "ERR_GGUF_MALFORMED"],
    ];
    for (const [multipliers, expected] of cases) {
      const file = write({ ...BASE, multipliers });
      expect(await code(() => loadModel(file, { backend: "cpu", threads: 1 })), JSON.stringify(multipliers)).toBe(expected);
    }
  });
});
