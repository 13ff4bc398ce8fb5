/**
 * End-to-end check of the CUDA backend on a machine with an NVIDIA GPU (scripts/cuda-device.sh
 * runs it after the kernel harness):
 *
 *   node dist/scripts/cuda-check.js check            CUDA vs CPU logits, every position
 *   node dist/scripts/cuda-check.js bench SHAPE-SCHEME... [--bandwidth GBps] [--out file.json]
 *   node dist/scripts/cuda-check.js steps SHAPE-SCHEME N  N decode steps, for a profiler (ncu)
 *
 * `check` loads each model in both backends and compares the logits of every position of a
 * prefill (chunks that run the GEMM and the GEMV paths, flash and split attention) and of
 * token-by-token decoding (the captured CUDA graph), by relative error against a per-type
 * budget (top-1 agreement is reported). Exits 1 when any model is over budget.
 *
 * `bench` writes the benchmark shapes (bench/models.ts) and measures prefill pp512 and decode
 * tg128 on the GPU (medians of several runs), with the bandwidth the decode achieves
 * (weight bytes read per token × tokens/s) against the measured device bandwidth.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { loadModel, type Model } from "../lib/index.js";
import { benchModel, type ShapeName } from "../bench/models.js";
import { median } from "../bench/stats.js";
import { relativeError } from "../lib/kernels/harness.js";
import { argmax } from "../lib/sampling/sampler.js";
import { CUDA_VS_CPU_BUDGET } from "./cuda-budgets.js";
import { sharedDir, writeSyntheticModel, type ModelShape, type WeightScheme } from "./synthetic-model.js";

const stories260K = path.join(sharedDir, "models/stories260K.gguf");

/**
 * Whether the GPU's top-1 token agrees with the CPU's, or differs only on a near-tie: the
 * CPU scores the GPU's choice within 10% of its logits' rms of its own best (the rule the
 * llama.cpp conformance tests use for rounded-activation types).
 */
function topOneAgrees(gpu: Float32Array, cpu: Float32Array): boolean {
  const g = argmax(gpu);
  const c = argmax(cpu);
  if (g === c) return true;
  let sq = 0;
  for (let i = 0; i < cpu.length; i++) sq += cpu[i] * cpu[i];
  return cpu[c] - cpu[g] <= 0.1 * Math.sqrt(sq / cpu.length);
}

/** Fresh pseudo-random tokens (never the special ids 0..2) from a seed drawn per run. */
function randomTokens(n: number, nVocab: number, seed: number): number[] {
  let s = seed >>> 0;
  const out = [1];
  while (out.length < n) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out.push(3 + (s % (nVocab - 3)));
  }
  return out;
}

const BUDGET = CUDA_VS_CPU_BUDGET;

interface CheckCase {
  name: string;
  file: string;
  budget: number;
  /** Prompt length; > 512 makes decode attend over a long cache (split-KV). */
  prompt: number;
}

function checkCases(dir: string): CheckCase[] {
  const small: ModelShape = { architecture: "llama", nLayer: 2, nEmbd: 256, nHead: 4, nHeadKv: 2, nFf: 512, contextLength: 4096 };
  const synthetic: [string, ModelShape, WeightScheme, number][] = [
    ["llama F32 head 64", small, "F32", 40],
    ["llama F16 head 128 MQA tied", { ...small, nHead: 2, nHeadKv: 1, tiedEmbeddings: true }, "F16", 40],
    ["llama BF16", small, "BF16", 40],
    ["llama Q8_0", small, "Q8_0", 40],
    ["llama Q4_0", small, "Q4_0", 40],
    ["llama Q4_K", small, "Q4_K", 40],
    ["llama Q6_K", small, "Q6_K", 40],
    ["qwen2 Q8_0 qkv bias", { ...small, architecture: "qwen2", ropeFreqBase: 1e6, normEps: 1e-6, qkvBias: true }, "Q8_0", 40],
    ["qwen3 Q4_K_M qk-norm head 64", { ...small, architecture: "qwen3", nHead: 8, headDim: 64, qkNorm: true, ropeFreqBase: 1e6 }, "Q4_K_M", 40],
    ["llama Q4_0 odd width 288, long prompt", { ...small, nEmbd: 288, nHead: 6, nHeadKv: 2, nFf: 736 }, "Q4_0", 700],
    ["llama Q8_0 head 128, long prompt", { ...small, nEmbd: 512, nHead: 4, nHeadKv: 2, nFf: 1024 }, "Q8_0", 900],
  ];
  const cases: CheckCase[] = [{ name: "stories260K", file: stories260K, budget: BUDGET.stories, prompt: 40 }];
  for (const [name, shape, scheme, prompt] of synthetic) {
    const file = path.join(dir, `${name.replace(/[^a-z0-9]+/gi, "-")}.gguf`);
    writeSyntheticModel(file, shape, { weights: scheme, vocab: "stories", seed: 7 + cases.length });
    cases.push({ name, file, budget: BUDGET[scheme], prompt });
  }
  return cases;
}

async function checkOne(c: CheckCase, seed: number): Promise<boolean> {
  const contextSize = c.prompt + 32;
  const cpu = await loadModel(c.file, { backend: "cpu", threads: os.availableParallelism(), contextSize });
  const gpu = await loadModel(c.file, { backend: "cuda", contextSize });
  try {
    const nVocab = cpu.info.nVocab;
    const seq = randomTokens(c.prompt, nVocab, seed);
    const sc = cpu.createSession();
    // Batch 16: the prompt runs as GEMM chunks plus a short GEMV tail.
    const sg = gpu.createSession({ batchSize: 16 });
    const ac = await sc.evaluateAll(seq);
    const ag = await sg.evaluateAll(seq);
    let prefillWorst = 0;
    let agree = 0;
    let nearTies = 0;
    let total = 0;
    for (let i = 0; i < seq.length; i++) {
      const cl = ac.subarray(i * nVocab, (i + 1) * nVocab);
      const gl = ag.subarray(i * nVocab, (i + 1) * nVocab);
      if (!gl.every(Number.isFinite)) throw new Error(`non-finite GPU logits at position ${i}`);
      prefillWorst = Math.max(prefillWorst, relativeError(gl, cl));
      agree += argmax(gl) === argmax(cl) ? 1 : 0;
      nearTies += topOneAgrees(gl, cl) ? 1 : 0;
      total++;
    }
    let decodeWorst = 0;
    for (const t of randomTokens(24, nVocab, seed + 1)) {
      const cl = await sc.evaluate([t]);
      const gl = await sg.evaluate([t]);
      decodeWorst = Math.max(decodeWorst, relativeError(gl, cl));
      agree += argmax(gl) === argmax(cl) ? 1 : 0;
      nearTies += topOneAgrees(gl, cl) ? 1 : 0;
      total++;
    }
    sc.dispose();
    sg.dispose();
    // The gate is the relative error budget. Top-1 flips follow from the two backends'
    // different activation rounding on close logits (the GPU's q8-per-32 is the finer one for
    // K-quants); they are reported, with how many are near-ties, not gated.
    const ok = prefillWorst < c.budget && decodeWorst < c.budget;
    console.log(
      `${ok ? "ok  " : "FAIL"} ${c.name.padEnd(40)} prefill rel ${prefillWorst.toExponential(2)}  decode rel ${decodeWorst.toExponential(2)}` +
        `  budget ${c.budget.toExponential(0)}  top-1 ${agree}/${total} (others near-ties: ${nearTies - agree}/${total - agree})`,
    );
    return ok;
  } finally {
    cpu.dispose();
    gpu.dispose();
  }
}

async function check(): Promise<number> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tessera-cuda-check-"));
  const seed = (Date.now() ^ (process.pid << 8)) >>> 0;
  console.log(`CUDA vs CPU logits (token seed ${seed})`);
  let failures = 0;
  try {
    for (const c of checkCases(dir)) if (!(await checkOne(c, seed))) failures++;
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

async function benchOne(name: string, bandwidthGBps: number) {
  const m = benchModelNamed(name);
  const t0 = performance.now();
  const model: Model = await loadModel(m.file, { backend: "cuda", contextSize: 1024 });
  const loadMs = performance.now() - t0;
  try {
    const nVocab = model.info.nVocab;
    const prompt = randomTokens(512, nVocab, 99);
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
    const achieved = (m.decodeBytes * tg) / 1e9;
    const r = {
      model: m.name,
      loadMs: Math.round(loadMs),
      pp512: pp,
      tg128: tg,
      decodeGBps: achieved,
      shareOf3TBps: achieved / 3000,
      shareOfMeasured: bandwidthGBps > 0 ? achieved / bandwidthGBps : undefined,
      prefillMs,
      decodeMs,
    };
    console.log(
      `${m.name.padEnd(22)} pp512 ${pp.toFixed(0).padStart(7)} tok/s   tg128 ${tg.toFixed(1).padStart(7)} tok/s   ` +
        `decode ${achieved.toFixed(0)} GB/s = ${(r.shareOf3TBps * 100).toFixed(1)}% of 3.0 TB/s` +
        (r.shareOfMeasured ? `, ${(r.shareOfMeasured * 100).toFixed(1)}% of measured ${bandwidthGBps.toFixed(0)} GB/s` : "") +
        `   (load ${r.loadMs} ms)`,
    );
    return r;
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
  const results = [];
  for (const name of args) results.push(await benchOne(name, bandwidth));
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
  command === "check" ? check()
  : command === "bench" ? bench(rest)
  : command === "steps" ? steps(rest[0], Number(rest[1] ?? 4))
  : Promise.reject(new Error("usage: cuda-check.js check | bench SHAPE-SCHEME... | steps SHAPE-SCHEME N"));
run.then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
