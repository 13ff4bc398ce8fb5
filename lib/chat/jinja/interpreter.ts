/**
 * @huggingface/jinja's interpreter with jinja2's semantics where chat templates see them.
 *
 * The library's Interpreter dispatches every expression through its public evaluate();
 * this subclass takes over the node types whose meaning differs from Python's (attribute
 * and item access, operators, filters, tests, output, iteration, dict literals) and leaves
 * statements, macros, call blocks, loops and namespaces to the library. Two node types of
 * our own mark where Python's str() (output) and iter() (for loops) apply; compile() wraps
 * the parsed program's nodes in them.
 *
 * What jinja2 does that matters here, in the environment transformers uses
 * (ImmutableSandboxedEnvironment):
 *  - `a.b` tries the attribute first (dict.items is the method, not a key "items"), `a['b']`
 *    the item first; a miss is Undefined, and using an Undefined (attribute, call,
 *    arithmetic) raises UndefinedError, while printing or iterating it gives nothing.
 *  - Methods that modify a list or dict (append, pop, update...) are unsafe in the sandbox:
 *    calling them raises SecurityError.
 *  - Output is Python's str(): None prints "None", True "True", a dict its repr.
 *  - `+` only joins like types (str + int is a TypeError); `~` joins anything as str().
 *  - tojson is transformers' json.dumps(ensure_ascii=False, ...).
 */
import { Environment, Interpreter } from "./library.js";
import { TUPLE_BUILTIN } from "./source.js";
import type { TestWithArguments } from "./tokens.js";
import {
  FALSE,
  NONE,
  PyError,
  PyUndefined,
  StatementBase,
  TRUE,
  UndefinedUse,
  bool,
  dictGet,
  dictItems,
  dictKeys,
  dictSet,
  float,
  fn,
  int,
  isBool,
  isDict,
  isFloat,
  isFn,
  isInt,
  isKwargs,
  missingMessage,
  isMarkup,
  markup,
  htmlEscape,
  isArrayLike,
  iterKindOf,
  iterView,
  isList,
  isLoop,
  isNamespace,
  isNone,
  isNumeric,
  isStr,
  isTuple,
  isUndef,
  jsonDumps,
  list,
  newDict,
  numberOf,
  pyCompare,
  pyEq,
  pyIn,
  pyIterate,
  pyLen,
  pyRepr,
  pyStr,
  str,
  tuple,
  typeError,
  typeName,
  undef,
  undefinedHint,
  type ArrV,
  type FnV,
  type ObjV,
  type StrV,
  type Value,
} from "./values.js";

// ---------------------------------------------------------------- errors

/** raise_exception() in the template: the message is the template author's. */
export class TemplateRaise extends Error {}
/** SecurityError of jinja2's sandbox. */
export class SandboxViolation extends Error {}
/** A filter, test, method or syntax this engine does not implement. */
export class Unsupported extends Error {
  constructor(readonly construct: string) {
    super(`${construct} is not supported`);
  }
}

// ---------------------------------------------------------------- node types of our own

interface Node {
  type: string;
}
/** {{ expr }}: Python's str() of the value. */
class PyOutput extends StatementBase {
  override type = "PyOutput";
  constructor(readonly expr: Node) {
    super();
  }
}
/** The iterable of a for loop: Python's iteration (dict keys, string characters, Undefined empty). */
class PyIter extends StatementBase {
  override type = "PyIter";
  constructor(readonly expr: Node) {
    super();
  }
}

const STATEMENTS_WITH_OUTPUT_OF_THEIR_OWN = new Set(["StringLiteral", "If", "For", "Set", "Macro", "CallStatement", "FilterStatement", "Comment", "Break", "Continue"]);

/** Wraps output expressions and loop iterables of a parsed program (in place). */
export function prepareProgram(body: Node[]): void {
  for (let i = 0; i < body.length; i++) {
    const node = body[i] as Node & Record<string, unknown>;
    if (!STATEMENTS_WITH_OUTPUT_OF_THEIR_OWN.has(node.type)) {
      body[i] = new PyOutput(node);
      continue;
    }
    switch (node.type) {
      case "If":
        prepareProgram(node.body as Node[]);
        prepareProgram(node.alternate as Node[]);
        break;
      case "For": {
        const iterable = node.iterable as Node & { lhs?: Node };
        if (iterable.type === "SelectExpression") iterable.lhs = new PyIter(iterable.lhs!);
        else node.iterable = new PyIter(iterable);
        prepareProgram(node.body as Node[]);
        prepareProgram(node.defaultBlock as Node[]);
        break;
      }
      case "Set":
      case "Macro":
      case "CallStatement":
      case "FilterStatement":
        prepareProgram(node.body as Node[]);
        break;
    }
  }
}

// ---------------------------------------------------------------- argument helpers

type Kwargs = Map<string, Value>;

function splitArgs(args: Value[]): [Value[], Kwargs] {
  const last = args[args.length - 1];
  if (last !== undefined && isKwargs(last)) return [args.slice(0, -1), new Map(last.value)];
  return [args, new Map()];
}

/** Binds Python-style parameters: positional first, then keywords, then defaults. */
function bind(where: string, args: Value[], kwargs: Kwargs, names: string[], defaults: Record<string, Value> = {}): Value[] {
  if (args.length > names.length) throw typeError(`${where}() takes at most ${names.length} arguments (${args.length} given)`);
  const out = names.map((name, i) => {
    if (i < args.length) {
      if (kwargs.has(name)) throw typeError(`${where}() got multiple values for argument '${name}'`);
      return args[i];
    }
    const v = kwargs.get(name);
    kwargs.delete(name);
    if (v !== undefined) return v;
    if (Object.hasOwn(defaults, name)) return defaults[name];
    throw typeError(`${where}() missing required argument '${name}'`);
  });
  if (kwargs.size > 0) throw typeError(`${where}() got an unexpected keyword argument '${[...kwargs.keys()][0]}'`);
  return out;
}

function asStr(v: Value, what: string): string {
  if (isStr(v)) return v.value;
  if (isUndef(v)) throw new UndefinedUse(undefinedHint(v));
  throw typeError(`${what} must be str, not ${typeName(v)}`);
}

function asInt(v: Value, what: string): number {
  if (isInt(v) || isBool(v)) return numberOf(v);
  if (isUndef(v)) throw new UndefinedUse(undefinedHint(v));
  throw typeError(`${what} must be an integer, not ${typeName(v)}`);
}

function truthy(v: Value): boolean {
  return v.__bool__().value;
}

// ---------------------------------------------------------------- Python str helpers

const PY_SPACE_CHARS = "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000";
const isPySpace = (c: string) => PY_SPACE_CHARS.includes(c);

function stripChars(s: string, chars: Value | undefined, left: boolean, right: boolean): string {
  const set = chars === undefined || isNone(chars) ? null : asStr(chars, "strip arg");
  const strip = (c: string) => (set === null ? isPySpace(c) : set.includes(c));
  const cs = [...s];
  let a = 0;
  let b = cs.length;
  if (left) while (a < b && strip(cs[a])) a++;
  if (right) while (b > a && strip(cs[b - 1])) b--;
  return cs.slice(a, b).join("");
}

/** str.split() without a separator: runs of whitespace; the remainder keeps its far-side whitespace. */
function splitWhitespace(s: string, maxsplit: number, fromRight: boolean): string[] {
  const cs = [...s];
  const words: Array<[number, number]> = [];
  for (let i = 0; i < cs.length; ) {
    while (i < cs.length && isPySpace(cs[i])) i++;
    if (i >= cs.length) break;
    const start = i;
    while (i < cs.length && !isPySpace(cs[i])) i++;
    words.push([start, i]);
  }
  const text = ([a, b]: [number, number]) => cs.slice(a, b).join("");
  if (words.length === 0) return [];
  if (maxsplit < 0 || words.length <= maxsplit) return words.map(text);
  if (!fromRight) return [...words.slice(0, maxsplit).map(text), cs.slice(words[maxsplit][0]).join("")];
  const cut = words.length - maxsplit;
  return [cs.slice(0, words[cut - 1][1]).join(""), ...words.slice(cut).map(text)];
}

function pySplit(s: string, sep: Value | undefined, maxsplitV: Value | undefined, fromRight: boolean): string[] {
  const maxsplit = maxsplitV === undefined ? -1 : asInt(maxsplitV, "maxsplit");
  if (sep === undefined || isNone(sep)) return splitWhitespace(s, maxsplit, fromRight);
  const d = asStr(sep, "separator");
  if (d === "") throw new PyError("ValueError", "empty separator");
  const parts = s.split(d);
  if (maxsplit < 0 || parts.length - 1 <= maxsplit) return parts;
  if (!fromRight) return [...parts.slice(0, maxsplit), parts.slice(maxsplit).join(d)];
  return [parts.slice(0, parts.length - maxsplit).join(d), ...parts.slice(parts.length - maxsplit)];
}

function pyTitle(s: string): string {
  let out = "";
  let prevCased = false;
  for (const c of s) {
    const cased = c.toLowerCase() !== c.toUpperCase();
    out += cased ? (prevCased ? c.toLowerCase() : c.toUpperCase()) : c;
    prevCased = cased;
  }
  return out;
}

function pyCapitalize(s: string): string {
  const cs = [...s];
  return cs.length === 0 ? "" : cs[0].toUpperCase() + cs.slice(1).join("").toLowerCase();
}

function splitLines(s: string, keepEnds = false): string[] {
  const out: string[] = [];
  const re = /\r\n|[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]/g;
  let last = 0;
  for (let m = re.exec(s); m; m = re.exec(s)) {
    out.push(s.slice(last, keepEnds ? m.index + m[0].length : m.index));
    last = m.index + m[0].length;
  }
  if (last < s.length) out.push(s.slice(last));
  return out;
}

function pyReplace(s: string, old: string, repl: string, count: number): string {
  if (count < 0) {
    if (old === "") return repl + [...s].join(repl) + repl;
    return s.split(old).join(repl);
  }
  let out = "";
  let rest = s;
  for (let n = 0; n < count; n++) {
    if (old === "") {
      if (n === 0) out += repl;
      else {
        const c = [...rest][0];
        if (c === undefined) break;
        out += c + repl;
        rest = rest.slice(c.length);
      }
      continue;
    }
    const at = rest.indexOf(old);
    if (at < 0) break;
    out += rest.slice(0, at) + repl;
    rest = rest.slice(at + old.length);
  }
  return out + rest;
}

/** Python's `str % args` for %s, %r, %d, %i, %f and %%. */
function percentFormat(format: string, args: Value): string {
  const values = isTuple(args) ? (args as ArrV).value : [args];
  let i = 0;
  const out = format.replace(/%(\(([^)]*)\))?([-+ 0#]*)(\d+)?(?:\.(\d+))?([srdifx%])/g, (_m, _k, key: string | undefined, _flags, _width, precision: string | undefined, conv: string) => {
    if (conv === "%") return "%";
    let v: Value;
    if (key !== undefined) {
      if (!isDict(args)) throw typeError("format requires a mapping");
      v = dictGet(args, str(key)) ?? NONE;
    } else {
      if (i >= values.length) throw typeError("not enough arguments for format string");
      v = values[i++];
    }
    switch (conv) {
      case "s":
        return pyStr(v);
      case "r":
        return pyRepr(v);
      case "d":
      case "i":
        if (!isNumeric(v)) throw typeError(`%${conv} format: a real number is required, not ${typeName(v)}`);
        return String(Math.trunc(numberOf(v)));
      case "x":
        return Math.trunc(numberOf(v as never)).toString(16);
      default:
        if (!isNumeric(v)) throw typeError(`must be real number, not ${typeName(v)}`);
        return numberOf(v).toFixed(precision === undefined ? 6 : Number(precision));
    }
  });
  if (!isDict(args) && i < values.length) throw typeError("not all arguments converted during string formatting");
  return out;
}

/** str.format() with {}, {0} and {name} fields (the sandbox allows it). */
function strFormat(format: string, args: Value[], kwargs: Kwargs): string {
  let auto = 0;
  return format.replace(/\{\{|\}\}|\{([^{}]*)\}/g, (m, field: string | undefined) => {
    if (m === "{{") return "{";
    if (m === "}}") return "}";
    const [name] = (field ?? "").split(/[!:]/);
    let v: Value | undefined;
    if (name === "") v = args[auto++];
    else if (/^\d+$/.test(name)) v = args[Number(name)];
    else v = kwargs.get(name);
    if (v === undefined) throw new PyError("IndexError", `Replacement index ${name || auto - 1} out of range for positional args tuple`);
    return pyStr(v);
  });
}

// ---------------------------------------------------------------- strftime

const DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
const MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"];

/** C-locale strftime (what Python's datetime.strftime gives on Linux), with glibc's %-d no-padding. */
export function strftime(date: Date, format: string): string {
  const pad = (n: number, w = 2) => String(n).padStart(w, "0");
  const start = new Date(date.getFullYear(), 0, 1);
  const dayOfYear = Math.round((new Date(date.getFullYear(), date.getMonth(), date.getDate()).getTime() - start.getTime()) / 86400000) + 1;
  const h12 = date.getHours() % 12 === 0 ? 12 : date.getHours() % 12;
  return format.replace(/%(-?)([a-zA-Z%])/g, (m, noPad: string, c: string) => {
    const p = (n: number, w = 2) => (noPad ? String(n) : pad(n, w));
    switch (c) {
      case "a":
        return DAYS[date.getDay()].slice(0, 3);
      case "A":
        return DAYS[date.getDay()];
      case "b":
      case "h":
        return MONTHS[date.getMonth()].slice(0, 3);
      case "B":
        return MONTHS[date.getMonth()];
      case "d":
        return p(date.getDate());
      case "e":
        return String(date.getDate()).padStart(2, " ");
      case "m":
        return p(date.getMonth() + 1);
      case "y":
        return p(date.getFullYear() % 100);
      case "Y":
        return String(date.getFullYear());
      case "H":
        return p(date.getHours());
      case "I":
        return p(h12);
      case "M":
        return p(date.getMinutes());
      case "S":
        return p(date.getSeconds());
      case "p":
        return date.getHours() < 12 ? "AM" : "PM";
      case "j":
        return p(dayOfYear, 3);
      case "w":
        return String(date.getDay());
      case "u":
        return String(date.getDay() === 0 ? 7 : date.getDay());
      case "F":
        return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
      case "D":
        return `${pad(date.getMonth() + 1)}/${pad(date.getDate())}/${pad(date.getFullYear() % 100)}`;
      case "T":
        return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
      case "%":
        return "%";
      default:
        return m;
    }
  });
}

// ---------------------------------------------------------------- the interpreter

export interface RenderGlobals {
  now: () => Date;
  /** Tests with arguments, by the names rewriteTestArguments gave them. */
  tests?: ReadonlyMap<string, TestWithArguments>;
}

// Methods that modify a list or dict: jinja2's ImmutableSandboxedEnvironment refuses them.
const MUTATING: Record<string, readonly string[]> = {
  list: ["append", "clear", "extend", "insert", "pop", "remove", "reverse", "sort"],
  dict: ["clear", "pop", "popitem", "setdefault", "update"],
};
const DICT_METHODS = new Set(["clear", "copy", "fromkeys", "get", "items", "keys", "pop", "popitem", "setdefault", "update", "values"]);
const STR_METHODS = new Set([
  "capitalize", "casefold", "center", "count", "endswith", "find", "format", "index", "isalnum", "isalpha", "isdecimal",
  "isdigit", "islower", "isnumeric", "isspace", "istitle", "isupper", "join", "ljust", "lower", "lstrip", "partition",
  "removeprefix", "removesuffix", "replace", "rfind", "rindex", "rjust", "rpartition", "rsplit", "rstrip", "split",
  "splitlines", "startswith", "strip", "swapcase", "title", "upper", "zfill",
]);
const LIST_METHODS = new Set(["append", "clear", "copy", "count", "extend", "index", "insert", "pop", "remove", "reverse", "sort"]);

type AnyNode = Node & Record<string, unknown>;

export class PyInterpreter extends Interpreter {
  // The library's evaluate() takes its own AST and value types, which its package does not
  // export; the casts below stand for those.
  override evaluate(statement: unknown, environment: Environment): unknown {
    const node = statement as unknown as AnyNode | undefined;
    if (!node) return undef("the value is undefined") as never;
    switch (node.type) {
      case "PyOutput":
        return str(pyStr(this.eval(node.expr as Node, environment))) as never;
      case "PyIter":
        return list(pyIterate(this.eval(node.expr as Node, environment))) as never;
      case "Identifier":
        return this.identifier(node.value as string, environment) as never;
      case "MemberExpression":
        return this.member(node, environment) as never;
      case "CallExpression":
        return this.call(node, environment) as never;
      case "BinaryExpression":
        return this.binary(node, environment) as never;
      case "UnaryExpression":
        return this.unary(node, environment) as never;
      case "FilterExpression":
        return this.filter(this.eval(node.operand as Node, environment), node.filter as AnyNode, environment) as never;
      case "FilterStatement": {
        const body = (this as unknown as { evaluateBlock(b: unknown, e: Environment): Value }).evaluateBlock(node.body, environment);
        return this.filter(body, node.filter as AnyNode, environment) as never;
      }
      case "TestExpression": {
        const operand = this.eval(node.operand as Node, environment);
        let name = (node.test as AnyNode).value as string;
        let args: Value[] = [];
        const withArgs = this.globals.tests?.get(name);
        if (withArgs) {
          name = withArgs.name;
          args = (this.eval(withArgs.args as Node, environment) as ArrV).value;
        }
        const result = this.test(name, operand, args);
        return bool(node.negate ? !result : result) as never;
      }
      case "ObjectLiteral": {
        const d = newDict();
        for (const [k, v] of node.value as Map<Node, Node>) dictSet(d, this.eval(k, environment), this.eval(v, environment));
        return d as never;
      }
      case "TupleLiteral":
        return tuple((node.value as Node[]).map((x) => this.eval(x, environment)));
      case "Ternary":
        return (truthy(this.eval(node.condition as Node, environment))
          ? this.eval(node.trueExpr as Node, environment)
          : this.eval(node.falseExpr as Node, environment)) as never;
      case "SelectExpression":
        return (truthy(this.eval(node.test as Node, environment)) ? this.eval(node.lhs as Node, environment) : undef("the condition was false")) as never;
      default:
        return super.evaluate(statement, environment);
    }
  }

  constructor(
    env: Environment,
    private readonly globals: RenderGlobals,
  ) {
    super(env);
  }

  private eval(node: Node, env: Environment): Value {
    return this.evaluate(node as never, env) as unknown as Value;
  }

  private evaluateArgs(args: unknown, env: Environment): [Value[], Kwargs] {
    const [positional, keywords] = (this as unknown as { evaluateArguments(a: unknown, e: Environment): [Value[], Kwargs] }).evaluateArguments(args, env);
    return [positional, new Map(keywords)];
  }

  private identifier(name: string, env: Environment): Value {
    const v = env.lookupVariable(name) as unknown as Value;
    return isUndef(v) && !(v instanceof PyUndefined) ? undef(`'${name}' is undefined`) : v;
  }

  // ---------------------------------------------------------------- attribute and item access

  private member(node: AnyNode, env: Environment): Value {
    const object = this.eval(node.object as Node, env);
    const property = node.property as AnyNode;
    if (node.computed) {
      if (property.type === "SliceExpression") return this.slice(object, property, env);
      return this.getitem(object, this.eval(property, env));
    }
    if (property.type === "IntegerLiteral") return this.getitem(object, int(property.value as number));
    return this.getattr(object, property.value as string);
  }

  /** obj.name: the attribute (a method), else the item; sandbox rules apply. */
  getattr(obj: Value, name: string): Value {
    if (isUndef(obj)) throw new UndefinedUse(undefinedHint(obj));
    const attr = this.attribute(obj, name);
    if (attr !== undefined) return attr;
    const item = this.item(obj, str(name));
    return item ?? undef(missingMessage(obj, str(name)));
  }

  /** obj[key]: the item, else (for a string key) the attribute. */
  getitem(obj: Value, key: Value): Value {
    if (isUndef(obj)) throw new UndefinedUse(undefinedHint(obj));
    const item = this.item(obj, key);
    if (item !== undefined) return item;
    if (isStr(key)) {
      const attr = this.attribute(obj, key.value);
      if (attr !== undefined) return attr;
    }
    return undef(missingMessage(obj, key));
  }

  private item(obj: Value, key: Value): Value | undefined {
    if (isDict(obj) && !isLoop(obj)) return dictGet(obj, key);
    if (isNamespace(obj)) return isStr(key) ? obj.value.get(key.value) : undefined;
    if (isLoop(obj)) return isStr(key) ? obj.value.get(key.value) : undefined;
    if (isList(obj) || isStr(obj)) {
      if (!(isInt(key) || isBool(key))) return undefined;
      const items = isStr(obj) ? [...obj.value] : obj.value;
      let i = numberOf(key);
      if (i < 0) i += items.length;
      if (i < 0 || i >= items.length) return undefined;
      return isStr(obj) ? str(items[i] as string) : (items[i] as Value);
    }
    return undefined;
  }

  private attribute(obj: Value, name: string): Value | undefined {
    if (name.startsWith("_")) return undefined;
    if (isLoop(obj)) {
      const loop = obj as unknown as { iteration: number; length: number };
      if (name === "cycle")
        return fn((args) => {
          const [items] = splitArgs(args);
          if (items.length === 0) throw typeError("no items for cycling given");
          return items[loop.iteration % items.length];
        });
      if (name === "depth") return int(1);
      if (name === "depth0") return int(0);
      return undefined;
    }
    if (isDict(obj) && DICT_METHODS.has(name)) return this.unsafe(obj, "dict", name) ?? this.dictMethod(obj, name);
    if (isList(obj) && LIST_METHODS.has(name)) return this.unsafe(obj, isTuple(obj) ? "tuple" : "list", name) ?? this.listMethod(obj, name);
    if (isStr(obj) && STR_METHODS.has(name)) return this.strMethod(obj, name);
    return undefined;
  }

  private unsafe(obj: Value, kind: "list" | "dict" | "tuple", name: string): Value | undefined {
    if (kind === "tuple") return undefined;
    if (!MUTATING[kind].includes(name)) return undefined;
    return fn(() => {
      throw new SandboxViolation(`access to attribute '${name}' of '${typeName(obj)}' object is unsafe.`);
    });
  }

  private dictMethod(d: ObjV, name: string): Value {
    return fn((all) => {
      const [args, kwargs] = splitArgs(all);
      switch (name) {
        case "get": {
          const [key, fallback] = bind("get", args, kwargs, ["key", "default"], { default: NONE });
          return dictGet(d, key) ?? fallback;
        }
        case "items":
          bind("items", args, kwargs, []);
          return iterView("dict_items", dictItems(d).map(([k, v]) => tuple([k, v])));
        case "keys":
          bind("keys", args, kwargs, []);
          return iterView("dict_keys", dictKeys(d));
        case "values":
          bind("values", args, kwargs, []);
          return iterView("dict_values", [...d.value.values()]);
        case "copy":
          return newDict(dictItems(d));
        default:
          throw new Unsupported(`dict.${name}()`);
      }
    });
  }

  private listMethod(l: ArrV, name: string): Value {
    return fn((all) => {
      const [args, kwargs] = splitArgs(all);
      switch (name) {
        case "count": {
          const [x] = bind("count", args, kwargs, ["value"]);
          return int(l.value.filter((y) => pyEq(y, x)).length);
        }
        case "index": {
          const [x] = bind("index", args, kwargs, ["value"]);
          const i = l.value.findIndex((y) => pyEq(y, x));
          if (i < 0) throw new PyError("ValueError", `${pyRepr(x)} is not in list`);
          return int(i);
        }
        case "copy":
          return list([...l.value]);
        default:
          throw new Unsupported(`list.${name}()`);
      }
    });
  }

  private strMethod(s: StrV, name: string): Value {
    const v = s.value;
    return fn((all) => {
      const [args, kwargs] = splitArgs(all);
      const a = (names: string[], defaults: Record<string, Value> = {}) => bind(name, args, kwargs, names, defaults);
      switch (name) {
        case "strip":
        case "lstrip":
        case "rstrip": {
          const [chars] = a(["chars"], { chars: NONE });
          return str(stripChars(v, chars, name !== "rstrip", name !== "lstrip"));
        }
        case "split":
        case "rsplit": {
          const [sep, maxsplit] = a(["sep", "maxsplit"], { sep: NONE, maxsplit: int(-1) });
          return list(pySplit(v, sep, maxsplit, name === "rsplit").map(str));
        }
        case "splitlines": {
          const [keep] = a(["keepends"], { keepends: FALSE });
          return list(splitLines(v, truthy(keep)).map(str));
        }
        case "startswith":
        case "endswith": {
          const [affix, startV, endV] = a(["prefix", "start", "end"], { start: NONE, end: NONE });
          let sub = v;
          if (!isNone(startV) || !isNone(endV)) {
            // Python indexes by code point.
            const cs = [...v];
            const startI = isNone(startV) ? 0 : asInt(startV, "start");
            const endI = isNone(endV) ? cs.length : asInt(endV, "end");
            sub = cs.slice(startI < 0 ? Math.max(0, cs.length + startI) : startI, endI < 0 ? cs.length + endI : endI).join("");
          }
          const options = isList(affix) ? affix.value : [affix];
          return bool(options.some((o) => (name === "startswith" ? sub.startsWith(asStr(o, name)) : sub.endsWith(asStr(o, name)))));
        }
        case "upper":
          a([]);
          return str(v.toUpperCase());
        case "lower":
          a([]);
          return str(v.toLowerCase());
        case "casefold":
          a([]);
          return str(v.toLowerCase());
        case "title":
          a([]);
          return str(pyTitle(v));
        case "capitalize":
          a([]);
          return str(pyCapitalize(v));
        case "swapcase":
          a([]);
          return str([...v].map((c) => (c === c.toUpperCase() ? c.toLowerCase() : c.toUpperCase())).join(""));
        case "replace": {
          const [old, repl, count] = a(["old", "new", "count"], { count: int(-1) });
          return str(pyReplace(v, asStr(old, "replace() argument 1"), asStr(repl, "replace() argument 2"), asInt(count, "count")));
        }
        case "find":
        case "rfind":
        case "index":
        case "rindex": {
          const [sub] = a(["sub"]);
          const needle = asStr(sub, name);
          const at = name === "find" || name === "index" ? v.indexOf(needle) : v.lastIndexOf(needle);
          if (at < 0 && (name === "index" || name === "rindex")) throw new PyError("ValueError", "substring not found");
          return int(at < 0 ? -1 : [...v.slice(0, at)].length);
        }
        case "count": {
          const [sub] = a(["sub"]);
          const needle = asStr(sub, "count");
          return int(needle === "" ? [...v].length + 1 : v.split(needle).length - 1);
        }
        case "join": {
          const [items] = a(["iterable"]);
          return str(
            pyIterate(items)
              .map((x) => {
                if (!isStr(x)) throw typeError(`sequence item: expected str instance, ${typeName(x)} found`);
                return x.value;
              })
              .join(v),
          );
        }
        case "partition":
        case "rpartition": {
          const [sepV] = a(["sep"]);
          const sep = asStr(sepV, name);
          const at = name === "partition" ? v.indexOf(sep) : v.lastIndexOf(sep);
          if (at < 0) return tuple(name === "partition" ? [str(v), str(""), str("")] : [str(""), str(""), str(v)]);
          return tuple([str(v.slice(0, at)), str(sep), str(v.slice(at + sep.length))]);
        }
        case "removeprefix": {
          const [p] = a(["prefix"]);
          const prefix = asStr(p, name);
          return str(prefix && v.startsWith(prefix) ? v.slice(prefix.length) : v);
        }
        case "removesuffix": {
          const [p] = a(["suffix"]);
          const suffix = asStr(p, name);
          return str(suffix && v.endsWith(suffix) ? v.slice(0, v.length - suffix.length) : v);
        }
        case "zfill": {
          const [w] = a(["width"]);
          const width = asInt(w, "width");
          const sign = v.startsWith("-") || v.startsWith("+") ? v[0] : "";
          return str(sign + v.slice(sign.length).padStart(width - sign.length, "0"));
        }
        case "center":
        case "ljust":
        case "rjust": {
          const [w, f] = a(["width", "fillchar"], { fillchar: str(" ") });
          const width = asInt(w, "width");
          const fill = asStr(f, "fillchar");
          const len = [...v].length;
          if (width <= len) return s;
          const total = width - len;
          if (name === "ljust") return str(v + fill.repeat(total));
          if (name === "rjust") return str(fill.repeat(total) + v);
          const left = Math.floor(total / 2) + (total & width & 1);
          return str(fill.repeat(left) + v + fill.repeat(total - left));
        }
        case "format":
          return str(strFormat(v, args, kwargs));
        case "isdigit":
        case "isdecimal":
        case "isnumeric":
          return bool(v.length > 0 && /^\p{Nd}+$/u.test(v));
        case "isalpha":
          return bool(v.length > 0 && /^\p{L}+$/u.test(v));
        case "isalnum":
          return bool(v.length > 0 && /^[\p{L}\p{N}]+$/u.test(v));
        case "isspace":
          return bool(v.length > 0 && [...v].every(isPySpace));
        case "islower":
          return bool(/\p{Ll}/u.test(v) && !/\p{Lu}|\p{Lt}/u.test(v));
        case "isupper":
          return bool(/\p{Lu}/u.test(v) && !/\p{Ll}|\p{Lt}/u.test(v));
        case "istitle":
          return bool(/\p{L}/u.test(v) && pyTitle(v) === v);
        default:
          throw new Unsupported(`str.${name}()`);
      }
    });
  }

  private slice(object: Value, node: AnyNode, env: Environment): Value {
    if (isUndef(object)) throw new UndefinedUse(undefinedHint(object));
    const part = (n: unknown) => {
      if (n === undefined) return undefined;
      const v = this.eval(n as Node, env);
      if (isNone(v)) return undefined;
      return asInt(v, "slice indices");
    };
    const start = part(node.start);
    const stop = part(node.stop);
    const step = part(node.step) ?? 1;
    if (step === 0) throw new PyError("ValueError", "slice step cannot be zero");
    if (!(isList(object) || isStr(object))) throw typeError(`'${typeName(object)}' object is not subscriptable`);
    const items: unknown[] = isStr(object) ? [...object.value] : object.value;
    const n = items.length;
    const clamp = (i: number | undefined, dflt: number, lo: number, hi: number) => {
      if (i === undefined) return dflt;
      if (i < 0) i += n;
      return Math.min(Math.max(i, lo), hi);
    };
    const out: unknown[] = [];
    if (step > 0) {
      const a = clamp(start, 0, 0, n);
      const b = clamp(stop, n, 0, n);
      for (let i = a; i < b; i += step) out.push(items[i]);
    } else {
      const a = clamp(start, n - 1, -1, n - 1);
      const b = clamp(stop, -1, -1, n - 1);
      for (let i = a; i > b; i += step) out.push(items[i]);
    }
    if (isStr(object)) return str(out.join(""));
    return isTuple(object) ? tuple(out as Value[]) : list(out as Value[]);
  }

  // ---------------------------------------------------------------- calls

  private call(node: AnyNode, env: Environment): Value {
    const callee = this.eval(node.callee as Node, env);
    const args = (this as unknown as { evaluateCallArguments(a: unknown, e: Environment): Value[] }).evaluateCallArguments(node.args, env);
    if (isUndef(callee)) throw new UndefinedUse(undefinedHint(callee));
    if (!isFn(callee)) throw typeError(`'${typeName(callee)}' object is not callable`);
    return (callee as FnV).value(args, env);
  }

  // ---------------------------------------------------------------- operators

  private unary(node: AnyNode, env: Environment): Value {
    const v = this.eval(node.argument as Node, env);
    const op = (node.operator as { value: string }).value;
    if (op === "not") return bool(!truthy(v));
    if (isUndef(v)) throw new UndefinedUse(undefinedHint(v));
    if (!isNumeric(v)) throw typeError(`bad operand type for unary ${op}: '${typeName(v)}'`);
    const x = op === "-" ? -numberOf(v) : numberOf(v);
    return isFloat(v) ? float(x) : int(x);
  }

  private binary(node: AnyNode, env: Environment): Value {
    const op = (node.operator as { value: string }).value;
    const left = this.eval(node.left as Node, env);
    if (op === "and") return truthy(left) ? this.eval(node.right as Node, env) : left;
    if (op === "or") return truthy(left) ? left : this.eval(node.right as Node, env);
    const right = this.eval(node.right as Node, env);
    switch (op) {
      case "==":
        return bool(pyEq(left, right));
      case "!=":
        return bool(!pyEq(left, right));
      case "in":
        return bool(pyIn(left, right));
      case "not in":
        return bool(!pyIn(left, right));
      case "~":
        return str(pyStr(left) + pyStr(right));
      case "<":
        return bool(pyCompare(left, right, op) < 0);
      case ">":
        return bool(pyCompare(left, right, op) > 0);
      case "<=":
        return bool(pyCompare(left, right, op) <= 0);
      case ">=":
        return bool(pyCompare(left, right, op) >= 0);
    }
    if (isUndef(left) || isUndef(right)) throw new UndefinedUse(undefinedHint(isUndef(left) ? left : right));
    return arithmetic(op, left, right);
  }

  // ---------------------------------------------------------------- filters

  private filter(value: Value, filterNode: AnyNode, env: Environment): Value {
    let name: string;
    let args: Value[] = [];
    let kwargs: Kwargs = new Map();
    if (filterNode.type === "Identifier") name = filterNode.value as string;
    else {
      name = ((filterNode.callee as AnyNode).value as string) ?? "";
      [args, kwargs] = this.evaluateArgs(filterNode.args, env);
    }
    return this.applyFilter(name, value, args, kwargs);
  }

  applyFilter(name: string, value: Value, args: Value[], kwargs: Kwargs): Value {
    const a = (names: string[], defaults: Record<string, Value> = {}) => bind(name, args, kwargs, names, defaults);
    const undefinedFails = () => {
      if (isUndef(value)) throw new UndefinedUse(undefinedHint(value));
    };
    switch (name) {
      case "tojson": {
        // transformers' override: json.dumps(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False)
        const [ensureAscii, indent, separators, sortKeys] = a(["ensure_ascii", "indent", "separators", "sort_keys"], {
          ensure_ascii: FALSE,
          indent: NONE,
          separators: NONE,
          sort_keys: FALSE,
        });
        let seps: [string, string] | null = null;
        if (!isNone(separators)) {
          if (!isList(separators) || separators.value.length !== 2) throw new PyError("ValueError", "separators must be a pair of strings");
          seps = [asStr(separators.value[0], "item separator"), asStr(separators.value[1], "key separator")];
        }
        return str(
          jsonDumps(value, {
            ensureAscii: truthy(ensureAscii),
            indent: isNone(indent) ? null : isStr(indent) ? indent.value : asInt(indent, "indent"),
            separators: seps,
            sortKeys: truthy(sortKeys),
          }),
        );
      }
      case "safe":
        a([]);
        return isMarkup(value) ? value : markup(pyStr(value));
      case "string":
        a([]);
        return isStr(value) ? value : str(pyStr(value));
      case "length":
      case "count":
        a([]);
        return int(pyLen(value));
      case "trim": {
        const [chars] = a(["chars"], { chars: NONE });
        return str(stripChars(pyStr(value), chars, true, true));
      }
      case "upper":
        a([]);
        return str(pyStr(value).toUpperCase());
      case "lower":
        a([]);
        return str(pyStr(value).toLowerCase());
      case "title":
        a([]);
        return str(pyTitle(pyStr(value)));
      case "capitalize":
        a([]);
        return str(pyCapitalize(pyStr(value)));
      case "default":
      case "d": {
        const [fallback, boolean] = a(["default_value", "boolean"], { default_value: str(""), boolean: FALSE });
        return isUndef(value) || (truthy(boolean) && !truthy(value)) ? fallback : value;
      }
      case "items": {
        a([]);
        if (isUndef(value)) return iterView("generator", []);
        if (!isDict(value)) throw typeError("Can only get item pairs from a mapping.");
        return iterView("generator", dictItems(value).map(([k, v]) => tuple([k, v])));
      }
      case "list":
        a([]);
        return list([...pyIterate(value)]);
      case "first": {
        a([]);
        const items = pyIterate(value);
        return items.length > 0 ? items[0] : undef("No first item, sequence was empty.");
      }
      case "last": {
        a([]);
        undefinedFails();
        const kind = iterKindOf(value);
        if (kind === "generator" || kind === "list_reverseiterator") throw typeError(`'${kind}' object is not reversible`);
        const items = isDict(value) ? dictKeys(value) : pyIterate(value);
        return items.length > 0 ? items[items.length - 1] : undef("No last item, sequence was empty.");
      }
      case "reverse": {
        a([]);
        if (isStr(value)) return str([...value.value].reverse().join(""));
        // reversed(list) is an iterator; what reversed() refuses becomes a reversed list.
        if (isList(value)) return iterView("list_reverseiterator", [...value.value].reverse());
        return list([...pyIterate(value)].reverse());
      }
      case "join": {
        const [d, attribute] = a(["d", "attribute"], { d: str(""), attribute: NONE });
        let items = pyIterate(value);
        if (!isNone(attribute)) items = items.map(this.attributeGetter(attribute));
        return str(items.map(pyStr).join(pyStr(d)));
      }
      case "indent": {
        const [width, first, blank] = a(["width", "first", "blank"], { width: int(4), first: FALSE, blank: FALSE });
        const indention = isStr(width) ? width.value : " ".repeat(Math.max(0, asInt(width, "width")));
        const s = pyStr(value) + "\n";
        let rv: string;
        if (truthy(blank)) rv = splitLines(s).join("\n" + indention);
        else {
          const lines = splitLines(s);
          rv = lines.shift() ?? "";
          if (lines.length > 0) rv += "\n" + lines.map((l) => (l ? indention + l : l)).join("\n");
        }
        return str(truthy(first) ? indention + rv : rv);
      }
      case "replace": {
        const [old, repl, count] = a(["old", "new", "count"], { count: NONE });
        return str(pyReplace(pyStr(value), pyStr(old), pyStr(repl), isNone(count) ? -1 : asInt(count, "count")));
      }
      case "int": {
        const [fallback, base] = a(["default", "base"], { default: int(0), base: int(10) });
        return toInt(value, fallback, asInt(base, "base"));
      }
      case "float": {
        const [fallback] = a(["default"], { default: float(0) });
        return toFloat(value, fallback)!;
      }
      case "abs":
        a([]);
        undefinedFails();
        if (!isNumeric(value)) throw typeError(`bad operand type for abs(): '${typeName(value)}'`);
        return isFloat(value) ? float(Math.abs(value.value)) : int(Math.abs(numberOf(value)));
      case "round": {
        const [precision, method] = a(["precision", "method"], { precision: int(0), method: str("common") });
        undefinedFails();
        if (!isNumeric(value)) throw typeError(`type ${typeName(value)} doesn't define __round__ method`);
        const p = 10 ** asInt(precision, "precision");
        const x = numberOf(value) * p;
        const m = asStr(method, "method");
        const r = m === "ceil" ? Math.ceil(x) : m === "floor" ? Math.floor(x) : Math.sign(x) * Math.round(Math.abs(x));
        return float(r / p);
      }
      case "sum": {
        const [attribute, start] = a(["attribute", "start"], { attribute: NONE, start: int(0) });
        let items = pyIterate(value);
        if (!isNone(attribute)) items = items.map(this.attributeGetter(attribute));
        return items.reduce((acc, x) => arithmetic("+", acc, x), start);
      }
      case "min":
      case "max": {
        const [caseSensitive, attribute] = a(["case_sensitive", "attribute"], { case_sensitive: FALSE, attribute: NONE });
        const items = pyIterate(value);
        if (items.length === 0) return undef(`No aggregated item, sequence was empty.`);
        const key = this.sortKey(attribute, truthy(caseSensitive));
        let best = items[0];
        for (const x of items.slice(1)) {
          const c = pyCompare(key(x), key(best));
          if (name === "min" ? c < 0 : c > 0) best = x;
        }
        return best;
      }
      case "sort": {
        const [reverse, caseSensitive, attribute] = a(["reverse", "case_sensitive", "attribute"], { reverse: FALSE, case_sensitive: FALSE, attribute: NONE });
        const key = this.sortKey(attribute, truthy(caseSensitive));
        const items = [...pyIterate(value)];
        items.sort((x, y) => pyCompare(key(x), key(y)));
        if (truthy(reverse)) items.reverse();
        return list(items);
      }
      case "dictsort": {
        const [caseSensitive, by, reverse] = a(["case_sensitive", "by", "reverse"], { case_sensitive: FALSE, by: str("key"), reverse: FALSE });
        if (!isDict(value)) throw typeError("You can only sort by either 'key' or 'value'");
        const byWhat = asStr(by, "by");
        if (byWhat !== "key" && byWhat !== "value") throw new PyError("FilterArgumentError", "You can only sort by either 'key' or 'value'");
        const index = byWhat === "key" ? 0 : 1;
        const fold = (v: Value) => (!truthy(caseSensitive) && isStr(v) ? str(v.value.toLowerCase()) : v);
        const items = dictItems(value);
        items.sort((x, y) => pyCompare(fold(x[index]), fold(y[index])));
        if (truthy(reverse)) items.reverse();
        return list(items.map(([k, v]) => tuple([k, v])));
      }
      case "unique": {
        // A generator in jinja2, like select, map and batch below.
        const [caseSensitive, attribute] = a(["case_sensitive", "attribute"], { case_sensitive: FALSE, attribute: NONE });
        const key = this.sortKey(attribute, truthy(caseSensitive));
        const seen: Value[] = [];
        const out: Value[] = [];
        for (const x of pyIterate(value)) {
          const k = key(x);
          if (!seen.some((y) => pyEq(y, k))) {
            seen.push(k);
            out.push(x);
          }
        }
        return iterView("generator", out);
      }
      case "map": {
        if (!truthy(value)) return iterView("generator", []);
        const attribute = kwargs.get("attribute");
        if (attribute !== undefined) {
          const fallback = kwargs.get("default");
          kwargs.delete("attribute");
          kwargs.delete("default");
          a([]);
          const get = this.attributeGetter(attribute);
          return iterView(
            "generator",
            pyIterate(value).map((x) => {
              const v = get(x);
              return isUndef(v) && fallback !== undefined ? fallback : v;
            }),
          );
        }
        if (args.length === 0) throw typeError("map requires a filter argument");
        const filterName = asStr(args[0], "map filter name");
        const rest = args.slice(1);
        return iterView("generator", pyIterate(value).map((x) => this.applyFilter(filterName, x, rest, new Map(kwargs))));
      }
      case "select":
      case "reject": {
        // jinja2 walks the value only when it is true (none|select(...) is empty).
        if (!truthy(value)) return iterView("generator", []);
        const items = pyIterate(value);
        const testName = args.length > 0 ? asStr(args[0], "test name") : undefined;
        const testArgs = args.slice(1);
        return iterView(
          "generator",
          items.filter((x) => (testName === undefined ? truthy(x) : this.test(testName, x, testArgs)) === (name === "select")),
        );
      }
      case "selectattr":
      case "rejectattr": {
        if (!truthy(value)) return iterView("generator", []);
        if (args.length === 0) throw typeError(`${name} requires an attribute name`);
        const get = this.attributeGetter(args[0]);
        const testName = args.length > 1 ? asStr(args[1], "test name") : undefined;
        const testArgs = args.slice(2);
        const items = pyIterate(value);
        return iterView(
          "generator",
          items.filter((x) => {
            const v = get(x);
            return (testName === undefined ? truthy(v) : this.test(testName, v, testArgs)) === (name === "selectattr");
          }),
        );
      }
      case "attr": {
        const [attrName] = a(["name"]);
        return this.getattr(value, asStr(attrName, "attribute name"));
      }
      case "batch": {
        const [size, fillWith] = a(["linecount", "fill_with"], { fill_with: NONE });
        const n = asInt(size, "linecount");
        const items = pyIterate(value);
        const out: Value[] = [];
        for (let i = 0; i < items.length; i += n) {
          const row = items.slice(i, i + n);
          if (row.length < n && !isNone(fillWith)) while (row.length < n) row.push(fillWith);
          out.push(list(row));
        }
        return iterView("generator", out);
      }
      case "center": {
        const [width] = a(["width"], { width: int(80) });
        const s = pyStr(value);
        const w = asInt(width, "width");
        const len = [...s].length;
        if (w <= len) return str(s);
        const total = w - len;
        const left = Math.floor(total / 2) + (total & w & 1);
        return str(" ".repeat(left) + s + " ".repeat(total - left));
      }
      case "escape":
      case "e":
      case "forceescape":
        a([]);
        if (isMarkup(value) && name !== "forceescape") return value;
        return markup(htmlEscape(pyStr(value)));
      case "striptags":
        a([]);
        return str(pyStr(value).replace(/<!--[\s\S]*?-->|<[^>]*>/g, "").replace(/\s+/g, " ").trim());
      case "wordcount":
        a([]);
        return int((pyStr(value).match(/\w+/gu) ?? []).length);
      case "format":
        return str(kwargs.size > 0 ? percentFormat(pyStr(value), newDict([...kwargs].map(([k, v]) => [str(k), v]))) : percentFormat(pyStr(value), tuple(args)));
      case "pprint":
        a([]);
        return str(pyRepr(value));
      default:
        throw new Unsupported(`the filter '${name}'`);
    }
  }

  /** The getter a filter's `attribute=` names: dotted, with integer parts as indexes. */
  private attributeGetter(attribute: Value): (x: Value) => Value {
    if (isInt(attribute)) return (x) => this.getitem(x, attribute);
    const parts = asStr(attribute, "attribute").split(".");
    return (x) => {
      let v = x;
      for (const p of parts) {
        v = this.getitem(v, /^\d+$/.test(p) ? int(Number(p)) : str(p));
        if (isUndef(v)) return v;
      }
      return v;
    };
  }

  private sortKey(attribute: Value, caseSensitive: boolean): (x: Value) => Value {
    const get = isNone(attribute) ? (x: Value) => x : this.attributeGetter(attribute);
    return (x) => {
      const v = get(x);
      return !caseSensitive && isStr(v) ? str(v.value.toLowerCase()) : v;
    };
  }

  // ---------------------------------------------------------------- tests

  test(name: string, v: Value, args: Value[]): boolean {
    const arg = () => {
      if (args.length < 1) throw typeError(`the test '${name}' needs an argument`);
      return args[0];
    };
    switch (name) {
      case "defined":
        return !isUndef(v);
      case "undefined":
        return isUndef(v);
      case "none":
        return isNone(v);
      case "boolean":
        return isBool(v);
      case "true":
        return isBool(v) && v.value;
      case "false":
        return isBool(v) && !v.value;
      case "integer":
        return isInt(v);
      case "float":
        return isFloat(v);
      case "number":
        return isNumeric(v);
      case "string":
        return isStr(v);
      case "mapping":
        return isDict(v) && !isLoop(v);
      case "iterable":
        return isStr(v) || isArrayLike(v) || (isDict(v) && !isLoop(v)) || isUndef(v);
      case "sequence":
        return isStr(v) || isList(v) || (isDict(v) && !isLoop(v)) || isUndef(v);
      case "callable":
        return isFn(v);
      case "lower":
        return /\p{Ll}/u.test(pyStr(v)) && !/\p{Lu}|\p{Lt}/u.test(pyStr(v));
      case "upper":
        return /\p{Lu}/u.test(pyStr(v)) && !/\p{Ll}|\p{Lt}/u.test(pyStr(v));
      case "odd":
      case "even": {
        if (!isNumeric(v)) throw typeError(`not all arguments converted during string formatting`);
        const r = ((numberOf(v) % 2) + 2) % 2;
        return name === "odd" ? r === 1 : r === 0;
      }
      case "divisibleby": {
        const d = arg();
        if (!isNumeric(v) || !isNumeric(d)) throw typeError("divisibleby needs numbers");
        return numberOf(v) % numberOf(d) === 0;
      }
      case "equalto":
      case "eq":
      case "==":
        return pyEq(v, arg());
      case "ne":
      case "!=":
        return !pyEq(v, arg());
      case "lt":
      case "lessthan":
      case "<":
        return pyCompare(v, arg()) < 0;
      case "le":
      case "<=":
        return pyCompare(v, arg()) <= 0;
      case "gt":
      case "greaterthan":
      case ">":
        return pyCompare(v, arg()) > 0;
      case "ge":
      case ">=":
        return pyCompare(v, arg()) >= 0;
      case "in":
        return pyIn(v, arg());
      case "sameas":
        return v === arg() || (isNone(v) && isNone(arg())) || (isBool(v) && isBool(arg()) && v.value === (arg() as typeof v).value);
      case "escaped":
        return false;
      default:
        throw new Unsupported(`the test '${name}'`);
    }
  }

  /** The globals every template sees (jinja2's defaults and transformers' additions). */
  installGlobals(env: Environment): void {
    const vars = env.variables as unknown as Map<string, Value>;
    for (const [k, v] of [
      ["true", TRUE],
      ["false", FALSE],
      ["none", NONE],
      ["True", TRUE],
      ["False", FALSE],
      ["None", NONE],
    ] as const)
      vars.set(k, v);
    vars.set(
      "raise_exception",
      fn((all) => {
        const [args] = splitArgs(all);
        throw new TemplateRaise(args.length > 0 ? pyStr(args[0]) : "");
      }),
    );
    vars.set(
      "strftime_now",
      fn((all) => {
        const [args, kwargs] = splitArgs(all);
        const [format] = bind("strftime_now", args, kwargs, ["format"]);
        return str(strftime(this.globals.now(), asStr(format, "format")));
      }),
    );
    vars.set(
      "range",
      fn((all) => {
        const [args, kwargs] = splitArgs(all);
        if (kwargs.size > 0) throw typeError("range() takes no keyword arguments");
        if (args.length < 1 || args.length > 3) throw typeError(`range expected 1 to 3 arguments, got ${args.length}`);
        const n = args.map((x) => asInt(x, "range() argument"));
        const [start, stop, step] = n.length === 1 ? [0, n[0], 1] : [n[0], n[1], n[2] ?? 1];
        if (step === 0) throw new PyError("ValueError", "range() arg 3 must not be zero");
        const out: Value[] = [];
        // The sandbox caps ranges (MAX_RANGE) so a template cannot exhaust memory.
        for (let i = start; step > 0 ? i < stop : i > stop; i += step) {
          if (out.length >= 100000) throw new SandboxViolation("Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
          out.push(int(i));
        }
        return list(out);
      }),
    );
    vars.set(
      TUPLE_BUILTIN,
      fn((all) => tuple(splitArgs(all)[0])),
    );
    vars.set(
      "dict",
      fn((all) => {
        const [args, kwargs] = splitArgs(all);
        const d = newDict();
        if (args.length > 1) throw typeError(`dict expected at most 1 argument, got ${args.length}`);
        if (args.length === 1) {
          const src = args[0];
          if (isDict(src)) for (const [k, v] of dictItems(src)) dictSet(d, k, v);
          else
            for (const pair of pyIterate(src)) {
              if (!isList(pair) || pair.value.length !== 2) throw new PyError("ValueError", "dictionary update sequence element has wrong length");
              dictSet(d, pair.value[0], pair.value[1]);
            }
        }
        for (const [k, v] of kwargs) dictSet(d, str(k), v);
        return d;
      }),
    );
  }
}

function arithmetic(op: string, left: Value, right: Value): Value {
  if (isNumeric(left) && isNumeric(right)) {
    const a = numberOf(left);
    const b = numberOf(right);
    const isF = isFloat(left) || isFloat(right);
    const num = (x: number) => (isF ? float(x) : int(x));
    switch (op) {
      case "+":
        return num(a + b);
      case "-":
        return num(a - b);
      case "*":
        return num(a * b);
      case "/":
        if (b === 0) throw new PyError("ZeroDivisionError", "division by zero");
        return float(a / b);
      case "//":
        if (b === 0) throw new PyError("ZeroDivisionError", "integer division or modulo by zero");
        return num(Math.floor(a / b));
      case "%":
        if (b === 0) throw new PyError("ZeroDivisionError", "integer modulo by zero");
        return num(a - b * Math.floor(a / b));
      case "**":
        return b < 0 && !isF ? float(a ** b) : num(a ** b);
    }
  }
  if (op === "+") {
    if (isStr(left) && isStr(right)) {
      // Markup + str escapes the str (and str + Markup, through Markup.__radd__).
      if (isMarkup(left) || isMarkup(right))
        return markup((isMarkup(left) ? left.value : htmlEscape(left.value)) + (isMarkup(right) ? right.value : htmlEscape(right.value)));
      return str(left.value + right.value);
    }
    if (isList(left) && isList(right) && isTuple(left) === isTuple(right))
      return isTuple(left) ? tuple([...left.value, ...right.value]) : list([...left.value, ...right.value]);
    if (isStr(left)) throw typeError(`can only concatenate str (not "${typeName(right)}") to str`);
    if (typeName(left) === "list") throw typeError(`can only concatenate list (not "${typeName(right)}") to list`);
  }
  if (op === "*") {
    const repeat = (seq: Value, n: Value): Value | undefined => {
      if (!(isInt(n) || isBool(n))) return undefined;
      const k = Math.max(0, numberOf(n));
      if (isStr(seq)) return str(seq.value.repeat(k));
      if (isList(seq)) {
        const out: Value[] = [];
        for (let i = 0; i < k; i++) out.push(...seq.value);
        return isTuple(seq) ? tuple(out) : list(out);
      }
      return undefined;
    };
    const r = repeat(left, right) ?? repeat(right, left);
    if (r) return r;
  }
  if (op === "%" && isStr(left)) return str(percentFormat(left.value, right));
  throw typeError(`unsupported operand type(s) for ${op}: '${typeName(left)}' and '${typeName(right)}'`);
}

function toInt(value: Value, fallback: Value, base: number): Value {
  if (isInt(value)) return value;
  if (isBool(value)) return int(value.value ? 1 : 0);
  if (isFloat(value)) return Number.isFinite(value.value) ? int(Math.trunc(value.value)) : fallback;
  if (isStr(value)) {
    const s = value.value.trim().replace(/_/g, "");
    const digits = base === 10 ? /^[+-]?\d+$/ : base === 16 ? /^[+-]?(0x)?[0-9a-f]+$/i : base === 8 ? /^[+-]?(0o)?[0-7]+$/i : base === 2 ? /^[+-]?(0b)?[01]+$/i : null;
    if (digits && digits.test(s)) return int(parseInt(s.replace(/^([+-]?)0[xob]/i, "$1"), base));
    const f = toFloat(value, undefined);
    return f && isFloat(f) && Number.isFinite(f.value) ? int(Math.trunc(f.value)) : fallback;
  }
  return fallback;
}

function toFloat(value: Value, fallback: Value | undefined): Value | undefined {
  if (isFloat(value)) return value;
  if (isInt(value) || isBool(value)) return float(numberOf(value));
  if (isStr(value)) {
    const s = value.value.trim().replace(/_/g, "");
    if (/^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(s)) return float(Number(s));
    if (/^[+-]?(inf|infinity)$/i.test(s)) return float(s.startsWith("-") ? -Infinity : Infinity);
    if (/^[+-]?nan$/i.test(s)) return float(NaN);
  }
  return fallback;
}
