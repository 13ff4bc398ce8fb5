/**
 * Phi-3 on the CPU backend: the plan's reading of fused tensors and LongRoPE (which factor
 * tensor a context size picks), and the files it refuses. Agreement with llama.cpp on the
 * same files is in test/conformance/architectures.test.ts.
 */
import path from "node:path";
import { describe, expect, it } from "vitest";
import { loadModel } from "../../lib/index.js";
import { architecture } from "../../lib/arch/registry.js";
import { readGGUF } from "../../lib/gguf/reader.js";
import { buildPlan, chooseRopeFactors } from "../../lib/model/plan.js";
import { writeSyntheticModel, type ModelShape } from "../../dev/synthetic-model.js";
import { code } from "../helpers/error-code.js";
import { hasShared, tempDir } from "../helpers/paths.js";

const PHI3: ModelShape = {
  architecture: "phi3", nLayer: 2, nEmbd: 128, nHead: 4, nHeadKv: 4, nFf: 96, contextLength: 131072, normEps: 1e-5,
  fused: { qkv: true, gateUp: true }, longRope: { attnFactor: 1.19, originalContext: 4096 },
};

describe.runIf(hasShared)("phi3 (CPU)", () => {
  const dir = tempDir("phi3");
  let n = 0;
  const write = (shape: ModelShape) => {
    const file = path.join(dir, `phi3-${n++}.gguf`);
    writeSyntheticModel(file, shape, { weights: "F32", vocab: "stories", seed: 2 });
    return file;
  };

  it("reads fused q/k/v and [gate | up], and picks LongRoPE's factors by the context size", () => {
    const file = readGGUF(write(PHI3));
    const name = (i: number) => file.tensors[i].name;
    const built = buildPlan(file, architecture("phi3"));
    expect(built.plan.nFf).toBe(96);
    expect(built.plan.ffnFusedGateUp).toBe(true);
    expect(name(built.plan.layers[0].wqkv!)).toBe("blk.0.attn_qkv.weight");
    expect(built.plan.layers[0].ffnGate).toBeUndefined();
    expect(built.plan.rope.yarnAttnFactor).toBeCloseTo(1.19, 6);
    expect(built.plan.queryScale).toBe(Math.fround(1 / Math.sqrt(32)));
    chooseRopeFactors(built, 4096);
    expect(name(built.plan.rope.freqFactors)).toBe("rope_factors_short.weight");
    chooseRopeFactors(built, 4097);
    expect(name(built.plan.rope.freqFactors)).toBe("rope_factors_long.weight");
  });

  it("runs a 4097-token context on the long factors and a default one on the short ones, differently", async () => {
    const file = write(PHI3);
    const tokens = [1, 50, 60, 70, 80, 90, 100, 110];
    const run = async (contextSize?: number) => {
      const model = await loadModel(file, { backend: "cpu", threads: 2, contextSize, kvCacheTokens: 4608 });
      try {
        return Float32Array.from(await model.createSession().evaluateAll(tokens));
      } finally {
        model.dispose();
      }
    };
    const short = await run(), long = await run(4097);
    expect(short.every(Number.isFinite) && long.every(Number.isFinite)).toBe(true);
    expect(long).not.toEqual(short);
  });

  it("refuses a file with separate ffn_gate/ffn_up (not how llama.cpp reads phi3)", async () => {
    const gated = write({ ...PHI3, fused: { qkv: true, gateUp: false } });
    expect(await code(() => loadModel(gated, { backend: "cpu", threads: 1 }))).toBe("ERR_MODEL_INCOMPATIBLE");
  });
});
