/**
 * A parser for llama.cpp's GBNF grammar format (grammars/README.md in llama.cpp): rules
 * `name ::= alternatives`, string literals, character classes with ranges and negation, `.`,
 * grouping, `* + ?` and `{m}`, `{m,}`, `{m,n}` repetition, `#` comments. A rule ends at a
 * newline unless inside parentheses or right after `|`, as in llama.cpp. Token references
 * (`<[id]>`, `<think>`, `!<...>`) are not supported: they are refused with a coded error.
 */
import { TesseraError } from "../errors.js";
import { alt, charClass, rep, seq, type Expr, type Grammar } from "./ir.js";

/** llama.cpp refuses repetition counts above this; so do we. */
const MAX_REPETITIONS = 2000;

class Parser {
  pos = 0;
  private readonly rules = new Map<string, Expr>();
  private readonly referenced = new Map<string, number>();

  constructor(private readonly src: string) {}

  fail(message: string, at = this.pos): never {
    let line = 1;
    let col = 1;
    for (let i = 0; i < at && i < this.src.length; i++) {
      if (this.src[i] === "\n") {
        line++;
        col = 1;
      } else col++;
    }
    const rest = this.src.slice(at, at + 20).split("\n")[0];
    throw new TesseraError("ERR_INVALID_ARGUMENT", `grammar: line ${line}, column ${col}: ${message}${rest ? ` at "${rest}"` : ""}`);
  }

  peek(offset = 0): string {
    return this.src[this.pos + offset] ?? "";
  }

  /** Spaces, tabs and comments; newlines too when `newlines`. */
  space(newlines: boolean): void {
    for (;;) {
      const c = this.peek();
      if (c === " " || c === "\t" || (newlines && (c === "\n" || c === "\r"))) this.pos++;
      else if (c === "#") {
        while (this.pos < this.src.length && this.peek() !== "\n" && this.peek() !== "\r") this.pos++;
      } else return;
    }
  }

  static isWordChar(c: string): boolean {
    return /^[a-zA-Z0-9-]$/.test(c);
  }

  name(): string {
    const start = this.pos;
    while (Parser.isWordChar(this.peek())) this.pos++;
    if (this.pos === start) this.fail("expecting a rule name");
    return this.src.slice(start, this.pos);
  }

  int(): number {
    const start = this.pos;
    while (/^[0-9]$/.test(this.peek())) this.pos++;
    if (this.pos === start) this.fail("expecting an integer");
    return Number(this.src.slice(start, this.pos));
  }

  /** One character of a literal or class, escapes decoded; returns its code point. */
  char(): number {
    const c = this.peek();
    if (c === "") this.fail("unexpected end of grammar");
    if (c !== "\\") {
      const cp = this.src.codePointAt(this.pos)!;
      this.pos += cp > 0xffff ? 2 : 1;
      return cp;
    }
    const e = this.peek(1);
    const hex = (n: number): number => {
      const digits = this.src.slice(this.pos + 2, this.pos + 2 + n);
      if (!new RegExp(`^[0-9a-fA-F]{${n}}$`).test(digits)) this.fail(`expecting ${n} hex digits after \\${e}`);
      this.pos += 2 + n;
      return parseInt(digits, 16);
    };
    switch (e) {
      case "x":
        return hex(2);
      case "u":
        return hex(4);
      case "U": {
        const cp = hex(8);
        if (cp > 0x10ffff) this.fail(`\\U${cp.toString(16)} is beyond Unicode`, this.pos - 10);
        return cp;
      }
      case "t":
        this.pos += 2;
        return 9;
      case "r":
        this.pos += 2;
        return 13;
      case "n":
        this.pos += 2;
        return 10;
      case "\\":
      case '"':
      case "[":
      case "]":
      case "-":
        this.pos += 2;
        return e.codePointAt(0)!;
      default:
        this.fail(`unknown escape \\${e}`);
    }
  }

  grammar(): Map<string, Expr> {
    this.space(true);
    while (this.pos < this.src.length) this.rule();
    for (const [name, at] of this.referenced) if (!this.rules.has(name)) this.fail(`undefined rule "${name}"`, at);
    return this.rules;
  }

  rule(): void {
    const at = this.pos;
    const name = this.name();
    this.space(false);
    if (this.src.slice(this.pos, this.pos + 3) !== "::=") this.fail("expecting ::=");
    this.pos += 3;
    this.space(true);
    const body = this.alternates(false);
    if (this.rules.has(name)) this.fail(`rule "${name}" is defined twice`, at);
    this.rules.set(name, body);
    const c = this.peek();
    if (c === "\r") this.pos += this.peek(1) === "\n" ? 2 : 1;
    else if (c === "\n") this.pos++;
    else if (c !== "") this.fail("expecting a newline or the end of the grammar");
    this.space(true);
  }

  alternates(nested: boolean): Expr {
    const items = [this.sequence(nested)];
    while (this.peek() === "|") {
      this.pos++;
      this.space(true);
      items.push(this.sequence(nested));
    }
    return items.length === 1 ? items[0] : alt(...items);
  }

  sequence(nested: boolean): Expr {
    const items: Expr[] = [];
    const postfix = (min: number, max: number) => {
      const last = items.pop();
      if (!last) this.fail("a repetition operator needs something before it");
      items.push(rep(last, min, max));
    };
    for (;;) {
      const c = this.peek();
      if (c === '"') {
        this.pos++;
        let text = "";
        while (this.peek() !== '"') text += String.fromCodePoint(this.char());
        this.pos++;
        // Kept as one item: a postfix operator repeats the whole literal, as in llama.cpp.
        items.push({ type: "lit", text });
      } else if (c === "[") {
        this.pos++;
        let negated = false;
        if (this.peek() === "^") {
          negated = true;
          this.pos++;
        }
        const pairs: Array<[number, number]> = [];
        while (this.peek() !== "]") {
          const lo = this.char();
          let hi = lo;
          if (this.peek() === "-" && this.peek(1) !== "]" && this.peek(1) !== "") {
            this.pos++;
            hi = this.char();
            if (hi < lo) this.fail(`character range ${lo.toString(16)}-${hi.toString(16)} is reversed`);
          }
          pairs.push([lo, hi]);
        }
        this.pos++;
        items.push(charClass(pairs, negated));
      } else if (c === "<" || c === "!") {
        this.fail("token references (<[id]>, <token>, !<...>) are not supported; write the token's text as a string");
      } else if (Parser.isWordChar(c)) {
        const at = this.pos;
        const name = this.name();
        if (!this.referenced.has(name)) this.referenced.set(name, at);
        items.push({ type: "ref", name });
      } else if (c === "(") {
        this.pos++;
        this.space(true);
        const inner = this.alternates(true);
        if (this.peek() !== ")") this.fail("expecting )");
        this.pos++;
        // A group stays one item, so that a postfix operator applies to all of it.
        items.push(inner.type === "seq" || inner.type === "lit" ? { type: "alt", items: [inner] } : inner);
      } else if (c === ".") {
        this.pos++;
        items.push(charClass([], true));
      } else if (c === "*") {
        this.pos++;
        postfix(0, Infinity);
      } else if (c === "+") {
        this.pos++;
        postfix(1, Infinity);
      } else if (c === "?") {
        this.pos++;
        postfix(0, 1);
      } else if (c === "{") {
        this.pos++;
        this.space(nested);
        const min = this.int();
        this.space(nested);
        let max = min;
        if (this.peek() === ",") {
          this.pos++;
          this.space(nested);
          max = /^[0-9]$/.test(this.peek()) ? this.int() : Infinity;
          this.space(nested);
        }
        if (this.peek() !== "}") this.fail("expecting }");
        this.pos++;
        if (min > MAX_REPETITIONS || (max !== Infinity && max > MAX_REPETITIONS))
          this.fail(`repetition counts above ${MAX_REPETITIONS} are not supported`);
        if (max < min) this.fail(`repetition {${min},${max}} has max below min`);
        postfix(min, max);
      } else break;
      this.space(nested);
    }
    return seqKeepingGroups(items);
  }
}

/** seq() without merging a group's literal into its neighbours (the group already closed). */
function seqKeepingGroups(items: Expr[]): Expr {
  return items.length === 1 ? items[0] : items.length === 0 ? seq() : { type: "seq", items };
}

/**
 * Parses GBNF text. Errors are TesseraErrors with code ERR_INVALID_ARGUMENT naming the line and
 * column. The start rule is `root` unless `root` names another.
 */
export function parseGbnf(text: string, root = "root"): Grammar {
  if (typeof text !== "string") throw new TesseraError("ERR_INVALID_ARGUMENT", "grammar must be GBNF text (a string)");
  const rules = new Parser(text).grammar();
  if (!rules.has(root)) throw new TesseraError("ERR_INVALID_ARGUMENT", `grammar: there is no "${root}" rule to start from`);
  return { rules, root };
}
