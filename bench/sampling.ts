/**
 * The sampler's cost per generated token on real vocabulary sizes (Llama 3: 128,256, Qwen2:
 * 151,936), for the option sets users run: greedy, the defaults (top-k 40, top-p 0.95, min-p
 * 0.05, T 0.8), top-p without top-k, and the defaults with a repetition penalty over 64
 * tokens. Sampling runs in TypeScript between two decode steps, so on a GPU it adds to every
 * token's time: the report sets each figure against a 480 tok/s decode step (2.08 ms).
 *
 * Logits are synthetic with an LLM-like shape: a broad Gaussian body and a few dozen strong
 * candidates, drawn fresh for every run. Each measured call gets its own copy (the penalties
 * modify logits in place), and the copy is timed too, as a generation loop pays for it.
 *
 * Run: `npx tsc -p tsconfig.json; node dist/bench/sampling.js`. Writes bench/results/sampling.json.
 */
import fs from "node:fs";
import path from "node:path";
import { Bench } from "tinybench";
import { Sampler, type SamplingOptions } from "../lib/sampling/sampler.js";
import { repoRoot } from "./paths.js";

const DECODE_STEP_MS = 1000 / 480;

function llmLikeLogits(vocab: number): Float32Array {
  const logits = new Float32Array(vocab);
  for (let i = 0; i < vocab; i++) {
    const u = 1 - Math.random();
    logits[i] = 2.5 * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * Math.random());
  }
  for (let j = 0; j < 40; j++) logits[Math.floor(Math.random() * vocab)] = 8 + 6 * Math.random();
  return logits;
}

const optionSets: [string, SamplingOptions][] = [
  ["greedy", { temperature: 0 }],
  ["defaults", {}],
  ["top-p 0.9, no top-k", { topK: 0, topP: 0.9, minP: 0 }],
  ["defaults + repeat penalty", { repeatPenalty: 1.1 }],
];

async function main() {
  const results = [];
  for (const vocab of [128_256, 151_936]) {
    const logits = llmLikeLogits(vocab);
    const scratch = new Float32Array(vocab);
    const history = Array.from({ length: 64 }, () => Math.floor(Math.random() * vocab));
    const bench = new Bench({ time: 1500, warmupIterations: 20 });
    for (const [name, options] of optionSets) {
      const sampler = new Sampler({ ...options, seed: 1 });
      bench.add(name, () => {
        scratch.set(logits);
        sampler.sample(scratch, history);
      });
    }
    await bench.run();
    for (const task of bench.tasks) {
      const r = task.result;
      if (r.state !== "completed") throw new Error(`${task.name}: benchmark ${r.state}`);
      const us = r.latency.p50 * 1000;
      const share = us / 1000 / DECODE_STEP_MS;
      results.push({ vocab, options: task.name, medianUs: us, shareOf480TokS: share });
      console.log(
        `vocab ${String(vocab).padStart(6)}  ${task.name.padEnd(26)} ${us.toFixed(0).padStart(6)} us/token` +
          `  (${(share * 100).toFixed(1)}% of a 480 tok/s step)`,
      );
    }
  }
  const out = path.join(repoRoot, "bench/results/sampling.json");
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), results }, null, 2));
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
