/**
 * Chat templates: the Jinja programs GGUF files carry in `tokenizer.chat_template` that turn
 * a conversation into the model's prompt text. Rendered with @huggingface/jinja (the engine
 * transformers.js uses) in the environment transformers' apply_chat_template sets up:
 * trim_blocks and lstrip_blocks, loop controls, `tojson` without ASCII escaping,
 * `raise_exception` and `strftime_now`, and the context `messages`, `tools` (None when no
 * tools are given), `documents`, `add_generation_prompt`, `bos_token`, `eos_token` plus any
 * extra keys (e.g. `enable_thinking`). lib/chat/jinja gives the library jinja2's lexing
 * and Python semantics where the two differ; test/chat/templates.test.ts holds the output
 * of every template in ../shared/chat-templates to Python's jinja2, byte for byte.
 */
import { Environment, parse, tokenize, type Program } from "./jinja/library.js";
import { TesseraError } from "../errors.js";
import { PyInterpreter, SandboxViolation, TemplateRaise, Unsupported, prepareProgram } from "./jinja/interpreter.js";
import { TemplateSyntaxError, toLibrarySource } from "./jinja/source.js";
import { rewriteTestArguments, type TestWithArguments } from "./jinja/tokens.js";
import { PyError, UndefinedUse, fromJS, type Value } from "./jinja/values.js";
import type { ChatMessage, ToolDefinition } from "./types.js";

export interface RenderChatTemplateOptions {
  messages: ChatMessage[];
  /** Tool definitions ({ type: "function", function: { name, description, parameters } }). */
  tools?: ToolDefinition[] | null;
  /** End with the header of an assistant turn, for the model to write it. Default false. */
  addGenerationPrompt?: boolean;
  /**
   * The last message is an assistant message to continue (a prefill): the text ends where
   * its content ends, without the end-of-turn the template puts after it (transformers'
   * continue_final_message). Needs addGenerationPrompt false.
   */
  continueFinalMessage?: boolean;
  bosToken?: string;
  eosToken?: string;
  /** The clock of strftime_now. Default: the current time. */
  now?: Date;
  /** Further template variables, by their template names (enable_thinking, reasoning_effort, ...). */
  [extra: string]: unknown;
}

/** Why a template failed. */
export type ChatTemplateFailure = "syntax" | "unsupported" | "raised" | "undefined" | "sandbox" | "runtime";

export class ChatTemplateError extends TesseraError {
  /**
   * @param detail The error as jinja2 words it (for "raised", the template's own
   *   raise_exception text); `pythonError` is the Python exception jinja2 raises there
   *   (TemplateError, UndefinedError, SecurityError, TypeError...).
   */
  constructor(
    readonly reason: ChatTemplateFailure,
    message: string,
    readonly detail?: string,
    readonly pythonError?: string,
    options?: { cause?: unknown },
  ) {
    super("ERR_CHAT_TEMPLATE", message, options);
    this.name = "ChatTemplateError";
  }
}

/**
 * The template of a model without one (stories260K and other base models): ChatML, as
 * llama.cpp falls back to. `<|im_start|>role\ncontent<|im_end|>\n` per message, then
 * `<|im_start|>assistant\n` for the generation prompt. Where the vocabulary has no
 * <|im_end|> token the chat API stops on the text "<|im_end|>".
 */
export const CHATML_TEMPLATE =
  "{%- for message in messages -%}" +
  "{{- '<|im_start|>' + message.role + '\\n' + (message.content if message.content is string else '') + '<|im_end|>\\n' -}}" +
  "{%- endfor -%}" +
  "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}";

const RESERVED = new Set(["messages", "tools", "addGenerationPrompt", "continueFinalMessage", "bosToken", "eosToken", "now"]);

/** A parsed template; render() may be called any number of times. */
export class ChatTemplate {
  private readonly program: Program;
  private readonly tests: ReadonlyMap<string, TestWithArguments> = new Map();

  constructor(readonly source: string) {
    if (typeof source !== "string") throw new TesseraError("ERR_INVALID_ARGUMENT", "a chat template must be a string of Jinja text");
    let program: Program;
    try {
      const rewritten = rewriteTestArguments(tokenize(toLibrarySource(source)) as Array<{ type: string; value: string }>);
      this.tests = rewritten.tests;
      program = parse(rewritten.tokens);
    } catch (e) {
      if (e instanceof TemplateSyntaxError)
        throw new ChatTemplateError("syntax", `the chat template does not parse (line ${e.line}): ${e.message}`, e.message, "TemplateSyntaxError", {
          cause: e,
        });
      const message = (e as Error).message ?? String(e);
      const statement = /Unknown statement type: (\w+)/.exec(message);
      if (statement)
        throw new ChatTemplateError(
          "unsupported",
          `the chat template uses {% ${statement[1]} %}, which Tessera's Jinja engine does not support; pass a template without it`,
          undefined,
          undefined,
          { cause: e },
        );
      throw new ChatTemplateError("syntax", `the chat template does not parse: ${message}`, message, "TemplateSyntaxError", { cause: e });
    }
    prepareProgram(program.body as never);
    this.program = program;
  }

  render(options: RenderChatTemplateOptions): string {
    const context = contextOf(options);
    const now = options.now;
    if (now !== undefined && !(now instanceof Date && !Number.isNaN(now.getTime())))
      throw new TesseraError("ERR_INVALID_ARGUMENT", "now must be a valid Date");
    const env = new Environment();
    const interpreter = new PyInterpreter(env, { now: () => now ?? new Date(), tests: this.tests });
    interpreter.installGlobals(env);
    const vars = env.variables as unknown as Map<string, Value>;
    for (const [k, v] of Object.entries(context)) vars.set(k, v);
    let text: string;
    try {
      text = (interpreter.run(this.program) as unknown as { value: string }).value;
    } catch (e) {
      throw renderError(e);
    }
    if (options.continueFinalMessage) text = cutAtFinalMessage(text, options.messages);
    return text;
  }
}

function contextOf(options: RenderChatTemplateOptions): Record<string, Value> {
  if (options === null || typeof options !== "object") throw new TesseraError("ERR_INVALID_ARGUMENT", "renderChatTemplate options must be an object");
  const { messages, tools, addGenerationPrompt, continueFinalMessage, bosToken, eosToken } = options;
  if (!Array.isArray(messages)) throw new TesseraError("ERR_INVALID_ARGUMENT", "messages must be an array of { role, content } objects");
  messages.forEach((m, i) => {
    if (m === null || typeof m !== "object" || typeof m.role !== "string")
      throw new TesseraError("ERR_INVALID_ARGUMENT", `messages[${i}] must be an object with a string role, e.g. { role: "user", content: "Hi" }`);
  });
  if (tools !== undefined && tools !== null && !Array.isArray(tools))
    throw new TesseraError("ERR_INVALID_ARGUMENT", "tools must be an array of tool definitions");
  for (const [name, v] of [
    ["addGenerationPrompt", addGenerationPrompt],
    ["continueFinalMessage", continueFinalMessage],
  ] as const)
    if (v !== undefined && typeof v !== "boolean") throw new TesseraError("ERR_INVALID_ARGUMENT", `${name} must be a boolean`);
  for (const [name, v] of [
    ["bosToken", bosToken],
    ["eosToken", eosToken],
  ] as const)
    if (v !== undefined && typeof v !== "string") throw new TesseraError("ERR_INVALID_ARGUMENT", `${name} must be a string`);
  if (continueFinalMessage) {
    if (addGenerationPrompt)
      throw new TesseraError("ERR_INVALID_ARGUMENT", "continueFinalMessage continues the last message; it cannot be combined with addGenerationPrompt");
    const last = messages[messages.length - 1];
    if (!last || typeof last.content !== "string")
      throw new TesseraError("ERR_INVALID_ARGUMENT", "continueFinalMessage needs a last message with string content to continue");
  }
  const convert = (name: string, v: unknown): Value => {
    try {
      return fromJS(v);
    } catch (e) {
      throw new TesseraError("ERR_INVALID_ARGUMENT", `${name}: ${(e as Error).message}`);
    }
  };
  const context: Record<string, Value> = {};
  for (const [k, v] of Object.entries(options)) if (!RESERVED.has(k) && v !== undefined) context[k] = convert(k, v);
  context.messages = convert("messages", messages);
  context.tools = convert("tools", tools ?? null);
  if (!("documents" in context)) context.documents = convert("documents", null);
  context.add_generation_prompt = convert("addGenerationPrompt", addGenerationPrompt ?? false);
  if (bosToken !== undefined) context.bos_token = convert("bosToken", bosToken);
  if (eosToken !== undefined) context.eos_token = convert("eosToken", eosToken);
  return context;
}

/** transformers' continue_final_message: cut right after the final message's content. */
function cutAtFinalMessage(rendered: string, messages: ChatMessage[]): string {
  const final = messages[messages.length - 1].content as string;
  const at = rendered.lastIndexOf(final.trim());
  if (at < 0)
    throw new ChatTemplateError(
      "runtime",
      "continueFinalMessage: the final message does not appear in the rendered text (the template changes it); it cannot be continued",
    );
  const kept = final.trimStart();
  if (rendered.slice(at, at + kept.length) === final) return rendered.slice(0, at + kept.length);
  return rendered.slice(0, at + final.trim().length);
}

function renderError(e: unknown): TesseraError {
  if (e instanceof TesseraError) return e;
  if (e instanceof TemplateRaise)
    return new ChatTemplateError("raised", `the chat template refused the conversation: ${e.message}`, e.message, "TemplateError", { cause: e });
  if (e instanceof Unsupported)
    return new ChatTemplateError(
      "unsupported",
      `the chat template uses ${e.construct}, which Tessera's Jinja engine does not support`,
      e.message,
      "TemplateRuntimeError",
      { cause: e },
    );
  if (e instanceof SandboxViolation)
    return new ChatTemplateError(
      "sandbox",
      `the chat template broke the sandbox rules transformers renders templates with: ${e.message}`,
      e.message,
      "SecurityError",
      { cause: e },
    );
  if (e instanceof UndefinedUse)
    return new ChatTemplateError(
      "undefined",
      `the chat template used an undefined value: ${e.message}; check the messages' fields`,
      e.message,
      "UndefinedError",
      { cause: e },
    );
  if (e instanceof PyError) return new ChatTemplateError("runtime", `the chat template failed (${e.kind}): ${e.message}`, e.message, e.kind, { cause: e });
  const message = e instanceof Error ? e.message : String(e);
  return new ChatTemplateError("runtime", `the chat template failed: ${message}`, message, undefined, { cause: e });
}

const cache = new Map<string, ChatTemplate>();
const CACHE_SIZE = 32;

/** The parsed template for `source`, from a small cache (models render the same one every turn). */
export function compileChatTemplate(source: string): ChatTemplate {
  let t = cache.get(source);
  if (t) {
    cache.delete(source);
    cache.set(source, t);
    return t;
  }
  t = new ChatTemplate(source);
  cache.set(source, t);
  if (cache.size > CACHE_SIZE) cache.delete(cache.keys().next().value as string);
  return t;
}

/**
 * Renders a chat template as transformers' apply_chat_template does (tokenize=False).
 * Throws ERR_CHAT_TEMPLATE when the template does not parse, uses something the engine
 * lacks (the message names it), or fails while rendering (its own raise_exception
 * included: `templateMessage` holds that text).
 */
export function renderChatTemplate(template: string, options: RenderChatTemplateOptions): string {
  return compileChatTemplate(template).render(options);
}
