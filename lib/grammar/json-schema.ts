/**
 * JSON Schema to grammar. Supported: type (one or a list), properties, required,
 * additionalProperties (false, true or a schema), enum, const, items, prefixItems, minItems,
 * maxItems, anyOf, oneOf (when its branches provably cannot overlap), local $ref
 * ("#", "#/$defs/...", "#/definitions/...", any JSON pointer into the schema) with
 * $defs/definitions, minLength/maxLength, minimum/maximum/exclusiveMinimum/exclusiveMaximum,
 * and the annotations that do not constrain values (title, description, default, examples,
 * $comment, $schema, $id, deprecated, readOnly, writeOnly). Every other keyword is refused
 * with ERR_UNSUPPORTED_SCHEMA naming it and where it is: a constraint is never dropped.
 *
 * Output is JSON every validator accepts for the schema, in a canonical shape:
 * - Objects list their properties in the schema's order. Properties the schema does not name
 *   are generated only when additionalProperties is true or a schema, or when the schema names
 *   no properties at all (JSON Schema's default would allow them; leaving them out is still
 *   valid, and keeps output to the schema).
 * - Whitespace: optional after `{`, `[`, `,` and `:`, and before `}` and `]`; a single space
 *   or a newline with up to 20 spaces or tabs of indentation (as llama.cpp's grammars allow).
 * - Numbers without bounds have up to 16 integer digits, 16 fraction digits and a 2-digit
 *   exponent; with bounds, see numbers.ts. Strings are any JSON string (escapes included);
 *   lengths count code points, an escape being one, as validators count them.
 */
import { TesseraError } from "../errors.js";
import { alt, charClass, EMPTY, lit, opt, ref, rep, seq, star, type Expr, type Grammar } from "./ir.js";
import { decimals, integers, type Bound } from "./numbers.js";

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Schema = boolean | { [k: string]: unknown };

const ANNOTATIONS = new Set(["title", "description", "default", "examples", "$comment", "$schema", "$id", "deprecated", "readOnly", "writeOnly"]);
const HANDLED = new Set([
  "type",
  "properties",
  "required",
  "additionalProperties",
  "enum",
  "const",
  "items",
  "prefixItems",
  "minItems",
  "maxItems",
  "anyOf",
  "oneOf",
  "$ref",
  "$defs",
  "definitions",
  "minLength",
  "maxLength",
  "minimum",
  "maximum",
  "exclusiveMinimum",
  "exclusiveMaximum",
  "uniqueItems",
]);
const TYPES = ["null", "boolean", "object", "array", "number", "integer", "string"] as const;
type TypeName = (typeof TYPES)[number];

const OBJECT_KEYS = ["properties", "required", "additionalProperties"];
const ARRAY_KEYS = ["items", "prefixItems", "minItems", "maxItems", "uniqueItems"];
const STRING_KEYS = ["minLength", "maxLength"];
const NUMBER_KEYS = ["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"];

/** Limits that keep the grammar (one rule per allowed count) a reasonable size. */
const MAX_COUNT = 10_000;

function unsupported(where: string, message: string): never {
  throw new TesseraError("ERR_UNSUPPORTED_SCHEMA", `jsonSchema ${where}: ${message}`);
}

function invalid(where: string, message: string): never {
  throw new TesseraError("ERR_INVALID_ARGUMENT", `jsonSchema ${where}: ${message}`);
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

// ---------------------------------------------------------------- shared rules

const WS = "ws";
const STRING = "string";
const STR_REST = "string-rest";
const STR_CHAR = "string-char";
const ESCAPE = "escape";
const NUMBER = "number";
const INTEGER = "integer";
const BOOLEAN = "boolean";
const NULL = "null";
const VALUE = "value";
const OBJECT = "object";
const ARRAY = "array";

const HEX = charClass([
  [0x30, 0x39],
  [0x41, 0x46],
  [0x61, 0x66],
]);
/** String characters that need no escape, ASCII part (no control characters, quote, backslash). */
const STR_ASCII = charClass([
  [0x20, 0x21],
  [0x23, 0x5b],
  [0x5d, 0x7f],
]);
const STR_NON_ASCII = charClass([[0x80, 0x10ffff]]);
const DIGIT = charClass([[0x30, 0x39]]);

const SHARED: Record<string, (c: SchemaCompiler) => Expr> = {
  [WS]: () => alt(EMPTY, lit(" "), seq(lit("\n"), rep(charClass([[0x20, 0x20], [0x09, 0x09]]), 0, 20))),
  [ESCAPE]: () => alt(charClass([[0x22, 0x22], [0x5c, 0x5c], [0x2f, 0x2f], [0x62, 0x62], [0x66, 0x66], [0x6e, 0x6e], [0x72, 0x72], [0x74, 0x74]]), seq(lit("u"), rep(HEX, 4, 4))),
  // The rest of a string after its opening quote, closing quote included: one rule that
  // loops on itself, so a token of string characters (and the closing quote) is decided
  // inside it, whatever the string is part of.
  [STR_REST]: (c) => alt(lit('"'), seq(STR_ASCII, ref(STR_REST)), seq(STR_NON_ASCII, ref(STR_REST)), seq(lit("\\"), c.shared(ESCAPE), ref(STR_REST))),
  [STRING]: (c) => seq(lit('"'), c.shared(STR_REST)),
  [STR_CHAR]: (c) => alt(STR_ASCII, STR_NON_ASCII, seq(lit("\\"), c.shared(ESCAPE))),
  [NUMBER]: () =>
    seq(
      opt(lit("-")),
      alt(lit("0"), seq(charClass([[0x31, 0x39]]), rep(DIGIT, 0, 15))),
      opt(seq(lit("."), rep(DIGIT, 1, 16))),
      opt(seq(charClass([[0x45, 0x45], [0x65, 0x65]]), opt(charClass([[0x2b, 0x2b], [0x2d, 0x2d]])), rep(DIGIT, 1, 2))),
    ),
  [INTEGER]: () => seq(opt(lit("-")), alt(lit("0"), seq(charClass([[0x31, 0x39]]), rep(DIGIT, 0, 15)))),
  [BOOLEAN]: () => alt(lit("true"), lit("false")),
  [NULL]: () => lit("null"),
  [VALUE]: (c) => alt(c.shared(OBJECT), c.shared(ARRAY), c.shared(STRING), c.shared(NUMBER), c.shared(BOOLEAN), c.shared(NULL)),
  [OBJECT]: (c) => {
    const kv = seq(c.shared(STRING), lit(":"), c.shared(WS), c.shared(VALUE), c.shared(WS));
    return seq(lit("{"), c.shared(WS), opt(seq(kv, star(seq(lit(","), c.shared(WS), kv)))), lit("}"));
  },
  [ARRAY]: (c) => {
    const item = seq(c.shared(VALUE), c.shared(WS));
    return seq(lit("["), c.shared(WS), opt(seq(item, star(seq(lit(","), c.shared(WS), item)))), lit("]"));
  },
};

class SchemaCompiler {
  readonly rules = new Map<string, Expr>();
  private readonly refRules = new Map<object, string>();
  private counter = 0;

  constructor(private readonly root: Schema) {}

  shared(name: string): Expr {
    if (!this.rules.has(name)) {
      this.rules.set(name, EMPTY); // placeholder: shared rules refer to each other
      this.rules.set(name, SHARED[name](this));
    }
    return ref(name);
  }

  private newRule(hint: string, body: Expr): Expr {
    const name = `${hint.replace(/[^a-zA-Z0-9-]+/g, "-").replace(/^-+|-+$/g, "").toLowerCase() || "r"}-${++this.counter}`;
    this.rules.set(name, body);
    return ref(name);
  }

  // ------------------------------------------------------------ $ref

  private resolve(pointer: string, where: string): { schema: Schema; path: string } {
    if (!pointer.startsWith("#")) unsupported(where, `$ref "${pointer}" is not local; only references into this schema ("#/...") are supported`);
    if (pointer !== "#" && !pointer.startsWith("#/")) unsupported(where, `$ref "${pointer}": anchors are not supported, use a JSON pointer ("#/$defs/name")`);
    let node: unknown = this.root;
    const parts = pointer === "#" ? [] : pointer.slice(2).split("/");
    for (const raw of parts) {
      const key = decodeURIComponent(raw).replace(/~1/g, "/").replace(/~0/g, "~");
      if (Array.isArray(node) && /^\d+$/.test(key)) node = node[Number(key)];
      else if (isObject(node) && Object.hasOwn(node, key)) node = node[key];
      else invalid(where, `$ref "${pointer}" points at nothing`);
    }
    if (typeof node !== "boolean" && !isObject(node)) invalid(where, `$ref "${pointer}" does not point at a schema`);
    return { schema: node as Schema, path: pointer };
  }

  private refExpr(pointer: string, where: string): Expr {
    const { schema, path } = this.resolve(pointer, where);
    if (typeof schema === "boolean") return this.visit(schema, path);
    let name = this.refRules.get(schema);
    if (name === undefined) {
      const last = path.split("/").pop() || "root";
      name = `${last.replace(/[^a-zA-Z0-9-]+/g, "-").replace(/^-+|-+$/g, "").toLowerCase() || "def"}-ref-${++this.counter}`;
      this.refRules.set(schema, name);
      this.rules.set(name, EMPTY); // placeholder for recursion
      this.rules.set(name, this.visit(schema, path));
    }
    return ref(name);
  }

  // ------------------------------------------------------------ schemas

  visit(schema: unknown, where: string): Expr {
    if (schema === true) return this.shared(VALUE);
    if (schema === false) invalid(where, "the schema `false` admits no value");
    if (!isObject(schema)) invalid(where, "a schema must be an object or a boolean");
    for (const key of Object.keys(schema)) {
      if (ANNOTATIONS.has(key) || HANDLED.has(key)) continue;
      unsupported(where, `keyword "${key}" is not supported`);
    }
    if (schema.uniqueItems === true) {
      const max = schema.maxItems;
      if (!(typeof max === "number" && max <= 1)) unsupported(where, `keyword "uniqueItems" (true) is not supported`);
    }
    if ("$ref" in schema) {
      const others = Object.keys(schema).filter((k) => k !== "$ref" && k !== "$defs" && k !== "definitions" && !ANNOTATIONS.has(k));
      if (others.length) unsupported(where, `"$ref" beside other keywords (${others.join(", ")}) is not supported`);
      if (typeof schema.$ref !== "string") invalid(where, "$ref must be a string");
      return this.refExpr(schema.$ref, `${where}/$ref`);
    }
    if ("enum" in schema || "const" in schema) return this.enumeration(schema, where);
    const branches = (["anyOf", "oneOf"] as const).filter((k) => k in schema);
    if (branches.length > 1) unsupported(where, "anyOf beside oneOf is not supported");
    if (branches.length === 1) {
      const key = branches[0];
      const list = schema[key];
      if (!Array.isArray(list) || list.length === 0) invalid(where, `${key} must be a non-empty array of schemas`);
      const rest = Object.fromEntries(Object.entries(schema).filter(([k]) => k !== key && !ANNOTATIONS.has(k) && k !== "$defs" && k !== "definitions"));
      if (Object.keys(rest).length)
        unsupported(where, `${key} beside other keywords (${Object.keys(rest).join(", ")}) is not supported; move them into each branch`);
      if (key === "oneOf") this.checkDisjoint(list, `${where}/oneOf`);
      return alt(...list.map((s, i) => this.visit(s, `${where}/${key}/${i}`)));
    }
    const types = this.types(schema, where);
    const alts = types.map((t) => this.typed(t, schema, where));
    return alts.length === 1 ? alts[0] : alt(...alts);
  }

  /** The types to generate: the `type` keyword, else those the other keywords are about, else any. */
  private types(schema: Record<string, unknown>, where: string): TypeName[] {
    const t = schema.type;
    if (t !== undefined) {
      const list = Array.isArray(t) ? t : [t];
      if (list.length === 0) invalid(where, "type must not be an empty list");
      for (const x of list) if (!TYPES.includes(x as TypeName)) invalid(where, `unknown type ${JSON.stringify(x)}`);
      const set = new Set(list as TypeName[]);
      // "number" already covers the integers.
      if (set.has("number")) set.delete("integer");
      return [...set];
    }
    const has = (keys: string[]) => keys.some((k) => k in schema);
    const out: TypeName[] = [];
    if (has(OBJECT_KEYS)) out.push("object");
    if (has(ARRAY_KEYS)) out.push("array");
    if (has(STRING_KEYS)) out.push("string");
    if (has(NUMBER_KEYS)) out.push("number");
    return out.length ? out : ["null", "boolean", "object", "array", "number", "string"];
  }

  private typed(type: TypeName, schema: Record<string, unknown>, where: string): Expr {
    switch (type) {
      case "null":
        return this.shared(NULL);
      case "boolean":
        return this.shared(BOOLEAN);
      case "string":
        return this.string(schema, where);
      case "number":
      case "integer":
        return this.number(schema, where, type === "integer");
      case "object":
        return this.object(schema, where);
      case "array":
        return this.array(schema, where);
    }
  }

  private count(schema: Record<string, unknown>, key: string, where: string): number | undefined {
    const v = schema[key];
    if (v === undefined) return undefined;
    if (typeof v !== "number" || !Number.isInteger(v) || v < 0) invalid(where, `${key} must be a non-negative integer`);
    if (v > MAX_COUNT && key.startsWith("min")) unsupported(where, `${key} above ${MAX_COUNT} is not supported`);
    return v;
  }

  private string(schema: Record<string, unknown>, where: string): Expr {
    const min = this.count(schema, "minLength", where) ?? 0;
    const max = this.count(schema, "maxLength", where) ?? Infinity;
    if (max < min) invalid(where, `maxLength ${max} is below minLength ${min}`);
    if (min === 0 && max === Infinity) return this.shared(STRING);
    // Past MAX_COUNT characters, strings are written shorter than allowed (still valid).
    return this.newRule("string", seq(lit('"'), rep(this.shared(STR_CHAR), min, Math.min(max, MAX_COUNT)), lit('"')));
  }

  private number(schema: Record<string, unknown>, where: string, integer: boolean): Expr {
    const bound = (key: string): number | undefined => {
      const v = schema[key];
      if (v === undefined) return undefined;
      if (typeof v !== "number" || !Number.isFinite(v)) invalid(where, `${key} must be a finite number`);
      return v;
    };
    let lo: Bound | null = null;
    let hi: Bound | null = null;
    const min = bound("minimum");
    const max = bound("maximum");
    const xmin = bound("exclusiveMinimum");
    const xmax = bound("exclusiveMaximum");
    if (min !== undefined) lo = { value: min, exclusive: false };
    if (xmin !== undefined && (lo === null || xmin >= lo.value)) lo = { value: xmin, exclusive: true };
    if (max !== undefined) hi = { value: max, exclusive: false };
    if (xmax !== undefined && (hi === null || xmax <= hi.value)) hi = { value: xmax, exclusive: true };
    if (lo === null && hi === null) return this.shared(integer ? INTEGER : NUMBER);
    if (integer) {
      const safe = (x: number) => Number.isSafeInteger(Math.trunc(x)) || unsupported(where, `integer bounds beyond ±2^53 are not supported`);
      if (lo) safe(lo.value);
      if (hi) safe(hi.value);
      const a = lo ? BigInt(lo.exclusive ? Math.floor(lo.value) + 1 : Math.ceil(lo.value)) : null;
      const b = hi ? BigInt(hi.exclusive ? Math.ceil(hi.value) - 1 : Math.floor(hi.value)) : null;
      if (a !== null && b !== null && a > b) invalid(where, "no integer lies between the bounds");
      return this.newRule("integer", integers(a, b));
    }
    if (lo && hi && (lo.value > hi.value || (lo.value === hi.value && (lo.exclusive || hi.exclusive)))) invalid(where, "no number lies between the bounds");
    return this.newRule("number", decimals(lo, hi, where));
  }

  private object(schema: Record<string, unknown>, where: string): Expr {
    const props = schema.properties ?? {};
    if (!isObject(props)) invalid(where, "properties must be an object");
    const required = schema.required ?? [];
    if (!Array.isArray(required) || required.some((r) => typeof r !== "string")) invalid(where, "required must be an array of strings");
    const additional = schema.additionalProperties;
    if (additional !== undefined && typeof additional !== "boolean" && !isObject(additional))
      invalid(where, "additionalProperties must be a boolean or a schema");
    // Unnamed properties: when additionalProperties allows them explicitly, or when the schema
    // names none at all ({ type: "object" } is any object), as llama.cpp does.
    const extra = additional === true || isObject(additional) ? (additional as Schema) : additional === undefined && !("properties" in schema) ? true : undefined;
    const entries: Array<{ name: string; schema: unknown; required: boolean }> = Object.entries(props).map(([name, s]) => ({
      name,
      schema: s,
      required: required.includes(name),
    }));
    for (const name of required as string[]) {
      if (Object.hasOwn(props, name) || entries.some((e) => e.name === name)) continue;
      if (additional === false) invalid(where, `required property "${name}" is not in properties and additionalProperties is false`);
      entries.push({ name, schema: extra ?? true, required: true });
    }
    const ws = this.shared(WS);
    const kv = entries.map((e) =>
      seq(lit(JSON.stringify(e.name) + ":"), ws, this.visit(e.schema, `${where}/properties/${e.name}`), ws),
    );
    // Extra properties: any key but the named ones, then a value of the additionalProperties schema.
    let extraKv: Expr | undefined;
    if (extra !== undefined) {
      const key = this.keyExcept(entries.map((e) => e.name));
      extraKv = this.newRule("extra-property", seq(key, lit(":"), ws, this.visit(extra, `${where}/additionalProperties`), ws));
    }
    // body(i, first): properties i.. in order, each optional one maybe left out; `first`: no
    // property written yet (no comma before the next).
    const memo = new Map<string, Expr>();
    const body = (i: number, first: boolean): Expr => {
      const k = `${i},${first}`;
      const known = memo.get(k);
      if (known) return known;
      let e: Expr;
      if (i === entries.length) {
        if (!extraKv) e = EMPTY;
        else if (first) e = opt(seq(extraKv, star(seq(lit(","), ws, extraKv))));
        else e = star(seq(lit(","), ws, extraKv));
      } else {
        const item = seq(first ? EMPTY : seq(lit(","), ws), kv[i], body(i + 1, false));
        e = entries[i].required ? item : alt(item, body(i + 1, first));
      }
      // Name the sub-bodies so that optional chains share rules instead of copying them.
      const r = e === EMPTY ? e : this.newRule("object-body", e);
      memo.set(k, r);
      return r;
    };
    return this.newRule("object", seq(lit("{"), ws, body(0, true), lit("}")));
  }

  /** A JSON string that is none of `names`: a trie of the names, leaving it anywhere but at a name's end. */
  private keyExcept(names: string[]): Expr {
    if (names.length === 0) return this.shared(STRING);
    interface Node {
      next: Map<number, Node>;
      end: boolean;
    }
    const rootNode: Node = { next: new Map(), end: false };
    for (const n of names) {
      let node = rootNode;
      for (const ch of n) {
        const cp = ch.codePointAt(0)!;
        let child = node.next.get(cp);
        if (!child) node.next.set(cp, (child = { next: new Map(), end: false }));
        node = child;
      }
      node.end = true;
    }
    // Names are matched as their raw characters; a key spelled with escapes is a different
    // text but may be the same name, so keys leave the trie only through unescaped characters
    // and never use escapes while inside it.
    const build = (node: Node): Expr => {
      const alts: Expr[] = [];
      if (!node.end) alts.push(lit('"'));
      const taken = [...node.next.keys()].filter((cp) => cp !== 0x22 && cp !== 0x5c && cp >= 0x20);
      // Any other unescaped character leaves the trie: the rest is any string.
      const pairs: Array<[number, number]> = taken.map((cp) => [cp, cp]);
      pairs.push([0x22, 0x22], [0x5c, 0x5c], [0x00, 0x1f]);
      alts.push(seq(charClass(pairs, true), this.shared(STR_REST)));
      for (const [cp, child] of node.next) {
        if (cp === 0x22 || cp === 0x5c || cp < 0x20) continue;
        alts.push(seq(lit(String.fromCodePoint(cp)), build(child)));
      }
      return this.newRule("key", alt(...alts));
    };
    return seq(lit('"'), build(rootNode));
  }

  private array(schema: Record<string, unknown>, where: string): Expr {
    const min = this.count(schema, "minItems", where) ?? 0;
    const given = this.count(schema, "maxItems", where) ?? Infinity;
    if (given < min) invalid(where, `maxItems ${given} is below minItems ${min}`);
    // Past MAX_COUNT items, arrays are written shorter than allowed (still valid).
    const max = given === Infinity ? Infinity : Math.min(given, MAX_COUNT);
    const prefix = schema.prefixItems;
    if (prefix !== undefined && !Array.isArray(prefix)) invalid(where, "prefixItems must be an array of schemas");
    const items = schema.items;
    if (Array.isArray(items)) unsupported(where, `"items" as an array (draft 4-7 tuples) is not supported; use prefixItems`);
    const ws = this.shared(WS);
    const tuple = (prefix ?? []).map((s, i) => seq(this.visit(s, `${where}/prefixItems/${i}`), ws));
    const restAllowed = items !== false;
    const rest = restAllowed ? seq(this.visit(items ?? true, `${where}/items`), ws) : undefined;
    if (!restAllowed && min > tuple.length) invalid(where, `minItems ${min} needs more items than prefixItems has, and items is false`);
    const upper = restAllowed ? max : Math.min(max, tuple.length);
    // Item k (0-based) with its leading comma; items past the tuple are `rest`.
    const item = (k: number): Expr => seq(k === 0 ? EMPTY : seq(lit(","), ws), k < tuple.length ? tuple[k] : rest!);
    const parts: Expr[] = [];
    // Required items one after another, then the optional ones nested.
    for (let k = 0; k < min; k++) parts.push(item(k));
    let tail: Expr = EMPTY;
    if (upper === Infinity) {
      const fixed = Math.max(min, tuple.length);
      // Optional tuple items up to the tuple's end, then any number of rest items.
      let more: Expr = fixed === 0 ? opt(seq(item(0), star(item(1)))) : star(item(fixed));
      for (let k = fixed - 1; k >= min; k--) more = opt(seq(item(k), more));
      tail = more;
    } else {
      for (let k = upper - 1; k >= min; k--) tail = opt(seq(item(k), tail));
    }
    parts.push(tail);
    return this.newRule("array", seq(lit("["), ws, ...parts, lit("]")));
  }

  // ------------------------------------------------------------ enum and const

  private enumeration(schema: Record<string, unknown>, where: string): Expr {
    let values: unknown[];
    if ("const" in schema) {
      values = [schema.const];
      if ("enum" in schema) {
        if (!Array.isArray(schema.enum)) invalid(where, "enum must be an array");
        values = values.filter((v) => (schema.enum as unknown[]).some((e) => jsonEqual(e, v)));
      }
    } else {
      if (!Array.isArray(schema.enum) || schema.enum.length === 0) invalid(where, "enum must be a non-empty array");
      values = schema.enum;
    }
    const rest = Object.fromEntries(Object.entries(schema).filter(([k]) => k !== "enum" && k !== "const"));
    const fitting = values.filter((v) => fits(rest as Schema, v as Json, this.root));
    if (fitting.length === 0) invalid(where, "no enum/const value satisfies the schema's other keywords");
    const alts = fitting.map((v) => {
      const text = JSON.stringify(v);
      if (text === undefined) invalid(where, "enum/const values must be JSON values");
      return lit(text);
    });
    return alt(...alts);
  }

  // ------------------------------------------------------------ oneOf

  /**
   * oneOf is generated as anyOf, which is only right when no value can match two branches.
   * Branches are accepted when every pair is provably disjoint: different JSON types, enum or
   * const values that differ, a required property whose enum/const values differ, a required
   * property the other branch forbids, or numeric ranges that do not meet.
   */
  private checkDisjoint(list: unknown[], where: string): void {
    const infos = list.map((s) => this.describe(s));
    for (let i = 0; i < infos.length; i++)
      for (let j = i + 1; j < infos.length; j++)
        if (!disjoint(infos[i], infos[j]))
          unsupported(where, `oneOf branches ${i} and ${j} may both match a value (a oneOf failure); use anyOf, or tell them apart with "type", "const" or a required property with distinct "const" values`);
  }

  private describe(schema: unknown, depth = 0): BranchInfo {
    if (depth > 16 || typeof schema === "boolean" || !isObject(schema)) return ANY_BRANCH;
    if (typeof schema.$ref === "string") {
      try {
        return this.describe(this.resolve(schema.$ref, "").schema, depth + 1);
      } catch {
        return ANY_BRANCH;
      }
    }
    const info: BranchInfo = { types: new Set(TYPES), values: undefined, required: new Map(), closed: undefined, range: undefined };
    if (schema.type !== undefined) {
      const list = (Array.isArray(schema.type) ? schema.type : [schema.type]) as TypeName[];
      info.types = new Set(list);
      if (info.types.has("number")) info.types.add("integer");
    }
    if ("const" in schema) info.values = [schema.const];
    else if (Array.isArray(schema.enum)) info.values = schema.enum;
    if (info.values) info.types = new Set([...info.types].filter((t) => info.values!.some((v) => jsonType(v) === t || (t === "number" && jsonType(v) === "integer"))));
    for (const key of ["anyOf", "oneOf"]) {
      const list = schema[key];
      if (Array.isArray(list)) {
        const union = new Set<TypeName>();
        for (const b of list) for (const t of this.describe(b, depth + 1).types) union.add(t);
        info.types = new Set([...info.types].filter((t) => union.has(t)));
      }
    }
    const props = isObject(schema.properties) ? schema.properties : {};
    const req = Array.isArray(schema.required) ? (schema.required as string[]) : [];
    for (const name of req) {
      const p = props[name];
      let vals: unknown[] | undefined;
      if (isObject(p) && "const" in p) vals = [p.const];
      else if (isObject(p) && Array.isArray(p.enum)) vals = p.enum;
      info.required.set(name, vals);
    }
    if (schema.additionalProperties === false) info.closed = new Set(Object.keys(props));
    const num = (k: string) => (typeof schema[k] === "number" ? (schema[k] as number) : undefined);
    const lo = num("exclusiveMinimum") ?? num("minimum");
    const hi = num("exclusiveMaximum") ?? num("maximum");
    if (lo !== undefined || hi !== undefined)
      info.range = { lo: lo ?? -Infinity, hi: hi ?? Infinity, loX: num("exclusiveMinimum") !== undefined, hiX: num("exclusiveMaximum") !== undefined };
    return info;
  }
}

interface BranchInfo {
  types: Set<TypeName>;
  values: unknown[] | undefined;
  /** Required properties, with their enum/const values when they have them. */
  required: Map<string, unknown[] | undefined>;
  /** Property names allowed at all (additionalProperties: false). */
  closed: Set<string> | undefined;
  range: { lo: number; hi: number; loX: boolean; hiX: boolean } | undefined;
}

const ANY_BRANCH: BranchInfo = { types: new Set(TYPES), values: undefined, required: new Map(), closed: undefined, range: undefined };

function disjoint(a: BranchInfo, b: BranchInfo): boolean {
  const common = [...a.types].filter((t) => b.types.has(t));
  if (common.length === 0) return true;
  if (a.values && b.values && !a.values.some((x) => b.values!.some((y) => jsonEqual(x, y)))) return true;
  const onlyObjects = common.every((t) => t === "object");
  if (onlyObjects) {
    for (const [name, va] of a.required) {
      const vb = b.required.get(name);
      if (va && vb && !va.some((x) => vb.some((y) => jsonEqual(x, y)))) return true;
      if (b.closed && !b.closed.has(name)) return true;
    }
    for (const name of b.required.keys()) if (a.closed && !a.closed.has(name)) return true;
  }
  const onlyNumbers = common.every((t) => t === "number" || t === "integer");
  if (onlyNumbers && a.range && b.range) {
    const below = (x: typeof a.range, y: typeof a.range) => x.hi < y.lo || (x.hi === y.lo && (x.hiX || y.loX));
    if (below(a.range, b.range) || below(b.range, a.range)) return true;
  }
  return false;
}

function jsonType(v: unknown): TypeName {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  if (typeof v === "number") return Number.isInteger(v) ? "integer" : "number";
  return typeof v as TypeName;
}

function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== typeof b || a === null || b === null || typeof a !== "object") return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) return a.length === (b as unknown[]).length && a.every((x, i) => jsonEqual(x, (b as unknown[])[i]));
  const ka = Object.keys(a as object);
  const kb = Object.keys(b as object);
  return ka.length === kb.length && ka.every((k) => Object.hasOwn(b as object, k) && jsonEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

/** Whether `v` validates against `schema` (the supported keywords; used to filter enum values). */
function fits(schema: Schema, v: Json, root: Schema, depth = 0): boolean {
  if (schema === true) return true;
  if (schema === false || depth > 64) return false;
  const s = schema as Record<string, unknown>;
  if (typeof s.$ref === "string") {
    let node: unknown = root;
    for (const raw of s.$ref === "#" ? [] : s.$ref.slice(2).split("/")) {
      const key = decodeURIComponent(raw).replace(/~1/g, "/").replace(/~0/g, "~");
      node = isObject(node) || Array.isArray(node) ? (node as Record<string, unknown>)[key] : undefined;
    }
    if (!fits(node as Schema, v, root, depth + 1)) return false;
  }
  if (s.type !== undefined) {
    const list = Array.isArray(s.type) ? s.type : [s.type];
    const t = jsonType(v);
    if (!list.some((x) => x === t || (x === "number" && t === "integer") || (x === "integer" && t === "number" && Number.isInteger(v)))) return false;
  }
  if ("const" in s && !jsonEqual(s.const, v)) return false;
  if (Array.isArray(s.enum) && !s.enum.some((e) => jsonEqual(e, v))) return false;
  if (Array.isArray(s.anyOf) && !s.anyOf.some((b) => fits(b as Schema, v, root, depth + 1))) return false;
  if (Array.isArray(s.oneOf) && s.oneOf.filter((b) => fits(b as Schema, v, root, depth + 1)).length !== 1) return false;
  if (typeof v === "string") {
    const n = [...v].length;
    if (typeof s.minLength === "number" && n < s.minLength) return false;
    if (typeof s.maxLength === "number" && n > s.maxLength) return false;
  }
  if (typeof v === "number") {
    if (typeof s.minimum === "number" && v < s.minimum) return false;
    if (typeof s.maximum === "number" && v > s.maximum) return false;
    if (typeof s.exclusiveMinimum === "number" && v <= s.exclusiveMinimum) return false;
    if (typeof s.exclusiveMaximum === "number" && v >= s.exclusiveMaximum) return false;
  }
  if (Array.isArray(v)) {
    if (typeof s.minItems === "number" && v.length < s.minItems) return false;
    if (typeof s.maxItems === "number" && v.length > s.maxItems) return false;
    const prefix = Array.isArray(s.prefixItems) ? s.prefixItems : [];
    for (let i = 0; i < v.length; i++) {
      const sub = i < prefix.length ? prefix[i] : s.items;
      if (sub !== undefined && !fits(sub as Schema, v[i], root, depth + 1)) return false;
    }
  }
  if (isObject(v)) {
    const props = isObject(s.properties) ? s.properties : {};
    if (Array.isArray(s.required) && s.required.some((r) => !Object.hasOwn(v, r as string))) return false;
    for (const [k, x] of Object.entries(v)) {
      if (Object.hasOwn(props, k)) {
        if (!fits(props[k] as Schema, x, root, depth + 1)) return false;
      } else if (s.additionalProperties !== undefined && !fits(s.additionalProperties as Schema, x, root, depth + 1)) return false;
    }
  }
  return true;
}

/**
 * The rules every schema's grammar defines the same way (whitespace, strings, numbers, any
 * value): grammars that combine several schemas (tool calls) keep one copy of each.
 */
export const SHARED_RULES: ReadonlySet<string> = new Set(Object.keys(SHARED));

/** The grammar of JSON values valid under `schema`; errors name the keyword and its place. */
export function jsonSchemaGrammar(schema: unknown): Grammar {
  if (typeof schema !== "boolean" && !isObject(schema)) invalid("#", "a schema must be an object or a boolean");
  const c = new SchemaCompiler(schema as Schema);
  const body = c.visit(schema, "#");
  c.rules.set("root", body);
  return { rules: c.rules, root: "root" };
}

/** Any JSON object (OpenAI's response_format json_object). */
export function jsonObjectGrammar(): Grammar {
  const c = new SchemaCompiler(true);
  c.rules.set("root", c.shared(OBJECT));
  return { rules: c.rules, root: "root" };
}
