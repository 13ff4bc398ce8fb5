/**
 * Serving through HTTP: aggregate generated tokens/s and time to first token (p50, p99) at
 * 1, 8 and 32 concurrent streaming clients, each a closed loop of chat completions through
 * the `openai` package (serve-client.ts) against `tessera serve`'s server in its own process.
 * Distinct prompts, greedy, a fixed number of tokens per request.
 */
import { benchPrompts, percentile, startServer, streamChat } from "./serve-client.js";

export interface ServeBenchOptions {
  file: string;
  name: string;
  threads: number;
  clients: number[];
  /** Requests per client at each level (at least 2 for the level's TTFT spread). */
  requestsPerClient: (clients: number) => number;
  maxTokens: number;
  onStep?: (line: string) => void;
}

export interface ServeRow {
  clients: number;
  requests: number;
  tokens: number;
  seconds: number;
  /** Generated tokens per second over the level's wall time. */
  tps: number;
  ttftP50Ms: number;
  ttftP99Ms: number;
  errors: number;
  /** Sequences the engine preempted during the level (should be 0: the pool fits every client). */
  preemptions: number;
}

export interface ServeBenchResult {
  model: string;
  threads: number;
  maxTokens: number;
  rows: ServeRow[];
}

export async function runServeBench(o: ServeBenchOptions): Promise<ServeBenchResult> {
  const maxClients = Math.max(...o.clients);
  // A KV pool every client's sequence fits in at once: a smaller one measures preemption
  // (recomputing evicted sequences), not serving.
  const server = await startServer({ file: o.file, threads: o.threads, contextSize: 1024, parallel: maxClients, kvCacheTokens: Math.max(4096, maxClients * 256) });
  const prompts = benchPrompts(64);
  const rows: ServeRow[] = [];
  try {
    // Warm-up: the first request pays for lazy allocations the levels should not see.
    await streamChat(server.client, { messages: prompts[63], max_tokens: 4, temperature: 0 });
    for (const clients of o.clients) {
      const perClient = o.requestsPerClient(clients);
      const ttfts: number[] = [];
      let tokens = 0;
      let errors = 0;
      let next = 0;
      const preempted = (await server.stats()).stats.preemptions;
      const t0 = performance.now();
      await Promise.all(
        Array.from({ length: clients }, async () => {
          for (let r = 0; r < perClient; r++) {
            const messages = prompts[next++ % 63];
            try {
              const res = await streamChat(server.client, { messages, max_tokens: o.maxTokens, temperature: 0 });
              tokens += res.tokens;
              if (!Number.isNaN(res.ttftMs)) ttfts.push(res.ttftMs);
            } catch {
              errors++;
            }
          }
        }),
      );
      const seconds = (performance.now() - t0) / 1000;
      const preemptions = (await server.stats()).stats.preemptions - preempted;
      const row = { clients, requests: clients * perClient, tokens, seconds, tps: tokens / seconds, ttftP50Ms: percentile(ttfts, 50), ttftP99Ms: percentile(ttfts, 99), errors, preemptions };
      rows.push(row);
      o.onStep?.(`serve ${o.name}: ${clients} clients ${row.tps.toFixed(1)} tok/s, TTFT p50 ${row.ttftP50Ms.toFixed(0)} ms p99 ${row.ttftP99Ms.toFixed(0)} ms`);
    }
  } finally {
    await server.close();
  }
  return { model: o.name, threads: o.threads, maxTokens: o.maxTokens, rows };
}

export function serveMarkdown(r: ServeBenchResult): string[] {
  const lines = [`## Serving through HTTP (${r.model}, ${r.threads} threads, streamed chat completions of ${r.maxTokens} greedy tokens, openai client)`, ""];
  lines.push("| concurrent clients | requests | aggregate tokens/s | TTFT p50 ms | TTFT p99 ms | errors | preemptions |", "|---|---|---|---|---|---|---|");
  for (const x of r.rows) lines.push(`| ${x.clients} | ${x.requests} | ${x.tps.toFixed(1)} | ${x.ttftP50Ms.toFixed(0)} | ${x.ttftP99Ms.toFixed(0)} | ${x.errors} | ${x.preemptions} |`);
  lines.push("");
  return lines;
}
