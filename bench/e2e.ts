/**
 * Side-by-side end-to-end runner: Tessera and llama.cpp (node-llama-cpp) on the same GGUF,
 * each in its own process (bench/engine-worker.ts), runs alternating between the engines so
 * drift in machine state hits both alike; medians reported.
 *
 *   prefill ppN: N prompt tokens from an empty cache, tokens/s
 *   decode  tgN: N greedy tokens after a 1-token prompt, tokens/s, greedy sampling included on
 *           both sides (Tessera's pick as model.generate makes it at temperature 0, from the
 *           argmax each step computes; llama.cpp's through its sampler)
 *   N-API overhead: per decode step, wall time of the evaluate call minus the native forward time
 *   read bandwidth (probeBandwidth): probed right before and right after each of Tessera's
 *     decode runs, and the higher of the two kept, so each run's bandwidth share divides by
 *     what the memory bus gave around it (one probe alone read as low as 39 GB/s beside
 *     61 GB/s a minute earlier on this VM and put a decode at 105% of it)
 *
 * llama.cpp runs at the same thread count as Tessera and, when that is more than 1, also at
 * 1: through node-llama-cpp, 2 threads on a 2-core machine leave no core for the thread that
 * drives it and run far slower than 1 thread. Ratios are against its best configuration.
 */
import { fork, type ChildProcess } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Rng } from "../lib/sampling/rng.js";
import { median } from "./stats.js";

export interface E2EOptions {
  threads: number;
  prefillTokens: number;
  decodeTokens: number;
  reps: number;
  /** Probe the read bandwidth before each of Tessera's decode runs (E2EResult.decodeReadBandwidthGBps). */
  probeBandwidth?: boolean;
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
  /** llama.cpp at its best thread count per phase; ratios are against this. */
  llamaCpp: EngineResult;
  llamaCppThreads: { prefill: number; decode: number };
  /** llama.cpp at each thread count tried. */
  llamaCppByThreads: Record<number, EngineResult>;
  /** Median per-step N-API + JS overhead of Tessera's decode, ms and share of the step. */
  napiOverheadMs: number;
  napiOverheadShare: number;
  /** With probeBandwidth: per Tessera decode run, in order, the higher GB/s of the probes right before and after it. */
  decodeReadBandwidthGBps: number[];
}

interface Reply {
  ms: number;
  tokens?: number;
  bytes?: number;
  blockBytes?: number;
  gbps?: number;
  overheadMs?: number[];
  stepMs?: number[];
  /** speculate: guesses proposed and accepted. */
  proposed?: number;
  accepted?: number;
  error?: string;
}

export class EngineProcess {
  private constructor(private readonly child: ChildProcess, readonly info: { nVocab?: number; bos?: number }) {}

  static start(init: Record<string, unknown>): Promise<EngineProcess> {
    const here = path.dirname(fileURLToPath(import.meta.url));
    const child = fork(path.join(here, "engine-worker.js"), [JSON.stringify(init)], { stdio: ["ignore", "ignore", "inherit", "ipc"] });
    return new Promise((resolve, reject) => {
      child.once("message", (m: { ready?: boolean; info?: object; error?: string }) =>
        m.ready ? resolve(new EngineProcess(child, m.info ?? {})) : reject(new Error(`engine failed to start: ${m.error}`)),
      );
      child.once("exit", (code) => reject(new Error(`engine process exited with ${code}`)));
    });
  }

  request(req: object): Promise<Reply> {
    return new Promise((resolve, reject) => {
      this.child.once("message", (m: Reply) => (m.error ? reject(new Error(m.error)) : resolve(m)));
      this.child.send(req);
    });
  }

  async stop(): Promise<void> {
    const exited = new Promise((r) => this.child.once("exit", r));
    this.child.send({ op: "exit" });
    await exited;
  }
}

/** A random prompt; each `seed` gives different tokens after BOS, so no prefix cache can serve it. */
export function promptTokens(n: number, nVocab: number, bos: number, seed = 42): number[] {
  const rng = new Rng(seed);
  return [bos, ...Array.from({ length: n - 1 }, () => 10 + Math.floor(rng.next() * Math.min(nVocab - 10, 30000)))];
}

function emptyResult(): EngineResult {
  return { prefillTps: null, decodeTps: 0, prefillRuns: [], decodeRuns: [] };
}

function finish(e: EngineResult): EngineResult {
  e.decodeTps = median(e.decodeRuns);
  e.prefillTps = e.prefillRuns.length ? median(e.prefillRuns) : null;
  return e;
}

export async function sideBySide(file: string, name: string, o: E2EOptions): Promise<E2EResult> {
  const contextSize = Math.max(o.prefillTokens, o.decodeTokens) + 16;
  const batchSize = Math.min(512, Math.max(1, o.prefillTokens));
  const peerThreads = o.threads > 1 ? [o.threads, 1] : [o.threads];
  const tessera = await EngineProcess.start({ engine: "tessera", file, threads: o.threads, contextSize, batchSize });
  const peers = await Promise.all(peerThreads.map((threads) => EngineProcess.start({ engine: "llama.cpp", file, threads, contextSize, batchSize })));
  const bos = tessera.info.bos ?? 1;
  // Every prefill round gets its own prompt: Tessera's prefix cache would otherwise serve a
  // repeated prompt from the blocks of the round before and time one token, not N.
  const prompt = (round: number) => promptTokens(o.prefillTokens, tessera.info.nVocab ?? 32000, bos, 42 + round);
  const ours = emptyResult();
  const theirs = peerThreads.map(emptyResult);
  const overhead: number[] = [];
  const steps: number[] = [];
  const bandwidth: number[] = [];
  try {
    // One untimed round each warms page cache, thread pools and allocators.
    for (const e of [tessera, ...peers]) {
      if (o.prefillTokens > 0) await e.request({ op: "prefill", tokens: prompt(0) });
      await e.request({ op: "decode", bos, n: Math.min(8, o.decodeTokens) });
    }
    for (let r = 0; r < o.reps; r++) {
      // Alternate the order every repetition.
      const order = r % 2 === 0 ? [-1, ...peers.keys()] : [...peers.keys(), -1];
      for (const phase of o.prefillTokens > 0 ? (["prefill", "decode"] as const) : (["decode"] as const))
        for (const who of order) {
          const label = who < 0 ? "tessera" : `llama.cpp t=${peerThreads[who]}`;
          o.onStep?.(`${name} ${phase === "prefill" ? `pp${o.prefillTokens}` : `tg${o.decodeTokens}`} ${label} ${r + 1}/${o.reps}`);
          const engine = who < 0 ? tessera : peers[who];
          const target = who < 0 ? ours : theirs[who];
          if (phase === "prefill") {
            const rep = await engine.request({ op: "prefill", tokens: prompt(r + 1) });
            target.prefillRuns.push((o.prefillTokens / rep.ms) * 1000);
          } else {
            const probe = async () => (who < 0 && o.probeBandwidth ? (await engine.request({ op: "probe" })).gbps! : null);
            const before = await probe();
            const rep = await engine.request({ op: "decode", bos, n: o.decodeTokens });
            const after = await probe();
            if (before !== null && after !== null) bandwidth.push(Math.max(before, after));
            target.decodeRuns.push((o.decodeTokens / rep.ms) * 1000);
            if (rep.overheadMs) overhead.push(...rep.overheadMs);
            if (rep.stepMs) steps.push(...rep.stepMs);
          }
        }
    }
  } finally {
    await Promise.all([tessera, ...peers].map((e) => e.stop()));
  }
  finish(ours);
  theirs.forEach(finish);
  const bestDecode = theirs.reduce((a, b) => (b.decodeTps > a.decodeTps ? b : a));
  const bestPrefill = theirs.reduce((a, b) => ((b.prefillTps ?? 0) > (a.prefillTps ?? 0) ? b : a));
  const napiOverheadMs = median(overhead);
  return {
    model: name,
    threads: o.threads,
    prefillTokens: o.prefillTokens,
    decodeTokens: o.decodeTokens,
    tessera: ours,
    llamaCpp: { ...bestDecode, prefillTps: bestPrefill.prefillTps, prefillRuns: bestPrefill.prefillRuns },
    llamaCppThreads: { prefill: peerThreads[theirs.indexOf(bestPrefill)], decode: peerThreads[theirs.indexOf(bestDecode)] },
    llamaCppByThreads: Object.fromEntries(peerThreads.map((t, i) => [t, theirs[i]])),
    napiOverheadMs,
    napiOverheadShare: napiOverheadMs / median(steps),
    decodeReadBandwidthGBps: bandwidth,
  };
}
