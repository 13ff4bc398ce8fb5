/**
 * KV cache types (issue 19): keys and values stored as q8_0 or q4_0 in the engine's blocks
 * give logits within budget of llama.cpp run with the same cache types on the same file
 * (llama.cpp takes a quantized cache only with flash attention, so that is its path here),
 * on a dense GQA model and on a mixture of experts; and the quantization is really applied:
 * the logits move away from the f16 cache's by more than fp32 noise.
 */
import path from "node:path";
import { describe, expect, it } from "vitest";
import { loadModel } from "../../lib/index.js";
import { relativeError } from "../../dev/kernels/harness.js";
import { writeSyntheticModel, type ModelShape } from "../../dev/synthetic-model.js";
import { compareWithLlamaCpp, randomTokens } from "../helpers/compare-llama-cpp.js";
import { hasShared, tempDir } from "../helpers/paths.js";

const SEQ = 64;
/**
 * F32 weights, so the cache is the only quantization: both engines Hadamard-rotate q, k and v
 * the same way, quantize every key and value row to the same bytes and take the same integer
 * dot products for the scores; what differs is fp32 rounding in the softmax and the value
 * sums (llama.cpp's flash attention keeps a running maximum and rescales), and where that
 * moves a later layer's key across a quantization step, one quantum's worth of a key.
 */
const BUDGET = { q8_0: 2e-3, q4_0: 2e-3 } as const;

const SHAPES: Record<string, ModelShape> = {
  "llama (GQA 4/2, head 64)": { architecture: "llama", nLayer: 2, nEmbd: 256, nHead: 4, nHeadKv: 2, nFf: 512, contextLength: 4096 },
  "qwen3moe (q/k norm, top-8 of 16)": { architecture: "qwen3moe", nLayer: 2, nEmbd: 256, nHead: 8, nHeadKv: 2, headDim: 64, nFf: 512, contextLength: 4096, ropeFreqBase: 1e6, normEps: 1e-6, qkNorm: true, moe: { nExpert: 16, nExpertUsed: 8, nFfExp: 256, normTopK: true } },
};

describe.runIf(hasShared)("quantized KV cache against llama.cpp", () => {
  const dir = tempDir("kvcache");
  for (const [name, shape] of Object.entries(SHAPES)) {
    for (const kvCacheType of ["q8_0", "q4_0"] as const) {
      it(`${name}, ${kvCacheType} keys and values`, async () => {
        const file = path.join(dir, `${shape.architecture}.gguf`);
        writeSyntheticModel(file, shape, { weights: "F32", vocab: "stories", seed: 21 });
        const tokens = randomTokens(SEQ, 512, 4);
        const r = await compareWithLlamaCpp(file, tokens, 512, BUDGET[kvCacheType], { kvCacheType });
        console.log(`${name} ${kvCacheType}: rel ${r.maxRel.toExponential(2)} batched ${r.maxBatchRel.toExponential(2)} top-1 ${r.top1}/${SEQ} (+${r.nearTies} near-ties)`);
        expect(r.top1 + r.nearTies).toBe(SEQ);
        expect(r.maxRel).toBeLessThan(BUDGET[kvCacheType]);
        expect(r.maxBatchRel).toBeLessThan(BUDGET[kvCacheType]);

        // The cache type takes effect: against our own f16 cache the logits move by more
        // than the budget's fp32 share (q4_0 more than q8_0).
        const ours: Record<string, Float32Array> = {};
        for (const t of ["f16", kvCacheType] as const) {
          const model = await loadModel(file, { backend: "cpu", threads: 2, contextSize: 128, kvCacheType: t });
          ours[t] = await model.createSession().evaluateAll(tokens);
          model.dispose();
        }
        const moved = relativeError(ours[kvCacheType], ours.f16);
        console.log(`  vs f16 cache: rel ${moved.toExponential(2)}`);
        expect(moved).toBeGreaterThan(1e-4);
      }, 120_000);
    }
  }
});
