/**
 * Tool-call and reasoning parsing. Round trips: each family's own template renders an
 * assistant turn with tool calls, and the parser must read back the same calls (names,
 * arguments, and ids where the template writes them) and the same text. Streaming: the
 * same turns fed a character at a time, and as real tokens of the family's vocabulary,
 * give exactly what the whole text gives, so no part of a call ever reaches `text`.
 */
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { detectChatFormat, promptOpensThinking, type ChatFormat } from "../../lib/chat/format.js";
import { ChatOutputParser, parseChatOutput, type OutputParserOptions, type ParsedOutput } from "../../lib/chat/parser.js";
import { renderChatTemplate } from "../../lib/chat/template.js";
import type { ChatMessage, MessageToolCall, ToolDefinition } from "../../lib/chat/types.js";
import type { Tokenizer } from "../../lib/tokenizer/index.js";
import { hasShared, sharedDir } from "../helpers/paths.js";
import { ggufMetadataVocab, hfVocab } from "../tokenizer/vocabs.js";

const templatesDir = path.join(sharedDir, "chat-templates");
const template = (name: string) => fs.readFileSync(path.join(templatesDir, `${name}.jinja`), "utf8");

const tools: ToolDefinition[] = [
  {
    type: "function",
    function: {
      name: "get_weather",
      description: "Weather for a place",
      parameters: {
        type: "object",
        properties: { location: { type: "string" }, options: { type: "object", properties: { days: { type: "integer" } } } },
        required: ["location"],
      },
    },
  },
  { type: "function", function: { name: "search_docs", description: "Search the docs", parameters: { type: "object", properties: { query: { type: "string" }, tags: { type: "array" } } } } },
];

const CALLS = [
  { id: "call1234A", name: "get_weather", arguments: { location: "Zürich — 東京", options: { days: 3, hourly: true } } },
  { id: "call5678B", name: "search_docs", arguments: { query: 'say "hi" {ok}', tags: ["a", "b"], limit: 2.5 } },
];

interface Family {
  template: string;
  /** Calls the template renders (Llama's only takes one). */
  calls: number;
  /** Content the assistant message carries, and whether the template renders it. */
  content: string | null;
  textRendered: boolean;
  /** The template wants arguments as a JSON string. */
  stringArguments?: boolean;
  /** The template writes the call ids, so they must come back. */
  ids?: boolean;
  vocab?: () => Tokenizer;
}

const qwen = ggufMetadataVocab("qwen2");
const llama = ggufMetadataVocab("llama3");
const mistral = hfVocab("mistral-v0.3");

const FAMILIES: Record<string, Family> = {
  "NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use": { template: "", calls: 2, content: "", textRendered: false, vocab: llama },
  "NousResearch-Hermes-3-Llama-3.1-8B-tool_use": { template: "", calls: 2, content: "", textRendered: false, vocab: llama },
  "Qwen-Qwen2.5-7B-Instruct": { template: "", calls: 2, content: "Let me check.", textRendered: true, vocab: qwen },
  "Qwen-Qwen3-0.6B": { template: "", calls: 2, content: "Let me check.", textRendered: true, vocab: qwen },
  "Qwen-QwQ-32B": { template: "", calls: 2, content: "Let me check.", textRendered: true, vocab: qwen },
  "Qwen3-Coder": { template: "", calls: 2, content: "Let me check.", textRendered: true, vocab: qwen },
  "meta-llama-Llama-3.1-8B-Instruct": { template: "", calls: 1, content: "", textRendered: false, vocab: llama },
  "meta-llama-Llama-3.2-3B-Instruct": { template: "", calls: 1, content: "", textRendered: false, vocab: llama },
  "meta-llama-Llama-3.3-70B-Instruct": { template: "", calls: 1, content: "", textRendered: false, vocab: llama },
  "mistralai-Mistral-Nemo-Instruct-2407": { template: "", calls: 2, content: "", textRendered: false, ids: true, vocab: mistral },
  "Mistral-Small-3.2-24B-Instruct-2506": { template: "", calls: 2, content: "", textRendered: false, ids: true, vocab: mistral },
  "unsloth-mistral-Devstral-Small-2507": { template: "", calls: 2, content: "Let me check.", textRendered: true, vocab: mistral },
  "deepseek-ai-DeepSeek-R1-Distill-Llama-8B": { template: "", calls: 2, content: null, textRendered: false, stringArguments: true },
  "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B": { template: "", calls: 2, content: null, textRendered: false, stringArguments: true },
  "deepseek-ai-DeepSeek-V3.1": { template: "", calls: 2, content: "Let me check.", textRendered: true },
  // llama-cpp-deepseek-r1.jinja cannot render tools in jinja2 (tojson of a generator).
};

/** The end-of-turn texts: the generation loop stops on these tokens, so the parser never sees them. */
const TURN_ENDS = ["<|im_end|>", "<|eot_id|>", "<|eom_id|>", "</s>", "<｜end▁of▁sentence｜>"];

function messageCalls(family: Family): MessageToolCall[] {
  return CALLS.slice(0, family.calls).map((c) => ({
    id: c.id,
    type: "function",
    function: { name: c.name, arguments: family.stringArguments ? JSON.stringify(c.arguments) : c.arguments },
  }));
}

/** The assistant turn as the template writes it, the prompt before it, and the parser options. */
function renderTurn(name: string, family: Family): { turn: string; options: OutputParserOptions; format: ChatFormat } {
  const source = template(name);
  const history: ChatMessage[] = [{ role: "user", content: "Weather in Zürich, and search the docs?" }];
  const assistant: ChatMessage = { role: "assistant", content: family.content, tool_calls: messageCalls(family) };
  const common = { tools, bosToken: "<s>", eosToken: "</s>" };
  const prompt = renderChatTemplate(source, { ...common, messages: history, addGenerationPrompt: true });
  const full = renderChatTemplate(source, { ...common, messages: [...history, assistant] });
  let at = 0;
  while (at < prompt.length && prompt[at] === full[at]) at++;
  // Back to a tag boundary: "<｜Assistant｜><think>" and "<｜Assistant｜><｜tool▁calls▁begin｜>" share a "<".
  while (at > 0 && !/[>\n\]]/.test(full[at - 1])) at--;
  let turn = full.slice(at);
  const end = Math.min(...TURN_ENDS.map((e) => turn.indexOf(e)).filter((i) => i >= 0), turn.length);
  turn = turn.slice(0, end);
  const format = detectChatFormat(source);
  return { turn, format, options: { toolCalls: format.toolCalls, reasoning: format.reasoning, startInReasoning: promptOpensThinking(full.slice(0, at)) } };
}

function feed(parser: ChatOutputParser, pieces: string[]): ParsedOutput {
  const all: ParsedOutput = { text: "", reasoning: "", toolCalls: [] };
  for (const p of [...pieces.map((x) => parser.push(x)), parser.flush()]) {
    all.text += p.text;
    all.reasoning += p.reasoning;
    all.toolCalls.push(...p.toolCalls);
  }
  return all;
}

function tokenPieces(tokenizer: Tokenizer, text: string): string[] {
  const ids = tokenizer.encode(text, { addSpecial: false, parseSpecial: true });
  const decoder = tokenizer.createStreamDecoder({ skipSpecial: false });
  return [...ids.map((id) => decoder.push(id)), decoder.flush()];
}

describe.skipIf(!hasShared)("each family's parser reads back what its template renders", () => {
  for (const [name, family] of Object.entries(FAMILIES)) {
    it(name, () => {
      const { turn, options, format } = renderTurn(name, family);
      expect(format.toolCalls).not.toBe("none");
      const whole = parseChatOutput(turn, options);
      expect(whole.toolCalls.map((c) => ({ name: c.name, arguments: c.arguments })), turn).toEqual(
        CALLS.slice(0, family.calls).map((c) => ({ name: c.name, arguments: c.arguments })),
      );
      if (family.ids) expect(whole.toolCalls.map((c) => c.id)).toEqual(CALLS.slice(0, family.calls).map((c) => c.id));
      for (const c of whole.toolCalls) expect(c.id).toMatch(/^[A-Za-z0-9]{9}$/);
      expect(whole.text).toBe(family.textRendered ? family.content : "");
      expect(whole.reasoning).toBe("");

      const strip = (p: ParsedOutput) => ({ text: p.text, reasoning: p.reasoning, calls: p.toolCalls.map((c) => [c.name, c.arguments]) });
      const byChar = feed(new ChatOutputParser(options), [...turn]);
      expect(strip(byChar)).toEqual(strip(whole));
      if (family.vocab) {
        const byToken = feed(new ChatOutputParser(options), tokenPieces(family.vocab(), turn));
        expect(strip(byToken)).toEqual(strip(whole));
      }
    });
  }
});

describe.skipIf(!hasShared)("Llama 3.1 built-in tools: <|python_tag|>name.call(...)", () => {
  for (const name of ["meta-llama-Llama-3.1-8B-Instruct", "meta-llama-Llama-3.3-70B-Instruct"]) {
    it(`${name} renders a built-in call that the parser reads back`, () => {
      const source = template(name);
      const call: MessageToolCall = { id: "call1234A", type: "function", function: { name: "brave_search", arguments: { query: "tides in Oslo" } } };
      const full = renderChatTemplate(source, {
        messages: [
          { role: "user", content: "When is high tide in Oslo?" },
          { role: "assistant", content: "", tool_calls: [call] },
        ],
        tools,
        builtin_tools: ["brave_search", "wolfram_alpha"],
        bosToken: "<|begin_of_text|>",
      });
      const header = "<|start_header_id|>assistant<|end_header_id|>\n\n";
      const turn = full.slice(full.lastIndexOf(header) + header.length, full.lastIndexOf("<|eom_id|>"));
      expect(turn.startsWith("<|python_tag|>brave_search.call(")).toBe(true);
      const options: OutputParserOptions = { toolCalls: detectChatFormat(source).toolCalls, reasoning: false };
      const whole = parseChatOutput(turn, options);
      expect(whole.toolCalls.map((c) => [c.name, c.arguments])).toEqual([["brave_search", { query: "tides in Oslo" }]]);
      expect(whole.text).toBe("");
      const byToken = feed(new ChatOutputParser(options), tokenPieces(llama(), turn));
      expect(byToken.toolCalls.map((c) => [c.name, c.arguments])).toEqual([["brave_search", { query: "tides in Oslo" }]]);
      expect(byToken.text).toBe("");
    });
  }
});

describe("streaming never shows part of a call", () => {
  const hermes: OutputParserOptions = { toolCalls: "hermes", reasoning: true };

  it("holds back a marker's start until it is decided", () => {
    const p = new ChatOutputParser(hermes);
    // The space before a call only separates it: held, then dropped.
    expect(p.push("Sure <tool_c").text).toBe("Sure");
    expect(p.push("all>\n{\"name\": \"f\", \"arguments\": {}}").text).toBe("");
    const end = p.push("\n</tool_call>");
    expect(end.toolCalls.map((c) => c.name)).toEqual(["f"]);
    expect(p.push(" done").text).toBe("done");
    expect(p.flush().text).toBe("");
    // A "<" that is not a marker is released as soon as the next character shows it.
    const q = new ChatOutputParser(hermes);
    expect(q.push("a <").text).toBe("a");
    expect(q.push("b").text).toBe(" <b");
  });

  it("gives back a call the model never finished, or whose JSON is broken", () => {
    expect(parseChatOutput('x<tool_call>{"name": "f", "argu', hermes)).toMatchObject({ text: 'x<tool_call>{"name": "f", "argu', toolCalls: [] });
    expect(parseChatOutput("<tool_call>not json</tool_call>ok", hermes)).toMatchObject({ text: "<tool_call>not json</tool_call>ok", toolCalls: [] });
    // Complete JSON without the closing tag (the model stopped right after it) is a call.
    expect(parseChatOutput('<tool_call>{"name": "f", "arguments": {"a": 1}}', hermes).toolCalls).toMatchObject([{ name: "f", arguments: { a: 1 } }]);
  });

  it("llama: a JSON answer that is not a call is text", () => {
    const llama3: OutputParserOptions = { toolCalls: "llama3", reasoning: false };
    expect(parseChatOutput('{"answer": 42}', llama3)).toMatchObject({ text: '{"answer": 42}', toolCalls: [] });
    const two = parseChatOutput('{"name": "a", "parameters": {}}; {"name": "b", "parameters": {"x": [1]}}', llama3);
    expect(two.toolCalls.map((c) => c.name)).toEqual(["a", "b"]);
    expect(two.text).toBe("");
    const tagged = parseChatOutput('<|python_tag|>{"name": "get_weather", "parameters": {"location": "Oslo"}}', llama3);
    expect(tagged.toolCalls).toMatchObject([{ name: "get_weather", arguments: { location: "Oslo" } }]);
    expect(parseChatOutput('<|python_tag|>brave_search.call(query="tides")', llama3).toolCalls).toMatchObject([
      { name: "brave_search", arguments: { query: "tides" } },
    ]);
    expect(parseChatOutput("<|python_tag|>print(1 + 1)", llama3).toolCalls).toMatchObject([{ name: "python", arguments: { code: "print(1 + 1)" } }]);
  });

  it("mistral: text that only looks like a call stays text", () => {
    const m: OutputParserOptions = { toolCalls: "mistral", reasoning: false };
    expect(parseChatOutput("[TOOL_CALLS]not a call\nreally", m)).toMatchObject({ text: "[TOOL_CALLS]not a call\nreally", toolCalls: [] });
    expect(parseChatOutput('[TOOL_CALLS]f[ARGS]{"a": 1}[TOOL_CALLS]g[ARGS]{}', m).toolCalls.map((c) => c.name)).toEqual(["f", "g"]);
  });
});

describe("reasoning", () => {
  it("splits <think> from the answer, with or without the opening tag in the output", () => {
    const r = parseChatOutput("<think>\nStep one.\nStep two.\n</think>\n\nThe answer.", { toolCalls: "hermes", reasoning: true });
    expect(r).toMatchObject({ reasoning: "Step one.\nStep two.", text: "The answer." });
    // R1 and QwQ prompts end in "<think>\n": the turn starts inside it.
    const open = parseChatOutput("Hmm.\n</think>\nYes.", { toolCalls: "deepseek", reasoning: true, startInReasoning: true });
    expect(open).toMatchObject({ reasoning: "Hmm.", text: "Yes." });
    // Without think support in the template, tags are just text.
    expect(parseChatOutput("<think>x</think>y", { toolCalls: "none", reasoning: false }).text).toBe("<think>x</think>y");
    // Thinking, then a call.
    const both = parseChatOutput('<think>need weather</think>\n<tool_call>\n{"name": "get_weather", "arguments": {"location": "Rome"}}\n</tool_call>', {
      toolCalls: "hermes",
      reasoning: true,
    });
    expect(both).toMatchObject({ reasoning: "need weather", text: "", toolCalls: [{ name: "get_weather" }] });
  });

  it("streams reasoning without its surrounding newlines, a character at a time", () => {
    const text = "<think>\nA\n\nB\n</think>\n\nC <tool_call>{\"name\": \"f\", \"arguments\": {}}</tool_call>";
    const out = feed(new ChatOutputParser({ toolCalls: "hermes", reasoning: true }), [...text]);
    expect(out).toMatchObject({ reasoning: "A\n\nB", text: "C", toolCalls: [{ name: "f" }] });
  });

  it("detects the formats of the shared templates", () => {
    if (!hasShared) return;
    expect(detectChatFormat(template("Qwen-Qwen3-0.6B"))).toEqual({ toolCalls: "hermes", reasoning: true });
    expect(detectChatFormat(template("Qwen-Qwen2.5-7B-Instruct"))).toEqual({ toolCalls: "hermes", reasoning: false });
    expect(detectChatFormat(template("meta-llama-Llama-3.1-8B-Instruct"))).toEqual({ toolCalls: "llama3", reasoning: false });
    expect(detectChatFormat(template("mistralai-Mistral-Nemo-Instruct-2407")).toolCalls).toBe("mistral");
    expect(detectChatFormat(template("deepseek-ai-DeepSeek-R1-Distill-Qwen-32B"))).toEqual({ toolCalls: "deepseek", reasoning: true });
    expect(detectChatFormat(template("google-gemma-2-2b-it")).toolCalls).toBe("none");
  });
});
