/**
 * Many sequences on one model (issue 19), side by side with llama.cpp where it has the same
 * thing, each engine in its own process (engine-worker.ts), runs alternating, medians:
 *
 *   streams     aggregate greedy decode tokens/s of 1, 8 and 32 concurrent generations (short
 *               distinct prompts, n tokens each, prompts included in the time); the peer is
 *               llama.cpp with 8 sequences in one context at its best thread count
 *   prefix      time to the first token of a request whose ~1000-token prefix an earlier
 *               request computed (another prompt ran in between), against the cold one
 *   memory      KV bytes 8 sessions of 100 tokens hold, against 8 contexts of 4096 positions;
 *               a q8_0 block against an f16 one
 *   contention  single-stream decode with one busy process beside it (a spin loop the bench
 *               starts), against the same decode quiet; llama.cpp alike at 1 and n threads
 */
import { spawn, type ChildProcess } from "node:child_process";
import { EngineProcess, promptTokens } from "./e2e.js";
import { median } from "./stats.js";

export interface EngineBenchResult {
  model: string;
  threads: number;
  decodeTokens: number;
  /** Tessera, aggregate tokens/s per number of concurrent streams. */
  streams: Array<{ streams: number; tps: number; runs: number[] }>;
  /** llama.cpp with `streams` sequences in one context, at its best thread count. */
  peer: { streams: number; tps: number; threads: number; runs: number[] };
  prefix: { prefixTokens: number; coldMs: number; warmMs: number; ratio: number; runs: Array<[number, number]> };
  memory: { sequences: number; tokens: number; bytes: number; contextBytes: number; share: number; q8BlockShare: number; q4BlockShare: number };
  contention: {
    model: string;
    tessera: { quiet: number; loaded: number; share: number };
    /** llama.cpp tokens/s per thread count, quiet and loaded. */
    llamaCpp: Record<number, { quiet: number; loaded: number }>;
  } | null;
}

export interface EngineBenchOptions {
  threads: number;
  /** Model for streams, prefix and memory; model for contention (null: skipped). */
  file: string;
  name: string;
  contentionFile: string | null;
  contentionName: string;
  streamCounts: number[];
  peerStreams: number;
  decodeTokens: number;
  prefixTokens: number;
  reps: number;
  onStep?: (label: string) => void;
}

function spinner(): ChildProcess {
  return spawn(process.execPath, ["-e", "for (;;) {}"], { stdio: "ignore" });
}

async function stopped(child: ChildProcess): Promise<void> {
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGKILL");
  await exited;
}

function distinctPrompts(count: number, nVocab: number, bos: number): number[][] {
  return Array.from({ length: count }, (_, i) => [bos, 10 + ((i * 7919) % Math.min(nVocab - 10, 30000)), 11 + i, 12 + 2 * i]);
}

export async function runEngineBench(o: EngineBenchOptions): Promise<EngineBenchResult> {
  const maxStreams = Math.max(...o.streamCounts, o.peerStreams);
  const perStream = o.decodeTokens + 8;
  const step = (l: string) => o.onStep?.(l);

  // ---- streams: Tessera at each count, llama.cpp with peerStreams sequences (t = n and 1).
  const ours = await EngineProcess.start({
    engine: "tessera",
    file: o.file,
    threads: o.threads,
    contextSize: Math.max(perStream, o.prefixTokens + 64),
    batchSize: 512,
    kvCacheTokens: Math.max(maxStreams * perStream, 4 * (o.prefixTokens + 64)),
  });
  const peerThreads = o.threads > 1 ? [o.threads, 1] : [o.threads];
  const peers = await Promise.all(
    peerThreads.map((threads) =>
      EngineProcess.start({ engine: "llama.cpp", file: o.file, threads, contextSize: o.peerStreams * perStream, batchSize: 512, sequences: o.peerStreams }),
    ),
  );
  const nVocab = ours.info.nVocab ?? 32000;
  const bos = ours.info.bos ?? 1;
  const streamRuns = new Map<number, number[]>(o.streamCounts.map((c) => [c, []]));
  const peerRuns = peerThreads.map(() => [] as number[]);
  let result: EngineBenchResult;
  try {
    await ours.request({ op: "streams", prompts: distinctPrompts(2, nVocab, bos), n: 4 });
    for (const p of peers) await p.request({ op: "streams", prompts: distinctPrompts(2, nVocab, bos), n: 4 });
    for (let r = 0; r < o.reps; r++) {
      for (const count of o.streamCounts) {
        step(`${o.name} ${count} streams x ${o.decodeTokens} tessera ${r + 1}/${o.reps}`);
        const rep = await ours.request({ op: "streams", prompts: distinctPrompts(count, nVocab, bos), n: o.decodeTokens });
        streamRuns.get(count)!.push((rep.tokens! / rep.ms) * 1000);
      }
      for (let i = 0; i < peers.length; i++) {
        step(`${o.name} ${o.peerStreams} sequences llama.cpp t=${peerThreads[i]} ${r + 1}/${o.reps}`);
        const rep = await peers[i].request({ op: "streams", prompts: distinctPrompts(o.peerStreams, nVocab, bos), n: o.decodeTokens });
        peerRuns[i].push((rep.tokens! / rep.ms) * 1000);
      }
    }

    // ---- prefix: a fresh prefix per repetition, so the cold request is cold.
    const prefixRuns: Array<[number, number]> = [];
    for (let r = 0; r < o.reps; r++) {
      step(`${o.name} ${o.prefixTokens}-token prefix ${r + 1}/${o.reps}`);
      const shared = promptTokens(o.prefixTokens, nVocab, bos).map((t, i) => (i === 0 ? t : 10 + ((t + 131 * r) % (nVocab - 10))));
      const cold = await ours.request({ op: "ttft", prompt: [...shared, 21, 22, 23] });
      await ours.request({ op: "ttft", prompt: promptTokens(Math.min(300, o.prefixTokens), nVocab, bos).map((t) => 10 + ((t + 977 * (r + 1)) % (nVocab - 10))) });
      const warm = await ours.request({ op: "ttft", prompt: [...shared, 31, 32] });
      prefixRuns.push([cold.ms, warm.ms]);
    }
    const coldMs = median(prefixRuns.map((x) => x[0]));
    const warmMs = median(prefixRuns.map((x) => x[1]));

    // ---- memory: 8 sessions of 100 tokens; block sizes per cache type.
    step(`${o.name} KV memory`);
    const mem = await ours.request({ op: "memory", sequences: 8, tokens: 100 });
    const blockShares: Record<string, number> = {};
    for (const kvCacheType of ["q8_0", "q4_0"] as const) {
      const q = await EngineProcess.start({ engine: "tessera", file: o.file, threads: 1, contextSize: 256, batchSize: 512, kvCacheType });
      try {
        blockShares[kvCacheType] = (await q.request({ op: "memory", sequences: 1, tokens: 1 })).blockBytes! / mem.blockBytes!;
      } finally {
        await q.stop();
      }
    }
    const contextBytes = 8 * 4096 * (mem.blockBytes! / 32);
    const best = peerRuns.map(median).reduce((bi, x, i, all) => (x > all[bi] ? i : bi), 0);
    result = {
      model: o.name,
      threads: o.threads,
      decodeTokens: o.decodeTokens,
      streams: o.streamCounts.map((c) => ({ streams: c, tps: median(streamRuns.get(c)!), runs: streamRuns.get(c)! })),
      peer: { streams: o.peerStreams, tps: median(peerRuns[best]), threads: peerThreads[best], runs: peerRuns[best] },
      prefix: { prefixTokens: o.prefixTokens, coldMs, warmMs, ratio: warmMs / coldMs, runs: prefixRuns },
      memory: {
        sequences: 8,
        tokens: 100,
        bytes: mem.bytes!,
        contextBytes,
        share: mem.bytes! / contextBytes,
        q8BlockShare: blockShares.q8_0,
        q4BlockShare: blockShares.q4_0,
      },
      contention: null,
    };
  } finally {
    await Promise.all([ours, ...peers].map((e) => e.stop()));
  }

  // ---- contention: quiet and beside a busy process, alternating engines.
  if (o.contentionFile) {
    const file = o.contentionFile;
    const n = o.decodeTokens;
    const t = await EngineProcess.start({ engine: "tessera", file, threads: o.threads, contextSize: n + 16, batchSize: 512 });
    const ps = await Promise.all(peerThreads.map((threads) => EngineProcess.start({ engine: "llama.cpp", file, threads, contextSize: n + 16, batchSize: 512 })));
    const runs = { tessera: { quiet: [] as number[], loaded: [] as number[] }, peers: peerThreads.map(() => ({ quiet: [] as number[], loaded: [] as number[] })) };
    try {
      const cb = t.info.bos ?? 1;
      for (const e of [t, ...ps]) await e.request({ op: "decode", bos: cb, n: 8 });
      for (let r = 0; r < o.reps; r++) {
        for (const loaded of [false, true]) {
          const spin = loaded ? spinner() : undefined;
          if (spin) await new Promise((res) => setTimeout(res, 200));
          try {
            const state = loaded ? "loaded" : "quiet";
            step(`${o.contentionName} decode ${state} tessera ${r + 1}/${o.reps}`);
            runs.tessera[state].push((n / (await t.request({ op: "decode", bos: cb, n })).ms) * 1000);
            for (let i = 0; i < ps.length; i++) {
              step(`${o.contentionName} decode ${state} llama.cpp t=${peerThreads[i]} ${r + 1}/${o.reps}`);
              runs.peers[i][state].push((n / (await ps[i].request({ op: "decode", bos: cb, n })).ms) * 1000);
            }
          } finally {
            if (spin) await stopped(spin);
          }
        }
      }
    } finally {
      await Promise.all([t, ...ps].map((e) => e.stop()));
    }
    const quiet = median(runs.tessera.quiet);
    const loaded = median(runs.tessera.loaded);
    result.contention = {
      model: o.contentionName,
      tessera: { quiet, loaded, share: loaded / quiet },
      llamaCpp: Object.fromEntries(peerThreads.map((th, i) => [th, { quiet: median(runs.peers[i].quiet), loaded: median(runs.peers[i].loaded) }])),
    };
  }
  return result;
}
