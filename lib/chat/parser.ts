/**
 * Splits a model's generated turn into text, reasoning and tool calls, as it streams.
 *
 * Streaming-safe: text that could still turn out to be the start of a marker ("<tool_c",
 * "[TOOL_", "</thi") is held back until the next piece decides it, and a tool call is
 * reported only once it is complete, so no part of a call ever shows up in `text`. A
 * marker the model never completes, or a call whose JSON does not parse, is given back as
 * text at the end: nothing the model wrote is lost.
 */
import crypto from "node:crypto";
import { DEEPSEEK, type ToolCallFormat } from "./format.js";
import type { ToolCall } from "./types.js";

export interface ParsedOutput {
  text: string;
  reasoning: string;
  toolCalls: ToolCall[];
}

export interface OutputParserOptions {
  toolCalls: ToolCallFormat;
  /** Parse <think>…</think> (at the start of the turn) into reasoning. */
  reasoning: boolean;
  /** The prompt left a <think> block open: the turn starts inside it. */
  startInReasoning?: boolean;
  /** The turn continues a prefilled assistant message: it starts in the middle of text. */
  continuation?: boolean;
}

const THINK_OPEN = "<think>";
const THINK_CLOSE = "</think>";
const MARKERS: Record<ToolCallFormat, string[]> = {
  hermes: ["<tool_call>"],
  llama3: ["<|python_tag|>"],
  mistral: ["[TOOL_CALLS]"],
  deepseek: [DEEPSEEK.callsBegin, DEEPSEEK.callBegin],
  none: [],
};

const ID_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/** A tool call id: 9 letters and digits, the shape Mistral's templates insist on (and any other accepts). */
export function newToolCallId(): string {
  const bytes = crypto.randomBytes(9);
  let id = "";
  for (const b of bytes) id += ID_CHARS[b % ID_CHARS.length];
  return id;
}

/** The length of the longest end of `text` that begins one of `markers` (held back while streaming). */
function partialMarkerLength(text: string, markers: readonly string[]): number {
  let best = 0;
  for (const m of markers) {
    for (let n = Math.min(m.length - 1, text.length); n > best; n--) {
      if (text.endsWith(m.slice(0, n))) {
        best = n;
        break;
      }
    }
  }
  return best;
}

/**
 * Where the JSON value starting at `from` (after whitespace) ends: the index after it,
 * "incomplete" if the text ends first, "invalid" if no object or array starts there.
 */
export function scanJson(text: string, from = 0): number | "incomplete" | "invalid" {
  let i = from;
  while (i < text.length && /\s/.test(text[i])) i++;
  if (i >= text.length) return "incomplete";
  if (text[i] !== "{" && text[i] !== "[") return "invalid";
  const stack: string[] = [];
  let inString = false;
  for (; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === "\\") i++;
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') inString = true;
    else if (c === "{" || c === "[") stack.push(c);
    else if (c === "}" || c === "]") {
      if (stack.pop() !== (c === "}" ? "{" : "[")) return "invalid";
      if (stack.length === 0) return i + 1;
    }
  }
  return "incomplete";
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Tool arguments as an object: JSON text is parsed (some models double-encode them). */
function argumentsObject(v: unknown): Record<string, unknown> | undefined {
  if (v === undefined || v === null || v === "") return {};
  if (typeof v === "string") v = parseJson(v);
  return isObject(v) ? v : undefined;
}

/** {"name": ..., "arguments" | "parameters": {...}, "id"?: ...} → a call, or undefined. */
function callFromObject(v: unknown): ToolCall | undefined {
  if (!isObject(v)) return undefined;
  const fn = isObject(v.function) ? v.function : v;
  const name = fn.name;
  if (typeof name !== "string" || name.length === 0) return undefined;
  const args = argumentsObject(fn.arguments ?? fn.parameters);
  if (!args) return undefined;
  return { id: typeof v.id === "string" && v.id.length > 0 ? v.id : newToolCallId(), name, arguments: args };
}

/** Qwen3-Coder's `<function=name><parameter=k>value</parameter>…</function>`. */
function xmlFunctionCall(text: string): ToolCall | undefined {
  const fn = /^\s*<function=([^>\s]+)>([\s\S]*?)<\/function>\s*$/.exec(text);
  if (!fn) return undefined;
  const args: Record<string, unknown> = {};
  const param = /<parameter=([^>\s]+)>\n?([\s\S]*?)\n?<\/parameter>/g;
  for (let m = param.exec(fn[2]); m; m = param.exec(fn[2])) {
    const raw = m[2];
    const json = parseJson(raw);
    args[m[1]] = json === undefined ? raw : json;
  }
  return { id: newToolCallId(), name: fn[1], arguments: args };
}

type ToolParse = { calls: ToolCall[]; consumed: number } | { failed: number } | "incomplete";

export class ChatOutputParser {
  private buf = "";
  private state: "start" | "reasoning" | "content" | "tool";
  private marker = "";
  private dropLeadingSpace = false;
  private reasoningStarted = false;
  private reasoningSpace = "";
  private textSpace = "";
  private out: ParsedOutput = { text: "", reasoning: "", toolCalls: [] };
  private readonly markers: string[];

  constructor(private readonly options: OutputParserOptions) {
    this.markers = MARKERS[options.toolCalls];
    this.state = options.reasoning && options.startInReasoning ? "reasoning" : options.continuation ? "content" : "start";
  }

  /** Adds generated text; returns what it completes. */
  push(text: string): ParsedOutput {
    this.buf += text;
    this.run(false);
    return this.take();
  }

  /** The turn ended: returns everything held back. */
  flush(): ParsedOutput {
    this.run(true);
    return this.take();
  }

  private take(): ParsedOutput {
    const out = this.out;
    this.out = { text: "", reasoning: "", toolCalls: [] };
    return out;
  }

  /**
   * Text without the whitespace that only separates it from a tool call or a </think>
   * (templates put newlines there): leading whitespace after one is dropped, trailing
   * whitespace is held until what follows shows whether it belongs to the text (more
   * text, or the end of the turn) or separates it from a call ("marker").
   */
  private emitText(s: string, end?: "marker" | "final"): void {
    if (this.dropLeadingSpace) {
      s = s.replace(/^\s+/, "");
      if (s.length === 0) return;
      this.dropLeadingSpace = false;
    }
    s = this.textSpace + s;
    this.textSpace = "";
    if (end !== "final") {
      const tail = /\s+$/.exec(s);
      if (tail) {
        if (end === undefined) this.textSpace = tail[0];
        s = s.slice(0, tail.index);
      }
    }
    this.out.text += s;
  }

  /** Reasoning without the newlines around it ("<think>\n…\n</think>"). */
  private emitReasoning(s: string, end: boolean): void {
    if (!this.reasoningStarted) {
      s = s.replace(/^\s+/, "");
      if (s.length > 0) this.reasoningStarted = true;
    }
    s = this.reasoningSpace + s;
    const tail = /\s+$/.exec(s);
    this.reasoningSpace = tail ? tail[0] : "";
    if (tail) s = s.slice(0, tail.index);
    if (end) this.reasoningSpace = "";
    this.out.reasoning += s;
  }

  private run(final: boolean): void {
    for (;;) {
      switch (this.state) {
        case "start": {
          const t = this.buf.replace(/^\s+/, "");
          if (this.options.reasoning && t.startsWith(THINK_OPEN)) {
            this.buf = t.slice(THINK_OPEN.length);
            this.state = "reasoning";
            continue;
          }
          if (this.options.toolCalls === "llama3" && t.startsWith("{")) {
            this.buf = t;
            this.marker = "{";
            this.state = "tool";
            continue;
          }
          if (!final) {
            // Only whitespace, or what may still become "<think>" or a tool call: wait.
            const starts = [...(this.options.reasoning ? [THINK_OPEN] : []), ...this.markers];
            if (t.length === 0 || starts.some((m) => m.startsWith(t))) return;
          }
          this.state = "content";
          continue;
        }
        case "reasoning": {
          const end = this.buf.indexOf(THINK_CLOSE);
          if (end >= 0) {
            this.emitReasoning(this.buf.slice(0, end), true);
            this.buf = this.buf.slice(end + THINK_CLOSE.length);
            this.state = "content";
            this.dropLeadingSpace = true;
            continue;
          }
          if (final) {
            this.emitReasoning(this.buf, true);
            this.buf = "";
            return;
          }
          const keep = partialMarkerLength(this.buf, [THINK_CLOSE]);
          this.emitReasoning(this.buf.slice(0, this.buf.length - keep), false);
          this.buf = this.buf.slice(this.buf.length - keep);
          return;
        }
        case "content": {
          let at = -1;
          let marker = "";
          for (const m of this.markers) {
            const i = this.buf.indexOf(m);
            if (i >= 0 && (at < 0 || i < at)) {
              at = i;
              marker = m;
            }
          }
          if (at >= 0) {
            this.emitText(this.buf.slice(0, at), "marker");
            this.marker = marker;
            this.buf = this.buf.slice(at + marker.length);
            this.state = "tool";
            continue;
          }
          if (final) {
            this.emitText(this.buf, "final");
            this.buf = "";
            return;
          }
          const keep = partialMarkerLength(this.buf, this.markers);
          this.emitText(this.buf.slice(0, this.buf.length - keep));
          this.buf = this.buf.slice(this.buf.length - keep);
          return;
        }
        case "tool": {
          const r = this.parseTool(final);
          if (r === "incomplete") {
            if (!final) return;
            // The turn ended inside a call that never completed: give the text back.
            this.emitText(this.marker === "{" ? this.buf : this.marker + this.buf, "final");
            this.buf = "";
            return;
          }
          if ("failed" in r) {
            this.emitText((this.marker === "{" ? "" : this.marker) + this.buf.slice(0, r.failed));
            this.buf = this.buf.slice(r.failed);
            this.state = "content";
            continue;
          }
          this.out.toolCalls.push(...r.calls);
          this.buf = this.buf.slice(r.consumed);
          this.dropLeadingSpace = true;
          // Llama writes further calls as more JSON objects, optionally after ";".
          if (this.marker === "{") {
            this.buf = this.buf.replace(/^\s*;/, "");
            this.state = "start";
          } else this.state = "content";
          continue;
        }
      }
    }
  }

  private parseTool(final: boolean): ToolParse {
    const buf = this.buf;
    switch (this.marker) {
      case "<tool_call>": {
        const end = buf.indexOf("</tool_call>");
        if (end < 0 && !final) return "incomplete";
        const inner = end < 0 ? buf : buf.slice(0, end);
        const consumed = end < 0 ? buf.length : end + "</tool_call>".length;
        const call = callFromObject(parseJson(inner.trim())) ?? xmlFunctionCall(inner);
        return call ? { calls: [call], consumed } : end < 0 ? "incomplete" : { failed: consumed };
      }
      case "<|python_tag|>": {
        // The rest of the turn is the call (it ends with <|eom_id|> or <|eot_id|>).
        if (!final) return "incomplete";
        const calls = llamaCalls(buf);
        return calls ? { calls, consumed: buf.length } : "incomplete";
      }
      case "{": {
        const end = scanJson(buf);
        if (end === "incomplete") return final ? { failed: buf.length } : "incomplete";
        if (end === "invalid") return { failed: buf.length };
        const call = callFromObject(parseJson(buf.slice(0, end)));
        return call ? { calls: [call], consumed: end } : { failed: end };
      }
      case "[TOOL_CALLS]":
        return mistralCalls(buf, final);
      case DEEPSEEK.callsBegin:
      case DEEPSEEK.callBegin: {
        const close = this.marker === DEEPSEEK.callsBegin ? DEEPSEEK.callsEnd : DEEPSEEK.callEnd;
        const end = buf.indexOf(close);
        if (end < 0 && !final) return "incomplete";
        const block = (this.marker === DEEPSEEK.callBegin ? DEEPSEEK.callBegin : "") + (end < 0 ? buf : buf.slice(0, end + (this.marker === DEEPSEEK.callBegin ? close.length : 0)));
        const calls = deepseekCalls(block);
        const consumed = end < 0 ? buf.length : end + close.length;
        return calls ? { calls, consumed } : end < 0 ? "incomplete" : { failed: consumed };
      }
      default:
        return { failed: 0 };
    }
  }
}

/** After <|python_tag|>: JSON calls (";"-separated), `name.call(k="v")`, or Python code for the ipython tool. */
function llamaCalls(text: string): ToolCall[] | undefined {
  const calls: ToolCall[] = [];
  let rest = text.trim();
  while (rest.startsWith("{")) {
    const end = scanJson(rest);
    if (typeof end !== "number") break;
    const call = callFromObject(parseJson(rest.slice(0, end)));
    if (!call) break;
    calls.push(call);
    rest = rest.slice(end).replace(/^\s*;?\s*/, "");
  }
  if (calls.length > 0 && rest.length === 0) return calls;
  if (calls.length > 0) return undefined;
  const builtin = /^(\w+)\.call\(([\s\S]*)\)\s*$/.exec(rest);
  if (builtin) {
    const args: Record<string, unknown> = {};
    const kw = /(\w+)\s*=\s*("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|[^,]+)/g;
    for (let m = kw.exec(builtin[2]); m; m = kw.exec(builtin[2])) {
      const v = m[2].trim();
      args[m[1]] = /^["']/.test(v) ? v.slice(1, -1) : (parseJson(v) ?? v);
    }
    return [{ id: newToolCallId(), name: builtin[1], arguments: args }];
  }
  if (rest.length === 0) return undefined;
  return [{ id: newToolCallId(), name: "python", arguments: { code: rest } }];
}

/** After [TOOL_CALLS]: a JSON array of calls (Nemo), or name[CALL_ID]id[ARGS]{…} / name[ARGS]{…}. */
function mistralCalls(buf: string, final: boolean): ToolParse {
  const lead = buf.length - buf.replace(/^\s+/, "").length;
  if (buf.length === lead) return final ? { failed: buf.length } : "incomplete";
  if (buf[lead] === "[") {
    const end = scanJson(buf, lead);
    if (end === "incomplete") return final ? { failed: buf.length } : "incomplete";
    if (end === "invalid") return { failed: buf.length };
    const list = parseJson(buf.slice(lead, end));
    const calls = Array.isArray(list) ? list.map(callFromObject) : [];
    if (calls.length === 0 || calls.some((c) => c === undefined)) return { failed: end };
    return { calls: calls as ToolCall[], consumed: end };
  }
  const args = buf.indexOf("[ARGS]", lead);
  if (args < 0) {
    // name[CALL_ID]id[ARGS]: neither part holds "[" or a newline, so once one shows up
    // that does not begin those tags, this is no call.
    const m = /^([^[\n]*)(\[CALL_ID\][^[\n]*)?([\s\S]*)$/.exec(buf.slice(lead))!;
    const tail = m[3];
    const tagAhead = "[ARGS]".startsWith(tail) || (m[2] === undefined && "[CALL_ID]".startsWith(tail));
    if (tail.length > 0 && !tagAhead) return { failed: buf.length };
    return final ? { failed: buf.length } : "incomplete";
  }
  const head = buf.slice(lead, args);
  const [name, id] = head.split("[CALL_ID]");
  const end = scanJson(buf, args + "[ARGS]".length);
  if (end === "incomplete") return final ? { failed: buf.length } : "incomplete";
  if (end === "invalid" || !/^[\w.-]+$/.test(name.trim())) return { failed: typeof end === "number" ? end : buf.length };
  const parsed = argumentsObject(parseJson(buf.slice(args + "[ARGS]".length, end).trim()));
  if (!parsed) return { failed: end };
  return { calls: [{ id: id?.trim() || newToolCallId(), name: name.trim(), arguments: parsed }], consumed: end };
}

/** DeepSeek's calls: `function<｜tool▁sep｜>name\n```json\n{…}\n```` (V3/R1) or `name<｜tool▁sep｜>{…}` (V3.1). */
function deepseekCalls(block: string): ToolCall[] | undefined {
  const calls: ToolCall[] = [];
  for (const part of block.split(DEEPSEEK.callBegin).slice(1)) {
    const body = part.split(DEEPSEEK.callEnd)[0];
    const sep = body.indexOf(DEEPSEEK.sep);
    if (sep < 0) return undefined;
    const left = body.slice(0, sep).trim();
    const right = body.slice(sep + DEEPSEEK.sep.length);
    let name: string;
    let argsText: string;
    if (left === "function") {
      const m = /^([^\n]+)\n```(?:json)?\s*\n?([\s\S]*?)\n?```\s*$/.exec(right);
      if (m) {
        name = m[1].trim();
        argsText = m[2];
      } else {
        const nl = right.indexOf("\n");
        name = (nl < 0 ? right : right.slice(0, nl)).trim();
        argsText = nl < 0 ? "" : right.slice(nl + 1);
      }
    } else {
      name = left;
      argsText = right;
    }
    const args = argumentsObject(argsText.trim() === "" ? undefined : parseJson(argsText.trim()));
    if (!name || !args) return undefined;
    calls.push({ id: newToolCallId(), name, arguments: args });
  }
  return calls.length > 0 ? calls : undefined;
}

/** Parses a whole generated turn. */
export function parseChatOutput(text: string, options: OutputParserOptions): ParsedOutput {
  const parser = new ChatOutputParser(options);
  const a = parser.push(text);
  const b = parser.flush();
  return { text: a.text + b.text, reasoning: a.reasoning + b.reasoning, toolCalls: [...a.toolCalls, ...b.toolCalls] };
}
