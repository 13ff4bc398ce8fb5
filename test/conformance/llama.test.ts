/**
 * Acceptance: Tessera's logits agree with llama.cpp (node-llama-cpp, same file, same
 * threads) on the real stories260K model and on synthetic random-weight Llama GGUFs written
 * by our writer in every weight type: top-1 identical at every position of a 64-token
 * sequence and relative error ||ours - ref|| / ||ref|| within the type's budget.
 */
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { writeSyntheticModel, type ModelShape, type WeightScheme } from "../../dev/synthetic-model.js";
import { compareWithLlamaCpp as compare, randomTokens } from "../helpers/compare-llama-cpp.js";
import { expectBitIdentical, llamaCppRunsAvx2Variant } from "../helpers/llama-cpp-variant.js";
import { hasShared, stories260K, tempDir } from "../helpers/paths.js";

const SEQ = 64;

/**
 * Budgets on the per-position relative error. Both engines round and quantize activations
 * identically (llama.cpp with its standard attention path: flash attention off, since its
 * CPU flash attention accumulates V in fp16). Where llama.cpp runs its AVX2 variant every
 * sum and rounding follows it (the matmuls in the order of the kernel it picks for each
 * weight type and shape, RoPE's fused multiply-adds included), so the logits agree to the
 * bit in every weight type, stories260K included (see EXACT below). The budgets are for CPUs
 * where llama.cpp runs another ISA variant with other sums: with float weights that fp32
 * noise now and then moves one value across an fp16 rounding boundary (the KV cache is fp16
 * in both): usually ~1e-4 with fp32 activations, but one flipped fp16 rounding is ~5e-4 of
 * that value and stories260K has shown 5.4e-4; ~1e-3 with fp16/bf16. With quantized weights
 * a last-bit difference can flip an int8 activation quantum (~1% of the block's range) that
 * propagates and re-quantizes downstream, so the two engines differ by up to the
 * activation-quantization noise itself (each is ~1.5e-2 from a float64 forward pass on these
 * random models).
 */
const BUDGET: Record<WeightScheme | "stories", number> = {
  stories: 1e-3,
  F32: 1e-3,
  F16: 3e-3,
  BF16: 1e-2,
  Q8_0: 4e-2,
  Q4_0: 4e-2,
  Q4_K: 4e-2,
  Q6_K: 4e-2,
  Q4_K_M: 4e-2,
  // Blocks of 32 (issue 28): int8 activations as Q8_0's, the same cascade budget.
  Q5_0: 4e-2,
  Q4_1: 4e-2,
  Q5_1: 4e-2,
  IQ4_NL: 4e-2,
  MXFP4: 4e-2,
  Q5_K: 4e-2,
  Q5_K_M: 4e-2,
  Q3_K: 4e-2,
  Q3_K_M: 4e-2,
  // Two-bit weights leave each engine 3-5e-2 from a float64 forward pass on these random
  // models (three seeds: Tessera 3.2-5.1e-2, llama.cpp 3.2-4.3e-2 from it), so the two sit
  // further apart than for the other types: up to 3.4e-2 over 24 seeds, and 4.7e-2 once in
  // CI (dev box, where llama.cpp runs its AVX-512 variant).
  Q2_K: 6e-2,
  // Each engine sits 2.3-3.5e-2 from a float64 forward pass (20 seeds); the two were up to
  // 2.4e-2 apart there, and 4.3e-2 once in CI.
  IQ4_XS: 5e-2,
};

/**
 * Where llama.cpp loads its AVX2 ("haswell") CPU variant the logits must agree to the bit,
 * not just within budget: any change to a sum order or a rounding shows here first.
 * Elsewhere fp32/fp16 noise, or an int8 quantum it moves, can swap a tie, so a different
 * top-1 is accepted only where llama.cpp itself scores the two candidates within the
 * budget's reach (a near-tie).
 */
const EXACT = llamaCppRunsAvx2Variant;

/** Issue 28's blocks-of-32 types. */
const BLOCK32_SCHEMES = ["Q5_0", "Q4_1", "Q5_1", "IQ4_NL", "MXFP4"] as const;
/**
 * Types whose matrices of whole 8-row groups llama.cpp's AVX2 build repacks (mxfp4_8x8: one
 * fp32 lane per row, a multiply-add per block) while Tessera sums them in its vec_dot order
 * (8 lanes, even and odd blocks apart): not bit-identical there, within budget. (IQ4_NL is
 * repacked alike on both sides, as Q4_0x8 with a level table.)
 */
const NOT_EXACT = new Set<string>(["MXFP4"]);

const SMALL_LLAMA: ModelShape = {
  architecture: "llama",
  nLayer: 2,
  nEmbd: 256,
  nHead: 4,
  nHeadKv: 2,
  nFf: 512,
  contextLength: 256,
};

describe.runIf(hasShared)("logits match llama.cpp", () => {
  const dir = tempDir("conformance");
  const results: string[] = [];
  afterAll(() => console.log(`conformance vs llama.cpp (max rel error per position, top-1 matches of ${SEQ}):\n${results.join("\n")}`));

  it("stories260K (real model, F32)", async () => {
    const r = await compare(stories260K, randomTokens(SEQ, 512, Date.now() >>> 0), 512, BUDGET.stories);
    results.push(`  stories260K  rel ${r.maxRel.toExponential(2)}  batched ${r.maxBatchRel.toExponential(2)}  top-1 ${r.top1}/${SEQ} (+${r.nearTies} near-ties)`);
    expect(r.top1 + r.nearTies).toBe(SEQ);
    expect(r.maxRel).toBeLessThan(BUDGET.stories);
    expect(r.maxBatchRel).toBeLessThan(BUDGET.stories);
    if (EXACT) expectBitIdentical(r);
  }, 180_000);

  for (const scheme of ["F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_K", "Q6_K", ...BLOCK32_SCHEMES, "Q5_K", "Q5_K_M", "Q3_K", "Q3_K_M", "Q2_K", "IQ4_XS"] as const) {
    it(`synthetic llama, ${scheme} weights`, async () => {
      const seed = (Date.now() >>> 0) ^ scheme.length;
      const file = path.join(dir, `llama-${scheme}.gguf`);
      writeSyntheticModel(file, SMALL_LLAMA, { weights: scheme, vocab: "stories", seed });
      const r = await compare(file, randomTokens(SEQ, 512, seed), 512, BUDGET[scheme]);
      results.push(`  ${scheme.padEnd(11)}  rel ${r.maxRel.toExponential(2)}  batched ${r.maxBatchRel.toExponential(2)}  top-1 ${r.top1}/${SEQ} (+${r.nearTies} near-ties)`);
      expect(r.top1 + r.nearTies).toBe(SEQ);
      expect(r.maxRel).toBeLessThan(BUDGET[scheme]);
      expect(r.maxBatchRel).toBeLessThan(BUDGET[scheme]);
      if (EXACT && !NOT_EXACT.has(scheme)) expectBitIdentical(r);
    }, 180_000);
  }
});
