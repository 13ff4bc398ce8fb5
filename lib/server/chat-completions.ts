/**
 * POST /v1/chat/completions: OpenAI's chat API over model.chat (lib/chat), so the server
 * renders, stops and parses exactly as the library does: the model's chat template, its
 * end of turn, tool calls in the template's syntax, <think> blocks as `reasoning_content`
 * (as llama-server reports them).
 *
 * n > 1: choice i samples with seed + i (what a request with that seed alone gives). Choice
 * 0 starts first and the others once it has produced a token: by then its prompt's full KV
 * blocks are in the engine's prefix cache, so the other choices reference them instead of
 * evaluating the prompt again (their cached_tokens show it).
 *
 * Tools: tool_choice "none" leaves the tools out of the prompt; "auto" passes them, and a call
 * the model starts is held to its tool's schema from its marker on; "required" and a named
 * function are the chat API's `toolChoice` ("required" | { name }), a call forced from the
 * first token.
 */
import type { FastifyReply, FastifyRequest } from "fastify";
import { chatPrompt, type ChatChunk, type ChatOptions } from "../chat/chat.js";
import type { ChatMessage, JSONSchema, ToolCall } from "../chat/types.js";
import { createConstraint } from "../grammar/constraint.js";
import type { TokenLogprob } from "../inspect/logprobs.js";
import type { Model } from "../model/model.js";
import type { Tokenizer } from "../tokenizer/index.js";
import { samplingProperties, type SamplingBody, type Usage } from "./completions.js";
import { ApiError, badRequest, toApiError } from "./errors.js";
import type { ServerContext } from "./server.js";

const nullable = (schema: object) => ({ anyOf: [schema, { type: "null" }] });
const NAME = { type: "string", pattern: "^[a-zA-Z0-9_.-]{1,64}$" };

const textPart = {
  type: "object",
  required: ["type", "text"],
  additionalProperties: false,
  properties: { type: { const: "text" }, text: { type: "string" } },
};

const messageSchema = {
  type: "object",
  required: ["role"],
  additionalProperties: false,
  properties: {
    role: { enum: ["system", "developer", "user", "assistant", "tool"] },
    content: nullable({ anyOf: [{ type: "string" }, { type: "array", items: textPart }] }),
    name: { type: "string", maxLength: 256 },
    tool_calls: nullable({
      type: "array",
      items: {
        type: "object",
        required: ["type", "function"],
        additionalProperties: false,
        properties: {
          id: { type: "string", maxLength: 256 },
          type: { const: "function" },
          function: { type: "object", required: ["name", "arguments"], additionalProperties: false, properties: { name: NAME, arguments: { type: "string" } } },
        },
      },
    }),
    tool_call_id: { type: "string", maxLength: 256 },
    reasoning_content: nullable({ type: "string" }),
    refusal: nullable({ type: "string" }),
  },
};

const toolSchema = {
  type: "object",
  required: ["type", "function"],
  additionalProperties: false,
  properties: {
    type: { const: "function" },
    function: {
      type: "object",
      required: ["name"],
      additionalProperties: false,
      properties: { name: NAME, description: { type: "string" }, parameters: { type: "object" }, strict: nullable({ type: "boolean" }) },
    },
  },
};

export const chatBodySchema = {
  type: "object",
  required: ["messages"],
  additionalProperties: false,
  properties: {
    ...samplingProperties,
    messages: { type: "array", minItems: 1, items: messageSchema },
    max_completion_tokens: nullable({ type: "integer", minimum: 0 }),
    logprobs: nullable({ type: "boolean" }),
    top_logprobs: nullable({ type: "integer", minimum: 0, maximum: 20 }),
    response_format: {
      anyOf: [
        { type: "object", required: ["type"], additionalProperties: false, properties: { type: { enum: ["text", "json_object"] } } },
        {
          type: "object",
          required: ["type", "json_schema"],
          additionalProperties: false,
          properties: {
            type: { const: "json_schema" },
            json_schema: {
              type: "object",
              required: ["name"],
              additionalProperties: false,
              properties: { name: NAME, description: { type: "string" }, schema: { anyOf: [{ type: "object" }, { type: "boolean" }] }, strict: nullable({ type: "boolean" }) },
            },
          },
        },
      ],
    },
    tools: nullable({ type: "array", maxItems: 128, items: toolSchema }),
    tool_choice: nullable({
      anyOf: [
        { enum: ["none", "auto", "required"] },
        {
          type: "object",
          required: ["type", "function"],
          additionalProperties: false,
          properties: { type: { const: "function" }, function: { type: "object", required: ["name"], additionalProperties: false, properties: { name: NAME } } },
        },
      ],
    }),
    parallel_tool_calls: nullable({ type: "boolean" }),
    logit_bias: nullable({ type: "object", maxProperties: 1024, propertyNames: { pattern: "^[0-9]{1,9}$" }, additionalProperties: { type: "number", minimum: -100, maximum: 100 } }),
    // llama-server's extensions: template variables (enable_thinking, ...) and a GBNF grammar.
    chat_template_kwargs: { type: "object" },
    grammar: { type: "string", minLength: 1, maxLength: 65536 },
  },
} as const;

interface ChatBodyMessage {
  role: "system" | "developer" | "user" | "assistant" | "tool";
  content?: string | Array<{ type: "text"; text: string }> | null;
  name?: string;
  tool_calls?: Array<{ id?: string; type: "function"; function: { name: string; arguments: string } }> | null;
  tool_call_id?: string;
  reasoning_content?: string | null;
  refusal?: string | null;
}

type ToolChoice = "none" | "auto" | "required" | { type: "function"; function: { name: string } };

export interface ChatBody extends SamplingBody {
  messages: ChatBodyMessage[];
  max_completion_tokens?: number | null;
  logprobs?: boolean | null;
  top_logprobs?: number | null;
  response_format?: { type: "text" | "json_object" } | { type: "json_schema"; json_schema: { name: string; description?: string; schema?: JSONSchema | boolean; strict?: boolean | null } };
  tools?: Array<{ type: "function"; function: { name: string; description?: string; parameters?: JSONSchema; strict?: boolean | null } }> | null;
  tool_choice?: ToolChoice | null;
  parallel_tool_calls?: boolean | null;
  logit_bias?: Record<string, number> | null;
  chat_template_kwargs?: Record<string, unknown>;
  grammar?: string;
}

/** The request's messages as the chat layer takes them: text parts joined, developer as system. */
export function chatMessages(messages: ChatBodyMessage[]): ChatMessage[] {
  return messages.map((m, i) => {
    const out: ChatMessage = { role: m.role === "developer" ? "system" : m.role };
    if (Array.isArray(m.content)) out.content = m.content.map((p) => p.text).join("\n");
    else if (m.content !== undefined) out.content = m.content;
    if (m.name !== undefined) out.name = m.name;
    if (m.tool_call_id !== undefined) out.tool_call_id = m.tool_call_id;
    if (m.reasoning_content != null) out.reasoning_content = m.reasoning_content;
    if (m.tool_calls?.length) {
      if (m.role !== "assistant") throw badRequest(`messages[${i}] has tool_calls but only assistant messages make calls`, `messages.${i}.tool_calls`);
      out.tool_calls = m.tool_calls.map((c, k) => {
        let args: unknown;
        try {
          args = JSON.parse(c.function.arguments);
        } catch {
          args = undefined;
        }
        if (args === null || typeof args !== "object" || Array.isArray(args))
          throw badRequest(`messages[${i}].tool_calls[${k}].function.arguments must be a JSON object in a string`, `messages.${i}.tool_calls.${k}.function.arguments`);
        return { ...(c.id !== undefined ? { id: c.id } : {}), type: "function" as const, function: { name: c.function.name, arguments: args as Record<string, unknown> } };
      });
    }
    if (m.role === "tool" && m.tool_call_id === undefined) throw badRequest(`messages[${i}] is a tool result without tool_call_id`, `messages.${i}.tool_call_id`);
    return out;
  });
}

/** The chat options of a request (the server's own options first, then the request's). */
export function chatOptions(b: ChatBody, model: Model, maxTokensLimit: number, serverOptions: ChatOptions, template?: string): ChatOptions {
  const limitField = b.max_completion_tokens != null ? "max_completion_tokens" : "max_tokens";
  const maxTokens = b.max_completion_tokens ?? b.max_tokens ?? maxTokensLimit;
  if (maxTokens > maxTokensLimit) throw badRequest(`${limitField} ${maxTokens} is over this server's limit of ${maxTokensLimit}`, limitField);
  const o: ChatOptions = {
    ...serverOptions,
    maxTokens,
    temperature: b.temperature ?? 1,
    topP: b.top_p ?? 1,
    topK: 0,
    minP: 0,
    frequencyPenalty: b.frequency_penalty ?? 0,
    presencePenalty: b.presence_penalty ?? 0,
  };
  if (template !== undefined) o.template = template;
  if (b.seed != null) o.seed = b.seed;
  if (b.stop != null) o.stop = Array.isArray(b.stop) ? b.stop : [b.stop];
  if (b.top_logprobs != null && !b.logprobs) throw badRequest("top_logprobs needs logprobs: true", "top_logprobs");
  if (b.logprobs) o.logprobs = b.top_logprobs ?? 0;
  if (b.chat_template_kwargs !== undefined) o.templateContext = b.chat_template_kwargs;
  if (b.logit_bias != null) {
    const bias: Record<number, number> = {};
    for (const [k, v] of Object.entries(b.logit_bias)) {
      const id = Number(k);
      if (id >= model.info.nVocab) throw badRequest(`logit_bias names token ${id}; the vocabulary has ${model.info.nVocab}`, `logit_bias.${k}`);
      // OpenAI's -100 bans a token.
      bias[id] = v <= -100 ? -Infinity : v;
    }
    o.logitBias = bias;
  }

  const choice = b.tool_choice ?? "auto";
  if (b.tools?.length && choice !== "none") {
    o.tools = b.tools.map((t) => t.function);
    if (choice === "required") o.toolChoice = "required";
    else if (typeof choice === "object") {
      const name = choice.function.name;
      if (!b.tools.some((t) => t.function.name === name)) throw badRequest(`tool_choice names "${name}", which is not in tools`, "tool_choice.function.name");
      o.toolChoice = { name };
    }
  } else if (choice !== "none" && choice !== "auto") throw badRequest("tool_choice needs tools to choose from", "tool_choice");

  const rf = b.response_format;
  const tokenizer = model.tokenizer;
  if (b.grammar !== undefined && rf !== undefined && rf.type !== "text") throw badRequest("grammar and response_format are alternatives; give one of them", "grammar");
  if (rf?.type === "json_object") o.jsonSchema = { type: "object" };
  else if (rf?.type === "json_schema") {
    const schema = rf.json_schema.schema ?? true;
    // A boolean schema is an object-free "anything" / "nothing": the chat API takes objects.
    o.jsonSchema = schema === true ? {} : schema === false ? { not: {} } : schema;
  }
  // Compile now (the result is cached for the generation): a bad schema or grammar is a 400
  // naming it, before a stream has started.
  try {
    if (o.jsonSchema !== undefined) createConstraint(tokenizer, { jsonSchema: o.jsonSchema });
  } catch (e) {
    throw badRequest(`response_format.json_schema.schema: ${(e as Error).message}`, "response_format.json_schema.schema");
  }
  if (b.grammar !== undefined) {
    try {
      createConstraint(tokenizer, { grammar: b.grammar });
    } catch (e) {
      throw badRequest(`grammar: ${(e as Error).message}`, "grammar");
    }
    o.grammar = b.grammar;
  }
  return o;
}

interface ChatLogprob {
  token: string;
  logprob: number;
  bytes: number[];
  top_logprobs: Array<{ token: string; logprob: number; bytes: number[] }>;
}

/** Chat logprobs entries ({ token, logprob, bytes, top_logprobs }) for some tokens. */
export function chatLogprobs(t: Tokenizer, lps: TokenLogprob[], top: number): ChatLogprob[] {
  const entry = (id: number, logprob: number) => {
    const bytes = t.tokenBytes(id);
    return { token: new TextDecoder().decode(bytes), logprob, bytes: Array.from(bytes) };
  };
  return lps.map((l) => ({ ...entry(l.token, l.logprob), top_logprobs: l.top.slice(0, top).map((x) => entry(x.token, x.logprob)) }));
}

function finishReasonOf(stop: string, toolCalls: number): "stop" | "length" | "tool_calls" {
  if (stop === "length" || stop === "context") return "length";
  return toolCalls > 0 ? "tool_calls" : "stop";
}

interface ChoiceResult {
  text: string;
  reasoning: string;
  toolCalls: ToolCall[];
  logprobs: ChatLogprob[];
  finishReason: "stop" | "length" | "tool_calls";
  tokens: number;
  promptTokens: number;
  cachedTokens: number;
}

const toolCallJson = (c: ToolCall, index: number) => ({ index, id: c.id, type: "function" as const, function: { name: c.name, arguments: JSON.stringify(c.arguments) } });

export function registerChatCompletions(ctx: ServerContext): void {
  ctx.app.post<{ Body: ChatBody }>("/v1/chat/completions", { schema: { body: chatBodySchema } }, async (req: FastifyRequest<{ Body: ChatBody }>, reply: FastifyReply) => {
    const m = ctx.model();
    const b = req.body;
    ctx.checkModel(b.model);
    const messages = chatMessages(b.messages);
    const options = chatOptions(b, m, ctx.maxTokens(), ctx.serverOptions() as ChatOptions, ctx.chatTemplate);
    // Render once up front: a template that refuses the conversation, or a prompt longer than
    // the context, is a 400 before anything streams.
    let promptTokens: number;
    try {
      const { toolChoice: _c, ...renderOptions } = options;
      promptTokens = chatPrompt(m, messages, { tools: renderOptions.tools, templateContext: renderOptions.templateContext, template: renderOptions.template }).tokens.length;
    } catch (e) {
      const api = toApiError(e);
      throw api.status === 500 || api.status === 400 ? badRequest(`the chat template could not render these messages: ${(e as Error).message}`, "messages", "invalid_messages") : api;
    }
    if (promptTokens >= m.info.contextSize)
      throw badRequest(`the messages are ${promptTokens} tokens; this server's context holds ${m.info.contextSize} (prompt and reply)`, "messages", "context_length_exceeded");
    const n = b.n ?? 1;
    const top = b.top_logprobs ?? 0;
    const id = `chatcmpl-${req.id}`;
    const created = Math.floor(Date.now() / 1000);
    const base = { id, object: "chat.completion.chunk", created, model: ctx.modelName, system_fingerprint: "tessera" };
    const meter = ctx.meter(req);
    ctx.note(req, { n, stream: b.stream === true });

    /** Runs every choice; onChunk sees each chunk (streaming), onEnd each choice's end. */
    const generate = async (signal: AbortSignal, onChunk?: (index: number, chunk: ChatChunk, callIndex: number) => void, onEnd?: (index: number, r: ChoiceResult) => void) => {
      // One failed choice ends the others (they would generate for nobody).
      const local = new AbortController();
      const stop = () => local.abort();
      signal.addEventListener("abort", stop, { once: true });
      let primed!: () => void;
      const firstToken = new Promise<void>((r) => (primed = r));
      const one = async (index: number): Promise<ChoiceResult> => {
        if (index > 0) await firstToken;
        if (local.signal.aborted) throw new ApiError(499, "the request was cancelled", "request_cancelled");
        const gen = m.chat(messages, { ...options, ...(b.seed != null ? { seed: b.seed + index } : {}), signal: local.signal });
        const r: ChoiceResult = { text: "", reasoning: "", toolCalls: [], logprobs: [], finishReason: "stop", tokens: 0, promptTokens: 0, cachedTokens: 0 };
        try {
          for await (const chunk of gen) {
            if (index === 0 && chunk.tokens.length > 0) primed();
            meter.tokens(index, chunk.tokens.length);
            r.tokens += chunk.tokens.length;
            // parallel_tool_calls: false keeps the first call.
            if (chunk.toolCalls && b.parallel_tool_calls === false) chunk.toolCalls = chunk.toolCalls.slice(0, Math.max(0, 1 - r.toolCalls.length));
            const callIndex = r.toolCalls.length;
            r.text += chunk.text;
            r.reasoning += chunk.reasoning ?? "";
            r.toolCalls.push(...(chunk.toolCalls ?? []));
            if (b.logprobs && chunk.logprobs) r.logprobs.push(...chatLogprobs(m.tokenizer, chunk.logprobs, top));
            onChunk?.(index, chunk, callIndex);
          }
        } finally {
          if (index === 0) primed();
        }
        const done = await gen;
        r.finishReason = finishReasonOf(done.stopReason, r.toolCalls.length);
        r.promptTokens = done.stats.promptTokens;
        r.cachedTokens = done.stats.cachedTokens;
        onEnd?.(index, r);
        return r;
      };
      const runs = Array.from({ length: n }, (_, i) => one(i));
      try {
        return await Promise.all(runs);
      } catch (e) {
        local.abort();
        await Promise.allSettled(runs);
        throw e;
      } finally {
        signal.removeEventListener("abort", stop);
      }
    };
    const usageOf = (out: ChoiceResult[]): Usage => {
      const prompt = out[0]?.promptTokens ?? 0;
      const completion = out.reduce((a, r) => a + r.tokens, 0);
      return { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion, prompt_tokens_details: { cached_tokens: out[0]?.cachedTokens ?? 0 } };
    };
    const finish = (out: ChoiceResult[]) => {
      const usage = usageOf(out);
      meter.finish(usage, out.map((r) => r.finishReason));
      // Prompt tokens the later choices took from the prefix cache (choice 0 computed them).
      if (n > 1) ctx.note(req, { sharedPromptTokens: out.slice(1).reduce((a, r) => a + r.cachedTokens, 0) });
      return usage;
    };

    return ctx.run(reply, async (signal) => {
      if (!b.stream) {
        const out = await generate(signal);
        const usage = finish(out);
        return {
          ...base,
          object: "chat.completion",
          choices: out.map((r, index) => {
            const message: Record<string, unknown> = { role: "assistant", content: r.toolCalls.length > 0 && r.text === "" ? null : r.text };
            if (r.reasoning) message.reasoning_content = r.reasoning;
            if (r.toolCalls.length > 0) message.tool_calls = r.toolCalls.map((c) => ({ id: c.id, type: "function", function: { name: c.name, arguments: JSON.stringify(c.arguments) } }));
            return { index, message, logprobs: b.logprobs ? { content: r.logprobs } : null, finish_reason: r.finishReason };
          }),
          usage,
        };
      }
      // Events wait here until the first one: a request that fails before its first token
      // (bad options the chat layer finds) still gets its own status code, not a 200 stream.
      const pending: unknown[] = [];
      let open = false;
      const emit = (payload: unknown) => (open ? ctx.send(reply, payload) : pending.push(payload));
      let started!: () => void;
      const firstEvent = new Promise<void>((r) => (started = r));
      const running = generate(
        signal,
        (index, chunk, callIndex) => {
          started();
          const delta: Record<string, unknown> = {};
          if (chunk.reasoning) delta.reasoning_content = chunk.reasoning;
          if (chunk.text) delta.content = chunk.text;
          if (chunk.toolCalls?.length) delta.tool_calls = chunk.toolCalls.map((c, k) => toolCallJson(c, callIndex + k));
          const lp = b.logprobs && chunk.logprobs?.length ? { content: chatLogprobs(m.tokenizer, chunk.logprobs, top) } : null;
          if (Object.keys(delta).length === 0 && lp === null) return;
          emit({ ...base, choices: [{ index, delta, logprobs: lp, finish_reason: null }] });
        },
        (index, r) => {
          started();
          emit({ ...base, choices: [{ index, delta: {}, logprobs: null, finish_reason: r.finishReason }] });
        },
      );
      await Promise.race([firstEvent, running]);
      return ctx.stream(req, reply, async () => {
        for (let index = 0; index < n; index++)
          ctx.send(reply, { ...base, choices: [{ index, delta: { role: "assistant", content: "" }, logprobs: null, finish_reason: null }] });
        open = true;
        for (const p of pending.splice(0)) ctx.send(reply, p);
        const out = await running;
        const usage = finish(out);
        if (b.stream_options?.include_usage) ctx.send(reply, { ...base, choices: [], usage });
      });
    });
  });
}
