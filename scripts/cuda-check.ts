/**
 * End-to-end check of the CUDA backend on a machine with an NVIDIA GPU (scripts/cuda-device.sh
 * runs it after the kernel harness):
 *
 *   node dist/scripts/cuda-check.js check [NAME...]  CUDA vs CPU logits, every position (of the
 *                                                    models whose names contain a NAME; all)
 *   node dist/scripts/cuda-check.js bench SHAPE-SCHEME... [--bandwidth GBps] [--peer llama-bench]
 *                                                    [--out file.json]
 *   node dist/scripts/cuda-check.js steps SHAPE-SCHEME N  N decode steps, for a profiler (ncu)
 *   node dist/scripts/cuda-check.js write SHAPE-SCHEME...  only write the benchmark models
 *                                                    (multi-GB, minutes each), ahead of `bench`
 *
 * `check` loads each model in both backends and compares the logits of every position of a
 * prefill (chunks that run the GEMM and the GEMV paths, flash and split attention) and of
 * token-by-token decoding (the captured CUDA graph), by relative error against a per-type
 * budget (top-1 agreement is reported). Exits 1 when any model is over budget.
 *
 * `bench` writes the benchmark shapes (bench/models.ts) and measures prefill pp512 and decode
 * tg128 on the GPU (medians of several runs), with the bandwidth the decode achieves
 * (weight bytes read per token × tokens/s) against the measured device bandwidth. For a
 * mixture of experts (qwen3moe-30b-a3b-12l-Q4_0: Qwen3-30B-A3B's layer, 12 of its 48 layers)
 * the bytes per token are the active experts' only, so the share is that of the
 * active-bytes limit (measured bandwidth / active bytes per token). With `--peer`, llama.cpp's
 * CUDA llama-bench (dev/llama-cpp-cuda-peer.ts) runs on the same file right after, and
 * the ratios Tessera / llama.cpp are reported beside the figures.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { loadModel, type Model } from "../lib/index.js";
import { benchModel, type ShapeName } from "../bench/models.js";
import { median } from "../bench/stats.js";
import { relativeError } from "../dev/kernels/harness.js";
import { argmax } from "../lib/sampling/sampler.js";
import { measureLlamaCppCuda } from "../dev/llama-cpp-cuda-peer.js";
import { CUDA_VS_CPU_BUDGET, judgeLogits, TOP1_MIN_SHARE, topOneAgrees } from "../dev/cuda-budgets.js";
import { sharedDir, syntheticTokens, writeSyntheticModel, type ModelShape, type WeightScheme } from "../dev/synthetic-model.js";

const stories260K = path.join(sharedDir, "models/stories260K.gguf");

const BUDGET = CUDA_VS_CPU_BUDGET;

interface CheckCase {
  name: string;
  file: string;
  budget: number;
  /** Prompt length; > 512 makes decode attend over a long cache (split-KV). */
  prompt: number;
  /** Mixture of experts with rounded activations: near-tie routing flips allowed (cuda-budgets.ts). */
  moeRounded: boolean;
}

function checkCases(dir: string): CheckCase[] {
  const small: ModelShape = { architecture: "llama", nLayer: 2, nEmbd: 256, nHead: 4, nHeadKv: 2, nFf: 512, contextLength: 4096 };
  const qwen2moe: ModelShape = {
    ...small, architecture: "qwen2moe", ropeFreqBase: 1e6, normEps: 1e-6, qkvBias: true,
    moe: { nExpert: 8, nExpertUsed: 4, nFfExp: 256, nFfShexp: 512, sharedGate: true, normTopK: false },
  };
  const qwen3moe: ModelShape = {
    ...small, architecture: "qwen3moe", nHead: 8, headDim: 64, qkNorm: true, ropeFreqBase: 1e6, normEps: 1e-6,
    moe: { nExpert: 16, nExpertUsed: 8, nFfExp: 256, normTopK: true },
  };
  // Multi-head latent attention at DeepSeek-V2's cache-row shape (512-value latent + 64
  // RoPE'd values: the split kernel's widest heads), with deepseek2's experts.
  const deepseek2: ModelShape = {
    ...small, architecture: "deepseek2", nHead: 8, nHeadKv: 1, normEps: 1e-6,
    ropeScaling: { type: "yarn", factor: 40, originalContext: 4096 },
    mla: { qLoraRank: 0, kvLoraRank: 512, headDimNope: 128, headDimRope: 64, headDimV: 128, yarnLogMultiplier: 0.0707 },
    moe: { nExpert: 16, nExpertUsed: 4, nFfExp: 256, nSharedExpert: 2, nFfShexp: 512, leadingDenseBlocks: 1, weightsScale: 1 },
  };
  const synthetic: [string, ModelShape, WeightScheme, number][] = [
    ["llama F32 head 64", small, "F32", 40],
    ["llama F16 head 128 MQA tied", { ...small, nHead: 2, nHeadKv: 1, tiedEmbeddings: true }, "F16", 40],
    ["llama BF16", small, "BF16", 40],
    ["llama Q8_0", small, "Q8_0", 40],
    ["llama Q4_0", small, "Q4_0", 40],
    ["llama Q4_K", small, "Q4_K", 40],
    ["llama Q6_K", small, "Q6_K", 40],
    ["llama Q5_K", small, "Q5_K", 40],
    ["llama Q5_K_M", small, "Q5_K_M", 40],
    ["llama Q3_K", small, "Q3_K", 40],
    ["llama Q3_K_M", small, "Q3_K_M", 40],
    ["llama Q2_K", small, "Q2_K", 40],
    ["llama IQ4_XS", small, "IQ4_XS", 40],
    ["qwen2 Q8_0 qkv bias", { ...small, architecture: "qwen2", ropeFreqBase: 1e6, normEps: 1e-6, qkvBias: true }, "Q8_0", 40],
    ["qwen3 Q4_K_M qk-norm head 64", { ...small, architecture: "qwen3", nHead: 8, headDim: 64, qkNorm: true, ropeFreqBase: 1e6 }, "Q4_K_M", 40],
    ["llama Q4_0 odd width 288, long prompt", { ...small, nEmbd: 288, nHead: 6, nHeadKv: 2, nFf: 736 }, "Q4_0", 700],
    ["llama Q8_0 head 128, long prompt", { ...small, nEmbd: 512, nHead: 4, nHeadKv: 2, nFf: 1024 }, "Q8_0", 900],
    // Mixture of experts: prefill chunks run the grouped GEMM, decode the grouped GEMV.
    ["mixtral-like llama F32 8 experts top-2", { ...small, moe: { nExpert: 8, nExpertUsed: 2, nFfExp: 512 } }, "F32", 40],
    ["mixtral-like llama Q4_0 8 experts top-2", { ...small, moe: { nExpert: 8, nExpertUsed: 2, nFfExp: 512 } }, "Q4_0", 300],
    ["qwen2moe F32 gated shared expert", qwen2moe, "F32", 40],
    ["qwen2moe Q8_0 gated shared expert", qwen2moe, "Q8_0", 40],
    ["qwen3moe F32 top-8 of 16", qwen3moe, "F32", 40],
    ["qwen3moe Q4_K_M top-8 of 16, long prompt", qwen3moe, "Q4_K_M", 600],
    ["qwen3moe Q6_K top-8 of 64", { ...qwen3moe, moe: { nExpert: 64, nExpertUsed: 8, nFfExp: 256, normTopK: true } }, "Q6_K", 200],
    ["deepseek2 F32 MLA 512+64, long prompt", deepseek2, "F32", 600],
    ["deepseek2 Q8_0 MLA with q LoRA", { ...deepseek2, mla: { ...deepseek2.mla!, qLoraRank: 384 } }, "Q8_0", 40],
  ];
  const cases: CheckCase[] = [{ name: "stories260K", file: stories260K, budget: BUDGET.stories, prompt: 40, moeRounded: false }];
  for (const [name, shape, scheme, prompt] of synthetic) {
    const file = path.join(dir, `${name.replace(/[^a-z0-9]+/gi, "-")}.gguf`);
    writeSyntheticModel(file, shape, { weights: scheme, vocab: "stories", seed: 7 + cases.length });
    const moeRounded = shape.moe !== undefined && scheme !== "F32" && scheme !== "F16";
    cases.push({ name, file, budget: BUDGET[scheme], prompt, moeRounded });
  }
  return cases;
}

async function checkOne(c: CheckCase, seed: number): Promise<boolean> {
  const contextSize = c.prompt + 32;
  const cpu = await loadModel(c.file, { backend: "cpu", threads: os.availableParallelism(), contextSize });
  const gpu = await loadModel(c.file, { backend: "cuda", contextSize });
  try {
    const nVocab = cpu.info.nVocab;
    const seq = syntheticTokens(c.prompt, nVocab, seed);
    const sc = cpu.createSession();
    // Batch 16: the prompt runs as GEMM chunks plus a short GEMV tail.
    const sg = gpu.createSession({ batchSize: 16 });
    const ac = await sc.evaluateAll(seq);
    const ag = await sg.evaluateAll(seq);
    const prefill: number[] = [];
    let agree = 0;
    let nearTies = 0;
    let total = 0;
    for (let i = 0; i < seq.length; i++) {
      const cl = ac.subarray(i * nVocab, (i + 1) * nVocab);
      const gl = ag.subarray(i * nVocab, (i + 1) * nVocab);
      if (!gl.every(Number.isFinite)) throw new Error(`non-finite GPU logits at position ${i}`);
      prefill.push(relativeError(gl, cl));
      agree += argmax(gl) === argmax(cl) ? 1 : 0;
      nearTies += topOneAgrees(gl, cl) ? 1 : 0;
      total++;
    }
    const decode: number[] = [];
    for (const t of syntheticTokens(24, nVocab, seed + 1)) {
      const cl = await sc.evaluate([t]);
      const gl = await sg.evaluate([t]);
      decode.push(relativeError(gl, cl));
      agree += argmax(gl) === argmax(cl) ? 1 : 0;
      nearTies += topOneAgrees(gl, cl) ? 1 : 0;
      total++;
    }
    sc.dispose();
    sg.dispose();
    // The gate is the relative error budget. Top-1 flips follow from the two backends'
    // different activation rounding on close logits (the GPU's q8-per-32 is the finer one for
    // K-quants); they are reported, with how many are near-ties, and gated only at
    // TOP1_MIN_SHARE (a systematic error falls far below it).
    // MoE with rounded activations: a near-tie in the router may pick different experts on
    // the two backends at a few positions (cuda-budgets.ts, MOE_ROUTING_FLIPS).
    const p = judgeLogits(prefill, c.budget, c.moeRounded);
    const d = judgeLogits(decode, c.budget, c.moeRounded);
    const ok = p.ok && d.ok && agree / total >= TOP1_MIN_SHARE;
    console.log(
      `${ok ? "ok  " : "FAIL"} ${c.name.padEnd(44)} prefill rel ${p.worst.toExponential(2)}  decode rel ${d.worst.toExponential(2)}` +
        `  budget ${c.budget.toExponential(0)}  top-1 ${agree}/${total} (others near-ties: ${nearTies - agree}/${total - agree})` +
        (c.moeRounded ? `  over budget (routing flips) ${p.over + d.over}/${total}` : ""),
    );
    return ok;
  } finally {
    cpu.dispose();
    gpu.dispose();
  }
}

async function check(only: string[]): Promise<number> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tessera-cuda-check-"));
  const seed = (Date.now() ^ (process.pid << 8)) >>> 0;
  console.log(`CUDA vs CPU logits (token seed ${seed})`);
  let failures = 0;
  try {
    const cases = checkCases(dir).filter((c) => only.length === 0 || only.some((n) => c.name.includes(n)));
    for (const c of cases) if (!(await checkOne(c, seed))) failures++;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  console.log(`${failures === 0 ? "all models within budget" : `${failures} model(s) over budget`}`);
  return failures === 0 ? 0 : 1;
}

/** A benchmark model by its name, SHAPE-SCHEME (e.g. llama-3-8b-Q4_0), written if missing. */
function benchModelNamed(name: string) {
  const dash = name.lastIndexOf("-");
  return benchModel(name.slice(0, dash) as ShapeName, name.slice(dash + 1) as WeightScheme);
}

async function benchOne(name: string, bandwidthGBps: number, peerBinary: string | undefined) {
  const m = benchModelNamed(name);
  const t0 = performance.now();
  const model: Model = await loadModel(m.file, { backend: "cuda", contextSize: 1024 });
  const loadMs = performance.now() - t0;
  try {
    const nVocab = model.info.nVocab;
    const prompt = syntheticTokens(512, nVocab, 99);
    const prefillMs: number[] = [];
    for (let r = 0; r < 4; r++) {
      const s = model.createSession({ contextSize: 520, batchSize: 512 });
      const a = performance.now();
      await s.evaluate(prompt);
      prefillMs.push(performance.now() - a);
      s.dispose();
    }
    const decodeMs: number[] = [];
    for (let r = 0; r < 4; r++) {
      const s = model.createSession({ contextSize: 140 });
      let logits = await s.evaluate([1]);
      const a = performance.now();
      for (let i = 0; i < 128; i++) logits = await s.evaluateShared([argmax(logits)]);
      decodeMs.push(performance.now() - a);
      s.dispose();
    }
    // The first run of each warms up (graph capture, cuBLAS-free kernels' first launch).
    const pp = 512 / (median(prefillMs.slice(1)) / 1000);
    const tg = 128 / (median(decodeMs.slice(1)) / 1000);
    // m.decodeBytes counts, of stacked expert tensors, only the active experts' share: the
    // bytes a decode step must read, whose ratio to the bandwidth bounds tokens/s.
    const achieved = (m.decodeBytes * tg) / 1e9;
    const limit = bandwidthGBps > 0 ? (bandwidthGBps * 1e9) / m.decodeBytes : undefined;
    const r = {
      model: m.name,
      loadMs: Math.round(loadMs),
      pp512: pp,
      tg128: tg,
      decodeGBps: achieved,
      shareOf3TBps: achieved / 3000,
      shareOfMeasured: bandwidthGBps > 0 ? achieved / bandwidthGBps : undefined,
      activeBytesPerToken: m.decodeBytes,
      bandwidthLimitTokS: limit,
      prefillMs,
      decodeMs,
    };
    console.log(
      `${m.name.padEnd(22)} pp512 ${pp.toFixed(0).padStart(7)} tok/s   tg128 ${tg.toFixed(1).padStart(7)} tok/s   ` +
        `decode ${achieved.toFixed(0)} GB/s = ${(r.shareOf3TBps * 100).toFixed(1)}% of 3.0 TB/s` +
        (r.shareOfMeasured ? `, ${(r.shareOfMeasured * 100).toFixed(1)}% of measured ${bandwidthGBps.toFixed(0)} GB/s` : "") +
        `   active weights ${(m.decodeBytes / 1e9).toFixed(2)} GB/token` +
        (limit ? ` (limit ${limit.toFixed(1)} tok/s)` : "") +
        `   (load ${r.loadMs} ms)`,
    );
    if (!peerBinary) return r;
    // The peer runs after Tessera has let go of the GPU's memory (both hold the whole model).
    model.dispose();
    const peer = measureLlamaCppCuda(peerBinary, m.file);
    const vsPeer = { pp512: pp / peer.pp512, tg128: tg / peer.tg128 };
    console.log(
      `${"  llama.cpp CUDA".padEnd(22)} pp512 ${peer.pp512.toFixed(0).padStart(7)} tok/s   tg128 ${peer.tg128.toFixed(1).padStart(7)} tok/s` +
        `   Tessera/llama.cpp: pp512 ${vsPeer.pp512.toFixed(2)}×, tg128 ${vsPeer.tg128.toFixed(2)}×` +
        `   (flash attention pp ${peer.ppFlashAttention ? "on" : "off"}, tg ${peer.tgFlashAttention ? "on" : "off"}; build ${peer.buildCommit})`,
    );
    return { ...r, peer, vsPeer };
  } finally {
    model.dispose();
  }
}

async function bench(args: string[]): Promise<number> {
  const flag = (n: string) => {
    const i = args.indexOf(n);
    if (i < 0) return undefined;
    const v = args[i + 1];
    args.splice(i, 2);
    return v;
  };
  const bandwidth = Number(flag("--bandwidth") ?? 0);
  const out = flag("--out");
  const peer = flag("--peer");
  const results = [];
  for (const name of args) results.push(await benchOne(name, bandwidth, peer));
  if (out) fs.writeFileSync(out, JSON.stringify({ bandwidthGBps: bandwidth, results }, null, 2));
  return 0;
}

async function steps(name: string, n: number): Promise<number> {
  const m = benchModelNamed(name);
  const model = await loadModel(m.file, { backend: "cuda", contextSize: n + 8 });
  const s = model.createSession();
  let logits = await s.evaluate([1]);
  for (let i = 0; i < n; i++) logits = await s.evaluateShared([argmax(logits)]);
  model.dispose();
  return 0;
}

const [command, ...rest] = process.argv.slice(2);
const run =
  command === "check" ? check(rest)
  : command === "bench" ? bench(rest)
  : command === "steps" ? steps(rest[0], Number(rest[1] ?? 4))
  : command === "write" ? Promise.resolve(rest.forEach(benchModelNamed)).then(() => 0)
  : Promise.reject(
      new Error("usage: cuda-check.js check [NAME...] | bench SHAPE-SCHEME... | steps SHAPE-SCHEME N | write SHAPE-SCHEME..."),
    );
run.then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
