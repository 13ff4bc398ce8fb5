/**
 * Constrained generation through the public API on stories260K: jsonSchema, grammar and
 * responseFormat produce text of the grammar and say why they stopped; the options are
 * validated (coded errors, the keyword named); unknown generate() options are refused;
 * logitBias steers and bans tokens.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import Ajv2020 from "ajv/dist/2020.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GENERATE_OPTION_KEYS, isTesseraError, loadModel, type Model } from "../../lib/index.js";
import { hasShared, repoRoot, stories260K, tempDir } from "../helpers/paths.js";

async function expectCode(p: Promise<unknown> | (() => unknown), code: string, message?: RegExp): Promise<void> {
  try {
    await (typeof p === "function" ? p() : p);
  } catch (e) {
    expect(isTesseraError(e), String(e)).toBe(true);
    expect((e as { code: string }).code, String(e)).toBe(code);
    if (message) expect((e as Error).message).toMatch(message);
    return;
  }
  throw new Error(`expected ${code}, nothing was thrown`);
}

describe.runIf(hasShared)("constrained generation", () => {
  let model: Model;
  beforeAll(async () => {
    model = await loadModel(stories260K, { backend: "cpu", threads: 1, contextSize: 512 });
  });
  afterAll(() => model?.dispose());

  it("jsonSchema: valid JSON, stopped by the grammar", async () => {
    const schema = { type: "object", properties: { name: { type: "string", maxLength: 10 }, age: { type: "integer", minimum: 0, maximum: 120 } }, required: ["name", "age"] };
    const validate = new Ajv2020().compile(schema);
    for (const seed of [1, 2, 3]) {
      const r = await model.complete("Once upon a time", { jsonSchema: schema, temperature: 1, seed, maxTokens: 200 });
      expect(validate(JSON.parse(r.text)), r.text).toBe(true);
      expect(r.stopReason).toBe("grammar");
    }
  });

  it("generateMany: every branch constrained on its own", async () => {
    const schema = { type: "array", items: { type: "integer", minimum: 0, maximum: 9 }, minItems: 1, maxItems: 4 };
    const results = await model.completeMany("Once upon a time", { n: 4, jsonSchema: schema, temperature: 1.2, seed: 10, maxTokens: 40 });
    for (const r of results) {
      const v = JSON.parse(r.text) as number[];
      expect(v.length >= 1 && v.length <= 4 && v.every((x) => Number.isInteger(x) && x >= 0 && x <= 9), r.text).toBe(true);
    }
  });

  it("streamed chunks of a constrained generation concatenate to the completion", async () => {
    const opts = { responseFormat: { type: "json_object" as const }, temperature: 0.9, seed: 4, maxTokens: 80 };
    let text = "";
    for await (const c of model.generate("", opts)) text += c.text;
    expect(text).toBe((await model.complete("", opts)).text);
    expect(typeof JSON.parse(text)).toBe("object");
  });

  it("responseFormat json_schema and json_object", async () => {
    const schema = { type: "array", items: { enum: ["cat", "dog"] }, minItems: 2, maxItems: 2 };
    const r = await model.complete("Lily", { responseFormat: { type: "json_schema", json_schema: { name: "pets", schema, strict: true } }, seed: 1, maxTokens: 60 });
    const v = JSON.parse(r.text);
    expect(v).toHaveLength(2);
    for (const x of v) expect(["cat", "dog"]).toContain(x);
    const o = await model.complete("Lily", { responseFormat: { type: "json_object" }, seed: 2, maxTokens: 60 });
    expect(JSON.parse(o.text)).toBeTypeOf("object");
    const t = await model.complete("Lily", { responseFormat: { type: "text" }, temperature: 0, maxTokens: 10 });
    expect(t.text).toBe((await model.complete("Lily", { temperature: 0, maxTokens: 10 })).text);
  });

  it("grammar: GBNF text; the end-of-generation token only where the grammar may end", async () => {
    const grammar = 'root ::= "The " animal " is " ("big" | "small") "."\nanimal ::= "cat" | "dog" | "bird"';
    for (const seed of [1, 2, 3, 4]) {
      const r = await model.complete("Once", { grammar, seed, temperature: 1.2, maxTokens: 40 });
      expect(r.text).toMatch(/^The (cat|dog|bird) is (big|small)\.$/);
      expect(r.stopReason).toBe("grammar");
    }
    // A grammar that may end or go on: stops on EOS ("eos") or by the grammar.
    const digits = await model.complete("Once", { grammar: "root ::= [0-9]+", seed: 3, maxTokens: 30 });
    expect(digits.text).toMatch(/^[0-9]+$/);
    expect(["eos", "length"]).toContain(digits.stopReason);
  });

  it("maxTokens too short for free generation still ends with complete output", async () => {
    const schema = { type: "object", properties: { a: { type: "array", items: { type: "string" } }, b: { type: "object", properties: { c: { type: "string" } }, required: ["c"] } }, required: ["a", "b"] };
    for (const maxTokens of [25, 30, 40]) {
      const r = await model.complete("Once upon a time", { jsonSchema: schema, maxTokens, temperature: 1.5, seed: maxTokens });
      expect(r.tokens.length).toBeLessThanOrEqual(maxTokens);
      const v = JSON.parse(r.text);
      expect(Array.isArray(v.a) && typeof v.b.c === "string").toBe(true);
    }
  });

  it("greedy constrained decoding picks the best allowed token", async () => {
    // With a grammar allowing anything a free greedy run produces, both runs agree.
    const free = await model.complete("Once upon a time", { temperature: 0, maxTokens: 30 });
    const constrained = await model.complete("Once upon a time", { temperature: 0, maxTokens: 30, grammar: "root ::= [^\\x00]*" });
    expect(constrained.text).toBe(free.text);
  });

  it("ignoreEos with a grammar: the grammar alone decides where output ends", async () => {
    const r = await model.complete("Once", { grammar: 'root ::= "ab" "c"?', ignoreEos: true, seed: 1, maxTokens: 20 });
    expect(["ab", "abc"]).toContain(r.text);
    const empty = await model.complete("Once", { grammar: 'root ::= ""', ignoreEos: true, maxTokens: 20 });
    expect(empty).toMatchObject({ text: "", stopReason: "grammar" });
  });

  it("at the start of a text, SentencePiece's dropped leading space is not grammar text", async () => {
    // After a BOS-only prompt "▁Once" decodes as "Once": allowed for a grammar without the space.
    const start = await model.complete("", { grammar: 'root ::= "Once upon a time"', temperature: 0 });
    expect(start.text).toBe("Once upon a time");
    expect(model.tokenizer.decode(start.tokens.slice(0, 1))).toBe("Once");
    // Mid-text the space is text: a grammar asking for it gets it.
    const mid = await model.complete("Lily said", { grammar: 'root ::= " Once upon a time"', temperature: 0 });
    expect(mid.text).toBe(" Once upon a time");
  });

  it("the CLI takes --json-schema and --grammar files", () => {
    const dir = tempDir("cli-grammar");
    fs.writeFileSync(path.join(dir, "s.json"), JSON.stringify({ type: "object", properties: { n: { type: "integer", minimum: 1, maximum: 9 } }, required: ["n"] }));
    fs.writeFileSync(path.join(dir, "g.gbnf"), 'root ::= "yes" | "no"');
    const cli = (args: string[]) => execFileSync(process.execPath, [path.join(repoRoot, "dist/lib/cli/main.js"), "run", stories260K, "--threads", "1", "--seed", "1", ...args], { encoding: "utf8" });
    expect(JSON.parse(cli(["--prompt", "Once", "--json-schema", path.join(dir, "s.json")])).n).toBeGreaterThanOrEqual(1);
    expect(cli(["--prompt", "Once", "--grammar", path.join(dir, "g.gbnf")]).trim()).toMatch(/^(yes|no)$/);
  });

  it("refuses bad constraint options with coded errors", async () => {
    await expectCode(model.complete("x", { jsonSchema: { type: "string", pattern: "^a" } }), "ERR_UNSUPPORTED_SCHEMA", /"pattern"/);
    await expectCode(() => model.generate("x", { jsonSchema: { type: "object", properties: { a: { format: "email", type: "string" } } } }), "ERR_UNSUPPORTED_SCHEMA", /#\/properties\/a: keyword "format"/);
    await expectCode(model.complete("x", { jsonSchema: "string" as never }), "ERR_INVALID_ARGUMENT");
    await expectCode(model.complete("x", { grammar: 'root ::= "a' }), "ERR_INVALID_ARGUMENT", /line 1/);
    await expectCode(model.complete("x", { grammar: 5 as never }), "ERR_INVALID_ARGUMENT");
    await expectCode(model.complete("x", { grammar: 'root ::= "a"', jsonSchema: {} }), "ERR_INVALID_ARGUMENT", /alternatives/);
    await expectCode(model.complete("x", { responseFormat: { type: "xml" } as never }), "ERR_INVALID_ARGUMENT");
    await expectCode(model.complete("x", { responseFormat: { type: "json_schema" } as never }), "ERR_INVALID_ARGUMENT");
    await expectCode(model.complete("x", { responseFormat: { type: "json_object", schema: {} } as never }), "ERR_INVALID_ARGUMENT", /"schema"/);
  });

  it("refuses unknown generate options, naming the likely intended one", async () => {
    await expectCode(() => model.generate("x", { n_predict: 5 } as never), "ERR_INVALID_ARGUMENT", /"n_predict".*"maxTokens"/);
    await expectCode(model.complete("x", { max_tokens: 5 } as never), "ERR_INVALID_ARGUMENT", /"maxTokens"/);
    await expectCode(model.complete("x", { top_k: 5 } as never), "ERR_INVALID_ARGUMENT", /"topK"/);
    await expectCode(model.complete("x", { logit_bias: {} } as never), "ERR_INVALID_ARGUMENT", /"logitBias"/);
    await expectCode(model.complete("x", { frobnicate: true } as never), "ERR_INVALID_ARGUMENT", /"frobnicate"/);
    await expectCode(model.completeMany("x", { n: 2, foo: 1 } as never), "ERR_INVALID_ARGUMENT", /generateMany: unknown option "foo"/);
    expect(GENERATE_OPTION_KEYS).toContain("jsonSchema");
    expect(GENERATE_OPTION_KEYS).toContain("logitBias");
  });

  it("logitBias: -Infinity bans a token, a large bias forces one", async () => {
    const free = await model.complete("Once upon a time", { temperature: 0, maxTokens: 20 });
    const banned = free.tokens[0];
    const r = await model.complete("Once upon a time", { temperature: 0, maxTokens: 20, logitBias: { [banned]: -Infinity } });
    expect(r.tokens).not.toContain(banned);
    const forced = model.tokenizer.encode(" dog", { addSpecial: false })[0];
    const f = await model.complete("Once upon a time", { temperature: 0.8, seed: 1, maxTokens: 5, logitBias: new Map([[forced, 100]]) });
    expect(f.tokens).toEqual([forced, forced, forced, forced, forced]);
    await expectCode(model.complete("x", { logitBias: { 100000: 1 } }), "ERR_INVALID_ARGUMENT", /vocabulary/);
    await expectCode(model.complete("x", { logitBias: { a: 1 } as never }), "ERR_INVALID_ARGUMENT");
    await expectCode(model.complete("x", { logitBias: { 5: "x" } as never }), "ERR_INVALID_ARGUMENT");
    await expectCode(model.complete("x", { logitBias: [1, 2] as never }), "ERR_INVALID_ARGUMENT");
  });
});
