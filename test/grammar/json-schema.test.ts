/**
 * JSON Schema to grammar: known valid and invalid documents against ajv's verdicts, number
 * bounds checked exhaustively against the bounds themselves, and every keyword we cannot
 * honour refused with ERR_UNSUPPORTED_SCHEMA naming it and its place.
 */
import Ajv2020 from "ajv/dist/2020.js";
import { describe, expect, it } from "vitest";
import { isTesseraError } from "../../lib/errors.js";
import { jsonSchemaToGbnf } from "../../lib/grammar/constraint.js";
import { parseGbnf } from "../../lib/grammar/gbnf.js";
import { jsonSchemaGrammar } from "../../lib/grammar/json-schema.js";
import { automatonAccepts, matchesGrammar } from "../helpers/grammar-matcher.js";

const ajv = new Ajv2020({ strict: false });

function both(schema: object | boolean, text: string): boolean {
  const g = jsonSchemaGrammar(schema);
  const a = automatonAccepts(g, text);
  expect(matchesGrammar(g, text), `reference vs automaton on ${text}`).toBe(a);
  return a;
}

describe("JSON Schema grammars", () => {
  it("accept what they should, and everything they accept validates", () => {
    const cases: Array<{ schema: object; yes: string[]; no: string[] }> = [
      {
        schema: { type: "object", properties: { a: { type: "string" }, b: { type: "integer" } }, required: ["a"] },
        yes: ['{"a":"x"}', '{"a": "x", "b": -3}', '{\n  "a": "\\u00e9\\n",\n  "b": 0\n}', '{ "a":"日本" }'],
        no: ['{"b":1}', '{"a":"x","b":1.5}', '{"b":1,"a":"x"}', '{"a":"x","c":1}', '{"a":"x",}', '{"a":"\u0001"}', ' {"a":"x"}'],
      },
      {
        schema: { type: "array", items: { type: "boolean" }, minItems: 1, maxItems: 2 },
        yes: ["[true]", "[true, false]", "[ false ]"],
        no: ["[]", "[true,true,true]", "[1]"],
      },
      {
        schema: { type: "array", prefixItems: [{ type: "string" }, { type: "integer" }], items: false },
        yes: ['["a",1]', '["a"]', "[]"],
        no: ['["a",1,2]', "[1]"],
      },
      {
        schema: { type: "string", minLength: 2, maxLength: 3 },
        yes: ['"ab"', '"abc"', '"\\n\\t"', '"日本"', '"a\\u0041"'],
        no: ['"a"', '"abcd"', '"日"', "1"],
      },
      {
        schema: { enum: ["red", 1, null, { x: [1] }], type: ["string", "object", "null"] },
        yes: ['"red"', "null", '{"x":[1]}'],
        no: ["1", '"blue"'],
      },
      {
        schema: { anyOf: [{ type: "null" }, { $ref: "#/$defs/p" }], $defs: { p: { type: "object", properties: { x: { type: "number" } }, required: ["x"], additionalProperties: false } } },
        yes: ["null", '{"x":1.5e3}', '{"x":-0}'],
        no: ['{"x":1,"y":2}', "{}"],
      },
      {
        schema: { type: "object", properties: { n: { type: "integer" }, next: { $ref: "#" } }, required: ["n"] },
        yes: ['{"n":1}', '{"n":1,"next":{"n":2,"next":{"n":3}}}'],
        no: ['{"n":1,"next":{}}'],
      },
      {
        schema: { type: "object", properties: { id: { type: "integer" } }, required: ["id"], additionalProperties: { type: "boolean" } },
        yes: ['{"id":1}', '{"id":1,"ok":true,"x":false}', '{"id":1,"i":true}', '{"id":1,"idx":true}'],
        no: ['{"id":1,"id":true}', '{"id":1,"ok":1}'],
      },
      {
        schema: { oneOf: [{ type: "object", properties: { kind: { const: "a" }, v: { type: "string" } }, required: ["kind", "v"] }, { type: "object", properties: { kind: { const: "b" }, n: { type: "integer" } }, required: ["kind"] }] },
        yes: ['{"kind":"a","v":"x"}', '{"kind":"b"}', '{"kind":"b","n":2}'],
        no: ['{"kind":"c"}', '{"kind":"a"}'],
      },
    ];
    for (const { schema, yes, no } of cases) {
      const validate = ajv.compile(schema);
      for (const text of yes) {
        expect(both(schema, text), `${JSON.stringify(schema)} should accept ${text}`).toBe(true);
        expect(validate(JSON.parse(text)), `ajv on ${text}`).toBe(true);
      }
      for (const text of no) expect(both(schema, text), `${JSON.stringify(schema)} should refuse ${text}`).toBe(false);
    }
  });

  it("integer bounds: exactly the integers in range, in canonical form", () => {
    const ranges = [
      { minimum: 0, maximum: 10 },
      { minimum: -57, maximum: 123 },
      { exclusiveMinimum: -3.5, exclusiveMaximum: 7 },
      { minimum: 95, maximum: 1005 },
      { maximum: -20 },
      { minimum: 7 },
    ];
    for (const r of ranges) {
      const schema = { type: "integer", ...r };
      const validate = ajv.compile(schema);
      for (let x = -1200; x <= 1200; x += x > -130 && x < 130 ? 1 : 7) expect(both(schema, String(x)), `${JSON.stringify(r)} ${x}`).toBe(validate(x));
      expect(both(schema, "007")).toBe(false);
      expect(both(schema, "-0")).toBe(false);
    }
  });

  it("number bounds: decimals in range accepted, out of range refused", () => {
    const ranges = [
      { minimum: -1.5, maximum: 2.25 },
      { exclusiveMinimum: 0, maximum: 1 },
      { minimum: 0.1, exclusiveMaximum: 0.3 },
      { minimum: -100, maximum: -0.5 },
      { minimum: 10, maximum: 10.5 },
      { exclusiveMinimum: 0.30000000000000004 },
    ];
    let seed = 7;
    const rand = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed / 2 ** 32;
    };
    for (const r of ranges) {
      const schema = { type: "number", ...r };
      const validate = ajv.compile(schema);
      const texts = ["0", "1", "-1", "0.5", "2.25", "2.250001", "-1.5", "-1.500001", "0.1", "0.3", "0.299999", "10.5", "10.500000", "-0.5", "-100", "0.300001", "0.3000001"];
      for (let i = 0; i < 300; i++) {
        const digits = Math.floor(rand() * 7);
        texts.push(((rand() - 0.4) * 30).toFixed(digits));
      }
      for (const text of texts) {
        const canonical = /^-?(0|[1-9][0-9]{0,8})(\.[0-9]{1,6})?$/.test(text) && text !== "-0" && !/^-0(\.0*)?$/.test(text);
        expect(both(schema, text), `${JSON.stringify(r)} ${text}`).toBe(canonical && validate(JSON.parse(text)));
      }
    }
  });

  it("unsupported keywords are coded errors naming the keyword and where it is", () => {
    const bad: Array<[object, RegExp]> = [
      [{ type: "string", pattern: "^a" }, /#: keyword "pattern"/],
      [{ type: "object", properties: { a: { type: "string", format: "email" } } }, /#\/properties\/a: keyword "format"/],
      [{ type: "number", multipleOf: 2 }, /"multipleOf"/],
      [{ allOf: [{ type: "string" }] }, /"allOf"/],
      [{ type: "array", uniqueItems: true }, /"uniqueItems"/],
      [{ type: "object", minProperties: 1 }, /"minProperties"/],
      [{ not: { type: "string" } }, /"not"/],
      [{ $ref: "https://example.com/s.json" }, /not local/],
      [{ oneOf: [{ type: "number" }, { type: "integer" }] }, /oneOf branches 0 and 1 may both match/],
      [{ oneOf: [{ type: "object" }, { type: "object", properties: { a: { const: 1 } } }] }, /may both match/],
      [{ $ref: "#/$defs/x", type: "string", $defs: { x: {} } }, /beside other keywords/],
      [{ type: "array", items: [{ type: "string" }] }, /prefixItems/],
    ];
    for (const [schema, message] of bad) {
      let err: unknown;
      try {
        jsonSchemaToGbnf(schema as Record<string, unknown>);
      } catch (e) {
        err = e;
      }
      expect(isTesseraError(err, "ERR_UNSUPPORTED_SCHEMA"), `${JSON.stringify(schema)}: ${String(err)}`).toBe(true);
      expect((err as Error).message).toMatch(message);
    }
  });

  it("invalid schemas are ERR_INVALID_ARGUMENT", () => {
    const bad: object[] = [
      { type: "strin" },
      { type: "string", minLength: -1 },
      { type: "string", minLength: 5, maxLength: 2 },
      { type: "integer", minimum: 5, maximum: 4 },
      { enum: [] },
      { type: "string", enum: [1, 2] },
      { $ref: "#/$defs/missing" },
      { type: "object", properties: { a: { $ref: "#" } }, required: ["a"] },
      { type: "object", required: ["x"], additionalProperties: false },
    ];
    for (const schema of bad) {
      let err: unknown;
      try {
        jsonSchemaToGbnf(schema as Record<string, unknown>);
      } catch (e) {
        err = e;
      }
      expect(isTesseraError(err, "ERR_INVALID_ARGUMENT"), `${JSON.stringify(schema)}: ${String(err)}`).toBe(true);
    }
  });

  it("jsonSchemaToGbnf prints GBNF that parses to the same language", () => {
    const schema = { type: "object", properties: { name: { type: "string", maxLength: 3 }, n: { type: "integer", minimum: -5, maximum: 5 }, t: { enum: ["a", "b"] } }, required: ["name"] };
    const g = parseGbnf(jsonSchemaToGbnf(schema));
    for (const text of ['{"name":"abc"}', '{"name":"abcd"}', '{"name":"a","n":-5,"t":"b"}', '{"name":"a","n":6}']) expect(matchesGrammar(g, text)).toBe(both(schema, text));
  });
});
