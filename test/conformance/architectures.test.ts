/**
 * Acceptance (issue 6): each architecture, as a synthetic random-weight GGUF at a small
 * real-looking shape, loads in both Tessera and llama.cpp and the logits agree (top-1 on every
 * position of 64 tokens up to near-ties, relative error within budget) in F32 and in one
 * quantized type.
 */
import path from "node:path";
import { describe, expect, it } from "vitest";
import { writeSyntheticModel, type ModelShape, type WeightScheme } from "../../dev/synthetic-model.js";
import { compareWithLlamaCpp, randomTokens } from "../helpers/compare-llama-cpp.js";
import { expectBitIdentical, llamaCppRunsAvx2Variant } from "../helpers/llama-cpp-variant.js";
import { hasShared, tempDir } from "../helpers/paths.js";

const SEQ = 64;
/** F32: fp32 summation noise, plus now and then one flipped fp16 KV-cache rounding (~5e-4 of
 *  that value; see test/conformance/llama.test.ts). Q8_0: one moved int8 quantum's cascade. */
const BUDGET: Partial<Record<WeightScheme, number>> = { F32: 1e-3, Q8_0: 4e-2, Q4_K_M: 4e-2 };

const MELLUM: ModelShape = { architecture: "mellum", nLayer: 2, nEmbd: 256, nHead: 8, nHeadKv: 2, headDim: 64, nFf: 512, contextLength: 4096, ropeFreqBase: 1e6, normEps: 1e-6, qkNorm: true, slidingWindow: 12, moe: { nExpert: 8, nExpertUsed: 8, nFfExp: 256 } };

/** Beyond F32 and Q8_0: the MoE dispatch over 8-row repacked Q4_K experts (and Q6_K down
 *  projections), sliced out of the stacked tensors. */
const MORE_SCHEMES: Record<string, WeightScheme[]> = { "qwen3moe (top-8 of 16, renormalized)": ["Q4_K_M"] };

const SHAPES: Record<string, ModelShape> = {
  "qwen2 (q/k/v bias, neox RoPE)": { architecture: "qwen2", nLayer: 2, nEmbd: 256, nHead: 4, nHeadKv: 2, nFf: 512, contextLength: 4096, ropeFreqBase: 1e6, normEps: 1e-6, qkvBias: true },
  "qwen3 (q/k RMSNorm, head_dim 64 ≠ n_embd/n_head)": { architecture: "qwen3", nLayer: 2, nEmbd: 256, nHead: 8, nHeadKv: 2, headDim: 64, nFf: 512, contextLength: 4096, ropeFreqBase: 1e6, normEps: 1e-6, qkNorm: true },
  "mixtral (llama + 8 experts, top-2)": { architecture: "llama", nLayer: 2, nEmbd: 256, nHead: 4, nHeadKv: 2, nFf: 256, contextLength: 4096, moe: { nExpert: 8, nExpertUsed: 2, nFfExp: 256 } },
  "qwen2moe (top-4 of 8, shared expert with sigmoid gate)": { architecture: "qwen2moe", nLayer: 2, nEmbd: 256, nHead: 4, nHeadKv: 2, nFf: 512, contextLength: 4096, ropeFreqBase: 1e6, normEps: 1e-6, qkvBias: true, moe: { nExpert: 8, nExpertUsed: 4, nFfExp: 256, nFfShexp: 512, sharedGate: true, normTopK: false } },
  "qwen3moe (top-8 of 16, renormalized)": { architecture: "qwen3moe", nLayer: 2, nEmbd: 256, nHead: 8, nHeadKv: 2, headDim: 64, nFf: 512, contextLength: 4096, ropeFreqBase: 1e6, normEps: 1e-6, qkNorm: true, moe: { nExpert: 16, nExpertUsed: 8, nFfExp: 256, normTopK: true } },
  // Sliding-window attention, Mistral-style (every block) and interleaved local/global. The
  // default 3 local + 1 global needs 4 blocks, where Q8_0 rounding alone (window or not) makes
  // occasional top-1 flips, so that one is checked in F32 only (F32_ONLY below). Every expert
  // is active so that Q8_0 rounding can't flip a top-k choice (a discrete jump that would
  // swamp the window's effect); routing itself is covered by the MoE cases above.
  "mellum (qwen3moe block), sliding window 12 on every block": { ...MELLUM, nLayer: 2, slidingWindowPattern: 0 },
  "mellum, window 12 on every other block (the file's pattern period 2)": { ...MELLUM, nLayer: 2, slidingWindowPattern: 2 },
  // llama.cpp reads attention.sliding_window only for architectures that define a window;
  // a `llama` file carrying the key still gets full attention, in both engines.
  "llama with llama.attention.sliding_window = 12 (ignored)": { architecture: "llama", nLayer: 2, nEmbd: 256, nHead: 4, nHeadKv: 2, nFf: 512, contextLength: 4096, slidingWindow: 12 },
  "llama, linear RoPE scaling x4": { architecture: "llama", nLayer: 2, nEmbd: 256, nHead: 4, nHeadKv: 2, nFf: 512, contextLength: 16384, ropeScaling: { type: "linear", factor: 4 } },
  "llama, rope_freqs frequency factors (Llama 3.1 style)": { architecture: "llama", nLayer: 2, nEmbd: 256, nHead: 4, nHeadKv: 2, nFf: 512, contextLength: 131072, ropeFreqBase: 500000, ropeFreqFactors: true },
  // DeepSeek-V2-Lite layout: q straight from attn_q, softmax routing, one leading dense block,
  // two shared experts; YaRN with mscale_all_dim 0.707 (the file's 0.1 * 0.707). Real files
  // extend x40; x4 keeps the sharper softmax from amplifying fp32 noise past the budget while
  // the mscale² on the softmax scale (1.21 here) still moves logits far if it were missing.
  "deepseek2 V2-Lite style (MLA without q LoRA, softmax top-2 of 8, 2 shared experts)": { architecture: "deepseek2", nLayer: 2, nEmbd: 256, nHead: 4, nHeadKv: 1, nFf: 512, contextLength: 16384, normEps: 1e-6, mla: { qLoraRank: 0, kvLoraRank: 128, headDimNope: 64, headDimRope: 32, headDimV: 64, yarnLogMultiplier: 0.0707 }, ropeScaling: { type: "yarn", factor: 4, originalContext: 4096 }, moe: { nExpert: 8, nExpertUsed: 2, nFfExp: 128, nSharedExpert: 2, nFfShexp: 256, leadingDenseBlocks: 1, weightsScale: 1 } },
  // DeepSeek-V3 layout: q LoRA, sigmoid routing with the exp_probs_b selection bias, 8 expert
  // groups of which 4 are eligible (V3's ratios), renormalized top-8 of 32 scaled by 2.5;
  // YaRN x4 with mscale_all_dim 1.
  "deepseek2 V3 style (MLA with q LoRA, sigmoid + bias, group-limited top-8 of 32, scale 2.5)": { architecture: "deepseek2", nLayer: 2, nEmbd: 256, nHead: 4, nHeadKv: 1, nFf: 512, contextLength: 16384, normEps: 1e-6, mla: { qLoraRank: 128, kvLoraRank: 128, headDimNope: 64, headDimRope: 32, headDimV: 64, yarnLogMultiplier: 0.1 }, ropeScaling: { type: "yarn", factor: 4, originalContext: 4096 }, moe: { nExpert: 32, nExpertUsed: 8, nFfExp: 64, nSharedExpert: 1, nFfShexp: 64, leadingDenseBlocks: 1, gating: "sigmoid", selectionBias: true, nGroup: 8, nGroupUsed: 4, normTopK: true, weightsScale: 2.5 } },
  // Granite 3.x's multipliers at their real magnitudes (8B: embedding 12, residual 0.22,
  // attention 1/128 for 128-wide heads, here 1/64 for 64; logits / 16).
  "granite (embedding, residual, attention and logit multipliers)": { architecture: "granite", nLayer: 2, nEmbd: 256, nHead: 4, nHeadKv: 2, nFf: 512, contextLength: 4096, ropeFreqBase: 1e7, normEps: 1e-5, multipliers: { embedding: 12, residual: 0.22, attention: 0.015625, logit: 16 } },
  "granitemoe (multipliers, softmax top-2 of 8, renormalized)": { architecture: "granitemoe", nLayer: 2, nEmbd: 256, nHead: 4, nHeadKv: 2, nFf: 256, contextLength: 4096, ropeFreqBase: 1e7, normEps: 1e-5, multipliers: { embedding: 12, residual: 0.22, attention: 0.015625, logit: 6 }, moe: { nExpert: 8, nExpertUsed: 2, nFfExp: 256 } },
  "granitemoe with a shared expert (GraniteMoE Shared)": { architecture: "granitemoe", nLayer: 2, nEmbd: 256, nHead: 4, nHeadKv: 2, nFf: 256, contextLength: 4096, ropeFreqBase: 1e7, normEps: 1e-5, multipliers: { embedding: 12, residual: 0.22, attention: 0.015625, logit: 6 }, moe: { nExpert: 8, nExpertUsed: 2, nFfExp: 256, nFfShexp: 384 } },
  "granite, RoPE off (rope.scaling.finetuned = false)": { architecture: "granite", nLayer: 2, nEmbd: 256, nHead: 4, nHeadKv: 2, nFf: 512, contextLength: 4096, normEps: 1e-5, multipliers: { embedding: 12, residual: 0.22, attention: 0.015625, logit: 16 }, ropeFinetuned: false },
  // Gemma 2: post-norms, GELU gate, embeddings x sqrt(n_embd), q x 1/sqrt(head_dim), scores
  // soft-capped at 50 and logits at 30 (the defaults: no keys written), window 12 on every
  // other block (local first).
  "gemma2 (post-norms, GELU, soft-caps by default, window 12 on even blocks)": { architecture: "gemma2", nLayer: 2, nEmbd: 256, nHead: 4, nHeadKv: 2, headDim: 64, nFf: 512, contextLength: 8192, normEps: 1e-6, tiedEmbeddings: true, postNorms: true, slidingWindow: 12 },
  // Soft-caps low enough to bind: scores beyond +-5 and logits beyond +-3 are squashed.
  "gemma2 with the file's soft-caps (attention 5, final 3)": { architecture: "gemma2", nLayer: 2, nEmbd: 256, nHead: 4, nHeadKv: 2, headDim: 64, nFf: 512, contextLength: 8192, normEps: 1e-6, tiedEmbeddings: true, postNorms: true, slidingWindow: 12, softcaps: { attention: 5, final: 3 } },
  // Gemma 3: q/k norms, 5 local blocks (window 12, base 10000, unscaled) then a global one
  // (base 1e6, linear x8), its own LM head.
  "gemma3 (q/k norms, 5 local + 1 global, local RoPE base, global linear x8)": { architecture: "gemma3", nLayer: 6, nEmbd: 256, nHead: 4, nHeadKv: 2, headDim: 64, nFf: 512, contextLength: 32768, ropeFreqBase: 1e6, normEps: 1e-6, qkNorm: true, postNorms: true, slidingWindow: 12, ropeFreqBaseSwa: 10000, ropeScaling: { type: "linear", factor: 8 } },
  // Phi-3: fused attn_qkv and [gate | up], q x 1/sqrt(96) (not a power of two: the scale
  // must round where llama.cpp's does).
  "phi3 (fused qkv and gate/up, head_dim 96)": { architecture: "phi3", nLayer: 2, nEmbd: 384, nHead: 4, nHeadKv: 2, nFf: 512, contextLength: 4096, normEps: 1e-5, fused: { qkv: true, gateUp: true } },
  // LongRoPE with rope.scaling.attn_factor: the short factors for the comparison's 128-token
  // context over an original 4096, the long ones over an original 64.
  "phi3 LongRoPE, short factors (context 128, original 4096)": { architecture: "phi3", nLayer: 2, nEmbd: 256, nHead: 4, nHeadKv: 4, nFf: 512, contextLength: 131072, normEps: 1e-5, fused: { qkv: true, gateUp: true }, longRope: { attnFactor: 1.19, originalContext: 4096 } },
  "phi3 LongRoPE, long factors (context 128, original 64)": { architecture: "phi3", nLayer: 2, nEmbd: 256, nHead: 4, nHeadKv: 4, nFf: 512, contextLength: 131072, normEps: 1e-5, fused: { qkv: false, gateUp: true }, longRope: { attnFactor: 1.19, originalContext: 64 } },
  // Mistral 3: YaRN with mscale_all_dim 1 (attention factor 1 / (1 + 0.1 ln 4) before RoPE's
  // correction), and attention temperature 0.5 over an original context of 16, so positions
  // 16..63 scale q by 1 + 0.5 ln 2 .. 1 + 0.5 ln 4.
  "mistral3 (YaRN x4 from 16, log multiplier 1, attention temperature 0.5)": { architecture: "mistral3", nLayer: 2, nEmbd: 256, nHead: 4, nHeadKv: 2, nFf: 512, contextLength: 4096, ropeFreqBase: 1e6, normEps: 1e-5, ropeScaling: { type: "yarn", factor: 4, originalContext: 16 }, yarnLogMul: 1, attnTemperature: 0.5 },
  // gpt-oss: sinks, biases everywhere, window 12 on even blocks, top-4 of 8 experts weighted
  // by the softmax of their logits, the clamped SwiGLU (gate/up biases push values past the
  // clamp at 7 now and then), YaRN x4.
  "gpt-oss (sinks, expert biases, softmax-weight routing, clamped SwiGLU, window 12)": { architecture: "gpt-oss", nLayer: 2, nEmbd: 256, nHead: 4, nHeadKv: 2, headDim: 64, nFf: 256, contextLength: 16384, ropeFreqBase: 150000, normEps: 1e-5, qkvBias: true, outputBias: true, attentionSinks: true, ffnNormName: "post_attention_norm.weight", slidingWindow: 12, ropeScaling: { type: "yarn", factor: 4, originalContext: 4096 }, moe: { nExpert: 8, nExpertUsed: 4, nFfExp: 256, biases: true } },
  "qwen2, YaRN x4 from 4096": { architecture: "qwen2", nLayer: 2, nEmbd: 256, nHead: 4, nHeadKv: 2, nFf: 512, contextLength: 16384, ropeFreqBase: 1e6, normEps: 1e-6, qkvBias: true, ropeScaling: { type: "yarn", factor: 4, originalContext: 4096 } },
};

/**
 * Mixture-of-experts routing can itself be a near-tie: where the engines' last-bit rounding
 * differences swap the expert at the top-k boundary (or a whole expert group) for the
 * runner-up, that one position's logits move far (0.1-0.3 relative). Sigmoid gating
 * (DeepSeek-V3) weighs that expert like the others, so it shows most: over 20 random seeds of
 * the V3-style case, 3 Q8_0 runs and 1 F32 run had one such position, none had two (the F32
 * one, instrumented: group scores 7.5e-6 apart). Softmax-routed Q8_0 cases show it too, more
 * rarely (counts from before the F32 router summed in llama.cpp's order: on AVX2 only the
 * F32 MoE cases can still differ at all, see mustBeExact). Up to this many positions of an
 * MoE run may miss the budget and top-1; a wrong route, bias, group limit or scale moves
 * nearly every position.
 *
 * Where llama.cpp runs another ISA variant than AVX2, a Q8_0 run's activation quanta can
 * cascade from the first position that differs by one (QUANTUM_CASCADES: ~1e-2 relative at
 * every later position), and from there each position's routing can swap on its own. The
 * V3-style case on the Zen 5 dev VM (AVX-512), seeds 1358733748 and 1358788058: cascades
 * from positions 4 and 16, then 3 isolated positions each at 0.13-0.26 (neighbours ~1e-2),
 * top-1 64/64; the same with the code of before (8a60dbb). So there up to a tenth of the
 * positions may miss, which a wrong route still far exceeds.
 */
const ROUTING_NEAR_TIES = 2;
const ROUTING_NEAR_TIES_OTHER_VARIANT = Math.ceil(SEQ / 10);
/**
 * Int8 activations (Q8_0 and Q8_K): a last-bit difference that moves one activation quantum cascades through
 * the later layers (the positions after it stay within budget, ~1e-2). On CPUs where
 * llama.cpp picks another ISA variant than AVX2 every case carries fp32 summation noise, and
 * a cascade can then move one position's pick beyond a near-tie.
 */
const QUANTUM_CASCADES = 1;

/**
 * Where llama.cpp runs its AVX2 variant Tessera follows its sums and roundings, so these
 * cases must agree to the bit (rel 0 at every position, no routing near-ties): every
 * quantized case, MoE and MLA included, and the F32 cases without experts. With F32 weights
 * the expert products keep Tessera's faster batch order where llama.cpp's mul_mat_id runs
 * its one-row kernel (see CpuExecutor::expert_matmul): fp32 noise of ~1e-5..2e-4 there.
 */
function mustBeExact(shape: ModelShape, scheme: WeightScheme): boolean {
  return llamaCppRunsAvx2Variant && (scheme !== "F32" || !shape.moe);
}

describe.runIf(hasShared)("architectures match llama.cpp", () => {
  const dir = tempDir("arch");
  for (const [name, shape] of Object.entries(SHAPES))
    for (const scheme of ["F32", "Q8_0", ...(MORE_SCHEMES[name] ?? [])])
      it(`${name}, ${scheme}`, async () => {
        const seed = process.env.TESSERA_TEST_SEED ? Number(process.env.TESSERA_TEST_SEED) : (Date.now() >>> 0) ^ name.length;
        const file = path.join(dir, `${name.replace(/[^a-z0-9]+/gi, "-")}-${scheme}.gguf`);
        writeSyntheticModel(file, shape, { weights: scheme, vocab: "stories", seed });
        const budget = BUDGET[scheme]!;
        const r = await compareWithLlamaCpp(file, randomTokens(SEQ, 512, seed), 512, budget);
        const off = r.positions.filter((p) => p.rel >= budget || p.batchRel >= budget || !(p.top1 || p.nearTie)).length;
        const allowed = shape.moe
          ? llamaCppRunsAvx2Variant ? ROUTING_NEAR_TIES : ROUTING_NEAR_TIES_OTHER_VARIANT
          : scheme === "F32" ? 0 : QUANTUM_CASCADES;
        const agreeing = r.positions.filter((p) => p.rel < budget && p.batchRel < budget);
        console.log(
          `${name} ${scheme} (seed ${seed}): rel ${r.maxRel.toExponential(2)} batched ${r.maxBatchRel.toExponential(2)} ` +
            `top-1 ${r.top1}/${SEQ} (+${r.nearTies} near-ties)` +
            (allowed ? `, ${off} routing near-tie position(s), rel elsewhere ${Math.max(...agreeing.map((p) => p.rel)).toExponential(2)}` : ""),
        );
        if (mustBeExact(shape, scheme)) expectBitIdentical(r);
        expect(off).toBeLessThanOrEqual(allowed);
        if (!allowed) {
          expect(r.top1 + r.nearTies).toBe(SEQ);
          expect(r.maxRel).toBeLessThan(budget);
          expect(r.maxBatchRel).toBeLessThan(budget);
        }
      }, 180_000);

  const F32_ONLY: Array<[string, ModelShape, number]> = [
    ["mellum, window 12 on 3 of every 4 blocks (the default pattern)", { ...MELLUM, nLayer: 4 }, SEQ],
    ["mellum, window 8 on every block, 120 positions: the KV cache 15 windows long", { ...MELLUM, slidingWindow: 8, slidingWindowPattern: 0 }, 120],
  ];
  for (const [name, shape, n] of F32_ONLY)
    it(`${name}, F32`, async () => {
      const seed = process.env.TESSERA_TEST_SEED ? Number(process.env.TESSERA_TEST_SEED) : (Date.now() >>> 0) ^ name.length;
      const file = path.join(dir, `${name.replace(/[^a-z0-9]+/gi, "-")}-F32.gguf`);
      writeSyntheticModel(file, shape, { weights: "F32", vocab: "stories", seed });
      const r = await compareWithLlamaCpp(file, randomTokens(n, 512, seed), 512, BUDGET.F32!);
      console.log(`${name} F32 (seed ${seed}): rel ${r.maxRel.toExponential(2)} top-1 ${r.top1}/${n} (+${r.nearTies} near-ties)`);
      expect(r.top1 + r.nearTies).toBe(n);
      expect(r.maxRel).toBeLessThan(BUDGET.F32!);
      expect(r.maxBatchRel).toBeLessThan(BUDGET.F32!);
    }, 180_000);
});
