/**
 * Tokenizer encode throughput, side by side in one process:
 * - Tessera on the Llama 3 vocabulary (../shared/tokenizers/llama3, encoder.json + vocab.bpe);
 * - @huggingface/tokenizers (pure JS) on a tokenizer.json built from the same files;
 * - js-tiktoken on cl100k_base (bundled with it; the nearest vocabulary it ships).
 * The text is a deterministic ≥ 1 MB mix of English, code and many scripts (bench/corpus.ts).
 * Steady state is measured with tinybench (each tokenizer keeps whatever caches it builds);
 * "cold" is the first encode by a freshly loaded tokenizer. Ratios are Tessera / other.
 *
 * Run: `npx tsc -p tsconfig.json; node dist/bench/tokenizer.js`. Writes bench/results/tokenizer.json.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Tokenizer as HfTokenizer } from "@huggingface/tokenizers";
import { Tiktoken } from "js-tiktoken/lite";
import cl100k from "js-tiktoken/ranks/cl100k_base";
import { Bench } from "tinybench";
import { tokenizerFromHuggingFace } from "../lib/tokenizer/index.js";
import { generateCorpus } from "./corpus.js";
import { llama3TokenizerJson } from "./llama3-tokenizer-json.js";
import { repoRoot, sharedDir } from "./paths.js";

const TARGET_RATIO = 1.5;

interface Contender {
  name: string;
  vocabulary: string;
  load: () => (text: string) => number[];
}

const llama3Dir = path.join(sharedDir, "tokenizers/llama3");

const contenders: Contender[] = [
  {
    name: "tessera",
    vocabulary: "Llama 3 (128256)",
    load: () => {
      const t = tokenizerFromHuggingFace(llama3Dir, { preTokenizer: "llama-bpe" });
      return (text) => t.encode(text, { addSpecial: false });
    },
  },
  {
    name: "@huggingface/tokenizers",
    vocabulary: "Llama 3 (128256)",
    load: () => {
      const t = new HfTokenizer(llama3TokenizerJson(llama3Dir), {});
      return (text) => t.encode(text, { add_special_tokens: false }).ids;
    },
  },
  {
    name: "js-tiktoken",
    vocabulary: "cl100k_base (100277)",
    load: () => {
      const t = new Tiktoken(cl100k);
      // Special-token text in the input is plain text here, as in the other two.
      return (text) => t.encode(text, [], []);
    },
  },
];

function timeMs(f: () => void): number {
  const t0 = performance.now();
  f();
  return performance.now() - t0;
}

async function main(): Promise<void> {
  if (!fs.existsSync(llama3Dir)) throw new Error(`${llama3Dir} is missing; the benchmark needs ../shared/tokenizers/llama3`);
  const text = generateCorpus(1 << 20, { seed: 1 });
  const bytes = Buffer.byteLength(text);
  const mb = bytes / 1e6;
  console.log(`text: ${text.length} UTF-16 units, ${bytes} UTF-8 bytes`);

  const encoders = new Map<string, (text: string) => number[]>();
  const rows: Record<string, { loadMs: number; coldMBps: number; tokens: number }> = {};
  for (const c of contenders) {
    let encode!: (text: string) => number[];
    const loadMs = timeMs(() => (encode = c.load()));
    let tokens = 0;
    const coldMs = timeMs(() => (tokens = encode(text).length));
    encoders.set(c.name, encode);
    rows[c.name] = { loadMs, coldMBps: mb / (coldMs / 1000), tokens };
    console.log(`${c.name}: loaded in ${loadMs.toFixed(0)} ms, first encode ${coldMs.toFixed(0)} ms, ${tokens} tokens`);
  }
  const same = JSON.stringify(encoders.get("tessera")!(text)) === JSON.stringify(encoders.get("@huggingface/tokenizers")!(text));
  console.log(`tessera and @huggingface/tokenizers give ${same ? "the same" : "DIFFERENT"} tokens`);

  const bench = new Bench({ time: 4000, iterations: 5, warmupIterations: 1 });
  for (const c of contenders) {
    const encode = encoders.get(c.name)!;
    bench.add(c.name, () => {
      encode(text);
    });
  }
  await bench.run();

  const results = contenders.map((c) => {
    const task = bench.getTask(c.name)!;
    const r = task.result;
    if (r.state !== "completed") throw new Error(`${c.name}: benchmark ${r.state}`);
    return {
      name: c.name,
      vocabulary: c.vocabulary,
      tokens: rows[c.name].tokens,
      loadMs: rows[c.name].loadMs,
      meanMs: r.latency.mean,
      rmePercent: r.latency.rme,
      samples: r.latency.samplesCount,
      MBps: mb / (r.latency.mean / 1000),
      coldMBps: rows[c.name].coldMBps,
    };
  });
  const ours = results[0];
  const others = results.slice(1);
  const fastest = others.reduce((a, b) => (b.MBps > a.MBps ? b : a));
  const fastestCold = others.reduce((a, b) => (b.coldMBps > a.coldMBps ? b : a));
  const ratio = ours.MBps / fastest.MBps;
  const coldRatio = ours.coldMBps / fastestCold.coldMBps;

  console.log("");
  console.log("| tokenizer | vocabulary | tokens | MB/s (steady) | ± % | MB/s (cold) | tessera ÷ this (steady) | tessera ÷ this (cold) |");
  console.log("|---|---|---|---|---|---|---|---|");
  for (const r of results) {
    console.log(
      `| ${r.name} | ${r.vocabulary} | ${r.tokens} | ${r.MBps.toFixed(2)} | ${r.rmePercent.toFixed(1)} | ${r.coldMBps.toFixed(2)} | ` +
        `${(ours.MBps / r.MBps).toFixed(2)}× | ${(ours.coldMBps / r.coldMBps).toFixed(2)}× |`,
    );
  }
  console.log("");
  console.log(`tessera vs the faster other (${fastest.name}): ${ratio.toFixed(2)}× steady, ${coldRatio.toFixed(2)}× cold; target ${TARGET_RATIO}×: ${ratio >= TARGET_RATIO ? "met" : "NOT met"}`);

  const report = {
    date: new Date().toISOString(),
    machine: { cpu: os.cpus()[0]?.model ?? "unknown", cores: os.cpus().length, node: process.version },
    text: { utf16Units: text.length, utf8Bytes: bytes, generator: "bench/corpus.ts generateCorpus(1 << 20, { seed: 1 })" },
    sameTokensAsHuggingFace: same,
    results,
    ratioVsFastest: ratio,
    coldRatioVsFastest: coldRatio,
    fastestOther: fastest.name,
    target: TARGET_RATIO,
    targetMet: ratio >= TARGET_RATIO,
  };
  const outDir = path.join(repoRoot, "bench/results");
  fs.mkdirSync(outDir, { recursive: true });
  fs.writeFileSync(path.join(outDir, "tokenizer.json"), JSON.stringify(report, null, 2) + "\n");
  console.log(`wrote ${path.join(outDir, "tokenizer.json")}`);
}

await main();
