/**
 * Chat template conformance: every template in ../shared/chat-templates, over the
 * conversations of test/fixtures/chat-templates/conversations.json, renders exactly what
 * Python's jinja2 renders in transformers' environment (the expected files were made once
 * by scripts/chat-template-fixtures.py; no Python is needed here). Where jinja2 fails, the
 * renderer must fail the same way: the same exception kind and message.
 */
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { ChatTemplateError, CHATML_TEMPLATE, renderChatTemplate, type RenderChatTemplateOptions } from "../../lib/chat/template.js";
import { isTesseraError } from "../../lib/errors.js";
import { readChatTemplates } from "../../lib/chat/gguf.js";
import { kv } from "../../lib/gguf/writer.js";
import type { GGUFFile } from "../../lib/gguf/types.js";
import { hasShared, repoRoot, sharedDir } from "../helpers/paths.js";

const fixtures = path.join(repoRoot, "test/fixtures/chat-templates");
const spec = JSON.parse(fs.readFileSync(path.join(fixtures, "conversations.json"), "utf8")) as {
  tools: unknown[];
  conversations: Array<{
    name: string;
    messages: RenderChatTemplateOptions["messages"];
    tools?: boolean;
    add_generation_prompt: boolean;
    continue_final_message?: boolean;
    extra?: Record<string, unknown>;
  }>;
  bos_token: string;
  eos_token: string;
  now: string;
};
type Result = { output: string } | { error: string; kind: string };
const expectedFiles = fs
  .readdirSync(path.join(fixtures, "expected"))
  .filter((f) => f.endsWith(".json") && !f.startsWith("_"))
  .sort();

function outcome(render: () => string): Result {
  try {
    return { output: render() };
  } catch (e) {
    if (!(e instanceof ChatTemplateError)) throw e;
    // jinja2 words a missing filter "No filter named 'x' found."; ours names it too, but in other words.
    if (e.reason === "unsupported") return { error: "(unsupported)", kind: "TemplateRuntimeError" };
    return { error: e.detail ?? e.message, kind: e.pythonError ?? "?" };
  }
}

function normalize(r: Result): Result {
  if ("error" in r && r.kind === "TemplateRuntimeError" && r.error.startsWith("No filter named")) return { error: "(unsupported)", kind: r.kind };
  return r;
}

describe.skipIf(!hasShared)("chat templates render what jinja2 renders", () => {
  let identical = 0;
  let total = 0;
  for (const file of expectedFiles) {
    const fixture = JSON.parse(fs.readFileSync(path.join(fixtures, "expected", file), "utf8")) as {
      template: string;
      sha256: string;
      results: Record<string, Result>;
    };
    it(fixture.template, () => {
      const source = fs.readFileSync(path.join(sharedDir, "chat-templates", fixture.template), "utf8");
      const sha = crypto.createHash("sha256").update(source).digest("hex");
      expect(sha, `${fixture.template} changed since the fixtures were made: run python3 scripts/chat-template-fixtures.py`).toBe(fixture.sha256);
      for (const conv of spec.conversations) {
        const got = outcome(() =>
          renderChatTemplate(source, {
            messages: conv.messages,
            tools: conv.tools ? (spec.tools as RenderChatTemplateOptions["tools"]) : undefined,
            addGenerationPrompt: conv.add_generation_prompt,
            continueFinalMessage: conv.continue_final_message,
            bosToken: spec.bos_token,
            eosToken: spec.eos_token,
            now: new Date(spec.now),
            ...conv.extra,
          }),
        );
        total++;
        expect(got, `${fixture.template} × ${conv.name}`).toEqual(normalize(fixture.results[conv.name]));
        identical++;
      }
    });
  }
  it("every template × conversation is identical", () => {
    expect(total).toBe(expectedFiles.length * spec.conversations.length);
    expect(identical).toBe(total);
    expect(expectedFiles.length).toBe(fs.readdirSync(path.join(sharedDir, "chat-templates")).filter((f) => f.endsWith(".jinja")).length);
  });
});

describe("the Jinja engine on jinja2's own outputs", () => {
  const snippets = JSON.parse(fs.readFileSync(path.join(fixtures, "expected/_snippets.json"), "utf8")) as Array<
    { name: string; template: string; context?: Record<string, unknown> } & Result
  >;
  for (const s of snippets) {
    it(s.name, () => {
      const { name: _n, template, context, ...expected } = s;
      const got = outcome(() => renderChatTemplate(template, { messages: [], now: new Date(spec.now), ...context }));
      expect(got).toEqual(expected);
    });
  }
});

describe("renderChatTemplate", () => {
  const messages = [
    { role: "system", content: "Be brief." },
    { role: "user", content: "Hi" },
  ];

  it("falls back to ChatML", () => {
    expect(renderChatTemplate(CHATML_TEMPLATE, { messages, addGenerationPrompt: true })).toBe(
      "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
    );
    expect(renderChatTemplate(CHATML_TEMPLATE, { messages: [...messages, { role: "assistant", content: "Hello" }], continueFinalMessage: true })).toBe(
      "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello",
    );
  });

  it("passes extra keys through and strftime_now reads the clock given", () => {
    const t = "{{ enable_thinking }} {{ custom.x }} {{ strftime_now('%Y') }} {{ tools }} {{ documents }}";
    expect(renderChatTemplate(t, { messages, enable_thinking: false, custom: { x: [1] }, now: new Date(2031, 0, 2) })).toBe("False [1] 2031 None None");
  });

  const code = (f: () => unknown) => {
    try {
      f();
    } catch (e) {
      return isTesseraError(e) ? `${e.code}${e instanceof ChatTemplateError ? ":" + e.reason : ""}` : `untyped ${String(e)}`;
    }
    return "no error";
  };

  it("names what it cannot render", () => {
    const include = () => renderChatTemplate("{% include 'x.jinja' %}", { messages });
    expect(code(include)).toBe("ERR_CHAT_TEMPLATE:unsupported");
    expect(() => include()).toThrow(/\{% include %\}/);
    const filter = () => renderChatTemplate("{{ 'a'|from_json }}", { messages });
    expect(code(filter)).toBe("ERR_CHAT_TEMPLATE:unsupported");
    expect(() => filter()).toThrow(/the filter 'from_json'/);
    expect(() => renderChatTemplate("{% for x in y recursive %}{% endfor %}", { messages })).toThrow(/does not parse/);
    expect(code(() => renderChatTemplate("{% if x %}", { messages }))).toBe("ERR_CHAT_TEMPLATE:syntax");
    expect(code(() => renderChatTemplate("{{ 'unclosed }}", { messages }))).toBe("ERR_CHAT_TEMPLATE:syntax");
  });

  it("reports the template's own raise_exception text", () => {
    try {
      renderChatTemplate("{{ raise_exception('Only user and assistant roles') }}", { messages });
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(ChatTemplateError);
      expect((e as ChatTemplateError).detail).toBe("Only user and assistant roles");
      expect((e as ChatTemplateError).message).toMatch(/refused the conversation: Only user and assistant roles/);
    }
  });

  it("checks its arguments", () => {
    expect(code(() => renderChatTemplate(42 as never, { messages }))).toBe("ERR_INVALID_ARGUMENT");
    expect(code(() => renderChatTemplate("x", null as never))).toBe("ERR_INVALID_ARGUMENT");
    expect(code(() => renderChatTemplate("x", { messages: "hi" as never }))).toBe("ERR_INVALID_ARGUMENT");
    expect(code(() => renderChatTemplate("x", { messages: [{ content: "no role" }] as never }))).toBe("ERR_INVALID_ARGUMENT");
    expect(code(() => renderChatTemplate("x", { messages, tools: {} as never }))).toBe("ERR_INVALID_ARGUMENT");
    expect(code(() => renderChatTemplate("x", { messages, addGenerationPrompt: "yes" as never }))).toBe("ERR_INVALID_ARGUMENT");
    expect(code(() => renderChatTemplate("x", { messages, bosToken: 1 as never }))).toBe("ERR_INVALID_ARGUMENT");
    expect(code(() => renderChatTemplate("x", { messages, now: new Date(NaN) }))).toBe("ERR_INVALID_ARGUMENT");
    expect(code(() => renderChatTemplate("x", { messages, continueFinalMessage: true, addGenerationPrompt: true }))).toBe("ERR_INVALID_ARGUMENT");
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(code(() => renderChatTemplate("x", { messages, extra: cyclic }))).toBe("ERR_INVALID_ARGUMENT");
  });

  it("reads the default and named templates from GGUF metadata, as strings only", () => {
    const file = (entries: Array<[string, ReturnType<typeof kv.str>]>) => ({ metadata: new Map(entries) }) as unknown as GGUFFile;
    expect(
      readChatTemplates(file([["tokenizer.chat_template", kv.str("A")], ["tokenizer.chat_template.tool_use", kv.str("B")], ["tokenizer.ggml.model", kv.str("gpt2")]])),
    ).toEqual({ default: "A", tool_use: "B" });
    expect(code(() => readChatTemplates(file([["tokenizer.chat_template", kv.u32(3)]])))).toBe("ERR_GGUF_MALFORMED");
  });
});
