/**
 * Where chat output is constrained by a grammar: the whole reply held to a JSON schema
 * (jsonSchema), and tool calls held to their family's syntax with `name` one of the
 * declared tools and `arguments` valid against that tool's parameters schema.
 *
 * Tool calls use a lazy grammar (lib/grammar/lazy.ts): the model writes freely until it
 * spells its family's call marker (`<tool_call>`, `[TOOL_CALLS]`, `<|python_tag|>`,
 * `<｜tool▁calls▁begin｜>`, or for Llama's JSON calls `{"name"` at the start of the answer),
 * and from the marker on the call must parse. The grammar is the union over the tools, each
 * branch the tool's name followed by the grammar of its schema (lib/grammar/json-schema.ts),
 * so a name picks the schema its arguments are held to.
 *
 * toolChoice: "auto" waits for the marker; "required" starts constrained (the answer is
 * calls, one or more, then the end of the turn); { name } starts constrained on one call of
 * that tool, and the generation ends after it.
 */
import { TesseraError } from "../errors.js";
import type { GenerateOptions } from "../generate/generate.js";
import { alt, charClass, EMPTY, lit, opt, ref, rep, seq, star, toGbnf, type Expr } from "../grammar/ir.js";
import { jsonSchemaGrammar, SHARED_RULES } from "../grammar/json-schema.js";
import type { LazyGrammarOptions, LazyTrigger } from "../grammar/lazy.js";
import { DEEPSEEK, type ToolCallFormat } from "./format.js";
import type { JSONSchema, ToolDefinition } from "./types.js";

/**
 * Whether and which tools the model may call (OpenAI's tool_choice):
 * - "auto" (default): the model decides; a call it starts is held to the tools' schemas;
 * - "none": the tools are not offered (not rendered into the prompt, no calls expected);
 * - "required": the answer is one or more tool calls (constrained from the first token);
 * - { name }: the answer is one call of that tool.
 */
export type ToolChoice = "auto" | "none" | "required" | { name: string };

/** Checks a toolChoice value (and that a named tool is declared, when `tools` are given). */
export function checkToolChoice(choice: unknown, tools?: readonly ToolDefinition[]): asserts choice is ToolChoice | undefined {
  if (choice === undefined || choice === "auto" || choice === "none" || choice === "required") {
    if (choice === "required" && tools !== undefined && tools.length === 0)
      throw new TesseraError("ERR_INVALID_ARGUMENT", 'toolChoice "required" needs tools: pass tools, or leave toolChoice out');
    return;
  }
  if (choice === null || typeof choice !== "object" || Array.isArray(choice) || typeof (choice as { name?: unknown }).name !== "string" || Object.keys(choice).length !== 1)
    throw new TesseraError("ERR_INVALID_ARGUMENT", `toolChoice must be "auto", "none", "required" or { name: "<tool name>" }, got ${JSON.stringify(choice) ?? String(choice)}`);
  const name = (choice as { name: string }).name;
  if (tools !== undefined && !tools.some((t) => t.function.name === name))
    throw new TesseraError(
      "ERR_INVALID_ARGUMENT",
      `toolChoice names the tool "${name}", but the tools are: ${tools.map((t) => t.function.name).join(", ") || "none"}`,
    );
}

export interface ToolCallConstraintOptions {
  /** Default "auto"; "none" gives no constraint. */
  choice?: ToolChoice;
  /** The chat template's text: which variant of the family's syntax it writes. */
  template?: string;
  /** End-of-turn texts the model may write after required calls (where the end is not one token). */
  stop?: readonly string[];
  /**
   * The template is given built-in tools (Llama's `builtin_tools`): their calls follow
   * <|python_tag|> as `name.call(...)`, so that marker does not start a constrained call.
   */
  builtinTools?: boolean;
}

// ---------------------------------------------------------------- grammar pieces

type Rules = Map<string, Expr>;

const WS = "tc-ws";
const SP = "tc-sp";

/** The tool's parameters as a schema for an object (a call's arguments are always one). */
function argumentsSchema(p: JSONSchema | undefined): JSONSchema {
  if (p === undefined) return { type: "object" };
  if (p.type === undefined && p.anyOf === undefined && p.oneOf === undefined && p.$ref === undefined && p.const === undefined && p.enum === undefined)
    return { ...p, type: "object" };
  return p;
}

function renameRefs(e: Expr, rename: (n: string) => string): Expr {
  switch (e.type) {
    case "ref":
      return ref(rename(e.name));
    case "seq":
    case "alt":
      return { type: e.type, items: e.items.map((x) => renameRefs(x, rename)) };
    case "rep":
      return { ...e, item: renameRefs(e.item, rename) };
    default:
      return e;
  }
}

/** Adds the grammar of tool `i`'s arguments to `rules`; returns the reference to it. */
function addArguments(rules: Rules, i: number, tool: ToolDefinition): Expr {
  let g;
  try {
    g = jsonSchemaGrammar(argumentsSchema(tool.function.parameters));
  } catch (e) {
    if (e instanceof TesseraError) throw new TesseraError(e.code, `tool "${tool.function.name}": ${e.message}`);
    throw e;
  }
  const rename = (n: string) => (SHARED_RULES.has(n) ? n : `tool${i}-${n}`);
  for (const [name, body] of g.rules) rules.set(rename(name), renameRefs(body, rename));
  return ref(rename(g.root));
}

interface Syntax {
  /** One call of tool i (its name, then its arguments). */
  call(name: string, args: Expr): Expr;
  /** A block of calls, and whether it holds several (a list) or one. */
  block(calls: Expr, one: boolean): Expr;
  /** Between blocks of required calls. */
  between: Expr;
  /** Only one block per turn (the parser reads no more after it). */
  single: boolean;
  triggers: LazyTrigger[];
}

/** `{"name": "x", "<key>": {...}}` (with `extra` before the closing brace). */
function jsonCall(name: string, args: Expr, key: string, extra: Expr = EMPTY): Expr {
  const w = ref(WS);
  return seq(lit("{"), w, lit('"name"'), w, lit(":"), w, lit(JSON.stringify(name)), w, lit(","), w, lit(`"${key}"`), w, lit(":"), w, args, extra, w, lit("}"));
}

const ID = rep(charClass([[0x30, 0x39], [0x41, 0x5a], [0x61, 0x7a]]), 9, 9);

function listOf(item: Expr, one: boolean, sep: Expr): Expr {
  return one ? item : seq(item, star(seq(sep, item)));
}

function syntaxOf(format: ToolCallFormat, template: string, builtinTools = false): Syntax {
  const sp = ref(SP);
  switch (format) {
    case "llama3":
      return {
        call: (name, args) => jsonCall(name, args, "parameters"),
        block: (calls) => seq(opt(seq(lit("<|python_tag|>"), sp)), calls),
        between: EMPTY,
        single: true,
        triggers: [...(builtinTools ? [] : ["<|python_tag|>"]), { text: '{"name"', atStart: true }, { text: '{ "name"', atStart: true }],
      };
    case "mistral":
      if (template.includes("[ARGS]"))
        // Small 3.2, Devstral: [TOOL_CALLS]name[CALL_ID]id[ARGS]{...}, one marker per call.
        return {
          call: (name, args) => seq(lit("[TOOL_CALLS]"), lit(name), template.includes("[CALL_ID]") ? opt(seq(lit("[CALL_ID]"), ID)) : EMPTY, lit("[ARGS]"), args),
          block: (calls) => calls,
          between: EMPTY,
          single: false,
          triggers: ["[TOOL_CALLS]"],
        };
      // Nemo: [TOOL_CALLS][{"name": ..., "arguments": {...}, "id": "..."}, ...]
      return {
        call: (name, args) => jsonCall(name, args, "arguments", opt(seq(ref(WS), lit(","), ref(WS), lit('"id"'), ref(WS), lit(":"), ref(WS), lit('"'), ID, lit('"')))),
        block: (calls, one) => seq(lit("[TOOL_CALLS]"), sp, lit("["), ref(WS), listOf(calls, one, seq(ref(WS), lit(","), ref(WS))), ref(WS), lit("]")),
        between: EMPTY,
        single: true,
        triggers: ["[TOOL_CALLS]"],
      };
    case "deepseek": {
      // V3 / R1: function<｜tool▁sep｜>name\n```json\n{...}\n```; V3.1: name<｜tool▁sep｜>{...}
      const fenced = template.includes("```json");
      return {
        call: (name, args) =>
          fenced
            ? seq(lit(DEEPSEEK.callBegin + "function" + DEEPSEEK.sep + name + "\n```json\n"), args, lit("\n```" + DEEPSEEK.callEnd))
            : seq(lit(DEEPSEEK.callBegin + name + DEEPSEEK.sep), args, lit(DEEPSEEK.callEnd)),
        block: (calls, one) => seq(lit(DEEPSEEK.callsBegin), listOf(calls, one, opt(lit("\n"))), lit(DEEPSEEK.callsEnd)),
        between: EMPTY,
        single: true,
        triggers: [DEEPSEEK.callsBegin],
      };
    }
    case "hermes":
    case "none":
      return {
        call: (name, args) => seq(lit("<tool_call>"), sp, jsonCall(name, args, "arguments"), sp, lit("</tool_call>")),
        block: (calls) => calls,
        between: sp,
        single: false,
        triggers: ["<tool_call>"],
      };
  }
}

/** The grammar of the calls `choice` asks for, as GBNF, with its triggers. */
export function toolCallGrammar(tools: readonly ToolDefinition[], format: ToolCallFormat, options: ToolCallConstraintOptions = {}): LazyGrammarOptions {
  const choice = options.choice ?? "auto";
  checkToolChoice(choice, tools);
  if (choice === "none") throw new TesseraError("ERR_INVALID_ARGUMENT", 'toolChoice "none" has no grammar');
  const syntax = syntaxOf(format, options.template ?? "", options.builtinTools);
  const rules: Rules = new Map();
  rules.set("root", EMPTY); // first in the printed grammar
  rules.set(WS, alt(EMPTY, lit(" "), seq(lit("\n"), rep(charClass([[0x20, 0x20], [0x09, 0x09]]), 0, 20))));
  rules.set(SP, rep(charClass([[0x20, 0x20], [0x0a, 0x0a], [0x09, 0x09]]), 0, 3));
  const named = typeof choice === "object" ? choice.name : undefined;
  const calls: Expr[] = [];
  tools.forEach((t, i) => {
    if (named !== undefined && t.function.name !== named) return;
    rules.set(`call${i}`, syntax.call(t.function.name, addArguments(rules, i, t)));
    calls.push(ref(`call${i}`));
  });
  rules.set("call", alt(...calls));
  const one = named !== undefined;
  const block = syntax.block(ref("call"), one);
  let root: Expr;
  if (choice === "required") {
    const stops = (options.stop ?? []).filter((s) => s.length > 0);
    const end = stops.length ? opt(seq(ref(SP), alt(...stops.map(lit)))) : EMPTY;
    root = seq(syntax.single ? block : seq(block, star(seq(syntax.between, block))), end);
  } else root = block;
  rules.set("root", root);
  return {
    grammar: toGbnf({ rules, root: "root" }),
    triggers: syntax.triggers,
    active: choice !== "auto",
    // After forced calls the turn is over; Llama's parser reads the rest of the turn as the
    // call, so nothing may follow one there either.
    then: choice !== "auto" || format === "llama3" ? "end" : "free",
  };
}

const grammarCache = new Map<string, LazyGrammarOptions>();

/**
 * Generation options that hold tool calls to the tools' schemas (a lazy grammar that starts
 * at the format's tool-call marker, or at the first token for "required" and a named tool),
 * or undefined where no constraint applies (toolChoice "none", no tools).
 */
export function toolCallConstraint(tools: readonly ToolDefinition[], format: ToolCallFormat, options: ToolCallConstraintOptions = {}): Partial<GenerateOptions> | undefined {
  if (tools.length === 0 || options.choice === "none") return undefined;
  // Qwen3-Coder writes `<function=name><parameter=k>v</parameter>` inside <tool_call>, values
  // raw text: held to JSON there the model would be pushed off its own format, so "auto"
  // leaves its calls free. Forced calls take the JSON form, which its parser reads too.
  if (format === "hermes" && (options.choice ?? "auto") === "auto" && options.template?.includes("<function=")) return undefined;
  const key = JSON.stringify([format, options.choice ?? "auto", options.stop ?? [], syntaxOf(format, options.template ?? "", options.builtinTools).triggers, options.template?.includes("[ARGS]"), options.template?.includes("[CALL_ID]"), options.template?.includes("```json"), tools.map((t) => [t.function.name, t.function.parameters])]);
  let lazy = grammarCache.get(key);
  if (lazy) {
    grammarCache.delete(key);
  } else lazy = toolCallGrammar(tools, format, options);
  grammarCache.set(key, lazy);
  if (grammarCache.size > 64) grammarCache.delete(grammarCache.keys().next().value!);
  return { lazyGrammar: lazy };
}

/**
 * Generation options that make the whole reply JSON matching `schema` (the generation
 * loop's jsonSchema constraint: lib/grammar), or undefined where output cannot be
 * constrained (the chat API and CLI then refuse `jsonSchema` with ERR_UNSUPPORTED).
 */
export function jsonSchemaConstraint(schema: JSONSchema): Partial<GenerateOptions> | undefined {
  return { jsonSchema: schema };
}
