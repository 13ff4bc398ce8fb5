/**
 * The client side of the serving benchmarks: the official `openai` package streaming chat
 * completions, timed per request (time to the first content delta, tokens from the final
 * usage chunk), and the server process (serve-worker.ts) it talks to.
 */
import { fork, type ChildProcess } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import OpenAI from "openai";
import type { EngineStats } from "../lib/index.js";

export interface StreamResult {
  text: string;
  /** Completion tokens (the usage chunk). */
  tokens: number;
  /** Milliseconds to the first content delta; NaN if none came. */
  ttftMs: number;
  ms: number;
  finishReason: string | null;
  /** The client killed the request (abortAfterChunks). */
  killed: boolean;
}

/** One streamed chat completion; `abortAfterChunks` kills the request after that many chunks. */
export async function streamChat(client: OpenAI, body: { messages: OpenAI.ChatCompletionMessageParam[]; max_tokens: number; temperature?: number; seed?: number }, abortAfterChunks?: number): Promise<StreamResult> {
  const t0 = performance.now();
  const stream = await client.chat.completions.create({ model: "bench", ...body, stream: true, stream_options: { include_usage: true } });
  let text = "";
  let tokens = 0;
  let ttftMs = NaN;
  let chunks = 0;
  let finishReason: string | null = null;
  let killed = false;
  for await (const c of stream) {
    const delta = c.choices[0]?.delta.content;
    if (delta) {
      if (Number.isNaN(ttftMs)) ttftMs = performance.now() - t0;
      text += delta;
    }
    finishReason = c.choices[0]?.finish_reason ?? finishReason;
    if (c.usage) tokens = c.usage.completion_tokens;
    if (abortAfterChunks !== undefined && ++chunks >= abortAfterChunks) {
      // Closes the connection mid-stream, as a killed client does.
      stream.controller.abort();
      killed = true;
      break;
    }
  }
  return { text, tokens, ttftMs, ms: performance.now() - t0, finishReason, killed };
}

export interface ServerProcess {
  url: string;
  client: OpenAI;
  stats(): Promise<{ stats: EngineStats; rss: number }>;
  close(): Promise<void>;
}

/** Starts serve-worker.js (next to this file) on `file`. */
export async function startServer(init: { file: string; threads: number; contextSize: number; parallel: number; kvCacheTokens?: number }): Promise<ServerProcess> {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const child: ChildProcess = fork(path.join(here, "serve-worker.js"), [JSON.stringify(init)], { stdio: ["ignore", "ignore", "inherit", "ipc"], execArgv: ["--expose-gc"] });
  const next = () =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const onExit = (code: number | null) => reject(new Error(`the server process exited (${code})`));
      child.once("exit", onExit);
      child.once("message", (m) => {
        child.off("exit", onExit);
        resolve(m as Record<string, unknown>);
      });
    });
  const { url } = (await next()) as { url: string };
  return {
    url,
    client: new OpenAI({ baseURL: `${url}/v1`, apiKey: "bench", maxRetries: 0, timeout: 600_000 }),
    async stats() {
      const reply = next();
      child.send({ op: "stats" });
      return (await reply) as unknown as { stats: EngineStats; rss: number };
    },
    async close() {
      const exited = new Promise((r) => child.once("exit", r));
      child.send({ op: "exit" });
      await exited;
    },
  };
}

/** The p-th percentile (0..100) of `xs`, nearest rank. */
export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

/** Distinct short user prompts (distinct so the prefix cache does not answer them). */
export function benchPrompts(n: number): OpenAI.ChatCompletionMessageParam[][] {
  const topics = ["a cat", "the sea", "a red ball", "rain", "a small dog", "the moon", "a garden", "a train", "snow", "a birthday", "a lost key", "a tall tree", "a bird", "the park", "a boat", "a cake"];
  return Array.from({ length: n }, (_, i) => [{ role: "user", content: `Story ${i}: tell me about ${topics[i % topics.length]}.` }]);
}
