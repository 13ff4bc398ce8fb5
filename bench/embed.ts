/**
 * `--only embed`: embedding throughput and vector search latency.
 *
 * - Throughput: texts/s embedding 1,000 short texts (5-16 words) with model.embed (all texts
 *   submitted at once, batched by the engine) beside node-llama-cpp's embedding context
 *   (getEmbeddingFor, one text at a time: its API's way) on the same file, a Qwen3-Embedding-
 *   0.6B-shaped synthetic model cut to 2 of its 28 blocks (Q8_0, the Qwen2 vocabulary);
 *   llama.cpp at the better of 1 and the same thread count, timed over the first 100 texts
 *   (its API takes one text at a time, so the rate does not depend on the count). Tessera:
 *   median of the reps over all 1,000. The same again over a BGE-small-shaped `bert` encoder
 *   (12 blocks, BGE's WordPiece vocabulary, Q8_0; quick: 2 blocks).
 * - Search: median latency of exact top-10 over 100k random 384-d vectors (cosine) in the
 *   in-process index, beside LanceDB's flat search over the same vectors on local disk.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { createVectorIndex } from "../lib/embeddings/vector-index.js";
import { openLanceVectorStore } from "../lib/embeddings/lancedb.js";
import { loadModel } from "../lib/index.js";
import { Rng } from "../lib/sampling/rng.js";
import { writeSyntheticModel, type ModelShape } from "../dev/synthetic-model.js";
import { repoRoot } from "./paths.js";
import { median } from "./stats.js";

export interface ThroughputResult {
  model: string;
  texts: number;
  peerTexts: number;
  tokens: number;
  threads: number;
  llamaCppThreads: number;
  tesseraTps: number;
  llamaCppTps: number;
  ratio: number;
}

export interface EmbedBenchResult {
  throughput: ThroughputResult;
  /** The same over a BERT encoder (BGE-small-shaped bert, BGE's WordPiece vocabulary). */
  encoder?: ThroughputResult;
  search: { vectors: number; dimensions: number; k: number; tesseraMs: number; lanceDbMs: number | null };
}

const QWEN3_EMBED_2L: ModelShape = { architecture: "qwen3", nLayer: 2, nEmbd: 1024, nHead: 16, nHeadKv: 8, headDim: 128, nFf: 3072, contextLength: 32768, ropeFreqBase: 1e6, normEps: 1e-6, qkNorm: true, tiedEmbeddings: true, poolingType: 3 };
/** BGE-small-en-v1.5's shape (12 blocks of 384, 12 heads, FFN 1536, 512 positions, cls pooling). */
const BGE_SMALL: ModelShape = {
  architecture: "bert", nLayer: 12, nEmbd: 384, nHead: 12, nHeadKv: 12, nFf: 1536, contextLength: 512, normEps: 1e-12, poolingType: 2,
  encoder: { positionEmbeddings: true, fusedQkv: false, ffn: "gelu", biases: true },
};
const TINY: ModelShape = { architecture: "qwen3", nLayer: 2, nEmbd: 256, nHead: 4, nHeadKv: 2, headDim: 64, nFf: 512, contextLength: 4096, qkNorm: true, poolingType: 3 };

/** Texts node-llama-cpp is timed over (see throughput). */
const PEER_TEXTS = 100;

const WORDS = "the a cat dog river house small blue red green runs jumps sleeps under over near bright quiet market bread honey winter summer boat key garden shed bicycle paints sister brother morning evening city mountain road light".split(" ");

export function shortTexts(n: number, seed = 5): string[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => {
    const len = 5 + Math.floor(rng.next() * 12);
    return Array.from({ length: len }, () => WORDS[Math.floor(rng.next() * WORDS.length)]).join(" ") + ".";
  });
}

function embedModelFile(quick: boolean): { file: string; name: string } {
  if (quick) {
    const file = path.join(os.tmpdir(), `tessera-bench-embed-${process.pid}.gguf`);
    writeSyntheticModel(file, TINY, { weights: "Q8_0", vocab: "stories", seed: 3 });
    process.on("exit", () => fs.rmSync(file, { force: true }));
    return { file, name: "tiny-qwen3-embed-Q8_0" };
  }
  return cachedModel("qwen3-embedding-0.6b-2l-Q8_0", QWEN3_EMBED_2L, "qwen2");
}

/** The bert file: BGE-small-shaped (quick: its first 2 blocks). */
function encoderModelFile(quick: boolean): { file: string; name: string } {
  return quick ? cachedModel("bge-small-2l-Q8_0", { ...BGE_SMALL, nLayer: 2 }, "bert-bge") : cachedModel("bge-small-Q8_0", BGE_SMALL, "bert-bge");
}

function cachedModel(name: string, shape: ModelShape, vocab: "qwen2" | "bert-bge"): { file: string; name: string } {
  const file = path.join(repoRoot, ".bench-models", `${name}.gguf`);
  if (!fs.existsSync(file)) {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    writeSyntheticModel(`${file}.partial`, shape, { weights: "Q8_0", vocab, seed: 7 });
    fs.renameSync(`${file}.partial`, file);
  }
  return { file, name };
}

async function throughput(target: { file: string; name: string }, quick: boolean, threads: number, onStep: (l: string) => void): Promise<ThroughputResult> {
  const { file, name } = target;
  const texts = shortTexts(quick ? 100 : 1000);
  const reps = quick ? 1 : 3;
  const model = await loadModel(file, { backend: "cpu", threads, contextSize: 512 });
  const tokens = texts.reduce((a, t) => a + model.tokenizer.encode(t).length, 0);
  await model.embed(texts.slice(0, 16));
  const ours: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    await model.embed(texts);
    ours.push(texts.length / ((performance.now() - t0) / 1000));
    onStep(`embed ${name}: Tessera ${ours[r].toFixed(0)} texts/s`);
  }
  model.dispose();
  const { getLlama, LlamaLogLevel } = await import("node-llama-cpp");
  const llama = await getLlama({ gpu: false, build: "never", skipDownload: true, logLevel: LlamaLogLevel.error, progressLogs: false });
  const lmodel = await llama.loadModel({ modelPath: file, gpuLayers: 0 });
  // llama.cpp's threads spin at every op's barrier: on a machine where other processes hold
  // the cores, `threads` of them can run 100x slower than one (measured here under a load
  // average of 14: 1 s vs 8 ms per text). The peer gets the better of 1 and `threads`.
  // Its API embeds one text at a time, so its rate does not depend on how many texts there
  // are: it is timed over the first PEER_TEXTS (at about 1 s per text on this file here,
  // 1,000 texts at two thread counts would take over half an hour).
  let llamaCppTps = 0, llamaCppThreads = 1;
  const peerTexts = texts.slice(0, quick ? 16 : PEER_TEXTS);
  for (const n of threads > 1 ? [1, threads] : [1]) {
    const ctx = await lmodel.createEmbeddingContext({ contextSize: 512, threads: n });
    for (const t of texts.slice(0, 2)) await ctx.getEmbeddingFor(t);
    const t0 = performance.now();
    for (const t of peerTexts) await ctx.getEmbeddingFor(t);
    const tps = peerTexts.length / ((performance.now() - t0) / 1000);
    onStep(`embed ${name}: llama.cpp ${n} thread(s) ${tps.toFixed(2)} texts/s over ${peerTexts.length} texts`);
    await ctx.dispose();
    if (tps > llamaCppTps) {
      llamaCppTps = tps;
      llamaCppThreads = n;
    }
  }
  await lmodel.dispose();
  await llama.dispose();
  const tesseraTps = median(ours);
  return { model: name, texts: texts.length, peerTexts: peerTexts.length, tokens, threads, llamaCppThreads, tesseraTps, llamaCppTps, ratio: tesseraTps / llamaCppTps };
}

async function search(quick: boolean, threads: number, onStep: (l: string) => void): Promise<EmbedBenchResult["search"]> {
  const n = quick ? 10_000 : 100_000, d = 384, k = 10;
  const rng = new Rng(11);
  const data = new Float32Array(n * d);
  for (let i = 0; i < data.length; i++) data[i] = 2 * rng.next() - 1;
  const ids = Array.from({ length: n }, (_, i) => `v${i}`);
  const queries = Array.from({ length: 20 }, () => Float32Array.from({ length: d }, () => 2 * rng.next() - 1));
  const index = createVectorIndex({ dimensions: d, metric: "cosine", threads });
  index.add(ids, data);
  index.search(queries[0], k);
  const ours = queries.map((q) => {
    const t0 = performance.now();
    index.search(q, k);
    return performance.now() - t0;
  });
  onStep(`search: Tessera ${median(ours).toFixed(2)} ms`);
  let lanceDbMs: number | null = null;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tessera-bench-lance-"));
  try {
    const lance = await openLanceVectorStore({ uri: dir, dimensions: d, metric: "cosine" });
    for (let i = 0; i < n; i += 20_000) await lance.add(ids.slice(i, i + 20_000), data.subarray(i * d, Math.min(n, i + 20_000) * d));
    await lance.search(queries[0], k);
    const theirs: number[] = [];
    for (const q of queries.slice(0, quick ? 3 : 10)) {
      const t0 = performance.now();
      await lance.search(q, k);
      theirs.push(performance.now() - t0);
    }
    lance.close();
    lanceDbMs = median(theirs);
    onStep(`search: LanceDB flat ${lanceDbMs.toFixed(2)} ms`);
  } catch (e) {
    onStep(`search: LanceDB unavailable (${(e as Error).message})`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return { vectors: n, dimensions: d, k, tesseraMs: median(ours), lanceDbMs };
}

export async function runEmbedBench(opts: { quick: boolean; threads: number; onStep: (l: string) => void }): Promise<EmbedBenchResult> {
  const s = await search(opts.quick, opts.threads, opts.onStep);
  const t = await throughput(embedModelFile(opts.quick), opts.quick, opts.threads, opts.onStep);
  const encoder = await throughput(encoderModelFile(opts.quick), opts.quick, opts.threads, opts.onStep);
  return { throughput: t, encoder, search: s };
}

export function embedTargets(e: EmbedBenchResult): Array<{ target: string; measured: string; met: boolean }> {
  const out = [e.throughput, ...(e.encoder ? [e.encoder] : [])].map((t) => ({
    target: `${t.model} embedding throughput (${t.texts} short texts) ≥ 1.5× node-llama-cpp`,
    measured: `${t.ratio.toFixed(2)}× (${t.tesseraTps.toFixed(0)} vs ${t.llamaCppTps.toFixed(0)} texts/s)`,
    met: t.ratio >= 1.5,
  }));
  const s = e.search;
  out.push({
    target: `exact top-${s.k} over ${s.vectors / 1000}k × ${s.dimensions} (report; LanceDB flat beside it)`,
    measured: `${s.tesseraMs.toFixed(2)} ms${s.lanceDbMs !== null ? ` vs ${s.lanceDbMs.toFixed(2)} ms` : ""}`,
    met: true,
  });
  return out;
}

export function embedMarkdown(e: EmbedBenchResult): string[] {
  const s = e.search;
  const row = (t: ThroughputResult) =>
    `| ${t.model}: ${t.texts} texts (${t.tokens} tokens), ${t.threads} threads | ${t.tesseraTps.toFixed(0)} texts/s | node-llama-cpp ${t.llamaCppTps.toFixed(0)} texts/s (${t.llamaCppThreads} thread${t.llamaCppThreads > 1 ? "s" : ""}, its best; first ${t.peerTexts} texts, one at a time) | ${t.ratio.toFixed(2)}× |`;
  return [
    "## Embeddings and vector search",
    "",
    "| measure | Tessera | peer | ratio |",
    "|---|---|---|---|",
    row(e.throughput),
    ...(e.encoder ? [row(e.encoder)] : []),
    `| exact top-${s.k}, ${s.vectors} × ${s.dimensions} cosine (median query) | ${s.tesseraMs.toFixed(2)} ms | LanceDB flat ${s.lanceDbMs === null ? "–" : `${s.lanceDbMs.toFixed(2)} ms`} | ${s.lanceDbMs === null ? "–" : `${(s.lanceDbMs / s.tesseraMs).toFixed(1)}×`} |`,
    "",
  ];
}
