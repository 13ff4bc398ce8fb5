/**
 * Gemma 2/3 on the CPU backend: what the plan takes from a file (the window pattern and its
 * defaults, the local blocks' RoPE, the query scale by block count, the soft-caps), that each
 * block extra changes the logits the way llama.cpp's gemma2/gemma3 graphs apply it, and the
 * files it refuses. Agreement with llama.cpp on the same files is in
 * test/conformance/architectures.test.ts, the CUDA twin in test/cuda/emulated-backend.test.ts.
 */
import path from "node:path";
import { describe, expect, it } from "vitest";
import { loadModel } from "../../lib/index.js";
import { architecture } from "../../lib/arch/registry.js";
import { readGGUF } from "../../lib/gguf/reader.js";
import { buildPlan } from "../../lib/model/plan.js";
import { writeSyntheticModel, type ModelShape } from "../../dev/synthetic-model.js";
import { randomTokens } from "../helpers/compare-llama-cpp.js";
import { relativeError } from "../../dev/kernels/harness.js";
import { code } from "../helpers/error-code.js";
import { hasShared, tempDir } from "../helpers/paths.js";

const GEMMA2: ModelShape = {
  architecture: "gemma2", nLayer: 4, nEmbd: 128, nHead: 4, nHeadKv: 2, headDim: 32, nFf: 256, contextLength: 8192,
  normEps: 1e-6, tiedEmbeddings: true, postNorms: true,
};
const GEMMA3: ModelShape = {
  ...GEMMA2, architecture: "gemma3", nLayer: 6, tiedEmbeddings: false, qkNorm: true, ropeFreqBase: 1e6, slidingWindow: 512,
};

describe.runIf(hasShared)("gemma2 / gemma3 (CPU)", () => {
  const dir = tempDir("gemma");
  let n = 0;
  const write = (shape: ModelShape) => {
    const file = path.join(dir, `gemma-${n++}.gguf`);
    writeSyntheticModel(file, shape, { weights: "F32", vocab: "stories", seed: 5 });
    return file;
  };
  const plan = (shape: ModelShape) => buildPlan(readGGUF(write(shape)), architecture(shape.architecture)).plan;
  const tokens = randomTokens(16, 512, 3);
  async function logits(shape: ModelShape): Promise<Float32Array> {
    const model = await loadModel(write(shape), { backend: "cpu", threads: 2, contextSize: 64 });
    try {
      return Float32Array.from(await model.createSession().evaluateAll(tokens));
    } finally {
      model.dispose();
    }
  }

  it("gemma2: window 4096 on even blocks when the file gives none, soft-caps 50 and 30, q scaled by 1/sqrt(head_dim)", () => {
    const p = plan(GEMMA2);
    expect(p.layers.map((l) => l.slidingWindow)).toEqual([4096, 0, 4096, 0]);
    expect([p.attnLogitSoftcap, p.finalLogitSoftcap]).toEqual([50, 30]);
    expect([p.queryScale, p.attnScale]).toEqual([Math.fround(1 / Math.sqrt(32)), 1]);
    expect(p.embeddingScale).toBe(Math.fround(Math.sqrt(128)));
    // The 27B's block count: 1/sqrt(n_embd / n_head) (here 128 / 4 = 32 as well, so use 8 heads of 32 over 128: 16).
    const big = plan({ ...GEMMA2, nLayer: 46, nHead: 8, nHeadKv: 4, slidingWindow: 12, softcaps: { attention: 0, final: 0 } });
    expect(big.queryScale).toBe(Math.fround(1 / 4));
    expect([big.attnLogitSoftcap, big.finalLogitSoftcap]).toEqual([0, 0]);
    expect(big.layers.slice(0, 4).map((l) => l.slidingWindow)).toEqual([12, 0, 12, 0]);
  });

  it("gemma3: 5 local blocks of 6 rotate with rope.freq_base_swa (10000 by default) unscaled, no window without the key", () => {
    const p = plan({ ...GEMMA3, ropeScaling: { type: "linear", factor: 8 } });
    expect(p.layers.map((l) => l.slidingWindow)).toEqual([512, 512, 512, 512, 512, 0]);
    expect(p.layers.map((l) => l.ropeFreqBase)).toEqual([10000, 10000, 10000, 10000, 10000, undefined]);
    expect(p.rope.freqScale).toBe(1 / 8);
    expect(p.attnLogitSoftcap).toBe(0);
    expect(plan({ ...GEMMA3, ropeFreqBaseSwa: 1234 }).layers[0].ropeFreqBase).toBe(1234);
    const global = plan({ ...GEMMA3, slidingWindow: undefined });
    expect(global.layers.every((l) => l.slidingWindow === 0 && l.ropeFreqBase === undefined)).toBe(true);
  });

  it("the final soft-cap bounds the logits; the attention cap and the local RoPE base change them", async () => {
    const capped = await logits({ ...GEMMA2, softcaps: { final: 3 } });
    const max = capped.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    expect(max).toBeLessThanOrEqual(3);
    expect(max).toBeGreaterThan(2.5);  // uncapped logits reach far beyond 3 here
    const base = await logits(GEMMA2);
    expect(relativeError(await logits({ ...GEMMA2, softcaps: { attention: 2 } }), base)).toBeGreaterThan(1e-3);
    const g3 = await logits(GEMMA3);
    expect(relativeError(await logits({ ...GEMMA3, ropeFreqBaseSwa: 100 }), g3)).toBeGreaterThan(1e-3);
  });

  it("refuses a file without post-norms, gemma2 with its own output.weight, and gemma3 local blocks under YaRN", async () => {
    const load = (shape: ModelShape) => code(() => loadModel(write(shape), { backend: "cpu", threads: 1 }));
    expect(await load({ ...GEMMA2, postNorms: false })).toBe("ERR_MODEL_INCOMPATIBLE");
    expect(await load({ ...GEMMA2, tiedEmbeddings: false })).toBe("ERR_MODEL_INCOMPATIBLE");
    expect(await load({ ...GEMMA3, ropeScaling: { type: "yarn", factor: 4, originalContext: 4096 } })).toBe("ERR_MODEL_INCOMPATIBLE");
    expect(await load({ ...GEMMA2, softcaps: { attention: -1 } })).toBe("ERR_GGUF_MALFORMED");
  });
});
