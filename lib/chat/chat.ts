/**
 * The chat API: model.chat(messages, options) and model.createChat({ system, tools }).
 *
 * A turn renders the conversation with the model's chat template, tokenizes it (special
 * tokens parsed, BOS added once), generates until the template's end of turn, and splits
 * the output into text, reasoning and tool calls as it streams. Tools that come with a
 * `run` function are called with the parsed arguments and their results fed back, round
 * after round, until the model answers without calling one.
 *
 * A Chat keeps one Session: each turn's prompt starts with the tokens of the turns before
 * (the prompt and the tokens the model generated, exactly), so only the new messages'
 * tokens are evaluated; stats.cachedTokens shows it.
 */
import { TesseraError } from "../errors.js";
import type { GenerateOptions, GenerationStats, StopReason } from "../generate/generate.js";
import type { TokenLogprob } from "../inspect/logprobs.js";
import type { Model } from "../model/model.js";
import type { Session } from "../model/session.js";
import type { Tokenizer } from "../tokenizer/index.js";
import { checkToolChoice, jsonSchemaConstraint, toolCallConstraint, type ToolChoice } from "./constraints.js";
import { detectChatFormat, promptOpensThinking, type ChatFormat } from "./format.js";
import { DEFAULT_TEMPLATE } from "./gguf.js";
import { ChatOutputParser } from "./parser.js";
import { CHATML_TEMPLATE, compileChatTemplate, type ChatTemplate } from "./template.js";
import type { ChatMessage, JSONSchema, MessageToolCall, ToolCall, ToolDefinition } from "./types.js";

/** A tool's function: called with the parsed arguments; its result (JSON-encoded unless a string) is fed back. */
export type ToolFunction = (args: Record<string, unknown>, call: ToolCall) => unknown;

/**
 * A tool for the chat: a definition as templates take it, or the short form
 * { name, description, parameters }; with `run`, the chat calls it itself.
 */
export type ChatTool = (ToolDefinition | { name: string; description?: string; parameters?: JSONSchema }) & { run?: ToolFunction };

export interface ChatOptions extends Omit<GenerateOptions, "session" | "addSpecial" | "parseSpecial" | "skipSpecial" | "jsonSchema" | "lazyGrammar"> {
  tools?: ChatTool[];
  /**
   * Whether the model may call the tools: "auto" (default; a call it starts is held to the
   * tool's schema), "none" (the tools are not offered), "required" (the answer is tool
   * calls), or { name } (one call of that tool). "required" and { name } hold for the
   * first round of a turn; after the tools ran, the model answers freely ("auto").
   */
  toolChoice?: ToolChoice;
  /** Reasoning models: sets the template's `enable_thinking` (Qwen3, DeepSeek R1 forms). Default: the template's default. */
  thinking?: boolean;
  /** A template to use instead of the model's (Jinja text). */
  template?: string;
  /** A named template of the model (`tokenizer.chat_template.<name>`, e.g. "tool_use"). */
  templateName?: string;
  /** More template variables (reasoning_effort, builtin_tools, ...). */
  templateContext?: Record<string, unknown>;
  /** Make the reply JSON matching this schema (needs constrained decoding; see constraints.ts). */
  jsonSchema?: JSONSchema;
  /** Most generate → call tools → generate rounds of one turn. Default 8. */
  maxToolRounds?: number;
  /** The clock of the template's strftime_now. Default: now. */
  now?: Date;
}

export interface ToolResult {
  id: string;
  name: string;
  /** What the function returned (undefined when it threw). */
  result?: unknown;
  /** The error's message when the function threw or the tool is unknown. */
  error?: string;
  /** The text fed back to the model. */
  content: string;
}

export interface ChatChunk {
  /** New answer text. */
  text: string;
  /** New reasoning text (inside <think>). */
  reasoning?: string;
  /** Tool calls completed in this chunk. */
  toolCalls?: ToolCall[];
  /** Results of tools the chat ran, fed back for the next round. */
  toolResults?: ToolResult[];
  /** Tokens sampled since the previous chunk. */
  tokens: number[];
  /** With the `logprobs` option: one per token of `tokens`. */
  logprobs?: TokenLogprob[];
}

export interface ChatCompletion {
  /** The final answer's text (after a prefill: the continuation only). */
  text: string;
  reasoning: string;
  /** Calls the model made in its last round that no `run` function handled. */
  toolCalls: ToolCall[];
  /** Every tool the chat ran, in order. */
  toolResults: ToolResult[];
  /** The final assistant message, in the template's format. */
  message: ChatMessage;
  /** The messages this turn added (assistant messages, tool results), in order. */
  messages: ChatMessage[];
  stopReason: StopReason;
  /** Summed over the turn's rounds. */
  stats: GenerationStats;
  /** Tokens of the last round. */
  tokens: number[];
}

/**
 * A chat turn: iterate it for chunks, or await it for the completion (both work, in
 * either order: awaiting after iterating gives the completion of that iteration).
 */
export class ChatGeneration implements AsyncIterable<ChatChunk>, PromiseLike<ChatCompletion> {
  private started = false;
  private readonly done: Promise<ChatCompletion>;
  private settle!: { resolve: (c: ChatCompletion) => void; reject: (e: unknown) => void };

  /** @internal */
  constructor(private readonly run: () => AsyncGenerator<ChatChunk, ChatCompletion>) {
    this.done = new Promise((resolve, reject) => (this.settle = { resolve, reject }));
    // Rejections are delivered to whoever awaits or iterates; never unhandled here.
    this.done.catch(() => undefined);
  }

  [Symbol.asyncIterator](): AsyncIterator<ChatChunk> {
    if (this.started) throw new TesseraError("ERR_INVALID_ARGUMENT", "a ChatGeneration can be iterated only once; await it for the completion");
    this.started = true;
    return this.iterate();
  }

  then<A = ChatCompletion, B = never>(
    onFulfilled?: ((value: ChatCompletion) => A | PromiseLike<A>) | null,
    onRejected?: ((reason: unknown) => B | PromiseLike<B>) | null,
  ): Promise<A | B> {
    if (!this.started) {
      this.started = true;
      void (async () => {
        for await (const _ of this.iterate());
      })().catch(() => undefined);
    }
    return this.done.then(onFulfilled, onRejected);
  }

  private async *iterate(): AsyncGenerator<ChatChunk> {
    const gen = this.run();
    try {
      for (;;) {
        const r = await gen.next();
        if (r.done) {
          this.settle.resolve(r.value);
          return;
        }
        yield r.value;
      }
    } catch (e) {
      this.settle.reject(e);
      throw e;
    } finally {
      // An iteration left early (break) ends the generation; the completion never comes.
      await gen.return(undefined as never);
      this.settle.reject(new TesseraError("ERR_ABORTED", "the chat turn was not iterated to its end"));
    }
  }
}

// ---------------------------------------------------------------- the prompt

interface Prepared {
  template: ChatTemplate;
  format: ChatFormat;
  tools: ToolDefinition[] | undefined;
  runners: Map<string, ToolFunction>;
  bosToken: string | undefined;
  eosToken: string | undefined;
  stop: string[];
  toolChoice: ToolChoice;
}

function tokenText(tokenizer: Tokenizer, id: number | undefined): string | undefined {
  return id === undefined ? undefined : tokenizer.decode([id], { skipSpecial: false });
}

function normalizeTools(tools: unknown): { definitions: ToolDefinition[] | undefined; runners: Map<string, ToolFunction> } {
  const runners = new Map<string, ToolFunction>();
  if (tools === undefined) return { definitions: undefined, runners };
  if (!Array.isArray(tools)) throw new TesseraError("ERR_INVALID_ARGUMENT", "tools must be an array of { name, description, parameters, run? } or tool definitions");
  const definitions = tools.map((t: unknown, i): ToolDefinition => {
    if (t === null || typeof t !== "object") throw new TesseraError("ERR_INVALID_ARGUMENT", `tools[${i}] must be an object`);
    const tool = t as Record<string, unknown>;
    const fn = (tool.type === "function" && typeof tool.function === "object" && tool.function !== null ? tool.function : tool) as Record<string, unknown>;
    if (typeof fn.name !== "string" || !/^[\w.-]+$/.test(fn.name))
      throw new TesseraError("ERR_INVALID_ARGUMENT", `tools[${i}] needs a name of letters, digits, "_", "." or "-"`);
    if (fn.parameters !== undefined && (fn.parameters === null || typeof fn.parameters !== "object"))
      throw new TesseraError("ERR_INVALID_ARGUMENT", `tools[${i}].parameters must be a JSON schema object`);
    if (tool.run !== undefined && typeof tool.run !== "function") throw new TesseraError("ERR_INVALID_ARGUMENT", `tools[${i}].run must be a function`);
    if (runners.has(fn.name)) throw new TesseraError("ERR_INVALID_ARGUMENT", `two tools are named "${fn.name}"`);
    if (typeof tool.run === "function") runners.set(fn.name, tool.run as ToolFunction);
    else runners.set(fn.name, undefined as never);
    const definition: ToolDefinition = { type: "function", function: { name: fn.name } };
    if (typeof fn.description === "string") definition.function.description = fn.description;
    definition.function.parameters = (fn.parameters as JSONSchema | undefined) ?? { type: "object", properties: {} };
    return definition;
  });
  for (const [name, run] of runners) if (run === undefined) runners.delete(name);
  return { definitions, runners };
}

const stopCache = new WeakMap<Tokenizer, Map<string, string[]>>();

/**
 * The text that ends an assistant turn, as a stop string, where it is not one
 * end-of-generation token (the ChatML fallback on a vocabulary without <|im_end|>).
 */
function endOfTurnStop(template: ChatTemplate, tokenizer: Tokenizer, bosToken: string | undefined, eosToken: string | undefined): string[] {
  let byTemplate = stopCache.get(tokenizer);
  if (!byTemplate) stopCache.set(tokenizer, (byTemplate = new Map()));
  const cached = byTemplate.get(template.source);
  if (cached) return cached;
  let stop: string[] = [];
  const mark = "Tessera end-of-turn probe";
  try {
    const text = template.render({
      messages: [
        { role: "user", content: "Hi" },
        { role: "assistant", content: mark },
      ],
      bosToken,
      eosToken,
    });
    const end = text.slice(text.lastIndexOf(mark) + mark.length).split("\n")[0].trim();
    if (end.length > 0) {
      const ids = tokenizer.encode(end, { addSpecial: false, parseSpecial: true });
      if (!(ids.length === 1 && tokenizer.isEndOfGeneration(ids[0]))) stop = [end];
    }
  } catch {
    // A template that refuses this probe conversation: rely on the vocabulary's end tokens.
  }
  byTemplate.set(template.source, stop);
  return stop;
}

function prepare(model: Model, options: ChatOptions): Prepared {
  const toolChoice = options.toolChoice ?? "auto";
  const normalized = normalizeTools(options.tools);
  // "none": the tools are not offered at all (not rendered, not run).
  const definitions = toolChoice === "none" ? undefined : normalized.definitions;
  const runners = toolChoice === "none" ? new Map<string, ToolFunction>() : normalized.runners;
  if (toolChoice !== "none" && toolChoice !== "auto") {
    if (!definitions?.length) throw new TesseraError("ERR_INVALID_ARGUMENT", `toolChoice ${JSON.stringify(toolChoice)} needs tools; pass tools, or leave toolChoice out`);
    checkToolChoice(toolChoice, definitions);
  }
  let source: string;
  if (options.template !== undefined) {
    if (typeof options.template !== "string") throw new TesseraError("ERR_INVALID_ARGUMENT", "template must be a string of Jinja text");
    source = options.template;
  } else if (options.templateName !== undefined) {
    const named = model.chatTemplates[options.templateName];
    if (named === undefined)
      throw new TesseraError(
        "ERR_INVALID_ARGUMENT",
        `the model has no chat template named "${options.templateName}" (it has: ${Object.keys(model.chatTemplates).join(", ") || "none"})`,
      );
    source = named;
  } else {
    // Like transformers: the "tool_use" variant when tools are given and the file has one.
    source =
      (definitions?.length ? model.chatTemplates.tool_use : undefined) ?? model.chatTemplates[DEFAULT_TEMPLATE] ?? CHATML_TEMPLATE;
  }
  const template = compileChatTemplate(source);
  const format = detectChatFormat(source);
  // Tools with a template that shows no call syntax: Hermes' <tool_call> is the lingua franca.
  if (definitions?.length && format.toolCalls === "none") format.toolCalls = "hermes";
  const tokenizer = model.tokenizer;
  const bosToken = tokenText(tokenizer, tokenizer.bos);
  const eosToken = tokenText(tokenizer, tokenizer.eos);
  return { template, format, tools: definitions, runners, bosToken, eosToken, stop: endOfTurnStop(template, tokenizer, bosToken, eosToken), toolChoice };
}

function checkMessages(messages: unknown): asserts messages is ChatMessage[] {
  if (!Array.isArray(messages)) throw new TesseraError("ERR_INVALID_ARGUMENT", 'messages must be an array of { role, content } objects, e.g. [{ role: "user", content: "Hi" }]');
  messages.forEach((m, i) => {
    if (m === null || typeof m !== "object" || typeof (m as ChatMessage).role !== "string")
      throw new TesseraError("ERR_INVALID_ARGUMENT", `messages[${i}] must be an object with a string role`);
    const c = (m as ChatMessage).content;
    if (c !== undefined && c !== null && typeof c !== "string" && !Array.isArray(c))
      throw new TesseraError("ERR_INVALID_ARGUMENT", `messages[${i}].content must be a string, an array of parts, or null`);
  });
}

function checkOptions(options: ChatOptions): void {
  if (options === null || typeof options !== "object") throw new TesseraError("ERR_INVALID_ARGUMENT", "chat options must be an object");
  if (options.thinking !== undefined && typeof options.thinking !== "boolean") throw new TesseraError("ERR_INVALID_ARGUMENT", "thinking must be a boolean");
  if (options.templateContext !== undefined && (options.templateContext === null || typeof options.templateContext !== "object"))
    throw new TesseraError("ERR_INVALID_ARGUMENT", "templateContext must be an object of template variables");
  const rounds = options.maxToolRounds;
  if (rounds !== undefined && (!Number.isInteger(rounds) || rounds < 0 || rounds > 1000))
    throw new TesseraError("ERR_INVALID_ARGUMENT", `maxToolRounds must be an integer in 0..1000, got ${String(rounds)}`);
  if (options.stop !== undefined && !Array.isArray(options.stop))
    throw new TesseraError("ERR_INVALID_ARGUMENT", 'stop must be an array of strings, e.g. stop: ["\\n"]');
  if (options.jsonSchema !== undefined && (options.jsonSchema === null || typeof options.jsonSchema !== "object"))
    throw new TesseraError("ERR_INVALID_ARGUMENT", "jsonSchema must be a JSON schema object");
  checkToolChoice(options.toolChoice);
  const forced = options.toolChoice !== undefined && options.toolChoice !== "auto" && options.toolChoice !== "none";
  const other = (["jsonSchema", "grammar", "responseFormat"] as const).find((k) => options[k] !== undefined && !(k === "responseFormat" && options.responseFormat?.type === "text"));
  if (forced && other)
    throw new TesseraError("ERR_INVALID_ARGUMENT", `toolChoice ${JSON.stringify(options.toolChoice)} and ${other} both decide what the reply is; give one of them`);
  for (const key of ["session", "addSpecial", "parseSpecial", "skipSpecial", "lazyGrammar"])
    if ((options as Record<string, unknown>)[key] !== undefined)
      throw new TesseraError("ERR_INVALID_ARGUMENT", `chat sets ${key} itself; leave it out (use model.generate for raw prompts)`);
}

/** The prompt's tokens: special tokens parsed, BOS once (templates that write it already have it). */
function encodePrompt(tokenizer: Tokenizer, text: string): number[] {
  const ids = tokenizer.encode(text, { addSpecial: false, parseSpecial: true });
  if (tokenizer.addBos && tokenizer.bos !== undefined && ids[0] !== tokenizer.bos) ids.unshift(tokenizer.bos);
  return ids;
}

/** What a session holds: its tokens and the text they spell (prompt, then generated text verbatim). */
interface CachedTurn {
  text: string;
  tokens: number[];
}

function startsWith(a: readonly number[], prefix: readonly number[]): boolean {
  if (prefix.length > a.length) return false;
  for (let i = 0; i < prefix.length; i++) if (a[i] !== prefix[i]) return false;
  return true;
}

/**
 * The prompt's tokens, continuing `cached` where the new prompt's text extends what the
 * session holds: the tokens the model generated stay as they were, so the cache matches
 * even where encoding that text again would split it differently.
 */
function promptTokens(tokenizer: Tokenizer, text: string, cached: CachedTurn | undefined): number[] {
  const full = encodePrompt(tokenizer, text);
  if (!cached || startsWith(full, cached.tokens) || !text.startsWith(cached.text)) return full;
  return cached.tokens.concat(tokenizer.encode(text.slice(cached.text.length), { addSpecial: false, parseSpecial: true }));
}

function toolResultContent(v: unknown): string {
  if (typeof v === "string") return v;
  if (v === undefined) return "";
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

function emptyStats(): GenerationStats {
  return { promptTokens: 0, cachedTokens: 0, promptMs: 0, generatedTokens: 0, generateMs: 0 };
}

function renderPrompt(
  prepared: Prepared,
  history: ChatMessage[],
  thinking: boolean | undefined,
  templateContext: Record<string, unknown> | undefined,
  now: Date | undefined,
): { text: string; prefill: boolean; inThinking: boolean } {
  const last = history[history.length - 1];
  // A final assistant message (without calls) is a prefill: the reply continues it.
  const prefill = last?.role === "assistant" && typeof last.content === "string" && !last.tool_calls?.length;
  let text = prepared.template.render({
    ...templateContext,
    ...(thinking !== undefined ? { enable_thinking: thinking } : {}),
    messages: history,
    tools: prepared.tools,
    addGenerationPrompt: !prefill,
    continueFinalMessage: prefill,
    bosToken: prepared.bosToken,
    eosToken: prepared.eosToken,
    now,
  });
  let inThinking = !prefill && prepared.format.reasoning && promptOpensThinking(text);
  if (inThinking && thinking === false) {
    // R1-style templates open <think> whatever enable_thinking says: close it.
    text += "</think>\n\n";
    inThinking = false;
  }
  return { text, prefill, inThinking };
}

/** toolChoice "required" or { name } applies: the reply starts with a constrained call. */
function forcesCall(prepared: Prepared, options: ChatOptions): boolean {
  const c = prepared.toolChoice;
  return c !== "auto" && c !== "none" && !!prepared.tools?.length && options.jsonSchema === undefined;
}

export interface ChatPrompt {
  /** The rendered prompt. */
  text: string;
  /** Its tokens, as chat() evaluates them. */
  tokens: number[];
  /** Stop strings chat() adds (the end of turn where it is not one token). */
  stop: string[];
  format: ChatFormat;
  /** The prompt leaves a <think> block open. */
  startsInReasoning: boolean;
}

/** The prompt model.chat(messages, options) would evaluate, without generating. */
export function chatPrompt(model: Model, messages: ChatMessage[], options: ChatOptions = {}): ChatPrompt {
  checkMessages(messages);
  checkOptions(options);
  const prepared = prepare(model, options);
  const { text, inThinking } = renderPrompt(prepared, messages, forcesCall(prepared, options) ? false : options.thinking, options.templateContext, options.now);
  return { text, tokens: encodePrompt(model.tokenizer, text), stop: prepared.stop, format: prepared.format, startsInReasoning: inThinking };
}

/** @internal The state a turn runs against: a Chat's session and cache, or nothing (model.chat). */
export interface ChatTarget {
  session?: Session;
  cached?: CachedTurn;
}

/**
 * One turn: rounds of render → generate → parse, running tools in between. `history` is
 * the conversation; the messages the turn adds are pushed onto it.
 */
async function* runTurn(model: Model, history: ChatMessage[], options: ChatOptions, target: ChatTarget): AsyncGenerator<ChatChunk, ChatCompletion> {
  const {
    tools: _tools,
    thinking,
    template: _template,
    templateName: _templateName,
    templateContext,
    jsonSchema,
    maxToolRounds,
    now,
    stop: userStop,
    toolChoice: _toolChoice,
    ...generateOptions
  } = options;
  const prepared = prepare(model, options);
  const tokenizer = model.tokenizer;
  const constraints: Partial<GenerateOptions> = {};
  // A grammar or response format of the caller's own decides the reply; tool calls are then not constrained.
  const ownGrammar = options.grammar !== undefined || (options.responseFormat !== undefined && options.responseFormat.type !== "text");
  if (jsonSchema !== undefined) {
    const c = jsonSchemaConstraint(jsonSchema);
    if (!c)
      throw new TesseraError(
        "ERR_UNSUPPORTED",
        "jsonSchema needs constrained decoding (JSON schema grammars), which this build does not have yet; leave jsonSchema out",
      );
    Object.assign(constraints, c);
  }
  const stop = [...(userStop ?? []), ...prepared.stop];
  const toolConstraint = (round: number): Partial<GenerateOptions> | undefined =>
    jsonSchema === undefined && !ownGrammar && prepared.tools?.length
      ? toolCallConstraint(prepared.tools, prepared.format.toolCalls, {
          // A forced choice is the first round's: after the tools ran, the model answers.
          choice: round === 0 ? prepared.toolChoice : "auto",
          template: prepared.template.source,
          stop,
          builtinTools: templateContext?.builtin_tools !== undefined,
        })
      : undefined;
  const added: ChatMessage[] = [];
  const toolResults: ToolResult[] = [];
  const stats = emptyStats();
  const maxRounds = maxToolRounds ?? 8;

  for (let round = 0; ; round++) {
    const last = history[history.length - 1];
    // A forced call is the answer: no reasoning before it (the grammar starts at the first token).
    const forced = round === 0 && forcesCall(prepared, options);
    const { text: prompt, prefill, inThinking } = renderPrompt(prepared, history, forced ? false : thinking, templateContext, now);
    const tokens = promptTokens(tokenizer, prompt, target.cached);
    const generation = model.generate(tokens, {
      ...generateOptions,
      ...constraints,
      ...toolConstraint(round),
      stop,
      session: target.session,
      skipSpecial: false,
    });
    const parser = new ChatOutputParser({
      toolCalls: prepared.format.toolCalls,
      reasoning: prepared.format.reasoning,
      startInReasoning: inThinking,
      continuation: prefill,
    });
    // The generated tokens' text as the session holds it (stop strings included).
    const raw = tokenizer.createStreamDecoder({ prefix: tokens, skipSpecial: false });
    let rawText = "";
    const generated: number[] = [];
    let text = "";
    let reasoning = "";
    const calls: ToolCall[] = [];
    const forward = (p: { text: string; reasoning: string; toolCalls: ToolCall[] }, chunkTokens: number[]): ChatChunk | undefined => {
      text += p.text;
      reasoning += p.reasoning;
      calls.push(...p.toolCalls);
      if (p.text.length === 0 && p.reasoning.length === 0 && p.toolCalls.length === 0 && chunkTokens.length === 0) return undefined;
      const chunk: ChatChunk = { text: p.text, tokens: chunkTokens };
      if (p.reasoning.length > 0) chunk.reasoning = p.reasoning;
      if (p.toolCalls.length > 0) chunk.toolCalls = p.toolCalls;
      return chunk;
    };
    for await (const c of generation) {
      for (const id of c.tokens) rawText += raw.push(id);
      generated.push(...c.tokens);
      const chunk = forward(parser.push(c.text), c.tokens);
      if (chunk && c.logprobs) chunk.logprobs = c.logprobs;
      if (chunk) yield chunk;
    }
    rawText += raw.flush();
    const tail = forward(parser.flush(), []);
    if (tail) yield tail;
    if (target.session) target.cached = { text: prompt + rawText, tokens: tokens.concat(generated) };
    const s = generation.stats;
    stats.promptTokens += s.promptTokens;
    stats.cachedTokens += s.cachedTokens;
    stats.promptMs += s.promptMs;
    stats.generatedTokens += s.generatedTokens;
    stats.generateMs += s.generateMs;

    const message: ChatMessage = { role: "assistant", content: prefill ? (last.content as string) + text : text };
    if (reasoning.length > 0) message.reasoning_content = reasoning;
    if (calls.length > 0)
      message.tool_calls = calls.map((c): MessageToolCall => ({ id: c.id, type: "function", function: { name: c.name, arguments: c.arguments } }));
    if (prefill) history[history.length - 1] = message;
    else history.push(message);
    added.push(message);

    const runnable = calls.length > 0 && calls.every((c) => prepared.runners.has(c.name));
    // A turn cut short (length, context) is not the model's finished call list.
    const truncated = generation.stopReason === "length" || generation.stopReason === "context";
    if (!runnable || round >= maxRounds || truncated) {
      return {
        text,
        reasoning,
        toolCalls: calls,
        toolResults,
        message,
        messages: added,
        stopReason: generation.stopReason ?? "length",
        stats,
        tokens: generated,
      };
    }
    const results: ToolResult[] = [];
    for (const call of calls) {
      const run = prepared.runners.get(call.name)!;
      let result: ToolResult;
      try {
        const value = await run(call.arguments, call);
        result = { id: call.id, name: call.name, result: value, content: toolResultContent(value) };
      } catch (e) {
        const error = e instanceof Error ? e.message : String(e);
        // The model sees the failure and may try again or answer without the tool.
        result = { id: call.id, name: call.name, error, content: `Error: ${error}` };
      }
      results.push(result);
      const toolMessage: ChatMessage = { role: "tool", tool_call_id: call.id, name: call.name, content: result.content };
      history.push(toolMessage);
      added.push(toolMessage);
    }
    toolResults.push(...results);
    yield { text: "", toolResults: results, tokens: [] };
  }
}

/** model.chat(): one turn over `messages` (not modified), in a sequence of its own. */
export function chat(model: Model, messages: ChatMessage[], options: ChatOptions = {}): ChatGeneration {
  checkMessages(messages);
  checkOptions(options);
  const history = messages.map((m) => ({ ...m }));
  return new ChatGeneration(() => runTurn(model, history, options, {}));
}

export interface CreateChatOptions extends ChatOptions {
  /** The system message the conversation starts with. */
  system?: string;
  /** Earlier messages to start from (after the system message). */
  messages?: ChatMessage[];
}

/**
 * A conversation that keeps its KV cache between turns. send() adds a user message (or
 * continues after tool results with no argument) and streams the reply; the reply and any
 * tool messages join `messages`.
 */
export class Chat {
  private readonly history: ChatMessage[] = [];
  private readonly target: ChatTarget;
  private busy = false;

  /** @internal Created by model.createChat(). */
  constructor(
    private readonly model: Model,
    private readonly options: CreateChatOptions,
  ) {
    checkOptions(options);
    if (options.system !== undefined && typeof options.system !== "string") throw new TesseraError("ERR_INVALID_ARGUMENT", "system must be a string");
    if (options.messages !== undefined) checkMessages(options.messages);
    this.target = { session: model.createSession() };
    this.reset();
  }

  /** The conversation so far (a copy). */
  get messages(): ChatMessage[] {
    return this.history.map((m) => ({ ...m }));
  }

  /** The session holding the conversation's KV cache. */
  get session(): Session {
    return this.target.session!;
  }

  /**
   * Adds `message` (text is a user message; pass messages for other roles, e.g. tool
   * results) and generates the reply. Options here apply to this turn, over the chat's.
   */
  send(message?: string | ChatMessage | ChatMessage[], options: ChatOptions = {}): ChatGeneration {
    checkOptions(options);
    const add: ChatMessage[] =
      message === undefined ? [] : typeof message === "string" ? [{ role: "user", content: message }] : Array.isArray(message) ? message : [message];
    checkMessages(add);
    const { system: _s, messages: _m, ...base } = this.options;
    const merged: ChatOptions = { ...base, ...options };
    const self = this;
    // Like a Generation, the turn starts when it is iterated or awaited; the conversation
    // changes from then on.
    return new ChatGeneration(async function* () {
      if (self.busy) throw new TesseraError("ERR_BUSY", "the chat is answering; await the previous send() first");
      const history = self.history;
      const rollback = history.length;
      history.push(...add.map((m) => ({ ...m })));
      if (history.length === 0) throw new TesseraError("ERR_INVALID_ARGUMENT", "send() needs a message: the conversation is empty");
      self.busy = true;
      let finished = false;
      try {
        const result = yield* runTurn(self.model, history, merged, self.target);
        finished = true;
        return result;
      } finally {
        self.busy = false;
        // A failed or abandoned turn leaves the conversation as it was.
        if (!finished) history.splice(rollback);
      }
    });
  }

  /** Adds a tool's result for a call the model made (for tools without `run`). */
  addToolResult(call: ToolCall | string, result: unknown, name?: string): void {
    if (this.busy) throw new TesseraError("ERR_BUSY", "the chat is answering; add tool results once it is done");
    if (typeof call !== "string" && (call === null || typeof call !== "object" || typeof call.id !== "string"))
      throw new TesseraError("ERR_INVALID_ARGUMENT", "addToolResult takes a tool call from completion.toolCalls (or its id)");
    const id = typeof call === "string" ? call : call.id;
    const toolName = typeof call === "string" ? name : call.name;
    const m: ChatMessage = { role: "tool", tool_call_id: id, content: toolResultContent(result) };
    if (toolName !== undefined) m.name = toolName;
    this.history.push(m);
  }

  /** Back to the system message (and the initial messages); the cache is dropped. */
  reset(): void {
    if (this.busy) throw new TesseraError("ERR_BUSY", "the chat is answering; await it before reset()");
    this.history.length = 0;
    if (this.options.system !== undefined) this.history.push({ role: "system", content: this.options.system });
    if (this.options.messages) this.history.push(...this.options.messages.map((m) => ({ ...m })));
    this.target.cached = undefined;
    if (!this.target.session!.disposed) this.target.session!.reset();
  }

  dispose(): void {
    this.target.session!.dispose();
  }
}
