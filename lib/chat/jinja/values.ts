/**
 * The runtime values of @huggingface/jinja, with the Python semantics jinja2 gives them.
 *
 * The library exports only Environment, Interpreter, parse and tokenize; its value classes
 * (StringValue, ArrayValue, ...) are not exported, but the base interpreter tells values
 * apart with `instanceof`, so values we create must be instances of those very classes.
 * Environment.set() converts a JS value and returns the runtime value, so one probe per
 * class hands us each constructor.
 *
 * On top of them: Python's str() and repr(), ==, ordering, json.dumps (the `tojson` of
 * transformers), and dicts with non-string keys ({0: 'a'} is a dict literal in templates;
 * the library's ObjectValue keys by string, so other keys are encoded and remembered).
 */
import { Environment, Interpreter, parse, tokenize } from "./library.js";

/** The shape every runtime value of the library has. */
export interface Value {
  type: string;
  value: unknown;
  __bool__(): { value: boolean };
}
export interface StrV extends Value {
  value: string;
}
export interface IntV extends Value {
  value: number;
}
export interface FloatV extends Value {
  value: number;
}
export interface BoolV extends Value {
  value: boolean;
}
export interface NullV extends Value {
  value: null;
}
export interface UndefV extends Value {
  value: undefined;
}
export interface ArrV extends Value {
  value: Value[];
}
export interface ObjV extends Value {
  value: Map<string, Value>;
}
export interface NsV extends Value {
  value: Map<string, Value>;
}
export type Fn = (args: Value[], scope: Environment) => Value;
export interface FnV extends Value {
  value: Fn;
}

interface Ctor<V extends Value, T> {
  new (value?: T): V;
  prototype: V;
}

const probeEnv = new Environment();
let probeCount = 0;
const probe = (v: unknown): Value => probeEnv.set(`__probe${probeCount++}`, v) as unknown as Value;
const ctor = <V extends Value, T>(v: Value) => v.constructor as Ctor<V, T>;

export const StringValue = ctor<StrV, string>(probe(""));
export const IntegerValue = ctor<IntV, number>(probe(1));
export const FloatValue = ctor<FloatV, number>(probe(1.5));
export const BooleanValue = ctor<BoolV, boolean>(probe(true));
export const NullValue = ctor<NullV, null>(probe(null));
export const UndefinedValue = ctor<UndefV, undefined>(probe(undefined));
export const ArrayValue = ctor<ArrV, Value[]>(probe([]));
export const ObjectValue = ctor<ObjV, Map<string, Value>>(probe({}));
export const FunctionValue = ctor<FnV, Fn>(probe(() => 0));

function probeExpression(source: string, env: Environment): Value {
  const program = parse(tokenize(source));
  return new Interpreter(env).evaluate(program.body[0], env) as unknown as Value;
}
/** (a, b): the library's TupleValue (an ArrayValue subclass). */
export const TupleValue = ctor<ArrV, Value[]>(probeExpression("{{ (1, 2) }}", new Environment()));
/** The trailing argument a call with keywords receives (an ObjectValue subclass). */
export const KeywordArgumentsValue = (() => {
  const env = new Environment();
  let captured: Value | undefined;
  env.set("f", () => null);
  (env.variables as Map<string, unknown>).set(
    "f",
    new FunctionValue((args) => {
      captured = args[args.length - 1];
      return new NullValue();
    }),
  );
  probeExpression("{{ f(a=1) }}", env);
  return ctor<ObjV, Map<string, Value>>(captured!);
})();
export const NamespaceValue = (() => {
  const ns = (new Environment().variables.get("namespace") as unknown as FnV).value([], new Environment());
  return ctor<NsV, Map<string, Value>>(ns);
})();

/** The base class of the library's AST nodes (its macro analysis only descends into these). */
export const StatementBase = (() => {
  const identifier = parse(tokenize("{{ x }}")).body[0] as object;
  let proto = Object.getPrototypeOf(identifier.constructor);
  while (Object.getPrototypeOf(proto) !== Function.prototype && Object.getPrototypeOf(proto).name) proto = Object.getPrototypeOf(proto);
  return proto as new () => { type: string };
})();

// ---------------------------------------------------------------- constructors and tests

export const NONE = new NullValue();
export const TRUE = new BooleanValue(true);
export const FALSE = new BooleanValue(false);
export const str = (s: string): StrV => new StringValue(s);
export const int = (n: number): IntV => new IntegerValue(n);
export const float = (n: number): FloatV => new FloatValue(n);
export const bool = (b: boolean): BoolV => (b ? TRUE : FALSE);
export const list = (items: Value[]): ArrV => new ArrayValue(items);
/**
 * A tuple. Its `type` says "ArrayValue" because the library's for loop only unpacks values
 * of that type (`for k, v in d.items()`); isTuple() still tells it apart by its class.
 */
export const tuple = (items: Value[]): ArrV => {
  const t = new TupleValue(items);
  t.type = "ArrayValue";
  return t;
};
export const fn = (f: Fn): FnV => new FunctionValue(f);

/**
 * jinja2's Undefined: empty when printed or iterated, an error when its attributes are read,
 * it is called or it takes part in arithmetic. `hint` is jinja2's message for that error.
 */
export class PyUndefined extends UndefinedValue {
  constructor(readonly hint: string) {
    super(undefined);
  }
}
export const undef = (hint: string): UndefV => new PyUndefined(hint);

/** jinja2's message for a missing attribute or item (Undefined._undefined_message). */
export function missingMessage(obj: Value, key: Value): string {
  const owner = isNone(obj) ? "None" : `${typeName(obj)} object`;
  if (!isStr(key)) return `${owner} has no element ${pyRepr(key)}`;
  return `${strRepr(owner)} has no attribute ${strRepr(key.value)}`;
}
export function undefinedHint(v: Value): string {
  return v instanceof PyUndefined ? v.hint : "the value is undefined";
}

export const isStr = (v: Value): v is StrV => v instanceof StringValue;

/**
 * markupsafe's Markup: strings marked safe (`|safe`, `|escape`). Joining one with a plain
 * string by `+` HTML-escapes the plain side, which some templates rely on.
 */
const markups = new WeakSet<object>();
export function markup(s: string): StrV {
  const v = new StringValue(s);
  markups.add(v);
  return v;
}
export const isMarkup = (v: Value): boolean => markups.has(v);
export function htmlEscape(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&#34;").replace(/'/g, "&#39;");
}
export const isInt = (v: Value): v is IntV => v instanceof IntegerValue;
export const isFloat = (v: Value): v is FloatV => v instanceof FloatValue;
export const isBool = (v: Value): v is BoolV => v instanceof BooleanValue;
/** int, float or bool (Python's bool is an int). */
export const isNumeric = (v: Value): v is IntV | FloatV | BoolV => isInt(v) || isFloat(v) || isBool(v);
export const isNone = (v: Value): v is NullV => v instanceof NullValue;
export const isUndef = (v: Value): v is UndefV => v instanceof UndefinedValue;
/**
 * Iterators and dict views (what select/map/items() return in Python): iterable like a
 * list, but without len() (generators), indexing, or a JSON form, and always true (generators).
 */
export type IterKind = "generator" | "list_reverseiterator" | "dict_items" | "dict_keys" | "dict_values";
const iterKinds = new WeakMap<object, IterKind>();
export function iterView(kind: IterKind, items: Value[]): ArrV {
  const v = new ArrayValue(items);
  iterKinds.set(v, kind);
  if (kind === "generator" || kind === "list_reverseiterator") v.__bool__ = () => TRUE;
  return v;
}
export const iterKindOf = (v: Value): IterKind | undefined => iterKinds.get(v);
/** A list or tuple (not an iterator or view, though those are ArrayValues to the library). */
export const isList = (v: Value): v is ArrV => v instanceof ArrayValue && !iterKinds.has(v);
/** Anything a for loop can walk as the library's array: lists, tuples, iterators, views. */
export const isArrayLike = (v: Value): v is ArrV => v instanceof ArrayValue;
export const isTuple = (v: Value): boolean => v instanceof TupleValue;
export const isNamespace = (v: Value): v is NsV => v instanceof NamespaceValue;
export const isFn = (v: Value): v is FnV => v instanceof FunctionValue;
/** A dict (not the keyword arguments of a call, which the library also makes an ObjectValue). */
export const isDict = (v: Value): v is ObjV => v instanceof ObjectValue && !(v instanceof KeywordArgumentsValue);
export const isKwargs = (v: Value): v is ObjV => v instanceof KeywordArgumentsValue;
/** The `loop` of a for loop: an ObjectValue subclass of the library's own. */
export const isLoop = (v: Value): v is ObjV =>
  v instanceof ObjectValue && v.constructor !== ObjectValue && !(v instanceof KeywordArgumentsValue);

export function numberOf(v: IntV | FloatV | BoolV): number {
  return isBool(v) ? (v.value ? 1 : 0) : v.value;
}

/** A Python type error (TypeError, ValueError...): the renderer reports it with the template's context. */
export class PyError extends Error {
  constructor(
    readonly kind: string,
    message: string,
  ) {
    super(message);
  }
}
export const typeError = (message: string) => new PyError("TypeError", message);

export function typeName(v: Value): string {
  if (isStr(v)) return "str";
  if (isBool(v)) return "bool";
  if (isInt(v)) return "int";
  if (isFloat(v)) return "float";
  if (isNone(v)) return "NoneType";
  if (isUndef(v)) return "Undefined";
  const kind = iterKinds.get(v);
  if (kind) return kind;
  if (isTuple(v)) return "tuple";
  if (isList(v)) return "list";
  if (isLoop(v)) return "LoopContext";
  if (isDict(v)) return "dict";
  if (isNamespace(v)) return "Namespace";
  if (isFn(v)) return "function";
  return v.type;
}

// ---------------------------------------------------------------- dicts with any hashable key

const dictKeyValues = new WeakMap<object, Map<string, Value>>();

/** The string a key is stored under in the ObjectValue's Map (Python: 1 == 1.0 == True share one). */
export function encodeKey(key: Value): string {
  if (isStr(key)) return key.value;
  if (isNumeric(key)) return `\u0000num:${numberOf(key)}`;
  if (isNone(key)) return "\u0000none";
  if (isList(key) && isTuple(key)) return `\u0000tuple:${JSON.stringify(key.value.map(encodeKey))}`;
  throw typeError(`unhashable type: '${typeName(key)}'`);
}

export function dictSet(d: ObjV, key: Value, value: Value): void {
  const k = encodeKey(key);
  if (!isStr(key) && !d.value.has(k)) {
    let keys = dictKeyValues.get(d);
    if (!keys) dictKeyValues.set(d, (keys = new Map()));
    keys.set(k, key);
  }
  d.value.set(k, value);
}

export function dictGet(d: ObjV, key: Value): Value | undefined {
  let k: string;
  try {
    k = encodeKey(key);
  } catch {
    return undefined;
  }
  return d.value.get(k);
}

export function newDict(entries: Array<[Value, Value]> = []): ObjV {
  const d = new ObjectValue(new Map());
  for (const [k, v] of entries) dictSet(d, k, v);
  return d;
}

/** The dict's keys as values (strings unless a non-string key was stored). */
export function dictKeys(d: ObjV): Value[] {
  const stored = dictKeyValues.get(d);
  return [...d.value.keys()].map((k) => stored?.get(k) ?? str(k));
}

export function dictItems(d: ObjV): Array<[Value, Value]> {
  const stored = dictKeyValues.get(d);
  return [...d.value.entries()].map(([k, v]) => [stored?.get(k) ?? str(k), v]);
}

// ---------------------------------------------------------------- str() and repr()

/** Python's repr of a float: the shortest round-trip digits, scientific below 1e-4 and from 1e16. */
export function floatRepr(x: number): string {
  if (Number.isNaN(x)) return "nan";
  if (x === Infinity) return "inf";
  if (x === -Infinity) return "-inf";
  if (x === 0) return Object.is(x, -0) ? "-0.0" : "0.0";
  const [mantissa, expText] = x.toExponential().split("e");
  const exp = Number(expText);
  const negative = mantissa.startsWith("-");
  const digits = mantissa.replace("-", "").replace(".", "");
  let out: string;
  if (exp < -4 || exp >= 16) {
    const sign = exp < 0 ? "-" : "+";
    out = `${digits[0]}${digits.length > 1 ? "." + digits.slice(1) : ""}e${sign}${String(Math.abs(exp)).padStart(2, "0")}`;
  } else if (exp < 0) {
    out = `0.${"0".repeat(-exp - 1)}${digits}`;
  } else if (digits.length <= exp + 1) {
    out = `${digits}${"0".repeat(exp + 1 - digits.length)}.0`;
  } else {
    out = `${digits.slice(0, exp + 1)}.${digits.slice(exp + 1)}`;
  }
  return negative ? "-" + out : out;
}

function intText(n: number): string {
  return Number.isSafeInteger(n) ? String(n) : BigInt(n).toString();
}

// Python's str.isprintable(): not "Other" (C*) or "Separator" (Z*), except the ASCII space.
const NON_PRINTABLE = /[\p{C}\p{Z}]/u;

export function strRepr(s: string): string {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = quote;
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (ch === quote || ch === "\\") out += "\\" + ch;
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (ch === "\t") out += "\\t";
    else if (ch !== " " && NON_PRINTABLE.test(ch)) {
      if (cp < 0x100) out += "\\x" + cp.toString(16).padStart(2, "0");
      else if (cp < 0x10000) out += "\\u" + cp.toString(16).padStart(4, "0");
      else out += "\\U" + cp.toString(16).padStart(8, "0");
    } else out += ch;
  }
  return out + quote;
}

export function pyRepr(v: Value): string {
  if (isStr(v)) return strRepr(v.value);
  if (isBool(v)) return v.value ? "True" : "False";
  if (isInt(v)) return intText(v.value);
  if (isFloat(v)) return floatRepr(v.value);
  if (isNone(v)) return "None";
  if (isUndef(v)) return "Undefined";
  if (isList(v) && isTuple(v)) return v.value.length === 1 ? `(${pyRepr(v.value[0])},)` : `(${v.value.map(pyRepr).join(", ")})`;
  if (isList(v)) return `[${v.value.map(pyRepr).join(", ")}]`;
  if (isDict(v)) return `{${dictItems(v)
    .map(([k, x]) => `${pyRepr(k)}: ${pyRepr(x)}`)
    .join(", ")}}`;
  if (isNamespace(v)) return `<Namespace {${[...v.value].map(([k, x]) => `${strRepr(k)}: ${pyRepr(x)}`).join(", ")}}>`;
  if (isFn(v)) return "<function>";
  const kind = iterKinds.get(v);
  if (kind === "generator") return "<generator object at 0x0>";
  if (kind === "list_reverseiterator") return "<list_reverseiterator object at 0x0>";
  if (kind && isArrayLike(v)) return `${kind}([${v.value.map(pyRepr).join(", ")}])`;
  return String(v.value);
}

/** Python's str(): what {{ value }} prints. */
export function pyStr(v: Value): string {
  if (isStr(v)) return v.value;
  if (isUndef(v)) return "";
  return pyRepr(v);
}

// ---------------------------------------------------------------- ==, ordering, `in`

export function pyEq(a: Value, b: Value): boolean {
  if (isNumeric(a) && isNumeric(b)) return numberOf(a) === numberOf(b);
  if (isStr(a) && isStr(b)) return a.value === b.value;
  if (isNone(a) || isNone(b)) return isNone(a) && isNone(b);
  if (isUndef(a) || isUndef(b)) return isUndef(a) && isUndef(b);
  if (isList(a) && isList(b)) {
    if (isTuple(a) !== isTuple(b) || a.value.length !== b.value.length) return false;
    return a.value.every((x, i) => pyEq(x, b.value[i]));
  }
  if (isDict(a) && isDict(b)) {
    if (a.value.size !== b.value.size) return false;
    for (const [k, x] of a.value) {
      const y = b.value.get(k);
      if (y === undefined || !pyEq(x, y)) return false;
    }
    return true;
  }
  return a === b;
}

/** Python's ordering (<): numbers with numbers, str with str, sequences item by item; else TypeError. */
export function pyCompare(a: Value, b: Value, op = "<"): number {
  if (isNumeric(a) && isNumeric(b)) {
    const x = numberOf(a);
    const y = numberOf(b);
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (isStr(a) && isStr(b)) return compareCodePoints(a.value, b.value);
  if (isList(a) && isList(b) && isTuple(a) === isTuple(b)) {
    const n = Math.min(a.value.length, b.value.length);
    for (let i = 0; i < n; i++) {
      if (!pyEq(a.value[i], b.value[i])) return pyCompare(a.value[i], b.value[i], op);
    }
    return a.value.length - b.value.length;
  }
  if (isUndef(a) || isUndef(b)) throw new UndefinedUse(undefinedHint(isUndef(a) ? a : b));
  throw typeError(`'${op}' not supported between instances of '${typeName(a)}' and '${typeName(b)}'`);
}

/** Strings compare by code point in Python (JS compares UTF-16 units). */
export function compareCodePoints(a: string, b: string): number {
  if (a === b) return 0;
  const x = [...a];
  const y = [...b];
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) {
    if (x[i] !== y[i]) return x[i].codePointAt(0)! - y[i].codePointAt(0)!;
  }
  return x.length - y.length;
}

/** jinja2's UndefinedError: an undefined value was used where a value is needed. */
export class UndefinedUse extends Error {}

export function pyIn(item: Value, container: Value): boolean {
  if (isStr(container)) {
    if (isUndef(item)) throw new UndefinedUse(undefinedHint(item));
    if (!isStr(item)) throw typeError(`'in <string>' requires string as left operand, not ${typeName(item)}`);
    return container.value.includes(item.value);
  }
  if (isArrayLike(container)) return container.value.some((x) => pyEq(x, item));
  if (isDict(container)) return dictGet(container, item) !== undefined;
  if (isUndef(container)) return false;
  throw typeError(`argument of type '${typeName(container)}' is not iterable`);
}

/** The items `for x in value` visits (dict: its keys; str: its characters). */
export function pyIterate(v: Value): Value[] {
  if (isArrayLike(v)) return v.value;
  if (isDict(v)) return dictKeys(v);
  if (isStr(v)) return Array.from(v.value, (c) => str(c));
  if (isUndef(v)) return [];
  throw typeError(`'${typeName(v)}' object is not iterable`);
}

export function pyLen(v: Value): number {
  if (isStr(v)) return [...v.value].length;
  if (isList(v)) return v.value.length;
  const kind = iterKinds.get(v);
  if (kind?.startsWith("dict_") && isArrayLike(v)) return v.value.length;
  if (isDict(v)) return v.value.size;
  if (isUndef(v)) return 0;
  throw typeError(`object of type '${typeName(v)}' has no len()`);
}

// ---------------------------------------------------------------- json.dumps

export interface DumpOptions {
  ensureAscii?: boolean;
  indent?: number | string | null;
  separators?: [string, string] | null;
  sortKeys?: boolean;
}

function jsonString(s: string, ensureAscii: boolean): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const ch = s[i];
    if (ch === '"') out += '\\"';
    else if (ch === "\\") out += "\\\\";
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (ch === "\t") out += "\\t";
    else if (ch === "\b") out += "\\b";
    else if (ch === "\f") out += "\\f";
    else if (c < 0x20 || (ensureAscii && c > 0x7e)) out += "\\u" + c.toString(16).padStart(4, "0");
    else out += ch;
  }
  return out + '"';
}

function jsonKey(k: Value): string {
  if (isStr(k)) return k.value;
  if (isBool(k)) return k.value ? "true" : "false";
  if (isInt(k)) return intText(k.value);
  if (isFloat(k)) return floatRepr(k.value);
  if (isNone(k)) return "null";
  throw typeError(`keys must be str, int, float, bool or None, not ${typeName(k)}`);
}

/** Python's json.dumps, as transformers' tojson calls it (ensure_ascii=False by default). */
export function jsonDumps(v: Value, options: DumpOptions = {}): string {
  const ensureAscii = options.ensureAscii ?? false;
  const indent = options.indent === undefined || options.indent === null ? null : typeof options.indent === "number" ? " ".repeat(Math.max(0, options.indent)) : options.indent;
  const [itemSep, keySep] = options.separators ?? (indent === null ? [", ", ": "] : [",", ": "]);
  const walk = (x: Value, depth: number): string => {
    if (isStr(x)) return jsonString(x.value, ensureAscii);
    if (isBool(x)) return x.value ? "true" : "false";
    if (isInt(x)) return intText(x.value);
    if (isFloat(x)) {
      if (Number.isNaN(x.value)) return "NaN";
      if (!Number.isFinite(x.value)) return x.value > 0 ? "Infinity" : "-Infinity";
      return floatRepr(x.value);
    }
    if (isNone(x)) return "null";
    const open = (items: string[], l: string, r: string) => {
      if (items.length === 0) return l + r;
      if (indent === null) return l + items.join(itemSep) + r;
      const inner = "\n" + indent.repeat(depth + 1);
      return l + inner + items.join(itemSep + inner) + "\n" + indent.repeat(depth) + r;
    };
    if (isList(x)) return open(x.value.map((y) => walk(y, depth + 1)), "[", "]");
    if (isDict(x)) {
      let items = dictItems(x).map(([k, y]) => [jsonKey(k), y] as const);
      if (options.sortKeys) items = [...items].sort((a, b) => compareCodePoints(a[0], b[0]));
      return open(
        items.map(([k, y]) => jsonString(k, ensureAscii) + keySep + walk(y, depth + 1)),
        "{",
        "}",
      );
    }
    throw typeError(`Object of type ${typeName(x)} is not JSON serializable`);
  };
  return walk(v, 0);
}

// ---------------------------------------------------------------- JS values in

/** Converts a JS value (the messages, tools and extra context) to runtime values. */
export function fromJS(input: unknown, seen: Set<object> = new Set()): Value {
  switch (typeof input) {
    case "string":
      return str(input);
    case "number":
      // JS has one number type: integral values are ints, as JSON's integers are in Python,
      // except beyond 2^53 where a JSON integer could not have been exact anyway (3e20).
      return Number.isSafeInteger(input) ? int(input) : float(input);
    case "boolean":
      return bool(input);
    case "undefined":
      return undef("the value is undefined");
    case "bigint":
      return int(Number(input));
    case "object": {
      if (input === null) return NONE;
      if (seen.has(input)) throw typeError("the value refers to itself (a cycle); templates take plain JSON-like data");
      seen.add(input);
      try {
        if (Array.isArray(input)) return list(input.map((x) => fromJS(x, seen)));
        if (input instanceof Date) return str(input.toISOString());
        const d = newDict();
        for (const [k, v] of Object.entries(input)) if (v !== undefined) dictSet(d, str(k), fromJS(v, seen));
        return d;
      } finally {
        seen.delete(input);
      }
    }
    default:
      throw typeError(`a ${typeof input} cannot be passed to a template`);
  }
}
