/**
 * Soak: many generations and load/dispose cycles in one process, watching resident memory
 * and open file descriptors. After a warm-up both must stay flat: a leak of a KV block, a
 * session, a native model or a mapping shows as steady growth over thousands of rounds.
 *
 *   node --expose-gc dist/bench/soak.js [--generations 10000] [--loads 2000] [--large-loads 200]
 *
 * 1. Generations on stories260K, 8 at a time: greedy and seeded sampling, on the model's
 *    own sequences and on sessions (forked, truncated, reused), one in ten aborted midway.
 * 2. Load/dispose cycles of stories260K with every load option (mmap on and off,
 *    checkTensors), each running a short generation; one in ten aborted before the load,
 *    one in ten never disposed (left to the garbage collector).
 * 3. Load/dispose cycles of a ~100 MB synthetic F32 model (steps on the libuv pool, weights
 *    copied at load), one in four aborted mid-load.
 *
 * RSS, V8's heap and the descriptor count are sampled every 1/20th of a phase (after two
 * garbage collections); the report compares the mean RSS of the last quarter with the mean
 * just after warm-up (the first 20%). Exit code 1 when it grows by more than 8 MiB or a
 * descriptor stays open.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { isTesseraError, loadModel, type GenerateOptions, type Model } from "../lib/index.js";
import { writeSyntheticModel } from "../dev/synthetic-model.js";
import { sharedDir } from "./paths.js";

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
}

const GENERATIONS = arg("generations", 10_000);
const LOADS = arg("loads", 2_000);
const LARGE_LOADS = arg("large-loads", 200);
const stories = path.join(sharedDir, "models/stories260K.gguf");
const gc = (globalThis as { gc?: () => void }).gc;

interface Sample {
  round: number;
  rssMiB: number;
  /** V8's heap (part of the RSS). */
  heapMiB: number;
  fds: number;
}

const tick = () => new Promise((r) => setTimeout(r, 10));

/** Collected twice with pauses between, so finalizers of collected models have run (they free native memory). */
async function sample(round: number): Promise<Sample> {
  gc?.();
  await tick();
  gc?.();
  await tick();
  const m = process.memoryUsage();
  return { round, rssMiB: m.rss / 2 ** 20, heapMiB: m.heapTotal / 2 ** 20, fds: fs.readdirSync("/proc/self/fd").length };
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

/**
 * Runs `rounds` rounds of `body` (awaited `width` at a time), sampling 20 times. Flat: the
 * mean RSS of the last quarter is within 8 MiB of the mean over the quarter after warm-up
 * (the first 20%), and no descriptor is left open. Means, not single samples: a sample
 * lands wherever V8's heap and the allocators' free lists happen to be.
 */
async function phase(name: string, rounds: number, width: number, body: (i: number) => Promise<void>): Promise<boolean> {
  const samples: Sample[] = [await sample(0)];
  const every = Math.max(width, Math.floor(rounds / 20));
  const t0 = performance.now();
  for (let i = 0; i < rounds; i += width) {
    await Promise.all(Array.from({ length: Math.min(width, rounds - i) }, (_, k) => body(i + k)));
    if (Math.floor((i + width) / every) > Math.floor(i / every) || i + width >= rounds) samples.push(await sample(Math.min(i + width, rounds)));
  }
  const seconds = (performance.now() - t0) / 1000;
  const between = (lo: number, hi: number) => samples.filter((s) => s.round > lo * rounds && s.round <= hi * rounds);
  const warm = between(0.2, 0.45);
  const end = between(0.75, 1);
  const warmRss = mean(warm.map((s) => s.rssMiB));
  const endRss = mean(end.map((s) => s.rssMiB));
  const after = samples.filter((s) => s.round > 0.2 * rounds);
  const maxRss = Math.max(...after.map((s) => s.rssMiB));
  const last = samples[samples.length - 1];
  const ok = endRss - warmRss <= 8 && last.fds <= samples[0].fds;
  console.log(
    `${name}: ${rounds} in ${seconds.toFixed(1)} s | RSS MiB: start ${samples[0].rssMiB.toFixed(1)}, ` +
      `mean after warm-up ${warmRss.toFixed(1)}, mean of last quarter ${endRss.toFixed(1)} (${endRss >= warmRss ? "+" : ""}${(endRss - warmRss).toFixed(1)}), ` +
      `max after warm-up ${maxRss.toFixed(1)} | fds: start ${samples[0].fds}, max ${Math.max(...samples.map((s) => s.fds))}, last ${last.fds} | ${ok ? "flat" : "GROWS"}`,
  );
  console.log(`  RSS MiB:  ${samples.map((s) => s.rssMiB.toFixed(0)).join(" ")}`);
  console.log(`  heap MiB: ${samples.map((s) => s.heapMiB.toFixed(0)).join(" ")}`);
  return ok;
}

const PROMPTS = ["Once upon a time", "Lily", "The cat sat", "Tom went to the park", "A little bird", "One day", "Sara and Ben"];

/** Expected outcomes of a round; anything else is a bug and ends the soak. */
function tolerate(e: unknown): void {
  if (isTesseraError(e) && (e.code === "ERR_ABORTED" || e.code === "ERR_OUT_OF_CONTEXT")) return;
  throw e;
}

async function generations(model: Model): Promise<boolean> {
  const sessions = Array.from({ length: 8 }, () => model.createSession());
  return phase("generations", GENERATIONS, 8, async (i) => {
    const options: GenerateOptions =
      i % 2 === 0 ? { maxTokens: 16, temperature: 0 } : { maxTokens: 16, temperature: 0.8, topK: 40, seed: i };
    const ac = i % 10 === 3 ? new AbortController() : undefined;
    if (ac) options.signal = ac.signal;
    const slot = i % 8;
    if (i % 4 === 1) {
      // On a session: reuse its cache, sometimes from a fork or after a truncate.
      let s = sessions[slot];
      if (i % 16 === 5) {
        const fork = s.fork();
        s.dispose();
        sessions[slot] = s = fork;
      }
      if (i % 32 === 9) s.truncate(Math.floor(s.tokens.length / 2));
      if (s.tokens.length > 200) s.reset();
      options.session = s;
    }
    try {
      let n = 0;
      for await (const _ of model.generate(PROMPTS[i % PROMPTS.length], options)) if (++n === 3) ac?.abort();
    } catch (e) {
      tolerate(e);
    }
  });
}

async function loads(): Promise<boolean> {
  return phase("stories260K load/dispose", LOADS, 1, async (i) => {
    const ac = new AbortController();
    if (i % 10 === 7) ac.abort();
    try {
      const model = await loadModel(stories, {
        backend: "cpu",
        threads: 1,
        contextSize: 64,
        mmap: i % 2 === 0,
        checkTensors: i % 3 === 0,
        signal: ac.signal,
      });
      await model.complete("Once", { maxTokens: 4, temperature: 0 });
      if (i % 10 !== 4) model.dispose(); // else left to the garbage collector
    } catch (e) {
      tolerate(e);
    }
  });
}

async function largeLoads(file: string): Promise<boolean> {
  return phase("100 MB F32 load/dispose", LARGE_LOADS, 1, async (i) => {
    const ac = new AbortController();
    try {
      const model = await loadModel(file, {
        backend: "cpu",
        threads: 2,
        contextSize: 64,
        mmap: i % 2 === 0,
        signal: ac.signal,
        onProgress: (p) => {
          if (i % 4 === 1 && p.phase === "weights" && p.progress > 0.3) ac.abort();
        },
      });
      await model.complete("Once", { maxTokens: 2, temperature: 0 });
      model.dispose();
    } catch (e) {
      tolerate(e);
    }
  });
}

async function main(): Promise<void> {
  if (!gc) console.log("(run with --expose-gc for steadier samples)");
  console.log(`node ${process.version}, ${os.cpus().length} CPUs, ${os.cpus()[0]?.model ?? ""}`);
  let ok = true;
  const model = await loadModel(stories, { backend: "cpu", threads: 2, contextSize: 256 });
  ok = (await generations(model)) && ok;
  model.dispose();
  ok = (await loads()) && ok;
  if (LARGE_LOADS > 0) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tessera-soak-"));
    const file = path.join(dir, "large-f32.gguf");
    writeSyntheticModel(file, { architecture: "llama", nLayer: 4, nEmbd: 768, nHead: 12, nHeadKv: 4, nFf: 2048, contextLength: 4096 }, { weights: "F32", vocab: "stories", seed: 11 });
    try {
      ok = (await largeLoads(file)) && ok;
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
  process.exitCode = ok ? 0 : 1;
}

await main();
