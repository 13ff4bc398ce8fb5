/**
 * The OpenAI-compatible server (issue 21) through the official `openai` client against a
 * live server on 127.0.0.1 and a random port: completions plain and streamed, n > 1, stop,
 * seed reproducibility, logprobs, models; auth (401), validation naming the field (400),
 * oversize bodies (413), a full queue (429 with Retry-After), 503 while loading; a client
 * that goes away mid-stream frees its KV blocks; tokenize/detokenize; metrics.
 */
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadModel, type Model } from "../../lib/index.js";
import { createServer, type TesseraServer } from "../../lib/server/server.js";
import { hasShared, stories260K } from "../helpers/paths.js";

const KEY = "test-key-0123456789";

async function waitFor(cond: () => boolean, ms = 2000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error("condition not reached");
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe.runIf(hasShared)("OpenAI-compatible server", () => {
  let model: Model;
  let server: TesseraServer;
  let base: string;
  let client: OpenAI;
  const lines: Array<Record<string, unknown>> = [];

  beforeAll(async () => {
    model = await loadModel(stories260K, { backend: "cpu", threads: 2, contextSize: 512 });
    server = createServer({ model, modelName: "stories", apiKey: KEY, parallel: 4, maxQueue: 8, bodyLimit: 64 * 1024, log: (l) => lines.push(l) });
    base = await server.listen({ port: 0 });
    client = new OpenAI({ baseURL: `${base}/v1`, apiKey: KEY, maxRetries: 0 });
  });
  afterAll(async () => {
    await server?.close(1000);
    model?.dispose();
  });

  it("completes, and the same seed gives the same text", async () => {
    const r = await client.completions.create({ model: "stories", prompt: "Once upon a time", max_tokens: 24, temperature: 0 });
    const local = await model.complete("Once upon a time", { maxTokens: 24, temperature: 0 });
    expect(r.choices[0].text).toBe(local.text);
    expect(r.choices[0].finish_reason).toBe("length");
    expect(r.usage).toMatchObject({ prompt_tokens: local.stats.promptTokens, completion_tokens: 24, total_tokens: local.stats.promptTokens + 24 });
    const a = await client.completions.create({ model: "stories", prompt: "Lily", max_tokens: 20, temperature: 0.9, seed: 11 });
    const b = await client.completions.create({ model: "stories", prompt: "Lily", max_tokens: 20, temperature: 0.9, seed: 11 });
    expect(a.choices[0].text).toBe(b.choices[0].text);
  });

  it("streams chunks that add up to the whole completion, then usage", async () => {
    const whole = await client.completions.create({ model: "stories", prompt: "The cat", max_tokens: 30, temperature: 0 });
    const stream = await client.completions.create({ model: "stories", prompt: "The cat", max_tokens: 30, temperature: 0, stream: true, stream_options: { include_usage: true } });
    let text = "";
    let finish: string | null = null;
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const chunk of stream) {
      for (const c of chunk.choices) {
        text += c.text;
        finish = c.finish_reason ?? finish;
      }
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text).toBe(whole.choices[0].text);
    expect(finish).toBe("length");
    expect(usage?.completion_tokens).toBe(30);
  });

  it("n > 1 gives n choices (branch i = seed + i), stop ends before the stop string", async () => {
    const r = await client.completions.create({ model: "stories", prompt: "Once upon a time", max_tokens: 16, temperature: 0.8, seed: 5, n: 3 });
    expect(r.choices.map((c) => c.index)).toEqual([0, 1, 2]);
    for (let i = 0; i < 3; i++) {
      const solo = await model.complete("Once upon a time", { maxTokens: 16, temperature: 0.8, seed: 5 + i, topK: 0, topP: 1, minP: 0 });
      expect(r.choices[i].text).toBe(solo.text);
    }
    const free = await client.completions.create({ model: "stories", prompt: "Once upon a time", max_tokens: 40, temperature: 0 });
    const stop = free.choices[0].text.slice(12, 16);
    const stopped = await client.completions.create({ model: "stories", prompt: "Once upon a time", max_tokens: 40, temperature: 0, stop: [stop] });
    expect(stopped.choices[0].text).toBe(free.choices[0].text.slice(0, free.choices[0].text.indexOf(stop)));
    expect(stopped.choices[0].finish_reason).toBe("stop");
  });

  it("logprobs: one per token with the asked-for alternatives", async () => {
    const r = await client.completions.create({ model: "stories", prompt: "Lily", max_tokens: 8, temperature: 0, logprobs: 3 });
    const lp = r.choices[0].logprobs!;
    expect(lp.tokens!.length).toBe(8);
    expect(lp.token_logprobs!.every((x) => x! <= 0)).toBe(true);
    expect(lp.top_logprobs!.every((t) => Object.keys(t!).length >= 1 && Object.keys(t!).length <= 3)).toBe(true);
    expect(lp.tokens!.join("")).toBe(r.choices[0].text);
  });

  it("lists the served model, and refuses another model name with 404", async () => {
    const list = await client.models.list();
    expect(list.data.map((m) => m.id)).toEqual(["stories"]);
    await expect(client.completions.create({ model: "other", prompt: "x", max_tokens: 1 })).rejects.toMatchObject({ status: 404 });
  });

  it("401 without the key, 400 naming the bad field, 413 for an oversize body", async () => {
    const bad = new OpenAI({ baseURL: `${base}/v1`, apiKey: "wrong", maxRetries: 0 });
    await expect(bad.completions.create({ model: "stories", prompt: "x", max_tokens: 1 })).rejects.toMatchObject({ status: 401 });
    const noKey = await fetch(`${base}/v1/models`);
    expect(noKey.status).toBe(401);
    expect((await noKey.json()).error.type).toBe("authentication_error");
    const err = await client.completions.create({ model: "stories", prompt: "x", max_tokens: 1, temperature: 5 }).catch((e: unknown) => e);
    expect(err).toMatchObject({ status: 400 });
    expect((err as { error: { param: string } }).error.param).toBe("temperature");
    const unknown = await fetch(`${base}/v1/completions`, { method: "POST", headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" }, body: JSON.stringify({ prompt: "x", grammar: "root ::= x" }) });
    expect(unknown.status).toBe(400);
    expect((await unknown.json()).error.param).toBe("grammar");
    const huge = await fetch(`${base}/v1/completions`, { method: "POST", headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" }, body: JSON.stringify({ prompt: "x".repeat(100_000) }) });
    expect(huge.status).toBe(413);
    expect((await huge.json()).error.code).toBe("request_too_large");
    const overLimit = await client.completions.create({ model: "stories", prompt: "x", max_tokens: 100_000 }).catch((e: unknown) => e);
    expect(overLimit).toMatchObject({ status: 400 });
  });

  it("a client that goes away mid-stream frees its KV blocks", async () => {
    const ac = new AbortController();
    const res = await fetch(`${base}/v1/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" },
      body: JSON.stringify({ prompt: "Once upon a time", max_tokens: 400, temperature: 0, stream: true }),
      signal: ac.signal,
    });
    const reader = res.body!.getReader();
    await reader.read();
    expect(model.stats().inUse).toBeGreaterThan(0);
    ac.abort();
    await waitFor(() => model.stats().inUse === 0);
    expect(model.stats().inUse).toBe(0);
  });

  it("tokenize and detokenize round trip; metrics in Prometheus text with vLLM's names", async () => {
    const t = await (await fetch(`${base}/tokenize`, { method: "POST", headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" }, body: JSON.stringify({ content: "Once upon a time" }) })).json();
    expect(t.tokens).toEqual(model.tokenizer.encode("Once upon a time", { addSpecial: false }));
    const d = await (await fetch(`${base}/detokenize`, { method: "POST", headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" }, body: JSON.stringify({ tokens: t.tokens }) })).json();
    expect(d.content).toBe("Once upon a time");
    const m = await (await fetch(`${base}/metrics`)).text();
    for (const name of ["vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc", "vllm:prompt_tokens_total", "vllm:generation_tokens_total", "vllm:time_to_first_token_seconds_bucket", "vllm:inter_token_latency_seconds_count"])
      expect(m).toContain(name);
    expect(lines.some((l) => l.route === "/v1/completions" && typeof l.completionTokens === "number" && typeof l.ttftMs === "number")).toBe(true);
  });
});

describe.runIf(hasShared)("server admission and lifecycle", () => {
  it("429 with Retry-After when the queue is full", async () => {
    const model = await loadModel(stories260K, { backend: "cpu", threads: 1, contextSize: 512 });
    const server = createServer({ model, parallel: 1, maxQueue: 0, log: () => {} });
    const base = await server.listen({ port: 0 });
    const body = (n: number) => ({ method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ prompt: "Once", max_tokens: n, temperature: 0 }) });
    const first = fetch(`${base}/v1/completions`, body(300));
    await new Promise((r) => setTimeout(r, 20));
    const second = await fetch(`${base}/v1/completions`, body(5));
    expect(second.status).toBe(429);
    expect(second.headers.get("retry-after")).toBe("1");
    expect((await second.json()).error.code).toBe("queue_full");
    expect((await first).status).toBe(200);
    await server.close(1000);
    model.dispose();
  });

  it("503 while the model loads, then serves; close lets a request in flight finish", async () => {
    let resolve!: (m: Model) => void;
    const pending = new Promise<Model>((r) => (resolve = r));
    const server = createServer({ model: pending, log: () => {} });
    const base = await server.listen({ port: 0 });
    expect((await fetch(`${base}/health`)).status).toBe(503);
    const early = await fetch(`${base}/v1/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ prompt: "x" }) });
    expect(early.status).toBe(503);
    const model = await loadModel(stories260K, { backend: "cpu", threads: 1, contextSize: 512 });
    resolve(model);
    await waitFor(() => true);
    await new Promise((r) => setTimeout(r, 10));
    expect((await fetch(`${base}/health`)).status).toBe(200);
    const inFlight = fetch(`${base}/v1/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ prompt: "Once", max_tokens: 200, temperature: 0 }) });
    await new Promise((r) => setTimeout(r, 20));
    const closed = server.close(5000);
    const r = await inFlight;
    expect(r.status).toBe(200);
    expect((await r.json()).usage.completion_tokens).toBe(200);
    await closed;
    expect(model.stats().inUse).toBe(0);
    model.dispose();
  });
});
