/**
 * The chat API on the real engine: stories260K (no template: the ChatML fallback) and
 * synthetic models with real vocabularies and embedded templates (Qwen2.5 with the Qwen2
 * vocabulary, Llama 3.1 with the Llama 3 one). What is checked: the prompt evaluated is
 * the template's rendering tokenized with special tokens and one BOS; greedy chat output
 * is exactly greedy generation from that prompt; a Chat's second turn evaluates only the
 * new turn's tokens (stats.cachedTokens); streaming concatenates to the completion.
 * Random weights emit noise, so the tool loop runs on a scripted stand-in for the model
 * (real tokenizer and template, generation replaced by fixed text).
 */
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Chat, chat, chatPrompt, type ChatChunk } from "../../lib/chat/chat.js";
import { CHATML_TEMPLATE, renderChatTemplate } from "../../lib/chat/template.js";
import type { ChatMessage } from "../../lib/chat/types.js";
import type { GenerateOptions } from "../../lib/generate/generate.js";
import { loadModel, type Model } from "../../lib/index.js";
import type { Tokenizer } from "../../lib/tokenizer/index.js";
import { writeSyntheticModel } from "../../dev/synthetic-model.js";
import { hasShared, sharedDir, stories260K, tempDir } from "../helpers/paths.js";
import { code } from "../helpers/error-code.js";
import { ggufMetadataVocab } from "../tokenizer/vocabs.js";

const template = (name: string) => fs.readFileSync(path.join(sharedDir, "chat-templates", `${name}.jinja`), "utf8");

async function collect(gen: AsyncIterable<ChatChunk>): Promise<{ text: string; reasoning: string; chunks: ChatChunk[] }> {
  const chunks: ChatChunk[] = [];
  for await (const c of gen) chunks.push(c);
  return { text: chunks.map((c) => c.text).join(""), reasoning: chunks.map((c) => c.reasoning ?? "").join(""), chunks };
}

describe.runIf(hasShared)("chat on stories260K (ChatML fallback)", () => {
  let model: Model;
  beforeAll(async () => {
    model = await loadModel(stories260K, { backend: "cpu", threads: 2, contextSize: 512 });
  });
  afterAll(() => model?.dispose());
  const messages: ChatMessage[] = [
    { role: "system", content: "You tell stories." },
    { role: "user", content: "Tell me about Lily." },
  ];

  it("renders ChatML, one BOS, and stops on the text <|im_end|>", () => {
    expect(model.chatTemplates).toEqual({});
    const p = chatPrompt(model, messages);
    expect(p.text).toBe(renderChatTemplate(CHATML_TEMPLATE, { messages, addGenerationPrompt: true }));
    expect(p.tokens).toEqual([model.tokenizer.bos, ...model.tokenizer.encode(p.text, { addSpecial: false, parseSpecial: true })]);
    expect(p.stop).toEqual(["<|im_end|>"]);
  });

  it("generates from exactly that prompt, streamed or awaited", async () => {
    const opts = { temperature: 0, maxTokens: 24 };
    const p = chatPrompt(model, messages);
    const reference = await model.complete(p.tokens, { ...opts, stop: p.stop, skipSpecial: false });
    const streamed = await collect(model.chat(messages, opts));
    const done = await model.chat(messages, opts);
    expect(streamed.text).toBe(reference.text);
    expect(done.text).toBe(reference.text);
    expect(done.tokens).toEqual(reference.tokens);
    expect(done.stats.promptTokens).toBe(p.tokens.length);
    expect(done.message).toEqual({ role: "assistant", content: reference.text });
    expect(done.messages).toEqual([done.message]);
    // Awaiting after iterating gives that iteration's completion.
    const gen = model.chat(messages, opts);
    const again = await collect(gen);
    expect((await gen).text).toBe(again.text);
  });

  it("a Chat evaluates only the new turn's tokens", async () => {
    const c = model.createChat({ system: "You tell stories.", temperature: 0, maxTokens: 16 });
    const first = await c.send("Tell me about Lily.");
    const history = c.messages;
    expect(history.map((m) => m.role)).toEqual(["system", "user", "assistant"]);
    const second = await c.send("And then?");
    const firstTotal = first.stats.promptTokens + first.stats.generatedTokens;
    // The second prompt holds the first turn's tokens exactly (its prompt, then what the model wrote).
    expect(second.stats.promptTokens).toBeGreaterThan(firstTotal);
    const newTurn = second.stats.promptTokens - firstTotal;
    // Evaluated: the new turn's tokens, plus the first turn's last token where it was never evaluated (maxTokens hit).
    const lastUnevaluated = first.stopReason === "eos" ? 0 : 1;
    // (The engine's prefix cache may hold that last token from an earlier generation.)
    const evaluated = second.stats.promptTokens - second.stats.cachedTokens;
    expect(evaluated).toBeGreaterThanOrEqual(newTurn);
    expect(evaluated).toBeLessThanOrEqual(newTurn + lastUnevaluated);
    // The new turn: the end of the reply, the user message, the assistant header.
    const suffix = "<|im_end|>\n<|im_start|>user\nAnd then?<|im_end|>\n<|im_start|>assistant\n";
    expect(newTurn).toBeLessThanOrEqual(model.tokenizer.encode(suffix, { addSpecial: false }).length);
    c.reset();
    expect(c.messages).toEqual([{ role: "system", content: "You tell stories." }]);
    expect(c.session.tokens.length).toBe(0);
    c.dispose();
  });

  it("continues a prefilled assistant message", async () => {
    const prefill: ChatMessage[] = [...messages, { role: "assistant", content: "Once upon a time" }];
    const p = chatPrompt(model, prefill);
    expect(p.text.endsWith("<|im_start|>assistant\nOnce upon a time")).toBe(true);
    const done = await model.chat(prefill, { temperature: 0, maxTokens: 8 });
    expect(done.message.content).toBe("Once upon a time" + done.text);
  });

  it("jsonSchema makes the reply JSON that matches the schema", async () => {
    const schema = { type: "object", properties: { name: { type: "string", maxLength: 12 }, age: { type: "integer" } }, required: ["name", "age"] };
    const reply = await model.chat(messages, { jsonSchema: schema, temperature: 0.8, seed: 3, maxTokens: 60 });
    const value = JSON.parse(reply.text) as { name: unknown; age: unknown };
    expect(typeof value.name).toBe("string");
    expect(Number.isInteger(value.age)).toBe(true);
  });

  it("refuses bad input with coded errors", async () => {
    expect(await code(() => model.chat("hi" as never))).toBe("ERR_INVALID_ARGUMENT");
    expect(await code(() => model.chat([{ content: "no role" }] as never))).toBe("ERR_INVALID_ARGUMENT");
    expect(await code(() => model.chat(messages, { thinking: "yes" as never }))).toBe("ERR_INVALID_ARGUMENT");
    expect(await code(() => model.chat(messages, { session: model.createSession() } as never))).toBe("ERR_INVALID_ARGUMENT");
    expect(await code(() => model.chat(messages, { templateName: "tool_use" }))).toBe("ERR_INVALID_ARGUMENT");
    expect(await code(() => model.chat(messages, { tools: [{ description: "no name" }] as never }))).toBe("ERR_INVALID_ARGUMENT");
    expect(await code(() => model.chat(messages, { jsonSchema: "object" as never }))).toBe("ERR_INVALID_ARGUMENT");
    expect(await code(() => model.chat(messages, { template: "{% for %}" }))).toBe("ERR_CHAT_TEMPLATE");
    const c = model.createChat();
    const pending = c.send("Hi", { maxTokens: 4 }).then((r) => r); // started
    expect(await code(() => c.send("again"))).toBe("ERR_BUSY");
    await pending;
    // A failed turn leaves the conversation as it was.
    expect(await code(() => c.send("x", { template: "{{ raise_exception('no') }}" }))).toBe("ERR_CHAT_TEMPLATE");
    expect(c.messages.length).toBe(2);
    c.dispose();
  });
});

describe.runIf(hasShared)("chat on synthetic models with real vocabularies and templates", () => {
  const dir = tempDir("chat");
  let qwen: Model;
  let llama: Model;
  beforeAll(async () => {
    const shape = { nLayer: 1, nEmbd: 64, nHead: 4, nHeadKv: 2, nFf: 128, contextLength: 2048, tiedEmbeddings: true } as const;
    const qwenFile = path.join(dir, "qwen.gguf");
    writeSyntheticModel(qwenFile, { ...shape, architecture: "qwen2", qkvBias: true }, { weights: "Q8_0", vocab: "qwen2", seed: 5, chatTemplate: template("Qwen-Qwen2.5-7B-Instruct") });
    const llamaFile = path.join(dir, "llama.gguf");
    writeSyntheticModel(llamaFile, { ...shape, architecture: "llama" }, {
      weights: "Q8_0",
      vocab: "llama3",
      seed: 6,
      chatTemplate: { default: template("meta-llama-Llama-3.1-8B-Instruct"), tool_use: template("meta-llama-Llama-3.1-8B-Instruct") },
    });
    qwen = await loadModel(qwenFile, { backend: "cpu", threads: 2, contextSize: 2048 });
    llama = await loadModel(llamaFile, { backend: "cpu", threads: 2, contextSize: 2048 });
  });
  afterAll(() => {
    qwen?.dispose();
    llama?.dispose();
  });
  const messages: ChatMessage[] = [
    { role: "system", content: "Réponds brièvement." },
    { role: "user", content: "Quel temps fait-il à Zürich ? 🌤️" },
  ];

  it("Qwen2.5: <|im_start|>/<|im_end|> are single tokens, no BOS, <|im_end|> ends the turn", () => {
    const p = chatPrompt(qwen, messages);
    expect(p.text).toBe(renderChatTemplate(template("Qwen-Qwen2.5-7B-Instruct"), { messages, addGenerationPrompt: true }));
    const imStart = qwen.tokenizer.encode("<|im_start|>", { addSpecial: false, parseSpecial: true });
    expect(imStart.length).toBe(1);
    expect(p.tokens[0]).toBe(imStart[0]);
    expect(p.tokens.filter((t) => t === imStart[0]).length).toBe(3);
    const imEnd = qwen.tokenizer.encode("<|im_end|>", { addSpecial: false, parseSpecial: true });
    expect(qwen.tokenizer.isEndOfGeneration(imEnd[0])).toBe(true);
    expect(p.stop).toEqual([]);
    expect(p.format).toEqual({ toolCalls: "hermes", reasoning: false });
  });

  it("Llama 3.1: the template's <|begin_of_text|> is the only BOS; tools pick the tool_use variant", () => {
    expect(Object.keys(llama.chatTemplates).sort()).toEqual(["default", "tool_use"]);
    const p = chatPrompt(llama, messages, { now: new Date(2025, 0, 1) });
    expect(p.text.startsWith("<|begin_of_text|><|start_header_id|>system<|end_header_id|>")).toBe(true);
    expect(p.tokens[0]).toBe(llama.tokenizer.bos);
    expect(p.tokens.filter((t) => t === llama.tokenizer.bos).length).toBe(1);
    expect(p.stop).toEqual([]);
    const withTools = chatPrompt(llama, messages, { tools: [{ name: "get_weather", description: "Weather", parameters: { type: "object", properties: {} } }] });
    expect(withTools.text).toContain('"name": "get_weather"');
    expect(withTools.format.toolCalls).toBe("llama3");
  });

  for (const which of ["qwen", "llama"] as const) {
    it(`${which}: greedy chat is greedy generation from the prompt; a second turn reuses the cache`, async () => {
      const model = which === "qwen" ? qwen : llama;
      const opts = { temperature: 0, maxTokens: 12 };
      const p = chatPrompt(model, messages);
      const reference = await model.complete(p.tokens, { ...opts, skipSpecial: false });
      const streamed = await collect(model.chat(messages, opts));
      expect(streamed.text + streamed.reasoning).not.toBe(undefined);
      const done = await model.chat(messages, opts);
      expect(done.tokens).toEqual(reference.tokens);
      expect(done.stats.promptTokens).toBe(p.tokens.length);

      const c = model.createChat({ system: messages[0].content as string, ...opts });
      const first = await c.send(messages[1].content as string);
      const second = await c.send("Et demain ?");
      const firstTotal = first.stats.promptTokens + first.stats.generatedTokens;
      const evaluated = second.stats.promptTokens - second.stats.cachedTokens;
      if (which === "qwen") {
        // Qwen's template writes the reply back as the model wrote it: the cache covers all of turn 1.
        expect(second.stats.cachedTokens).toBeGreaterThanOrEqual(firstTotal - 1);
        expect(evaluated).toBeLessThanOrEqual(second.stats.promptTokens - firstTotal + 1);
      } else {
        // Llama's trims the reply (this noise is all newlines), so the model rightly sees a
        // different history from there on; the whole first prompt is still reused.
        expect(second.stats.cachedTokens).toBeGreaterThanOrEqual(first.stats.promptTokens);
      }
      c.dispose();
    });
  }
});

// ---------------------------------------------------------------- the tool loop on a scripted model

interface Script {
  prompts: string[];
  replies: string[];
}

/** A stand-in for Model: a real tokenizer and template; generate() plays the next scripted reply. */
function scriptedModel(tokenizer: Tokenizer, source: string, script: Script) {
  return {
    tokenizer,
    chatTemplates: { default: source },
    createSession: () => ({ tokens: [], disposed: false, reset() {}, dispose() {} }),
    generate(prompt: number[], options: GenerateOptions) {
      script.prompts.push(tokenizer.decode(prompt, { skipSpecial: false }));
      const reply = script.replies.shift() ?? "";
      const ids = tokenizer.encode(reply, { addSpecial: false, parseSpecial: true });
      const decoder = tokenizer.createStreamDecoder({ skipSpecial: options.skipSpecial ?? true });
      const generation = {
        stopReason: "eos",
        stats: { promptTokens: prompt.length, cachedTokens: 0, promptMs: 0, generatedTokens: ids.length, generateMs: 0 },
        async *[Symbol.asyncIterator]() {
          for (const id of ids) yield { text: decoder.push(id), tokens: [id] };
          const rest = decoder.flush();
          if (rest) yield { text: rest, tokens: [] };
        },
      };
      return generation;
    },
  };
}

describe.runIf(hasShared)("the tool loop", () => {
  const qwenTokenizer = () => ggufMetadataVocab("qwen2")();
  const call = (name: string, args: unknown) => `<tool_call>\n${JSON.stringify({ name, arguments: args })}\n</tool_call>`;
  const weather = {
    name: "get_weather",
    description: "Weather for a city",
    parameters: { type: "object", properties: { location: { type: "string" } }, required: ["location"] },
    run: async (args: Record<string, unknown>) => ({ location: args.location, sky: "sunny", "°C": 21 }),
  };

  it("calls the tools, feeds the results back, and streams no call text", async () => {
    const script: Script = { prompts: [], replies: [`I will check.\n${call("get_weather", { location: "Oslo" })}`, "It is sunny in Oslo."] };
    const model = scriptedModel(qwenTokenizer(), template("Qwen-Qwen2.5-7B-Instruct"), script) as unknown as Model;
    const gen = chat(model, [{ role: "user", content: "Weather in Oslo?" }], { tools: [weather] });
    const { chunks, text } = await collect(gen);
    const done = await gen;
    expect(text).toBe("I will check.It is sunny in Oslo.");
    expect(chunks.some((c) => c.text.includes("<tool") || c.text.includes("{"))).toBe(false);
    expect(chunks.flatMap((c) => c.toolCalls ?? []).map((c) => c.name)).toEqual(["get_weather"]);
    expect(done.text).toBe("It is sunny in Oslo.");
    expect(done.toolCalls).toEqual([]);
    expect(done.toolResults).toMatchObject([{ name: "get_weather", result: { location: "Oslo", sky: "sunny", "°C": 21 }, content: '{"location":"Oslo","sky":"sunny","°C":21}' }]);
    expect(done.messages.map((m) => m.role)).toEqual(["assistant", "tool", "assistant"]);
    const callId = done.messages[0].tool_calls![0].id;
    expect(done.messages[1]).toEqual({ role: "tool", tool_call_id: callId, name: "get_weather", content: '{"location":"Oslo","sky":"sunny","°C":21}' });
    // The second prompt is the template's rendering of the call and its result.
    expect(script.prompts[1]).toContain('<tool_call>\n{"name": "get_weather", "arguments": {"location": "Oslo"}}\n</tool_call><|im_end|>');
    expect(script.prompts[1]).toContain('<tool_response>\n{"location":"Oslo","sky":"sunny","°C":21}\n</tool_response>');
  });

  it("feeds a tool's error back, and stops at maxToolRounds", async () => {
    const failing = { ...weather, run: () => Promise.reject(new Error("service down")) };
    const script: Script = { prompts: [], replies: [call("get_weather", { location: "Rome" }), "Sorry, no weather."] };
    const model = scriptedModel(qwenTokenizer(), template("Qwen-Qwen2.5-7B-Instruct"), script) as unknown as Model;
    const done = await chat(model, [{ role: "user", content: "Weather in Rome?" }], { tools: [failing] });
    expect(done.toolResults).toMatchObject([{ error: "service down", content: "Error: service down" }]);
    expect(script.prompts[1]).toContain("<tool_response>\nError: service down\n</tool_response>");
    expect(done.text).toBe("Sorry, no weather.");

    const once: Script = { prompts: [], replies: [call("get_weather", { location: "Rome" })] };
    const capped = await chat(scriptedModel(qwenTokenizer(), template("Qwen-Qwen2.5-7B-Instruct"), once) as unknown as Model, [{ role: "user", content: "?" }], {
      tools: [weather],
      maxToolRounds: 0,
    });
    expect(capped.toolResults).toEqual([]);
    expect(capped.toolCalls.map((c) => c.arguments)).toEqual([{ location: "Rome" }]);
  });

  it("hands calls without a run function to the caller, then continues the Chat", async () => {
    const script: Script = { prompts: [], replies: [call("lookup", { q: "x" }), "Found it."] };
    const model = scriptedModel(qwenTokenizer(), template("Qwen-Qwen2.5-7B-Instruct"), script) as unknown as Model;
    const c = new Chat(model, { system: "Use tools.", tools: [{ name: "lookup", parameters: { type: "object", properties: { q: { type: "string" } } } }] });
    const first = await c.send("Look up x");
    expect(first.toolCalls).toMatchObject([{ name: "lookup", arguments: { q: "x" } }]);
    c.addToolResult(first.toolCalls[0], { hits: 1 });
    const second = await c.send();
    expect(second.text).toBe("Found it.");
    expect(c.messages.map((m) => m.role)).toEqual(["system", "user", "assistant", "tool", "assistant"]);
    expect(script.prompts[1]).toContain('<tool_response>\n{"hits":1}\n</tool_response>');
  });

  it("reasoning models: <think> goes to reasoning, enable_thinking switches it", async () => {
    const source = template("Qwen-Qwen3-0.6B");
    const script: Script = { prompts: [], replies: ["<think>\nThe user greets me.\n</think>\n\nHello!", "Hi again."] };
    const model = scriptedModel(qwenTokenizer(), source, script) as unknown as Model;
    const gen = chat(model, [{ role: "user", content: "Hi" }]);
    const streamed = await collect(gen);
    expect(streamed.reasoning).toBe("The user greets me.");
    expect(streamed.text).toBe("Hello!");
    expect((await gen).message).toEqual({ role: "assistant", content: "Hello!", reasoning_content: "The user greets me." });
    const off = await chat(model, [{ role: "user", content: "Hi" }], { thinking: false });
    expect(script.prompts[1].endsWith("<|im_start|>assistant\n<think>\n\n</think>\n\n")).toBe(true);
    expect(off).toMatchObject({ text: "Hi again.", reasoning: "" });
  });
});
