/**
 * Side-by-side end-to-end runner: Tessera and llama.cpp (node-llama-cpp) on the same GGUF,
 * same thread count, runs alternating between the engines so drift in machine state hits
 * both alike; medians reported.
 *
 *   prefill ppN: N prompt tokens from an empty cache, tokens/s
 *   decode  tgN: N greedy tokens after a 1-token prompt, tokens/s (sampling included on both sides)
 *   N-API overhead: per decode step, wall time of the evaluate call minus the native forward time
 */
import { loadModel, type Model } from "../lib/index.js";
import { Rng } from "../lib/sampling/rng.js";
import { LlamaCppPeer } from "../scripts/llama-cpp-peer.js";
import { median } from "./stats.js";

export interface E2EOptions {
  threads: number;
  prefillTokens: number;
  decodeTokens: number;
  reps: number;
  onStep?: (label: string) => void;
}

export interface EngineResult {
  prefillTps: number | null;
  decodeTps: number;
  prefillRuns: number[];
  decodeRuns: number[];
}

export interface E2EResult {
  model: string;
  threads: number;
  prefillTokens: number;
  decodeTokens: number;
  tessera: EngineResult;
  /** llama.cpp at its best thread count (see llamaCppThreads); ratios are against this. */
  llamaCpp: EngineResult;
  llamaCppThreads: number;
  /** llama.cpp at the same thread count as Tessera, when that was not its best. */
  llamaCppSameThreads?: EngineResult;
  /** Median per-step N-API + JS overhead of Tessera's decode, ms and share of the step. */
  napiOverheadMs: number;
  napiOverheadShare: number;
}

function argmax(x: Float32Array): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}

function promptTokens(n: number, nVocab: number, bos: number): number[] {
  const rng = new Rng(42);
  return [bos, ...Array.from({ length: n - 1 }, () => 10 + Math.floor(rng.next() * Math.min(nVocab - 10, 30000)))];
}

async function tesseraPrefill(model: Model, tokens: number[]): Promise<number> {
  const s = model.createSession({ contextSize: tokens.length + 8 });
  const t0 = performance.now();
  await s.evaluate(tokens);
  const ms = performance.now() - t0;
  s.dispose();
  return ms;
}

async function tesseraDecode(model: Model, bos: number, n: number): Promise<{ ms: number; overheadMs: number[]; stepMs: number[] }> {
  const s = model.createSession({ contextSize: n + 8 });
  let logits = await s.evaluate([bos]);
  const overheadMs: number[] = [];
  const stepMs: number[] = [];
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const tok = argmax(logits);
    const a = performance.now();
    logits = await s.evaluate([tok]);
    const wall = performance.now() - a;
    stepMs.push(wall);
    overheadMs.push(wall - s.lastNativeMs);
  }
  const ms = performance.now() - t0;
  s.dispose();
  return { ms, overheadMs, stepMs };
}

/**
 * llama.cpp's thread counts to try: the same as Tessera, and 1 when that is more. Through
 * node-llama-cpp, 2 threads on a 2-core machine leave no core for the event-loop thread
 * that drives it and run 10-100x slower than 1 thread, so the fair peer is its best count.
 */
function peerThreadCounts(threads: number): number[] {
  return threads > 1 ? [threads, 1] : [threads];
}

export async function sideBySide(file: string, name: string, o: E2EOptions): Promise<E2EResult> {
  const results: Array<{ threads: number; r: Omit<E2EResult, "llamaCppThreads" | "llamaCppSameThreads"> }> = [];
  for (const peerThreads of peerThreadCounts(o.threads)) results.push({ threads: peerThreads, r: await sideBySideWith(file, name, o, peerThreads) });
  const best = results.reduce((a, b) => (b.r.llamaCpp.decodeTps > a.r.llamaCpp.decodeTps ? b : a));
  const same = results.find((x) => x.threads === o.threads)!;
  // Prefill is compute-bound and may prefer another thread count than decode: take its best too.
  const bestPrefill = results.reduce((a, b) => ((b.r.llamaCpp.prefillTps ?? 0) > (a.r.llamaCpp.prefillTps ?? 0) ? b : a));
  return {
    ...best.r,
    llamaCpp: { ...best.r.llamaCpp, prefillTps: bestPrefill.r.llamaCpp.prefillTps, prefillRuns: bestPrefill.r.llamaCpp.prefillRuns },
    llamaCppThreads: best.threads,
    llamaCppSameThreads: best === same ? undefined : same.r.llamaCpp,
  };
}

async function sideBySideWith(file: string, name: string, o: E2EOptions, peerThreads: number): Promise<Omit<E2EResult, "llamaCppThreads" | "llamaCppSameThreads">> {
  const context = Math.max(o.prefillTokens, o.decodeTokens) + 16;
  const model = await loadModel(file, { backend: "cpu", threads: o.threads, contextSize: context });
  const peer = await LlamaCppPeer.open(file, { threads: peerThreads, contextSize: context, batchSize: Math.min(512, o.prefillTokens || 1) });
  const bos = model.tokenizer.bos ?? 1;
  const prompt = promptTokens(o.prefillTokens, model.info.nVocab, bos);
  const ours: EngineResult = { prefillTps: null, decodeTps: 0, prefillRuns: [], decodeRuns: [] };
  const theirs: EngineResult = { prefillTps: null, decodeTps: 0, prefillRuns: [], decodeRuns: [] };
  const overhead: number[] = [];
  const steps: number[] = [];
  try {
    // One untimed round each warms page cache, thread pools and allocators.
    if (o.prefillTokens > 0) {
      await tesseraPrefill(model, prompt);
      await peer.prefill(prompt);
    }
    await tesseraDecode(model, bos, Math.min(8, o.decodeTokens));
    await peer.decode([bos], Math.min(8, o.decodeTokens));
    for (let r = 0; r < o.reps; r++) {
      const first = r % 2 === 0;
      if (o.prefillTokens > 0) {
        const runPrefill = async (who: "t" | "l") => {
          o.onStep?.(`${name} pp${o.prefillTokens} ${who === "t" ? "tessera" : `llama.cpp t=${peerThreads}`} ${r + 1}/${o.reps}`);
          if (who === "t") ours.prefillRuns.push((o.prefillTokens / (await tesseraPrefill(model, prompt))) * 1000);
          else theirs.prefillRuns.push((o.prefillTokens / (await peer.prefill(prompt))) * 1000);
        };
        for (const who of first ? (["t", "l"] as const) : (["l", "t"] as const)) await runPrefill(who);
      }
      const runDecode = async (who: "t" | "l") => {
        o.onStep?.(`${name} tg${o.decodeTokens} ${who === "t" ? "tessera" : `llama.cpp t=${peerThreads}`} ${r + 1}/${o.reps}`);
        if (who === "t") {
          const d = await tesseraDecode(model, bos, o.decodeTokens);
          ours.decodeRuns.push((o.decodeTokens / d.ms) * 1000);
          overhead.push(...d.overheadMs);
          steps.push(...d.stepMs);
        } else {
          const d = await peer.decode([bos], o.decodeTokens);
          theirs.decodeRuns.push((o.decodeTokens / d.ms) * 1000);
        }
      };
      for (const who of first ? (["t", "l"] as const) : (["l", "t"] as const)) await runDecode(who);
    }
  } finally {
    model.dispose();
    await peer.dispose();
  }
  for (const e of [ours, theirs]) {
    e.decodeTps = median(e.decodeRuns);
    e.prefillTps = e.prefillRuns.length ? median(e.prefillRuns) : null;
  }
  const napiOverheadMs = median(overhead);
  return {
    model: name,
    threads: o.threads,
    prefillTokens: o.prefillTokens,
    decodeTokens: o.decodeTokens,
    tessera: ours,
    llamaCpp: theirs,
    napiOverheadMs,
    napiOverheadShare: napiOverheadMs / median(steps),
  };
}
