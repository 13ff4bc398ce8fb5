/**
 * A grammar as rules of expressions over Unicode code points: what the GBNF parser and the
 * JSON Schema translator both produce, and what compile.ts lowers to a byte-level automaton.
 * `toGbnf` prints it back as GBNF, for error messages and for users who want to see what a
 * schema became.
 */

export type Expr =
  /** A string matched exactly (as its UTF-8 bytes). */
  | { type: "lit"; text: string }
  /**
   * One code point from sorted, disjoint inclusive ranges [lo0, hi0, lo1, hi1, ...], or (negated)
   * any code point outside them. Surrogates (U+D800..U+DFFF) never match: they have no UTF-8.
   */
  | { type: "class"; ranges: number[]; negated: boolean }
  | { type: "ref"; name: string }
  | { type: "seq"; items: Expr[] }
  | { type: "alt"; items: Expr[] }
  /** item repeated min..max times (max Infinity: unbounded). */
  | { type: "rep"; item: Expr; min: number; max: number };

export interface Grammar {
  rules: Map<string, Expr>;
  root: string;
}

export const lit = (text: string): Expr => ({ type: "lit", text });
export const ref = (name: string): Expr => ({ type: "ref", name });
export const EMPTY: Expr = { type: "seq", items: [] };

export function seq(...items: Expr[]): Expr {
  const flat: Expr[] = [];
  for (const e of items) {
    if (e.type === "seq") flat.push(...e.items);
    else flat.push(e);
  }
  // Adjacent literals join into one (shorter printed grammars, same language).
  const out: Expr[] = [];
  for (const e of flat) {
    const last = out[out.length - 1];
    if (e.type === "lit" && last?.type === "lit") out[out.length - 1] = lit(last.text + e.text);
    else if (!(e.type === "lit" && e.text === "")) out.push(e);
  }
  return out.length === 1 ? out[0] : { type: "seq", items: out };
}

export function alt(...items: Expr[]): Expr {
  const flat: Expr[] = [];
  for (const e of items) {
    if (e.type === "alt") flat.push(...e.items);
    else flat.push(e);
  }
  return flat.length === 1 ? flat[0] : { type: "alt", items: flat };
}

export const rep = (item: Expr, min: number, max: number): Expr => ({ type: "rep", item, min, max });
export const opt = (item: Expr): Expr => rep(item, 0, 1);
export const star = (item: Expr): Expr => rep(item, 0, Infinity);

/** A class from [lo, hi] pairs (need not be sorted or disjoint). */
export function charClass(pairs: Array<[number, number]>, negated = false): Expr {
  return { type: "class", ranges: normalizeRanges(pairs), negated };
}

/** Sorts and merges [lo, hi] pairs into a flat [lo0, hi0, lo1, hi1, ...] list. */
export function normalizeRanges(pairs: Array<[number, number]>): number[] {
  const sorted = pairs.filter(([lo, hi]) => lo <= hi).sort((a, b) => a[0] - b[0]);
  const out: number[] = [];
  for (const [lo, hi] of sorted) {
    const n = out.length;
    if (n > 0 && lo <= out[n - 1] + 1) out[n - 1] = Math.max(out[n - 1], hi);
    else out.push(lo, hi);
  }
  return out;
}

const MAX_CODE_POINT = 0x10ffff;

/** The code point ranges a class matches, negation applied and surrogates removed. */
export function classRanges(e: { ranges: number[]; negated: boolean }): number[] {
  let ranges = e.ranges;
  if (e.negated) {
    const inv: number[] = [];
    let next = 0;
    for (let i = 0; i < ranges.length; i += 2) {
      if (ranges[i] > next) inv.push(next, ranges[i] - 1);
      next = ranges[i + 1] + 1;
    }
    if (next <= MAX_CODE_POINT) inv.push(next, MAX_CODE_POINT);
    ranges = inv;
  }
  const out: number[] = [];
  for (let i = 0; i < ranges.length; i += 2) {
    const lo = ranges[i];
    const hi = Math.min(ranges[i + 1], MAX_CODE_POINT);
    if (hi < 0xd800 || lo > 0xdfff) out.push(lo, hi);
    else {
      if (lo < 0xd800) out.push(lo, 0xd7ff);
      if (hi > 0xdfff) out.push(0xe000, hi);
    }
  }
  return out;
}

// ---------------------------------------------------------------- printing as GBNF

function escapeChar(cp: number, inClass: boolean): string {
  switch (cp) {
    case 0x0a:
      return "\\n";
    case 0x0d:
      return "\\r";
    case 0x09:
      return "\\t";
    case 0x5c:
      return "\\\\";
    case 0x22:
      return inClass ? '"' : '\\"';
  }
  if (inClass && (cp === 0x5b || cp === 0x5d || cp === 0x2d || cp === 0x5e)) return "\\" + String.fromCodePoint(cp);
  if (cp < 0x20 || cp === 0x7f) return "\\x" + cp.toString(16).padStart(2, "0").toUpperCase();
  if (cp >= 0x7f && cp < 0xa0) return "\\x" + cp.toString(16).toUpperCase();
  if (cp >= 0xd800 && cp <= 0xdfff) return "\\u" + cp.toString(16).padStart(4, "0").toUpperCase();
  if (cp > 0xffff) return "\\U" + cp.toString(16).padStart(8, "0").toUpperCase();
  return String.fromCodePoint(cp);
}

function printExpr(e: Expr, parent: "top" | "seq" | "postfix"): string {
  switch (e.type) {
    case "lit": {
      let s = '"';
      for (const ch of e.text) s += escapeChar(ch.codePointAt(0)!, false);
      return s + '"';
    }
    case "class": {
      let s = e.negated ? "[^" : "[";
      for (let i = 0; i < e.ranges.length; i += 2) {
        s += escapeChar(e.ranges[i], true);
        if (e.ranges[i + 1] !== e.ranges[i]) s += "-" + escapeChar(e.ranges[i + 1], true);
      }
      return s + "]";
    }
    case "ref":
      return e.name;
    case "seq": {
      if (e.items.length === 0) return parent === "top" ? "" : '""';
      const s = e.items.map((x) => printExpr(x, "seq")).join(" ");
      return parent === "postfix" && e.items.length > 1 ? `(${s})` : s;
    }
    case "alt": {
      // An empty alternative prints as "": a trailing "| " would continue the rule on the next line.
      const s = e.items.map((x) => (x.type === "seq" && x.items.length === 0 ? '""' : printExpr(x, "top"))).join(" | ");
      return parent === "top" ? s : `(${s})`;
    }
    case "rep": {
      const inner = printExpr(e.item, "postfix");
      const { min, max } = e;
      if (min === 0 && max === Infinity) return inner + "*";
      if (min === 1 && max === Infinity) return inner + "+";
      if (min === 0 && max === 1) return inner + "?";
      if (max === Infinity) return `${inner}{${min},}`;
      if (min === max) return `${inner}{${min}}`;
      return `${inner}{${min},${max}}`;
    }
  }
}

/** The grammar as GBNF text (root first). */
export function toGbnf(g: Grammar): string {
  const names = [g.root, ...[...g.rules.keys()].filter((n) => n !== g.root)];
  return names.map((n) => `${n} ::= ${printExpr(g.rules.get(n)!, "top")}`).join("\n") + "\n";
}
