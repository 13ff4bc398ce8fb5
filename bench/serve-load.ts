/**
 * Serving under load: 32 concurrent streaming clients for 60 s against the server (in its
 * own process) on a small synthetic model, through the `openai` package.
 *
 *   node dist/bench/serve-load.js [--clients 32] [--seconds 60] [--threads N] [--model file.gguf]
 *   (or npm run bench -- --only serve-load)
 *
 * First every prompt runs alone (its solo answer); then the clients loop over the prompts,
 * and every stream must equal its solo answer character for character (no cross-talk between
 * batched sequences). Half the requests are greedy, half sample with a seed (the same seed
 * gives the same tokens alone or batched): a random-weight model's greedy text is one token
 * repeated, which would hide cross-talk that seeded sampling shows. One request in ten is killed by its client after a few chunks. At the
 * end: zero errors, every KV block free, and the server's RSS back near its level after
 * warm-up (the first tenth of the run). Exit code 1 when any of these fails.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { SHAPES, writeSyntheticModel } from "../dev/synthetic-model.js";
import { benchPrompts, startServer, streamChat } from "./serve-client.js";

export interface ServeLoadOptions {
  file: string;
  name: string;
  threads: number;
  clients: number;
  seconds: number;
  maxTokens: number;
  /** The server's KV pool in tokens (default: 4 contexts of 512). */
  kvCacheTokens?: number;
  onStep?: (line: string) => void;
}

export interface ServeLoadResult {
  model: string;
  clients: number;
  seconds: number;
  requests: number;
  killed: number;
  errors: number;
  mismatches: number;
  tokens: number;
  tps: number;
  blocksInUseAfter: number;
  rssStartMiB: number;
  rssWarmMiB: number;
  rssPeakMiB: number;
  rssEndMiB: number;
  /** The server's RSS through the run (after a garbage collection each). */
  rssSamplesMiB: number[];
  passed: boolean;
}

/**
 * A small llama (2 layers, d=256, the stories vocabulary): fast steps, so many requests in a
 * minute. Untied output weights: with the head tied to the embeddings this random model
 * writes "\n" after any prompt, greedy or sampled, and streams that all look alike would
 * hide cross-talk.
 */
export function tinySyntheticModel(): string {
  const file = path.join(os.tmpdir(), `tessera-serve-load-${process.pid}.gguf`);
  writeSyntheticModel(file, { ...SHAPES["smollm2-135m"], nLayer: 2, nEmbd: 256, nHead: 4, nHeadKv: 2, nFf: 512, tiedEmbeddings: false }, { weights: "Q8_0", vocab: "stories", seed: 3 });
  process.on("exit", () => fs.rmSync(file, { force: true }));
  return file;
}

const MiB = 1 << 20;

export async function runServeLoad(o: ServeLoadOptions): Promise<ServeLoadResult> {
  const server = await startServer({ file: o.file, threads: o.threads, contextSize: 512, parallel: o.clients, kvCacheTokens: o.kvCacheTokens });
  try {
    const rssStart = (await server.stats()).rss;
    const prompts = benchPrompts(24);
    // Request j of the run: prompt j % 24, greedy when j / 24 is even, else seeded sampling.
    const body = (j: number) => {
      const p = j % prompts.length;
      const sampled = Math.floor(j / prompts.length) % 2 === 1;
      return { messages: prompts[p], max_tokens: o.maxTokens, temperature: sampled ? 1 : 0, ...(sampled ? { seed: 1000 + p } : {}) };
    };
    const solo: string[] = [];
    for (let j = 0; j < 2 * prompts.length; j++) solo.push((await streamChat(server.client, body(j))).text);
    if (process.env.SERVE_LOAD_DEBUG) for (const t of solo) o.onStep?.(JSON.stringify(t));
    o.onStep?.(`serve-load: ${solo.length} solo answers`);

    let requests = 0;
    let killed = 0;
    let errors = 0;
    let mismatches = 0;
    let tokens = 0;
    const firstError: string[] = [];
    const t0 = performance.now();
    const end = t0 + o.seconds * 1000;
    let rssWarm = NaN;
    let rssPeak = 0;
    const samples: number[] = [];
    const sampler = (async () => {
      while (performance.now() < end) {
        await new Promise((r) => setTimeout(r, Math.min(2000, (o.seconds * 1000) / 20)));
        const { rss } = await server.stats();
        rssPeak = Math.max(rssPeak, rss);
        samples.push(rss / MiB);
        if (Number.isNaN(rssWarm) && performance.now() - t0 >= (o.seconds * 1000) / 10) rssWarm = rss;
      }
    })();
    await Promise.all(
      Array.from({ length: o.clients }, async (_, c) => {
        for (let i = 0; performance.now() < end; i++) {
          const j = (c * 7 + i * 5) % solo.length;
          const kill = (c + i) % 10 === 9;
          requests++;
          try {
            const r = await streamChat(server.client, body(j), kill ? 3 : undefined);
            tokens += r.tokens;
            if (r.killed) killed++;
            else if (r.text !== solo[j]) mismatches++;
          } catch (e) {
            errors++;
            if (firstError.length < 3) firstError.push(e instanceof Error ? e.message : String(e));
          }
        }
      }),
    );
    const seconds = (performance.now() - t0) / 1000;
    await sampler;
    // Killed requests free their blocks as the server notices the closed connection.
    let after = await server.stats();
    for (let k = 0; k < 50 && after.stats.inUse > 0; k++) {
      await new Promise((r) => setTimeout(r, 20));
      after = await server.stats();
    }
    const rssEnd = after.rss;
    if (Number.isNaN(rssWarm)) rssWarm = rssEnd;
    for (const e of firstError) o.onStep?.(`serve-load error: ${e}`);
    const passed = errors === 0 && mismatches === 0 && after.stats.inUse === 0 && rssEnd <= rssWarm + 16 * MiB;
    return {
      model: o.name,
      clients: o.clients,
      seconds,
      requests,
      killed,
      errors,
      mismatches,
      tokens,
      tps: tokens / seconds,
      blocksInUseAfter: after.stats.inUse,
      rssStartMiB: rssStart / MiB,
      rssWarmMiB: rssWarm / MiB,
      rssPeakMiB: rssPeak / MiB,
      rssEndMiB: rssEnd / MiB,
      rssSamplesMiB: samples,
      passed,
    };
  } finally {
    await server.close();
  }
}

export function serveLoadMarkdown(r: ServeLoadResult): string[] {
  return [
    `## Serving under load (${r.model}, ${r.clients} streaming clients for ${r.seconds.toFixed(0)} s)`,
    "",
    "| requests | killed mid-stream | errors | streams unlike their solo run | tokens/s | KV blocks in use after | server RSS MiB: start / after warm-up / peak / end |",
    "|---|---|---|---|---|---|---|",
    `| ${r.requests} | ${r.killed} | ${r.errors} | ${r.mismatches} | ${r.tps.toFixed(1)} | ${r.blocksInUseAfter} | ${r.rssStartMiB.toFixed(1)} / ${r.rssWarmMiB.toFixed(1)} / ${r.rssPeakMiB.toFixed(1)} / ${r.rssEndMiB.toFixed(1)} |`,
    "",
    `RSS through the run (MiB): ${r.rssSamplesMiB.map((x) => x.toFixed(0)).join(" ")}`,
    "",
  ];
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { kv: { type: "string" }, clients: { type: "string" }, seconds: { type: "string" }, threads: { type: "string" }, model: { type: "string" }, tokens: { type: "string" } } });
  const file = values.model ?? tinySyntheticModel();
  const r = await runServeLoad({
    file,
    name: values.model ? path.basename(values.model) : "tiny-llama-Q8_0",
    threads: values.threads ? Number(values.threads) : os.availableParallelism(),
    clients: values.clients ? Number(values.clients) : 32,
    seconds: values.seconds ? Number(values.seconds) : 60,
    maxTokens: values.tokens ? Number(values.tokens) : 32,
    kvCacheTokens: values.kv ? Number(values.kv) : undefined,
    onStep: (l) => process.stderr.write(l + "\n"),
  });
  process.stdout.write(serveLoadMarkdown(r).join("\n") + "\n" + (r.passed ? "passed\n" : "FAILED\n"));
  if (!r.passed) process.exitCode = 1;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((e: unknown) => {
    process.stderr.write(`serve-load failed: ${e instanceof Error ? e.stack : String(e)}\n`);
    process.exitCode = 1;
  });
}
