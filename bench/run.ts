/**
 * `npm run bench [-- --quick] [--threads N] [--out DIR] [--only e2e|kernels|moe] [--models a,b]`
 *
 * The whole suite in one command: machine read bandwidth (STREAM-like probe), per-kernel
 * GB/s and GFLOP/s, then end-to-end prefill/decode side by side with llama.cpp on synthetic
 * models at real shapes and on stories260K. Writes results.json, results.md and chart.svg
 * (default bench/results/) and prints the Markdown table. --quick is the CI smoke mode:
 * tiny models, few tokens, one repetition.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { native } from "../lib/native.js";
import { SHAPES, writeSyntheticModel, type WeightScheme } from "../scripts/synthetic-model.js";
import { measureReadBandwidth } from "./bandwidth.js";
import { sideBySide, type E2EResult } from "./e2e.js";
import { runKernelBench } from "./kernels.js";
import { benchModel, type ShapeName } from "./models.js";
import { repoRoot, sharedDir } from "./paths.js";
import { Progress } from "./progress.js";
import { markdown, writeReport, type BenchReport } from "./report.js";
import { median } from "./stats.js";

interface E2EPlan {
  name: string;
  file: () => string;
  decodeBytes: number | null;
  threads: number;
  prefill: number;
  decode: number;
  reps: number;
}

function syntheticPlan(shape: ShapeName, scheme: WeightScheme, threads: number, prefill: number, decode: number, reps: number): E2EPlan {
  let model: ReturnType<typeof benchModel> | undefined;
  const get = () => (model ??= benchModel(shape, scheme));
  return {
    name: `${shape}-${scheme}`,
    file: () => get().file,
    get decodeBytes() {
      return get().decodeBytes;
    },
    threads,
    prefill,
    decode,
    reps,
  };
}

/** Mixture of experts: the Qwen3-30B-A3B-like shape (bench/models.ts), decode-focused. */
function moePlans(threads: number): E2EPlan[] {
  return [syntheticPlan("qwen3moe-30b-a3b-12l", "Q4_0", threads, 64, 32, 3)];
}

function plans(quick: boolean, threads: number): E2EPlan[] {
  const stories = path.join(sharedDir, "models/stories260K.gguf");
  const out: E2EPlan[] = [];
  if (fs.existsSync(stories))
    out.push({ name: "stories260K", file: () => stories, decodeBytes: null, threads: 1, prefill: quick ? 0 : 64, decode: 200, reps: quick ? 1 : 5 });
  if (quick) {
    const file = path.join(os.tmpdir(), `tessera-bench-quick-${process.pid}.gguf`);
    out.push({
      name: "tiny-llama-Q8_0",
      file: () => {
        const shape = { ...SHAPES["smollm2-135m"], nLayer: 2, nEmbd: 256, nHead: 4, nHeadKv: 2, nFf: 512 };
        writeSyntheticModel(file, shape, { weights: "Q8_0", vocab: "stories", seed: 3 });
        process.on("exit", () => fs.rmSync(file, { force: true }));
        return file;
      },
      decodeBytes: null,
      threads,
      prefill: 64,
      decode: 32,
      reps: 1,
    });
    return out;
  }
  const full: Array<[ShapeName, WeightScheme]> = [
    ["smollm2-135m", "Q8_0"],
    ["qwen2.5-0.5b", "Q4_0"],
    ["qwen2.5-0.5b", "Q8_0"],
    ["llama-3.2-1b", "Q4_0"],
    ["llama-3.2-1b", "Q8_0"],
    ["llama-3.2-1b", "Q4_K_M"],
  ];
  for (const [shape, scheme] of full) out.push(syntheticPlan(shape, scheme, threads, 512, 128, 3));
  return out;
}

function targets(r: BenchReport): BenchReport["targets"] {
  const t: BenchReport["targets"] = [];
  const ratio = (e: E2EResult, phase: "decode" | "prefill") =>
    phase === "decode" ? e.tessera.decodeTps / e.llamaCpp.decodeTps : (e.tessera.prefillTps ?? 0) / (e.llamaCpp.prefillTps ?? 1);
  for (const e of r.e2e) {
    if (e.model === "stories260K") {
      const x = ratio(e, "decode");
      t.push({ target: "stories260K decode ≥ 5× llama.cpp", measured: `${x.toFixed(2)}×`, met: x >= 5 });
      continue;
    }
    if (e.model.startsWith("qwen3moe")) {
      const x = ratio(e, "decode");
      t.push({ target: `${e.model} MoE decode ≥ 1.2× llama.cpp`, measured: `${x.toFixed(2)}×`, met: x >= 1.2 });
      if (e.decodeBandwidthShare !== null)
        t.push({ target: `${e.model} MoE decode vs active-bytes bandwidth limit (report)`, measured: `${(e.decodeBandwidthShare * 100).toFixed(0)}%`, met: true });
      continue;
    }
    if (/^(qwen2\.5-0\.5b|llama-3\.2-1b)-(Q4_0|Q8_0)$/.test(e.model)) {
      const x = ratio(e, "decode");
      t.push({ target: `${e.model} decode ≥ 1.2× llama.cpp`, measured: `${x.toFixed(2)}×`, met: x >= 1.2 });
      if (e.decodeBandwidthShare !== null)
        t.push({ target: `${e.model} decode ≥ 0.75× bandwidth limit`, measured: `${(e.decodeBandwidthShare * 100).toFixed(0)}%`, met: e.decodeBandwidthShare >= 0.75 });
    }
    if (e.prefillTokens >= 512) {
      const x = ratio(e, "prefill");
      t.push({ target: `${e.model} prefill pp512 ≥ 1.0× llama.cpp`, measured: `${x.toFixed(2)}×`, met: x >= 1 });
    }
    if (e.model.startsWith("qwen2.5-0.5b"))
      t.push({ target: `${e.model} N-API ≤ 2% of a decode step`, measured: `${(e.napiOverheadShare * 100).toFixed(2)}%`, met: e.napiOverheadShare <= 0.02 });
  }
  for (const k of r.kernels)
    if (/^matvec (Q4_0|Q8_0)$/.test(k.kernel) && k.bandwidthShare !== null)
      t.push({ target: `${k.kernel} ${k.shape} ≥ 0.8× read bandwidth`, measured: `${(k.bandwidthShare * 100).toFixed(0)}%`, met: k.bandwidthShare >= 0.8 });
  return t;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      quick: { type: "boolean", default: false },
      threads: { type: "string" },
      out: { type: "string" },
      only: { type: "string" },
      // Comma-separated end-to-end model names (e.g. stories260K,qwen2.5-0.5b-Q4_0).
      models: { type: "string" },
    },
  });
  const quick = values.quick!;
  const threads = values.threads ? Number(values.threads) : os.availableParallelism();
  const outDir = path.resolve(values.out ?? path.join(repoRoot, "bench/results"));
  const only = values.only;
  const info = native().systemInfo();
  const chosen = values.models?.split(",");
  const e2ePlans = (only === "kernels" ? [] : only === "moe" ? moePlans(threads) : plans(quick, threads)).filter(
    (p) => !chosen || chosen.includes(p.name),
  );
  const kernelsWanted = only === undefined || only === "kernels";
  const engines = (p: E2EPlan) => 1 + (p.threads > 1 ? 2 : 1);
  const progress = new Progress(e2ePlans.reduce((n, p) => n + 2 + engines(p) * p.reps * (p.prefill > 0 ? 2 : 1), 0) + (kernelsWanted ? 2 : 1));

  const report: BenchReport = {
    date: new Date().toISOString(),
    machine: { cpu: os.cpus()[0]?.model ?? "unknown", cores: os.availableParallelism(), isa: info.cpu.isa },
    readBandwidthGBps: null,
    kernels: [],
    e2e: [],
    targets: [],
  };
  progress.note("read bandwidth");
  report.readBandwidthGBps = measureReadBandwidth({ threads, quick });
  progress.step(`read bandwidth ${report.readBandwidthGBps.toFixed(1)} GB/s`);
  if (kernelsWanted) {
    report.kernels = await runKernelBench({ threads, quick, onStep: (l) => progress.note(l) });
    progress.step("kernels done");
  }
  for (const p of e2ePlans) {
    progress.note(`${p.name}: preparing model`);
    const file = p.file();
    progress.step(`${p.name}: model ready`);
    const r = await sideBySide(file, p.name, {
      threads: p.threads,
      prefillTokens: p.prefill,
      decodeTokens: p.decode,
      reps: p.reps,
      probeBandwidth: p.decodeBytes !== null,
      onStep: (l) => progress.step(l),
    });
    const decodeBytes = p.decodeBytes;
    const shares = decodeBytes ? r.tessera.decodeRuns.map((tps, i) => (tps * decodeBytes) / (r.decodeReadBandwidthGBps[i] * 1e9)) : [];
    report.e2e.push({ ...r, decodeBytes, decodeBandwidthShare: shares.length ? median(shares) : null });
    progress.step(`${p.name}: decode ${r.tessera.decodeTps.toFixed(1)} vs ${r.llamaCpp.decodeTps.toFixed(1)} tok/s`);
  }
  progress.finish();
  report.targets = targets(report);
  const files = writeReport(outDir, report);
  process.stdout.write(markdown(report) + "\n");
  process.stdout.write(`wrote ${files.map((f) => path.relative(process.cwd(), f)).join(", ")}\n`);
}

main().catch((e) => {
  process.stderr.write(`\nbench failed: ${e instanceof Error ? e.stack : String(e)}\n`);
  process.exitCode = 1;
});
