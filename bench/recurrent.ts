/**
 * Mamba-2 decode as the sequence grows (issue 28): a state-space model's step does the same
 * work at any position (its state is fixed-size, there is no KV cache to attend over), so
 * the milliseconds per decoded token after a 64-token prompt and after a 4096-token one
 * should match. Tessera and llama.cpp (node-llama-cpp) on the same synthetic file, greedy,
 * one engine after the other in this process; Tessera's two lengths alternate between reps
 * (each rep truncates back to its prompt, a block boundary, so nothing is recomputed) and
 * its figure is the median over every timed token: on a loaded 2-core machine a descheduled
 * pool thread stalls a step's barrier for a whole timeslice (single steps of 20-150 ms among
 * 0.03 ms ones, seen while measuring), which a mean over a run would carry. llama.cpp's is
 * the mean over each run's steps (node-llama-cpp times the run), median over runs.
 * --quick: a tiny model and 512 positions instead of 4096.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { loadModel } from "../lib/index.js";
import { argmax } from "../lib/sampling/sampler.js";
import { syntheticTokens, writeSyntheticModel, type ModelShape } from "../dev/synthetic-model.js";
import { LlamaCppPeer } from "../dev/llama-cpp-peer.js";
import { repoRoot } from "./paths.js";
import { median } from "./stats.js";

/** Mamba-2-130M's shape (24 blocks of width 768, 24 heads of 64, state 128, one group). */
export const MAMBA2_130M: ModelShape = {
  architecture: "mamba2",
  nLayer: 24,
  nEmbd: 768,
  nHead: 0,
  nHeadKv: 0,
  nFf: 0,
  contextLength: 1 << 20,
  normEps: 1e-5,
  tiedEmbeddings: true,
  ssm: { dConv: 4, dInner: 1536, dState: 128, nGroup: 1, nHead: 24 },
};

const TINY: ModelShape = { ...MAMBA2_130M, nLayer: 2, nEmbd: 128, ssm: { dConv: 4, dInner: 256, dState: 32, nGroup: 1, nHead: 4 } };

export interface RecurrentRow {
  engine: "tessera" | "llama.cpp";
  positions: number;
  /** Median milliseconds per decoded token after a prompt of `positions` tokens. */
  msPerToken: number;
  /** Tessera: the 10th percentile of its tokens' ms, the steps no other process interrupted (llama.cpp: msPerToken). */
  p10: number;
  /** Tessera: every timed token's ms; llama.cpp: each run's mean ms per token. */
  runs: number[];
}

export interface RecurrentBenchResult {
  model: string;
  threads: number;
  decodeTokens: number;
  rows: RecurrentRow[];
  /** Tessera's ms/token at the long prompt over the short one (1: constant time per token). */
  tesseraGrowth: number;
  llamaCppGrowth: number;
}

export interface RecurrentBenchOptions {
  threads: number;
  quick: boolean;
  onStep?: (label: string) => void;
}

function benchFile(quick: boolean): { file: string; name: string } {
  const name = quick ? "tiny-mamba2-Q8_0" : "mamba2-130m-Q8_0";
  const file = quick ? path.join(os.tmpdir(), `tessera-bench-${name}-${process.pid}.gguf`) : path.join(repoRoot, ".bench-models", `${name}.gguf`);
  if (!fs.existsSync(file)) {
    const tmp = `${file}.partial`;
    fs.mkdirSync(path.dirname(file), { recursive: true });
    writeSyntheticModel(tmp, quick ? TINY : MAMBA2_130M, { weights: "Q8_0", vocab: quick ? "stories" : "smollm2", seed: 7 });
    fs.renameSync(tmp, file);
    if (quick) process.on("exit", () => fs.rmSync(file, { force: true }));
  }
  return { file, name };
}

export async function runRecurrentBench(o: RecurrentBenchOptions): Promise<RecurrentBenchResult> {
  const { file, name } = benchFile(o.quick);
  const lengths = [64, o.quick ? 512 : 4096];
  const n = o.quick ? 16 : 32;
  const reps = o.quick ? 2 : 4;
  const nVocab = o.quick ? 512 : 49152;
  const prompts = lengths.map((p) => syntheticTokens(p, nVocab, p));
  const rows: RecurrentRow[] = [];

  // Tessera: each prompt evaluated once in its own session, then reps of n greedy steps.
  const maxLen = lengths[1] + n + 32;
  const model = await loadModel(file, { backend: "cpu", threads: o.threads, contextSize: maxLen, kvCacheTokens: 2 * maxLen + 64 });
  const sessions = lengths.map(() => model.createSession());
  const runs: number[][] = lengths.map(() => []);
  const first: number[] = [];
  for (let i = 0; i < lengths.length; i++) {
    o.onStep?.(`mamba2: tessera prefill ${lengths[i]}`);
    first.push(argmax(await sessions[i].evaluate(prompts[i])));
  }
  // Rep -1 warms the weights and buffers up and is not counted.
  for (let r = -1; r < reps; r++)
    for (const i of r % 2 === 0 ? [0, 1] : [1, 0]) {
      o.onStep?.(`mamba2: tessera decode after ${lengths[i]} positions ${r + 1}/${reps}`);
      const s = sessions[i];
      s.truncate(lengths[i]);  // a block boundary: the state there is checkpointed, nothing reruns
      let next = first[i];
      for (let k = 0; k < n; k++) {
        const t0 = performance.now();
        next = argmax(await s.evaluate([next]));
        if (r >= 0) runs[i].push(performance.now() - t0);
      }
    }
  for (const s of sessions) s.dispose();
  model.dispose();
  const p10 = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 10)];
  lengths.forEach((p, i) => rows.push({ engine: "tessera", positions: p, msPerToken: median(runs[i]), p10: p10(runs[i]), runs: runs[i] }));

  // llama.cpp: greedy decode of n after each prompt (it evaluates the prompt each time).
  const peer = await LlamaCppPeer.open(file, { threads: o.threads, contextSize: maxLen });
  const peerRuns: number[][] = lengths.map(() => []);
  // Each run evaluates its prompt again (4096 positions take minutes on 2 cores): 2 runs.
  const peerReps = Math.min(reps, 2);
  for (let r = 0; r < peerReps; r++)
    for (const i of r % 2 === 0 ? [0, 1] : [1, 0]) {
      o.onStep?.(`mamba2: llama.cpp decode after ${lengths[i]} positions ${r + 1}/${peerReps}`);
      const d = await peer.decode(prompts[i], n);
      // decode's time starts at its first token: n - 1 steps after it.
      peerRuns[i].push(d.ms / (n - 1));
    }
  await peer.dispose();
  lengths.forEach((p, i) => rows.push({ engine: "llama.cpp", positions: p, msPerToken: median(peerRuns[i]), p10: median(peerRuns[i]), runs: peerRuns[i] }));

  const growth = (engine: RecurrentRow["engine"]) => {
    const [a, b] = rows.filter((x) => x.engine === engine);
    return b.msPerToken / a.msPerToken;
  };
  return { model: name, threads: o.threads, decodeTokens: n, rows, tesseraGrowth: growth("tessera"), llamaCppGrowth: growth("llama.cpp") };
}

export function recurrentMarkdown(r: RecurrentBenchResult): string[] {
  const lines = [
    `## Mamba-2 decode as the sequence grows (${r.model}, ${r.threads} threads, ${r.decodeTokens} greedy tokens, ms/token, medians)`,
    "",
    "| engine | positions | ms/token | fastest 10% |",
    "|---|---|---|---|",
  ];
  for (const x of r.rows) lines.push(`| ${x.engine} | ${x.positions} | ${x.msPerToken.toFixed(2)} | ${x.engine === "tessera" ? x.p10.toFixed(2) : "–"} |`);
  lines.push("", `Long over short: tessera ${r.tesseraGrowth.toFixed(2)}×, llama.cpp ${r.llamaCppGrowth.toFixed(2)}×.`, "");
  return lines;
}

export function recurrentTargets(r: RecurrentBenchResult): Array<{ target: string; measured: string; met: boolean }> {
  const at = (engine: RecurrentRow["engine"]) => r.rows.filter((x) => x.engine === engine);
  const [short, long] = at("tessera");
  const peerLong = at("llama.cpp")[1];
  return [
    {
      target: `${r.model} decode at ${long.positions} positions ≤ 1.15× its time at ${short.positions} (constant per token)`,
      measured: `${r.tesseraGrowth.toFixed(2)}× (${short.msPerToken.toFixed(2)} → ${long.msPerToken.toFixed(2)} ms)`,
      met: r.tesseraGrowth <= 1.15,
    },
    {
      target: `${r.model} decode at ${long.positions} positions vs llama.cpp (report)`,
      measured: `${(peerLong.msPerToken / long.msPerToken).toFixed(2)}× llama.cpp's speed`,
      met: true,
    },
  ];
}
