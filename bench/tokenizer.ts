/**
 * Tokenizer encode throughput, side by side in one process.
 *
 * Byte-level BPE, on a deterministic ≥ 1 MB mix of English, code and many scripts
 * (bench/corpus.ts):
 * - Tessera on the Llama 3 vocabulary (../shared/tokenizers/llama3, encoder.json + vocab.bpe);
 * - @huggingface/tokenizers (pure JS) on a tokenizer.json built from the same files;
 * - js-tiktoken on cl100k_base (bundled with it; the nearest vocabulary it ships).
 * Steady state is measured with tinybench (each tokenizer keeps whatever caches it builds);
 * "cold" is the first encode by a freshly loaded tokenizer. Ratios are Tessera / other.
 *
 * SentencePiece, on 20 MB of English prose (generateProse), the Mistral v0.3 vocabulary in
 * ../shared/tokenizers/mistral-v0.3:
 * - Tessera's SentencePiece encoder on tokenizer.model.v3 (read as GGUF metadata: scores);
 * - Tessera on tokenizer.json (BPE merges, Metaspace);
 * - @huggingface/tokenizers on tokenizer.json.
 * A SentencePiece vocabulary has no pre-tokenizer, so the whole text is one word. Tessera
 * encodes all 20 MB in one call; @huggingface/tokenizers slows down with the length of a word
 * (0.09 MB/s at 1 MB, 0.05 at 4 MB), so its one-call figure is taken on the first
 * --hf-whole-mb MB (default 1). Both also encode the 20 MB paragraph by paragraph, one call
 * each, the way a caller would feed that library a long document. Tessera's figures are the
 * median of 3 runs after a first one; @huggingface/tokenizers' are single runs.
 *
 * Run: `npx tsc -p tsconfig.json; node dist/bench/tokenizer.js [--only bpe|spm] [--spm-mb 20]
 * [--hf-whole-mb 1]`. Writes bench/results/tokenizer.json.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Tokenizer as HfTokenizer } from "@huggingface/tokenizers";
import { Tiktoken } from "js-tiktoken/lite";
import cl100k from "js-tiktoken/ranks/cl100k_base";
import { Bench } from "tinybench";
import { tokenizerFromGGUF, tokenizerFromHuggingFace } from "../lib/tokenizer/index.js";
import { generateCorpus, generateProse } from "./corpus.js";
import { llama3TokenizerJson } from "./llama3-tokenizer-json.js";
import { repoRoot, sharedDir } from "./paths.js";
import { sentencePieceMetadata } from "./sentencepiece-model.js";

const TARGET_RATIO = 1.5;

interface Contender {
  name: string;
  vocabulary: string;
  load: () => (text: string) => number[];
}

const llama3Dir = path.join(sharedDir, "tokenizers/llama3");
const mistralDir = path.join(sharedDir, "tokenizers/mistral-v0.3");

function option(name: string, fallback: string): string {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 && at + 1 < process.argv.length ? process.argv[at + 1] : fallback;
}

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

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function sameTokens(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((t, i) => t === b[i]);
}

interface SpmRow {
  name: string;
  how: string;
  MB: number;
  tokens: number;
  firstMBps: number;
  MBps: number;
  runs: number;
}

/** SentencePiece: 20 MB of prose, whole and paragraph by paragraph. */
function benchSentencePiece(): Record<string, unknown> {
  const spmMB = Number(option("spm-mb", "20"));
  const hfWholeMB = Number(option("hf-whole-mb", "1"));
  const text = generateProse(spmMB * 1e6, { seed: 1 });
  const bytes = Buffer.byteLength(text);
  // Cut at a paragraph end, so the prefix is a text of its own.
  const prefix = text.slice(0, text.lastIndexOf("\n\n", hfWholeMB * 1e6) + 2);
  const paragraphs = text.split(/(?<=\n\n)/);
  console.log(`\nSentencePiece: ${(bytes / 1e6).toFixed(1)} MB of prose (${paragraphs.length} paragraphs), Mistral v0.3 vocabulary`);

  const spm = tokenizerFromGGUF(sentencePieceMetadata(path.join(mistralDir, "tokenizer.model.v3")));
  const json = tokenizerFromHuggingFace(mistralDir);
  const hfJson = JSON.parse(fs.readFileSync(path.join(mistralDir, "tokenizer.json"), "utf8"));
  const hfConfig = JSON.parse(fs.readFileSync(path.join(mistralDir, "tokenizer_config.json"), "utf8"));
  const hf = new HfTokenizer(hfJson, hfConfig);
  const ours = (t: typeof spm) => (s: string) => t.encode(s, { addSpecial: false });
  const theirs = (s: string) => hf.encode(s, { add_special_tokens: false }).ids;
  const byParagraph = (encode: (s: string) => number[]) => (_: string) => {
    const out: number[] = [];
    for (const p of paragraphs) for (const id of encode(p)) out.push(id);
    return out;
  };

  const rows: SpmRow[] = [];
  const tokensOf = new Map<string, number[]>();
  const measure = (name: string, how: string, input: string, encode: (s: string) => number[], runs: number): void => {
    const mb = Buffer.byteLength(input) / 1e6;
    let tokens: number[] = [];
    const firstMs = timeMs(() => (tokens = encode(input)));
    const ms: number[] = [];
    for (let i = 0; i < runs; i++) ms.push(timeMs(() => encode(input)));
    const row = { name, how, MB: mb, tokens: tokens.length, firstMBps: mb / (firstMs / 1000), MBps: mb / (median(runs > 0 ? ms : [firstMs]) / 1000), runs: Math.max(runs, 1) };
    rows.push(row);
    tokensOf.set(`${name}|${how}|${input.length}`, tokens);
    console.log(`${name}, ${how}, ${mb.toFixed(1)} MB: ${row.MBps.toFixed(2)} MB/s (first ${row.firstMBps.toFixed(2)}), ${tokens.length} tokens`);
  };
  measure("tessera SentencePiece (tokenizer.model.v3)", "one call", text, ours(spm), 3);
  measure("tessera tokenizer.json", "one call", text, ours(json), 3);
  measure("@huggingface/tokenizers", "one call", prefix, theirs, 0);
  measure("tessera SentencePiece (tokenizer.model.v3)", "one call", prefix, ours(spm), 3);
  measure("tessera SentencePiece (tokenizer.model.v3)", "per paragraph", text, byParagraph(ours(spm)), 3);
  measure("@huggingface/tokenizers", "per paragraph", text, byParagraph(theirs), 0);

  const get = (name: string, how: string, input: string) => tokensOf.get(`${name}|${how}|${input.length}`)!;
  const sameWhole = sameTokens(get("tessera SentencePiece (tokenizer.model.v3)", "one call", prefix), get("@huggingface/tokenizers", "one call", prefix));
  const sameParagraphs = sameTokens(get("tessera SentencePiece (tokenizer.model.v3)", "per paragraph", text), get("@huggingface/tokenizers", "per paragraph", text));
  const sameJson = sameTokens(get("tessera SentencePiece (tokenizer.model.v3)", "one call", text), get("tessera tokenizer.json", "one call", text));
  console.log(`tessera and @huggingface/tokenizers give ${sameWhole ? "the same" : "DIFFERENT"} tokens on the ${(prefix.length / 1e6).toFixed(1)} MB text, ${sameParagraphs ? "the same" : "DIFFERENT"} paragraph by paragraph`);
  console.log(`tessera's SentencePiece and tokenizer.json encoders give ${sameJson ? "the same" : "DIFFERENT"} tokens on the whole text`);

  console.log("");
  console.log("| tokenizer | how | MB | tokens | MB/s | MB/s (first) | runs |");
  console.log("|---|---|---|---|---|---|---|");
  for (const r of rows) console.log(`| ${r.name} | ${r.how} | ${r.MB.toFixed(1)} | ${r.tokens} | ${r.MBps.toFixed(2)} | ${r.firstMBps.toFixed(2)} | ${r.runs} |`);
  const target = 5;
  const whole = rows[0];
  console.log(`\ntessera SentencePiece on ${whole.MB.toFixed(1)} MB in one call: ${whole.MBps.toFixed(2)} MB/s; target ${target} MB/s: ${whole.MBps >= target ? "met" : "NOT met"}`);
  return {
    text: { utf8Bytes: bytes, paragraphs: paragraphs.length, generator: `bench/corpus.ts generateProse(${spmMB}e6, { seed: 1 })`, hfWholePrefixBytes: Buffer.byteLength(prefix) },
    vocabulary: "Mistral v0.3 (32768)",
    rows,
    sameTokensAsHuggingFace: { whole: sameWhole, paragraphs: sameParagraphs },
    sameTokensModelAndJson: sameJson,
    targetMBps: target,
    targetMet: whole.MBps >= target,
  };
}

async function main(): Promise<void> {
  const only = option("only", "");
  const report: Record<string, unknown> = {
    date: new Date().toISOString(),
    machine: { cpu: os.cpus()[0]?.model ?? "unknown", cores: os.cpus().length, node: process.version },
  };
  if (only !== "spm") Object.assign(report, await benchByteLevel());
  if (only !== "bpe") {
    if (!fs.existsSync(mistralDir)) throw new Error(`${mistralDir} is missing; the SentencePiece benchmark needs ../shared/tokenizers/mistral-v0.3`);
    report.sentencePiece = benchSentencePiece();
  }
  const outDir = path.join(repoRoot, "bench/results");
  fs.mkdirSync(outDir, { recursive: true });
  fs.writeFileSync(path.join(outDir, "tokenizer.json"), JSON.stringify(report, null, 2) + "\n");
  console.log(`wrote ${path.join(outDir, "tokenizer.json")}`);
}

/** Byte-level BPE: Llama 3 against @huggingface/tokenizers and js-tiktoken on the mixed corpus. */
async function benchByteLevel(): Promise<Record<string, unknown>> {
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

  return {
    text: { utf16Units: text.length, utf8Bytes: bytes, generator: "bench/corpus.ts generateCorpus(1 << 20, { seed: 1 })" },
    sameTokensAsHuggingFace: same,
    results,
    ratioVsFastest: ratio,
    coldRatioVsFastest: coldRatio,
    fastestOther: fastest.name,
    target: TARGET_RATIO,
    targetMet: ratio >= TARGET_RATIO,
  };
}

await main();
