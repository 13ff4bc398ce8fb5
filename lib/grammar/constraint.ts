/**
 * From generation options to a token constraint: `jsonSchema` (a schema object), `grammar`
 * (GBNF text) or `responseFormat` (OpenAI's { type: "json_object" | "json_schema" | "text" }),
 * at most one of them. Compiled automata and their masks are cached per tokenizer and
 * grammar, so generations with the same schema share the work.
 */
import { TesseraError } from "../errors.js";
import type { Tokenizer } from "../tokenizer/index.js";
import { compileGrammar } from "./compile.js";
import { parseGbnf } from "./gbnf.js";
import { toGbnf, type Grammar } from "./ir.js";
import { jsonObjectGrammar, jsonSchemaGrammar } from "./json-schema.js";
import { checkLazyGrammar, lazyGrammarMatcher, type LazyGrammarMatcher, type LazyGrammarOptions } from "./lazy.js";
import { TokenAutomaton, vocabIndex, type GrammarMatcher, type MatcherOptions } from "./token-masks.js";

/** OpenAI's response_format. */
export type ResponseFormat =
  | { type: "text" }
  | { type: "json_object" }
  | { type: "json_schema"; json_schema: { name: string; schema?: Record<string, unknown> | boolean; description?: string; strict?: boolean | null } };

export interface ConstraintOptions {
  /** Generate JSON valid under this JSON Schema. */
  jsonSchema?: Record<string, unknown> | boolean;
  /** Generate text of this GBNF grammar (llama.cpp's format; the start rule is `root`). */
  grammar?: string;
  /** OpenAI's response_format: "json_object" for any JSON object, "json_schema" for a schema. */
  responseFormat?: ResponseFormat;
  /**
   * A grammar that holds only from a trigger text on (llama.cpp's lazy grammar): free text
   * until the output spells a trigger, then the grammar from the trigger's first byte, then
   * free again or the end. Tool calls with their arguments' schemas use it (lib/chat).
   */
  lazyGrammar?: LazyGrammarOptions;
}

interface GrammarSource {
  key: string;
  build: () => Grammar;
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  return typeof v;
}

/** Checks the constraint options; returns what to compile, or undefined for none. */
export function grammarSource(o: ConstraintOptions): GrammarSource | undefined {
  const given = (["jsonSchema", "grammar", "responseFormat", "lazyGrammar"] as const).filter((k) => o[k] !== undefined);
  if (given.length > 1) throw new TesseraError("ERR_INVALID_ARGUMENT", `${given.join(" and ")} are alternatives; give one of them`);
  if (o.grammar !== undefined) {
    if (typeof o.grammar !== "string" || o.grammar.trim() === "")
      throw new TesseraError("ERR_INVALID_ARGUMENT", `grammar must be GBNF text (a non-empty string), got ${describe(o.grammar)}`);
    const text = o.grammar;
    return { key: "gbnf\0" + text, build: () => parseGbnf(text) };
  }
  if (o.jsonSchema !== undefined) return schemaSource(o.jsonSchema, "jsonSchema");
  if (o.lazyGrammar !== undefined) return undefined;
  const rf = o.responseFormat;
  if (rf === undefined) return undefined;
  if (typeof rf !== "object" || rf === null || Array.isArray(rf))
    throw new TesseraError("ERR_INVALID_ARGUMENT", `responseFormat must be an object like { type: "json_object" }, got ${describe(rf)}`);
  const allowedKeys: Record<string, string[]> = { text: ["type"], json_object: ["type"], json_schema: ["type", "json_schema"] };
  const keys = allowedKeys[(rf as { type: string }).type];
  if (!keys)
    throw new TesseraError("ERR_INVALID_ARGUMENT", `responseFormat.type must be "text", "json_object" or "json_schema", got ${JSON.stringify((rf as { type: unknown }).type)}`);
  for (const k of Object.keys(rf)) if (!keys.includes(k)) throw new TesseraError("ERR_INVALID_ARGUMENT", `responseFormat of type "${rf.type}" has no "${k}"`);
  if (rf.type === "text") return undefined;
  if (rf.type === "json_object") return { key: "json_object", build: jsonObjectGrammar };
  const js = (rf as { json_schema?: unknown }).json_schema;
  if (typeof js !== "object" || js === null || Array.isArray(js))
    throw new TesseraError("ERR_INVALID_ARGUMENT", 'responseFormat json_schema needs json_schema: { name, schema }');
  const j = js as Record<string, unknown>;
  for (const k of Object.keys(j))
    if (!["name", "schema", "description", "strict"].includes(k))
      throw new TesseraError("ERR_INVALID_ARGUMENT", `responseFormat.json_schema has no "${k}" (name, schema, description, strict)`);
  if (typeof j.name !== "string" || !/^[a-zA-Z0-9_-]{1,64}$/.test(j.name))
    throw new TesseraError("ERR_INVALID_ARGUMENT", "responseFormat.json_schema.name must be 1-64 letters, digits, _ or -");
  // OpenAI: a missing schema means any JSON (response_format "json_schema" without schema).
  return schemaSource((j.schema as Record<string, unknown> | boolean | undefined) ?? true, "responseFormat.json_schema.schema");
}

function schemaSource(schema: unknown, name: string): GrammarSource {
  if (typeof schema !== "boolean" && (typeof schema !== "object" || schema === null || Array.isArray(schema)))
    throw new TesseraError("ERR_INVALID_ARGUMENT", `${name} must be a JSON Schema (an object or a boolean), got ${describe(schema)}`);
  let key: string;
  try {
    key = JSON.stringify(schema);
  } catch (e) {
    throw new TesseraError("ERR_INVALID_ARGUMENT", `${name} is not JSON (${(e as Error).message})`);
  }
  return { key: "json\0" + key, build: () => jsonSchemaGrammar(schema) };
}

/** Automata kept per tokenizer; one holds up to some tens of MiB of masks on a 128k vocabulary. */
const CACHE_SIZE = 16;
const cache = new WeakMap<Tokenizer, Map<string, TokenAutomaton>>();

/** The token automaton of a grammar on a tokenizer's vocabulary, cached (most recent 16 per tokenizer). */
export function tokenAutomaton(tokenizer: Tokenizer, source: GrammarSource): TokenAutomaton {
  let byKey = cache.get(tokenizer);
  if (!byKey) cache.set(tokenizer, (byKey = new Map()));
  let ta = byKey.get(source.key);
  if (ta) {
    byKey.delete(source.key);
    byKey.set(source.key, ta);
    return ta;
  }
  ta = new TokenAutomaton(compileGrammar(source.build()), vocabIndex(tokenizer));
  byKey.set(source.key, ta);
  if (byKey.size > CACHE_SIZE) byKey.delete(byKey.keys().next().value!);
  return ta;
}

/** Makes one generation's constraint (the grammar is compiled, and its errors thrown, before). */
export type ConstraintFactory = (matcher: MatcherOptions) => GrammarMatcher | LazyGrammarMatcher;

/** The constraint the options ask for, compiled, as a factory of per-generation matchers; undefined for none. */
export function constraintFactory(tokenizer: Tokenizer, options: ConstraintOptions): ConstraintFactory | undefined {
  const source = grammarSource(options);
  if (source) {
    const ta = tokenAutomaton(tokenizer, source);
    return (m) => ta.matcher(m);
  }
  const lazy = options.lazyGrammar;
  if (lazy === undefined) return undefined;
  const { grammar } = checkLazyGrammar(lazy);
  const ta = tokenAutomaton(tokenizer, { key: "gbnf\0" + grammar, build: () => parseGbnf(grammar) });
  lazyGrammarMatcher(tokenizer, ta, lazy); // the triggers' checks, and their tables, now
  return (m) => lazyGrammarMatcher(tokenizer, ta, lazy, m);
}

/** A constraint for one generation, or undefined when the options ask for none. */
export function createConstraint(tokenizer: Tokenizer, options: ConstraintOptions, matcher: MatcherOptions = {}): GrammarMatcher | LazyGrammarMatcher | undefined {
  return constraintFactory(tokenizer, options)?.(matcher);
}

/** A JSON Schema as the GBNF text Tessera generates from (to inspect, or to use elsewhere). */
export function jsonSchemaToGbnf(schema: Record<string, unknown> | boolean): string {
  const g = jsonSchemaGrammar(schema);
  compileGrammar(g); // the same checks as generation
  return toGbnf(g);
}
