/**
 * The CUDA backend, run through the CPU emulator of native/cuda/emulator, against the CPU
 * backend on the same models: per-position logits of a prefill (all logits, in several
 * batch chunks so GEMV and GEMM, flash and split attention all run) and of token-by-token
 * decoding (the captured CUDA graph, replayed at every position). Also the error paths:
 * GPU out of memory, out of context, abort.
 *
 * Needs the emulated build (scripts/cuda-emulated.sh builds it into build-emu/); without
 * it, or without ../shared, the suite is skipped with that reason.
 */
import fs from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { CUDA_VS_CPU_BUDGET, judgeLogits, TOP1_MIN_SHARE, topOneAgrees } from "../../dev/cuda-budgets.js";
import { syntheticTokens, writeSyntheticModel, type ModelShape, type WeightScheme } from "../../dev/synthetic-model.js";
import { relativeError } from "../../dev/kernels/harness.js";
import { argmax } from "../../lib/sampling/sampler.js";
import { hasShared, repoRoot, stories260K, tempDir } from "../helpers/paths.js";

const emulatedAddon = path.join(repoRoot, "build-emu/Release/tessera.node");
const available = fs.existsSync(emulatedAddon) && hasShared;
if (available) process.env.TESSERA_ADDON_PATH = emulatedAddon;
if (!available) console.log(`skipped: no emulated CUDA build at ${emulatedAddon} (run scripts/cuda-emulated.sh) or no ../shared`);

const { loadModel, isTesseraError } = await import("../../lib/index.js");
type Model = Awaited<ReturnType<typeof loadModel>>;

const BUDGET = CUDA_VS_CPU_BUDGET;

interface Case {
  file: () => string;
  budget: number;
  /** Mixture of experts with rounded activations: near-tie routing flips are allowed (cuda-budgets.ts). */
  moeRounded?: boolean;
}

const dir = available ? tempDir("cuda-emu") : "";
const small: ModelShape = { architecture: "llama", nLayer: 2, nEmbd: 256, nHead: 4, nHeadKv: 2, nFf: 512, contextLength: 4096 };
const CASES: Record<string, Case> = {
  "stories260K (F32, head size 8: split attention for prefill)": { file: () => stories260K, budget: BUDGET.stories },
};
const synthetic: [string, ModelShape, WeightScheme][] = [
  ["llama F32, head size 64", small, "F32"],
  ["llama F16, head size 128, tied embeddings", { ...small, nHead: 2, nHeadKv: 1, tiedEmbeddings: true }, "F16"],
  ["llama BF16", small, "BF16"],
  ["llama Q4_0", small, "Q4_0"],
  ["qwen2 Q8_0 (q/k/v bias, neox RoPE)", { ...small, architecture: "qwen2", ropeFreqBase: 1e6, normEps: 1e-6, qkvBias: true }, "Q8_0"],
  ["qwen3 Q4_K_M (q/k norm, Q4_K and Q6_K mixed: unfused projections)", { ...small, architecture: "qwen3", nHead: 8, headDim: 64, qkNorm: true, ropeFreqBase: 1e6, normEps: 1e-6 }, "Q4_K_M"],
  ["llama Q6_K", small, "Q6_K"],
  ["llama Q5_K_M (issue 28: Q5_K with Q6_K attn_v/ffn_down in layer 1)", small, "Q5_K_M"],
  ["llama Q3_K_M (issue 28: Q3_K with Q4_K/Q5_K attn_v, attn_output, ffn_down)", small, "Q3_K_M"],
  ["llama Q2_K (issue 28)", small, "Q2_K"],
  ["llama IQ4_XS (issue 28)", small, "IQ4_XS"],
  // The biases go through the matmul epilogue: gate/up concatenated like q/k/v's, down and the
  // LM head's on their own.
  ["llama F32 with FFN biases", { ...small, ffnBias: true }, "F32"],
  ["qwen2 Q8_0 with an LM head bias", { ...small, architecture: "qwen2", ropeFreqBase: 1e6, normEps: 1e-6, qkvBias: true, lmHeadBias: true }, "Q8_0"],
  // The residual and logit scales go through the matmul epilogue (scale, then accumulate).
  ["gemma2 Q8_0 (post-norms, GELU, query scale, soft-caps 5 and 3, window 12 on even blocks)", { ...small, architecture: "gemma2", headDim: 64, normEps: 1e-6, tiedEmbeddings: true, postNorms: true, slidingWindow: 12, softcaps: { attention: 5, final: 3 } }, "Q8_0"],
  ["gemma3 Q8_0 (q/k norms, local RoPE base 10000 unscaled, global 1e6 linear x8)", { ...small, architecture: "gemma3", nLayer: 2, headDim: 64, normEps: 1e-6, qkNorm: true, postNorms: true, ropeFreqBase: 1e6, slidingWindow: 12, slidingWindowPattern: 2, ropeFreqBaseSwa: 10000, ropeScaling: { type: "linear", factor: 8 } }, "Q8_0"],
  ["phi3 Q8_0 (fused qkv and gate/up, LongRoPE long factors with attn_factor)", { ...small, architecture: "phi3", nHeadKv: 4, fused: { qkv: true, gateUp: true }, longRope: { attnFactor: 1.19, originalContext: 32 } }, "Q8_0"],
  ["mistral3 Q8_0 (YaRN x4 with log multiplier 1, attention temperature 0.5 from position 16)", { ...small, architecture: "mistral3", ropeScaling: { type: "yarn", factor: 4, originalContext: 16 }, yarnLogMul: 1, attnTemperature: 0.5 }, "Q8_0"],
  ["granite Q8_0 (embedding, residual, attention and logit multipliers)", { ...small, architecture: "granite", multipliers: { embedding: 12, residual: 0.22, attention: 0.015625, logit: 16 } }, "Q8_0"],
];
// Mixture of experts, kept narrow (the emulator runs every expert product thread by thread):
// prefill chunks of 16 tokens take the grouped GEMM, the 8-token tail and decode the grouped
// GEMV (decode inside the CUDA graph, routing read from device memory).
const tiny: ModelShape = { architecture: "llama", nLayer: 2, nEmbd: 128, nHead: 2, nHeadKv: 1, nFf: 128, contextLength: 4096 };
const moe: [string, ModelShape, WeightScheme][] = [
  ["mixtral-like llama F32 (8 experts, top-2)", { ...tiny, moe: { nExpert: 8, nExpertUsed: 2, nFfExp: 128 } }, "F32"],
  ["qwen2moe F16 (top-4 of 8, shared expert with sigmoid gate)", { ...tiny, architecture: "qwen2moe", nFf: 256, ropeFreqBase: 1e6, normEps: 1e-6, qkvBias: true, moe: { nExpert: 8, nExpertUsed: 4, nFfExp: 128, nFfShexp: 256, sharedGate: true, normTopK: false } }, "F16"],
  ["qwen3moe Q4_0 (top-8 of 16, renormalized)", { ...tiny, architecture: "qwen3moe", headDim: 64, qkNorm: true, ropeFreqBase: 1e6, normEps: 1e-6, moe: { nExpert: 16, nExpertUsed: 8, nFfExp: 64, normTopK: true } }, "Q4_0"],
  // The residual scale in the MoE combine (experts and shared expert scaled, then added).
  ["granitemoe Q8_0 (multipliers, top-2 of 4, shared expert)", { ...tiny, architecture: "granitemoe", multipliers: { embedding: 12, residual: 0.22, attention: 0.05, logit: 6 }, moe: { nExpert: 4, nExpertUsed: 2, nFfExp: 128, nFfShexp: 128 } }, "Q8_0"],
  // gpt-oss: sinks in the flash prefill and split decode, router and expert biases through
  // the grouped GEMM and GEMV epilogues, softmax-weight routing, the clamped SwiGLU stage.
  ["gpt-oss Q8_0 (sinks, expert biases, softmax-weight top-2 of 4, clamped SwiGLU, window 12)", { ...tiny, architecture: "gpt-oss", headDim: 64, qkvBias: true, outputBias: true, attentionSinks: true, ffnNormName: "post_attention_norm.weight", slidingWindow: 12, moe: { nExpert: 4, nExpertUsed: 2, nFfExp: 128, biases: true } }, "Q8_0"],
];
synthetic.push(...moe);
// Multi-head latent attention (the latent cache read as keys and, through its prefix, values;
// q_nope absorbed through wk_b and the latent output expanded through wv_b per head) with
// deepseek2's experts: leading dense block, shared experts, softmax or sigmoid + bias with
// group-limited routing.
const mla = { kvLoraRank: 128, headDimNope: 64, headDimRope: 32, headDimV: 64, yarnLogMultiplier: 0.0707 };
const deepseek: ModelShape = { ...tiny, architecture: "deepseek2", nHead: 4, nFf: 256, normEps: 1e-6, ropeScaling: { type: "yarn", factor: 4, originalContext: 4096 } };
synthetic.push(
  ["deepseek2 V2-Lite style Q8_0 (MLA without q LoRA, top-2 of 8, 2 shared experts)", { ...deepseek, mla: { ...mla, qLoraRank: 0 }, moe: { nExpert: 8, nExpertUsed: 2, nFfExp: 64, nSharedExpert: 2, nFfShexp: 128, leadingDenseBlocks: 1, weightsScale: 1 } }, "Q8_0"],
  ["deepseek2 V3 style F32 (MLA with q LoRA, sigmoid + bias, group-limited top-4 of 16)", { ...deepseek, mla: { ...mla, qLoraRank: 96 }, moe: { nExpert: 16, nExpertUsed: 4, nFfExp: 64, nSharedExpert: 1, nFfShexp: 64, leadingDenseBlocks: 1, gating: "sigmoid", selectionBias: true, nGroup: 4, nGroupUsed: 2, normTopK: true, weightsScale: 2.5 } }, "F32"],
);
for (const [name, shape, scheme] of synthetic)
  CASES[name] = {
    file: () => {
      const file = path.join(dir, `${name.replace(/[^a-z0-9]+/gi, "-")}.gguf`);
      if (!fs.existsSync(file)) writeSyntheticModel(file, shape, { weights: scheme, vocab: "stories", seed: 7 });
      return file;
    },
    budget: BUDGET[scheme],
    moeRounded: shape.moe !== undefined && scheme !== "F32" && scheme !== "F16",
  };

async function compare(file: string, budget: number, moeRounded = false): Promise<void> {
  const cpu = await loadModel(file, { backend: "cpu", threads: 1, contextSize: 96 });
  const gpu = await loadModel(file, { backend: "cuda", threads: 2, contextSize: 96 });
  try {
    const nVocab = cpu.info.nVocab;
    const seq = syntheticTokens(40, nVocab, 11);
    // Prefill in chunks of 16 + 16 + 8 tokens (GEMM, GEMM, GEMV paths), every position's logits.
    const sc = cpu.createSession();
    const sg = gpu.createSession({ batchSize: 16 });
    const ac = await sc.evaluateAll(seq);
    const ag = await sg.evaluateAll(seq);
    const prefill: number[] = [];
    let agree = 0;
    let nearTieOrAgree = 0;
    for (let i = 0; i < seq.length; i++) {
      const c = ac.subarray(i * nVocab, (i + 1) * nVocab);
      const g = ag.subarray(i * nVocab, (i + 1) * nVocab);
      prefill.push(relativeError(g, c));
      if (argmax(g) === argmax(c)) agree++;
      if (topOneAgrees(g, c)) nearTieOrAgree++;
    }
    // Then decode one token at a time (the CUDA graph) past the prefill.
    const decode: number[] = [];
    for (const t of syntheticTokens(12, nVocab, 5)) {
      const c = await sc.evaluate([t]);
      const g = await sg.evaluate([t]);
      decode.push(relativeError(g, c));
      if (argmax(g) === argmax(c)) agree++;
      if (topOneAgrees(g, c)) nearTieOrAgree++;
    }
    const p = judgeLogits(prefill, budget, moeRounded);
    const d = judgeLogits(decode, budget, moeRounded);
    const flips = moeRounded ? `, over budget (routing flips) ${p.over + d.over}/52` : "";
    console.log(
      `${path.basename(file)}: prefill rel ${p.worst.toExponential(2)}, decode rel ${d.worst.toExponential(2)}, top-1 ${agree}/52 (others near-ties: ${nearTieOrAgree - agree})${flips}`,
    );
    expect(p.ok && d.ok, `budget ${budget}${moeRounded ? " (routing flips allowed)" : ""}`).toBe(true);
    expect(agree / 52).toBeGreaterThanOrEqual(TOP1_MIN_SHARE);
    sc.dispose();
    sg.dispose();
  } finally {
    cpu.dispose();
    gpu.dispose();
  }
}

describe.runIf(available)("CUDA backend (emulated) agrees with the CPU backend", () => {
  for (const [name, c] of Object.entries(CASES)) it(name, () => compare(c.file(), c.budget, c.moeRounded), 300_000);
});

// Sliding-window attention: windowed blocks in flash prefill and split decode, positions up
// to 52 against a window of 12, then a global block (the file's per-block pattern). Dense
// FFN because the CUDA backend has no MoE yet (Tessera runs mellum without experts; llama.cpp
// does not, so this case is CPU-vs-CUDA only).
describe.runIf(available)("CUDA backend (emulated): sliding-window attention", () => {
  const shape: ModelShape = { ...small, architecture: "mellum", nHead: 8, headDim: 64, qkNorm: true, ropeFreqBase: 1e6, normEps: 1e-6, slidingWindow: 12, slidingWindowPattern: [true, false] };
  it("mellum F32, window 12 on the first of 2 blocks", () => {
    const file = path.join(dir, "mellum-swa-F32.gguf");
    writeSyntheticModel(file, shape, { weights: "F32", vocab: "stories", seed: 7 });
    return compare(file, BUDGET.F32);
  }, 300_000);
});

// Many sequences in one engine: their rows share steps (flash query tiles of one sequence
// each, per-row block tables, a decode graph per row count), and each sequence's logits
// agree with the CPU backend's for the same sequence alone.
describe.runIf(available)("CUDA backend (emulated): many sequences per step", () => {
  it("3 concurrent prompts, then batched decode steps, each within budget of the CPU alone", async () => {
    const file = CASES["llama F32, head size 64"].file();
    const cpu = await loadModel(file, { backend: "cpu", threads: 1, contextSize: 96 });
    const gpu = await loadModel(file, { backend: "cuda", threads: 2, contextSize: 96, batchSize: 16 });
    try {
      const nVocab = cpu.info.nVocab;
      const prompts = [5, 23, 40].map((n, i) => syntheticTokens(n, nVocab, 20 + i));
      const gs = prompts.map(() => gpu.createSession());
      const cs = prompts.map(() => cpu.createSession());
      const worst: number[] = [];
      const check = (g: Float32Array, c: Float32Array) => {
        for (let i = 0; i < c.length / nVocab; i++) {
          worst.push(relativeError(g.subarray(i * nVocab, (i + 1) * nVocab), c.subarray(i * nVocab, (i + 1) * nVocab)));
          expect(topOneAgrees(g.subarray(i * nVocab, (i + 1) * nVocab), c.subarray(i * nVocab, (i + 1) * nVocab))).toBe(true);
        }
      };
      const got = await Promise.all(gs.map((s, i) => s.evaluateAll(prompts[i])));
      for (let i = 0; i < prompts.length; i++) check(got[i], await cs[i].evaluateAll(prompts[i]));
      for (const t of syntheticTokens(4, nVocab, 9)) {
        const g = await Promise.all(gs.map((s) => s.evaluate([t])));
        for (let i = 0; i < gs.length; i++) check(g[i], await cs[i].evaluate([t]));
      }
      console.log(`3 sequences per step: rel ${Math.max(...worst).toExponential(2)} over ${worst.length} positions`);
      expect(Math.max(...worst)).toBeLessThan(BUDGET.F32);
      expect(gpu.stats().steps).toBeLessThan(cpu.stats().steps);
      for (const s of gs) s.dispose();
      expect(gpu.stats().inUse).toBe(0);
    } finally {
      cpu.dispose();
      gpu.dispose();
    }
  }, 300_000);
});

describe.runIf(available)("CUDA backend (emulated) errors", () => {
  let model: Model | undefined;
  afterAll(() => model?.dispose());

  it("reports GPU out of memory with the sizes, as ERR_OUT_OF_MEMORY", async () => {
    process.env.TESSERA_EMU_MEMORY_MB = "1";
    try {
      const err = await loadModel(stories260K, { backend: "cuda" }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isTesseraError(err) && err.code).toBe("ERR_OUT_OF_MEMORY");
      expect(String((err as Error).message)).toMatch(/MiB of GPU memory .* free of 1 MiB/);
    } finally {
      delete process.env.TESSERA_EMU_MEMORY_MB;
    }
  });

  it("refuses a quantized KV cache with a coded error that says which backend has it", async () => {
    const err = await loadModel(CASES["llama F32, head size 64"].file(), { backend: "cuda", kvCacheType: "q8_0" }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isTesseraError(err) && err.code).toBe("ERR_BACKEND_UNAVAILABLE");
    expect(String((err as Error).message)).toMatch(/backend: "cpu"/);
  });

  it("refuses a state-space model (mamba2) with a coded error naming the CPU backend", async () => {
    const file = path.join(dir, "mamba2.gguf");
    const shape: ModelShape = { architecture: "mamba2", nLayer: 1, nEmbd: 64, nHead: 0, nHeadKv: 0, nFf: 0, contextLength: 4096, ssm: { dConv: 4, dInner: 128, dState: 16, nGroup: 1, nHead: 4 } };
    writeSyntheticModel(file, shape, { weights: "F32", vocab: "stories", seed: 1 });
    const err = await loadModel(file, { backend: "cuda" }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isTesseraError(err) && err.code).toBe("ERR_BACKEND_UNAVAILABLE");
    expect(String((err as Error).message)).toMatch(/state-space models \(mamba2\).*backend "cpu"/);
  });

  it("rejects positions past the context and keeps working", async () => {
    model = await loadModel(stories260K, { backend: "cuda", contextSize: 8 });
    const session = model.createSession();
    const err = await session.evaluate(syntheticTokens(9, 512, 3)).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isTesseraError(err) && err.code).toBe("ERR_OUT_OF_CONTEXT");
    const logits = await session.evaluate([1, 5, 9]);
    expect(logits.length).toBe(512);
    expect(Number.isFinite(logits[0])).toBe(true);
    session.dispose();
  });
});
