/**
 * POST /v1/chat/completions through the official `openai` client against a live server on
 * 127.0.0.1 and a random port, on stories260K (ChatML fallback template): plain and streamed
 * turns equal model.chat's, n > 1 (choice i = seed + i, the prompt shared through the prefix
 * cache), stop, seed reproducibility, logprobs equal to the model's own, tools (rendered into
 * the prompt; a call forced by a grammar comes back as tool_calls, streamed as deltas the
 * client assembles), json_schema output that ajv validates, errors naming the field, a
 * client gone mid-stream freeing its blocks within a step, request and idle timeouts.
 */
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { Ajv } from "ajv";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chatPrompt, loadModel, type Model } from "../../lib/index.js";
import { createServer, type TesseraServer } from "../../lib/server/server.js";
import { hasShared, sharedDir, stories260K } from "../helpers/paths.js";

const KEY = "chat-key-0123456789";
const user = (content: string) => [{ role: "user" as const, content }];
const weatherTool = {
  type: "function" as const,
  function: { name: "get_weather", description: "Current weather in a city", parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] } },
};
const sampling = { topK: 0, topP: 1, minP: 0 };

async function waitFor(cond: () => boolean, ms = 3000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error("condition not reached");
    await new Promise((r) => setTimeout(r, 2));
  }
}

describe.runIf(hasShared)("POST /v1/chat/completions", () => {
  let model: Model;
  let server: TesseraServer;
  let base: string;
  let client: OpenAI;
  const lines: Array<Record<string, unknown>> = [];
  let stepsAtClose: number | undefined;
  // stories260K has no template (ChatML without tools): Qwen 2.5's renders tools and Hermes calls.
  let qwenTemplate: string;
  let toolModel: Model;
  let toolServer: TesseraServer;
  let toolClient: OpenAI;
  let thinkServer: TesseraServer;
  let thinkClient: OpenAI;

  const post = (body: unknown, signal?: AbortSignal) =>
    fetch(`${base}/v1/chat/completions`, { method: "POST", headers: { authorization: `Bearer ${KEY}`, "content-type": "application/json" }, body: JSON.stringify(body), signal });

  beforeAll(async () => {
    model = await loadModel(stories260K, { backend: "cpu", threads: 2, contextSize: 512 });
    server = createServer({ model, modelName: "stories", apiKey: KEY, parallel: 8, maxTokens: 400, log: (l) => lines.push(l) });
    server.app.addHook("onRequest", async (_req, reply) => {
      reply.raw.on("close", () => (stepsAtClose = model.stats().steps));
    });
    base = await server.listen({ port: 0 });
    client = new OpenAI({ baseURL: `${base}/v1`, apiKey: KEY, maxRetries: 0 });
    qwenTemplate = fs.readFileSync(path.join(sharedDir, "chat-templates/Qwen-Qwen2.5-7B-Instruct.jinja"), "utf8");
    // Its tool preamble alone is ~530 stories260K tokens.
    toolModel = await loadModel(stories260K, { backend: "cpu", threads: 2, contextSize: 2048 });
    toolServer = createServer({ model: toolModel, chatTemplate: qwenTemplate, log: () => {} });
    toolClient = new OpenAI({ baseURL: `${await toolServer.listen({ port: 0 })}/v1`, apiKey: "none", maxRetries: 0 });
    const qwen3 = fs.readFileSync(path.join(sharedDir, "chat-templates/Qwen-Qwen3-0.6B.jinja"), "utf8");
    thinkServer = createServer({ model: toolModel, chatTemplate: qwen3, log: () => {} });
    thinkClient = new OpenAI({ baseURL: `${await thinkServer.listen({ port: 0 })}/v1`, apiKey: "none", maxRetries: 0 });
  });
  afterAll(async () => {
    await toolServer?.close(1000);
    await thinkServer?.close(1000);
    toolModel?.dispose();
    await server?.close(1000);
    model?.dispose();
  });

  it("answers as model.chat does, streamed or not; the stream ends with usage and [DONE]", async () => {
    const messages = [{ role: "system" as const, content: "You tell stories." }, { role: "user" as const, content: [{ type: "text" as const, text: "Tell me about a cat." }] }];
    const r = await client.chat.completions.create({ model: "stories", messages, max_tokens: 30, temperature: 0 });
    const local = await model.chat([messages[0], { role: "user", content: "Tell me about a cat." }], { maxTokens: 30, temperature: 0 });
    expect(r.object).toBe("chat.completion");
    expect(r.choices[0].message.role).toBe("assistant");
    expect(r.choices[0].message.content).toBe(local.text);
    expect(r.choices[0].finish_reason).toBe(local.stopReason === "length" ? "length" : "stop");
    const prompt = chatPrompt(model, [messages[0], { role: "user", content: "Tell me about a cat." }]);
    expect(r.usage).toMatchObject({ prompt_tokens: prompt.tokens.length, completion_tokens: local.stats.generatedTokens });

    const stream = await client.chat.completions.create({ model: "stories", messages, max_tokens: 30, temperature: 0, stream: true, stream_options: { include_usage: true } });
    const chunks: OpenAI.ChatCompletionChunk[] = [];
    for await (const c of stream) chunks.push(c);
    expect(chunks[0].choices[0].delta.role).toBe("assistant");
    expect(chunks.every((c) => c.object === "chat.completion.chunk" && c.id === chunks[0].id)).toBe(true);
    const text = chunks.map((c) => c.choices[0]?.delta.content ?? "").join("");
    expect(text).toBe(local.text);
    const finishes = chunks.flatMap((c) => c.choices.map((x) => x.finish_reason).filter((f) => f));
    expect(finishes).toEqual([r.choices[0].finish_reason]);
    const last = chunks[chunks.length - 1];
    expect(last.choices).toEqual([]);
    expect(last.usage).toMatchObject({ prompt_tokens: prompt.tokens.length, completion_tokens: r.usage!.completion_tokens });

    const raw = await (await post({ messages: user("Hi"), max_tokens: 3, stream: true })).text();
    expect(raw.trimEnd().endsWith("data: [DONE]")).toBe(true);
    expect(lines.some((l) => l.route === "/v1/chat/completions" && l.status === 200 && typeof l.completionTokens === "number" && typeof l.ttftMs === "number")).toBe(true);
  });

  it("n > 1: choice i is the solo answer with seed + i, and the later choices reuse the prompt's blocks", async () => {
    const story = "Once upon a time there was a little girl named Lily. She liked to play in the park with her dog. One day the sun was hot and the sky was blue.";
    const messages = [{ role: "system" as const, content: story }, { role: "user" as const, content: "What did Lily do next?" }];
    lines.length = 0;
    const r = await client.chat.completions.create({ model: "stories", messages, max_tokens: 12, temperature: 0.9, seed: 7, n: 3 });
    expect(r.choices.map((c) => c.index)).toEqual([0, 1, 2]);
    for (let i = 0; i < 3; i++) {
      const solo = await model.chat(messages, { maxTokens: 12, temperature: 0.9, seed: 7 + i, ...sampling });
      expect(r.choices[i].message.content).toBe(solo.text);
    }
    expect(r.usage!.prompt_tokens).toBeGreaterThan(64);
    const line = lines.find((l) => l.route === "/v1/chat/completions")!;
    // Every full 32-token block of the prompt, in each of the 2 later choices.
    expect(line.sharedPromptTokens).toBeGreaterThanOrEqual(2 * 32 * Math.floor((r.usage!.prompt_tokens - 1) / 32));
  });

  it("n > 1 streamed: each choice's deltas, by index, add up to the same choice unstreamed", async () => {
    const body = { model: "stories", messages: user("Once upon a time"), max_tokens: 16, temperature: 0.9, seed: 21, n: 2 };
    const whole = await client.chat.completions.create(body);
    const stream = await client.chat.completions.create({ ...body, stream: true });
    const texts = ["", ""];
    const finishes: Array<string | null> = [null, null];
    let roles = 0;
    for await (const c of stream)
      for (const x of c.choices) {
        if (x.delta.role) roles++;
        texts[x.index] += x.delta.content ?? "";
        finishes[x.index] = x.finish_reason ?? finishes[x.index];
      }
    expect(roles).toBe(2);
    expect(texts).toEqual(whole.choices.map((c) => c.message.content));
    expect(finishes).toEqual(whole.choices.map((c) => c.finish_reason));
    expect(texts[0]).not.toBe(texts[1]);
  });

  it("the same seed gives the same reply; stop ends before the stop string", async () => {
    const ask = () => client.chat.completions.create({ model: "stories", messages: user("Lily"), max_tokens: 20, temperature: 0.9, seed: 3 });
    const [a, b] = await Promise.all([ask(), ask()]);
    expect(a.choices[0].message.content).toBe(b.choices[0].message.content);
    const free = await client.chat.completions.create({ model: "stories", messages: user("Once"), max_tokens: 40, temperature: 0 });
    const text = free.choices[0].message.content!;
    const stop = text.slice(10, 14);
    const stopped = await client.chat.completions.create({ model: "stories", messages: user("Once"), max_tokens: 40, temperature: 0, stop });
    expect(stopped.choices[0].message.content).toBe(text.slice(0, text.indexOf(stop)));
    expect(stopped.choices[0].finish_reason).toBe("stop");
  });

  it("logprobs are the model's own for the same tokens, in the chat shape", async () => {
    const r = await client.chat.completions.create({ model: "stories", messages: user("Tom"), max_completion_tokens: 10, temperature: 0, logprobs: true, top_logprobs: 3 });
    const content = r.choices[0].logprobs!.content!;
    const prompt = chatPrompt(model, user("Tom"));
    const own = await model.complete(prompt.tokens, { maxTokens: 10, temperature: 0, logprobs: 3, stop: prompt.stop, skipSpecial: false });
    expect(content.length).toBe(own.tokens.length);
    content.forEach((e, i) => {
      const lp = own.logprobs![i];
      expect(Buffer.from(e.bytes!)).toEqual(Buffer.from(model.tokenizer.tokenBytes(lp.token)));
      expect(e.logprob).toBeCloseTo(lp.logprob, 6);
      expect(e.top_logprobs.length).toBe(3);
      e.top_logprobs.forEach((t, k) => {
        expect(t.logprob).toBeCloseTo(lp.top[k].logprob, 6);
        expect(t.token).toBe(new TextDecoder().decode(model.tokenizer.tokenBytes(lp.top[k].token)));
      });
    });
    expect(content.map((e) => e.token).join("")).toBe(r.choices[0].message.content);
    // Streamed, the chunks carry the same entries.
    const stream = await client.chat.completions.create({ model: "stories", messages: user("Tom"), max_completion_tokens: 10, temperature: 0, logprobs: true, top_logprobs: 3, stream: true });
    const streamed = [];
    for await (const c of stream) streamed.push(...(c.choices[0]?.logprobs?.content ?? []));
    expect(streamed).toEqual(content);
  });

  it("tools render into the prompt; tool_choice none leaves them out; tool messages are accepted", async () => {
    const withTools = await toolClient.chat.completions.create({ messages: user("Weather in Paris?"), max_tokens: 1, tools: [weatherTool] });
    const none = await toolClient.chat.completions.create({ messages: user("Weather in Paris?"), max_tokens: 1, tools: [weatherTool], tool_choice: "none" });
    const plain = chatPrompt(toolModel, user("Weather in Paris?"), { template: qwenTemplate });
    const rendered = chatPrompt(toolModel, user("Weather in Paris?"), { tools: [weatherTool], template: qwenTemplate });
    expect(rendered.text).toContain("get_weather");
    expect(withTools.usage!.prompt_tokens).toBe(rendered.tokens.length);
    expect(none.usage!.prompt_tokens).toBe(plain.tokens.length);
    const followUp = await toolClient.chat.completions.create({
      max_tokens: 4,
      tools: [weatherTool],
      messages: [
        ...user("Weather in Paris?"),
        { role: "assistant", content: null, tool_calls: [{ id: "call1", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } }] },
        { role: "tool", tool_call_id: "call1", content: "sunny" },
      ],
    });
    expect(followUp.choices[0].message.role).toBe("assistant");
  });

  it("a tool call the model writes comes back as tool_calls, whole or as stream deltas", async () => {
    // stories260K never calls a tool itself: a grammar makes it write a Hermes call.
    const grammar = 'root ::= "<tool_call>\\n{\\"name\\": \\"get_weather\\", \\"arguments\\": {\\"city\\": \\"Paris\\"}}\\n</tool_call>"';
    const body = { messages: user("Weather in Paris?"), max_tokens: 100, tools: [weatherTool], temperature: 0 };
    const r = await toolClient.chat.completions.create({ ...body, grammar } as OpenAI.ChatCompletionCreateParamsNonStreaming);
    const call = r.choices[0].message.tool_calls![0] as OpenAI.ChatCompletionMessageFunctionToolCall;
    expect(r.choices[0].finish_reason).toBe("tool_calls");
    expect(r.choices[0].message.content).toBeNull();
    expect(call.type).toBe("function");
    expect(call.id.length).toBeGreaterThan(0);
    expect(call.function.name).toBe("get_weather");
    expect(JSON.parse(call.function.arguments)).toEqual({ city: "Paris" });

    const stream = toolClient.chat.completions.stream({ ...body, grammar } as OpenAI.ChatCompletionStreamParams);
    const deltas: OpenAI.ChatCompletionChunk.Choice.Delta.ToolCall[] = [];
    stream.on("chunk", (c) => deltas.push(...(c.choices[0]?.delta.tool_calls ?? [])));
    const final = await stream.finalChatCompletion();
    expect(deltas.length).toBe(1);
    expect(deltas[0]).toMatchObject({ index: 0, type: "function", function: { name: "get_weather" } });
    expect(typeof deltas[0].id).toBe("string");
    expect(final.choices[0].finish_reason).toBe("tool_calls");
    const assembled = final.choices[0].message.tool_calls![0] as OpenAI.ChatCompletionMessageFunctionToolCall;
    expect(JSON.parse(assembled.function.arguments)).toEqual({ city: "Paris" });
  });

  it("tool_choice required and a named function force a call whose arguments fit the tool's schema", async () => {
    const timeTool = { type: "function" as const, function: { name: "get_time", parameters: { type: "object", properties: { zone: { type: "string", enum: ["UTC", "CET"] } }, required: ["zone"], additionalProperties: false } } };
    const tools = [weatherTool, timeTool];
    for (const [tool_choice, names] of [
      ["required", ["get_weather", "get_time"]],
      [{ type: "function", function: { name: "get_time" } }, ["get_time"]],
    ] as const) {
      for (const seed of [1, 2, 3]) {
        const r = await toolClient.chat.completions.create({ messages: user("Weather in Paris?"), max_tokens: 120, tools, tool_choice, temperature: 1, seed });
        expect(r.choices[0].finish_reason).toBe("tool_calls");
        const calls = r.choices[0].message.tool_calls as OpenAI.ChatCompletionMessageFunctionToolCall[];
        expect(calls.length).toBeGreaterThan(0);
        for (const c of calls) {
          expect(names as readonly string[]).toContain(c.function.name);
          const args = JSON.parse(c.function.arguments);
          if (c.function.name === "get_time") expect(["UTC", "CET"]).toContain(args.zone);
          else expect(typeof args.city).toBe("string");
        }
      }
    }
  });

  it("logit_bias: -100 bans a token", async () => {
    const free = await client.chat.completions.create({ model: "stories", messages: user("Tom"), max_tokens: 8, temperature: 0 });
    const first = chatPrompt(model, user("Tom"));
    const own = await model.complete(first.tokens, { maxTokens: 1, temperature: 0, stop: first.stop, skipSpecial: false });
    const banned = await client.chat.completions.create({ model: "stories", messages: user("Tom"), max_tokens: 8, temperature: 0, logprobs: true, logit_bias: { [own.tokens[0]]: -100 } });
    expect(banned.choices[0].message.content).not.toBe(free.choices[0].message.content);
    expect(Buffer.from(banned.choices[0].logprobs!.content![0].bytes!)).not.toEqual(Buffer.from(model.tokenizer.tokenBytes(own.tokens[0])));
  });

  it("a <think> block comes back as reasoning_content, as llama-server reports it", async () => {
    const grammar = 'root ::= "<think>\nThe cat is small.\n</think>\n\nHello there"';
    const body = { messages: user("Hi"), max_tokens: 100, temperature: 0, grammar };
    const r = await thinkClient.chat.completions.create(body as OpenAI.ChatCompletionCreateParamsNonStreaming);
    const message = r.choices[0].message as OpenAI.ChatCompletionMessage & { reasoning_content?: string };
    expect(message.reasoning_content).toBe("The cat is small.");
    expect(message.content).toBe("Hello there");
    const stream = await thinkClient.chat.completions.create({ ...body, stream: true } as OpenAI.ChatCompletionCreateParamsStreaming);
    let reasoning = "";
    let content = "";
    for await (const c of stream) {
      const d = c.choices[0]?.delta as { content?: string; reasoning_content?: string } | undefined;
      reasoning += d?.reasoning_content ?? "";
      content += d?.content ?? "";
    }
    expect({ reasoning, content }).toEqual({ reasoning: "The cat is small.", content: "Hello there" });
  });

  it("response_format json_schema: the reply parses and validates; json_object gives an object", async () => {
    const schema = {
      type: "object",
      properties: { name: { type: "string", maxLength: 12 }, age: { type: "integer", minimum: 1, maximum: 99 }, pet: { enum: ["cat", "dog"] } },
      required: ["name", "age", "pet"],
      additionalProperties: false,
    };
    const r = await client.chat.completions.create({
      model: "stories",
      messages: user("Describe a child."),
      max_tokens: 120,
      temperature: 0.7,
      seed: 1,
      response_format: { type: "json_schema", json_schema: { name: "child", schema, strict: true } },
    });
    const value = JSON.parse(r.choices[0].message.content!);
    const validate = new Ajv().compile(schema);
    expect(validate(value)).toBe(true);
    expect(r.choices[0].finish_reason).toBe("stop");
    const o = await client.chat.completions.create({ model: "stories", messages: user("Any JSON."), max_tokens: 120, temperature: 0, response_format: { type: "json_object" } });
    if (o.choices[0].finish_reason === "stop") expect(typeof JSON.parse(o.choices[0].message.content!)).toBe("object");
    else expect(o.choices[0].message.content!.startsWith("{")).toBe(true);
  });

  it("errors: OpenAI's JSON shape with the field named", async () => {
    const cases: Array<[unknown, number, string | null]> = [
      [{ messages: [{ role: "wizard", content: "x" }] }, 400, "messages.0.role"],
      [{ messages: [] }, 400, "messages"],
      [{ messages: user("x"), functions: [] }, 400, "functions"],
      [{ messages: user("x"), top_logprobs: 2 }, 400, "top_logprobs"],
      [{ messages: user("x"), max_completion_tokens: 100_000 }, 400, "max_completion_tokens"],
      [{ messages: user("x"), tools: [weatherTool], tool_choice: { type: "function", function: { name: "nope" } } }, 400, "tool_choice.function.name"],
      [{ messages: user("x"), response_format: { type: "json_schema", json_schema: { name: "x", schema: { type: "wat" } } } }, 400, "response_format.json_schema.schema"],
      [{ messages: user("x"), grammar: "root ::= (" }, 400, "grammar"],
      [{ messages: [{ role: "tool", content: "x" }] }, 400, "messages.0.tool_call_id"],
      [{ messages: user("x ".repeat(600)) }, 400, "messages"],
      [{ model: "gpt-4o", messages: user("x") }, 404, "model"],
      [{ messages: user("x"), logit_bias: { 99999: 1 } }, 400, "logit_bias.99999"],
      [{ messages: user("x"), logit_bias: { abc: 1 } }, 400, "logit_bias"],
    ];
    for (const [body, status, param] of cases) {
      const res = await post(body);
      const json = await res.json();
      expect({ body, status: res.status, param: json.error?.param }).toEqual({ body, status, param });
      expect(typeof json.error.message).toBe("string");
      expect(json.error.message).not.toMatch(/\n\s+at /);
    }
    const noKey = await fetch(`${base}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ messages: user("x") }) });
    expect(noKey.status).toBe(401);
  });

  it("a client gone mid-stream frees its KV blocks within one step", async () => {
    const ac = new AbortController();
    const res = await post({ messages: user("Once upon a time"), max_tokens: 400, temperature: 0, stream: true }, ac.signal);
    const reader = res.body!.getReader();
    await reader.read();
    await reader.read();
    expect(model.stats().inUse).toBeGreaterThan(0);
    stepsAtClose = undefined;
    ac.abort();
    await waitFor(() => stepsAtClose !== undefined && model.stats().inUse === 0);
    expect(model.stats().steps - stepsAtClose!).toBeLessThanOrEqual(1);
  });
});

describe.runIf(hasShared)("server timeouts", () => {
  it("a request past requestTimeoutMs is aborted with 504; an idle connection is closed", async () => {
    const model = await loadModel(stories260K, { backend: "cpu", threads: 1, contextSize: 512 });
    const server = createServer({ model, requestTimeoutMs: 50, idleTimeoutMs: 200, log: () => {} });
    const base = await server.listen({ port: 0 });
    const body = JSON.stringify({ messages: user("Once"), max_tokens: 400, temperature: 1, seed: 1, n: 8 });
    const res = await fetch(`${base}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body });
    expect(res.status).toBe(504);
    expect((await res.json()).error.code).toBe("request_timeout");
    await waitFor(() => model.stats().inUse === 0);
    const url = new URL(base);
    const socket = net.connect(Number(url.port), url.hostname);
    const t0 = Date.now();
    await new Promise<void>((resolve) => socket.on("close", () => resolve()));
    expect(Date.now() - t0).toBeGreaterThanOrEqual(150);
    expect(Date.now() - t0).toBeLessThan(2000);
    await server.close(1000);
    model.dispose();
  });
});
