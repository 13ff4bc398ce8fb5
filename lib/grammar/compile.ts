/**
 * Lowers a code-point grammar (ir.ts) to a byte-level one: every rule becomes alternatives of
 * elements, each element either a terminal (a set of bytes, one byte of input) or a reference
 * to a rule. Literals become one terminal per UTF-8 byte; character classes become one
 * terminal when they are ASCII, else a helper rule of UTF-8 byte sequences; repetitions
 * become right-recursive helper rules (x* is R ::= x R | ε), as llama.cpp expands them.
 *
 * The result is laid out flat (positions: one per element plus an END per alternative) for
 * the automaton, with what it needs precomputed: nullability, the fewest bytes that finish
 * each position (the automaton uses them to close output before a token budget runs out),
 * and each rule's FOLLOW set of bytes (to rule tokens out without knowing the stack). The
 * grammar is checked: rules reachable from the root must be able to finish, and no rule may
 * recurse on its left (the automaton would expand it forever).
 */
import { TesseraError } from "../errors.js";
import { classRanges, type Expr, type Grammar } from "./ir.js";
import { utf8Bytes, utf8Sequences, type ByteRange } from "./utf8.js";

export const END = 0;
export const TERM = 1;
export const RULE = 2;

/** Positions are packed with a stack node id into one double key; this bounds them. */
export const MAX_POSITIONS = 1 << 22;

type Elem = { t: number } | { r: number };

export interface ByteGrammar {
  /** Per position: END, TERM or RULE. */
  readonly kind: Uint8Array;
  /** Per position: the byte set (TERM) or the rule (RULE). */
  readonly arg: Int32Array;
  /** Per position: the rule it belongs to. */
  readonly ruleOf: Int32Array;
  /** Per rule: the first position of each alternative. */
  readonly alts: Int32Array[];
  readonly ruleNames: string[];
  /** Byte sets, 8 words (256 bits) each. */
  readonly sets: Uint32Array;
  readonly root: number;
  /** Per position: fewest bytes that finish its alternative from there. */
  readonly minRest: Float64Array;
  /** Per rule: bytes that can come right after it (8 words each). */
  readonly follow: Uint32Array;
  /** Number of positions. */
  readonly positions: number;
}

class Lowering {
  readonly rules: Elem[][][] = [];
  readonly names: string[] = [];
  private readonly byName = new Map<string, number>();
  private readonly sets: number[][] = [];
  private readonly setIndex = new Map<string, number>();
  private readonly classRules = new Map<string, number>();
  private helpers = 0;

  constructor(private readonly grammar: Grammar) {
    for (const name of grammar.rules.keys()) this.newRule(name);
  }

  private newRule(name: string): number {
    const id = this.rules.length;
    this.rules.push([]);
    this.names.push(name);
    this.byName.set(name, id);
    return id;
  }

  private helper(base: string, alts: Elem[][]): number {
    const id = this.newRule(`${base}-${++this.helpers}`);
    this.rules[id] = alts;
    return id;
  }

  set(ranges: ByteRange[]): number {
    const words = [0, 0, 0, 0, 0, 0, 0, 0];
    for (const [lo, hi] of ranges) for (let b = lo; b <= hi; b++) words[b >> 5] |= 1 << (b & 31);
    const key = words.join(",");
    let id = this.setIndex.get(key);
    if (id === undefined) {
      id = this.sets.length;
      this.sets.push(words);
      this.setIndex.set(key, id);
    }
    return id;
  }

  packedSets(): Uint32Array {
    const out = new Uint32Array(this.sets.length * 8);
    this.sets.forEach((w, i) => out.set(w.map((x) => x >>> 0), i * 8));
    return out;
  }

  lowerAll(): void {
    for (const [name, body] of this.grammar.rules) this.rules[this.byName.get(name)!] = this.alternatives(body, name);
  }

  private alternatives(e: Expr, base: string): Elem[][] {
    if (e.type === "alt") return e.items.map((x) => this.sequence(x, base));
    return [this.sequence(e, base)];
  }

  private sequence(e: Expr, base: string): Elem[] {
    if (e.type === "seq") return e.items.flatMap((x) => this.item(x, base));
    return this.item(e, base);
  }

  private item(e: Expr, base: string): Elem[] {
    switch (e.type) {
      case "lit":
        return Array.from(utf8Bytes(e.text), (b) => ({ t: this.set([[b, b]]) }));
      case "class":
        return [this.charClass(e, base)];
      case "ref": {
        const r = this.byName.get(e.name);
        if (r === undefined || !this.grammar.rules.has(e.name))
          throw new TesseraError("ERR_INVALID_ARGUMENT", `grammar: undefined rule "${e.name}"`);
        return [{ r }];
      }
      case "seq":
        return this.sequence(e, base);
      case "alt":
        if (e.items.length === 1) return this.sequence(e.items[0], base);
        return [{ r: this.helper(base, this.alternatives(e, base)) }];
      case "rep":
        return this.repetition(e.item, e.min, e.max, base);
    }
  }

  private charClass(e: { ranges: number[]; negated: boolean }, base: string): Elem {
    const ranges = classRanges(e);
    if (ranges.length === 0) throw new TesseraError("ERR_INVALID_ARGUMENT", "grammar: a character class matches no character");
    if (ranges[ranges.length - 1] < 0x80) {
      const pairs: ByteRange[] = [];
      for (let i = 0; i < ranges.length; i += 2) pairs.push([ranges[i], ranges[i + 1]]);
      return { t: this.set(pairs) };
    }
    const key = ranges.join(",");
    const cached = this.classRules.get(key);
    if (cached !== undefined) return { r: cached };
    const seqs: ByteRange[][] = [];
    for (let i = 0; i < ranges.length; i += 2) utf8Sequences(ranges[i], ranges[i + 1], seqs);
    const single = seqs.filter((s) => s.length === 1).map((s) => s[0]);
    const alts: Elem[][] = [];
    if (single.length) alts.push([{ t: this.set(single) }]);
    for (const s of seqs) if (s.length > 1) alts.push(s.map((r) => ({ t: this.set([r]) })));
    const id = this.helper(`${base}-char`, alts);
    this.classRules.set(key, id);
    return { r: id };
  }

  private repetition(item: Expr, min: number, max: number, base: string): Elem[] {
    if (max === 0) return [];
    let x = this.item(item, base);
    if (x.length !== 1) x = [{ r: this.helper(base, [x]) }];
    const out: Elem[] = [];
    for (let i = 0; i < min; i++) out.push(...x);
    if (max === Infinity) {
      const r = this.helper(base, []);
      this.rules[r] = [[...x, { r }], []];
      out.push({ r });
    } else if (max > min) {
      // x{0,n}: R_n ::= x R_(n-1) | ε, nested, so that a stack never holds more than one of them.
      let prev = this.helper(base, [x, []]);
      for (let k = 2; k <= max - min; k++) prev = this.helper(base, [[...x, { r: prev }], []]);
      out.push({ r: prev });
    }
    return out;
  }

  ruleId(name: string): number {
    return this.byName.get(name)!;
  }
}

function fail(message: string): never {
  throw new TesseraError("ERR_INVALID_ARGUMENT", `grammar: ${message}`);
}

export function compileGrammar(g: Grammar): ByteGrammar {
  if (!g.rules.has(g.root)) fail(`there is no "${g.root}" rule to start from`);
  const low = new Lowering(g);
  low.lowerAll();
  const rules = low.rules;
  const nRules = rules.length;

  // Layout.
  let nPos = 0;
  for (const alts of rules) for (const a of alts) nPos += a.length + 1;
  if (nPos > MAX_POSITIONS) fail(`the grammar expands to ${nPos} positions, more than the ${MAX_POSITIONS} supported; lower its repetition counts`);
  const kind = new Uint8Array(nPos);
  const arg = new Int32Array(nPos);
  const ruleOf = new Int32Array(nPos);
  const altStarts: Int32Array[] = [];
  let p = 0;
  for (let r = 0; r < nRules; r++) {
    const starts = new Int32Array(rules[r].length);
    rules[r].forEach((a, i) => {
      starts[i] = p;
      for (const e of a) {
        if ("t" in e) {
          kind[p] = TERM;
          arg[p] = e.t;
        } else {
          kind[p] = RULE;
          arg[p] = e.r;
        }
        ruleOf[p++] = r;
      }
      kind[p] = END;
      ruleOf[p++] = r;
    });
    altStarts.push(starts);
  }
  const root = low.ruleId(g.root);

  // Reachable rules.
  const reachable = new Uint8Array(nRules);
  const todo = [root];
  reachable[root] = 1;
  while (todo.length) {
    const r = todo.pop()!;
    for (const a of altStarts[r])
      for (let q = a; kind[q] !== END; q++)
        if (kind[q] === RULE && !reachable[arg[q]]) {
          reachable[arg[q]] = 1;
          todo.push(arg[q]);
        }
  }

  // Fewest bytes per rule (also: productive = finite), by relaxation until nothing changes.
  // Users (rules referencing a rule) are revisited when its length drops.
  const minLen = new Float64Array(nRules).fill(Infinity);
  const users: number[][] = Array.from({ length: nRules }, () => []);
  for (let r = 0; r < nRules; r++)
    for (const a of altStarts[r]) for (let q = a; kind[q] !== END; q++) if (kind[q] === RULE) users[arg[q]].push(r);
  const queued = new Uint8Array(nRules).fill(1);
  const queue: number[] = [];
  for (let r = nRules - 1; r >= 0; r--) queue.push(r);
  while (queue.length) {
    const r = queue.pop()!;
    queued[r] = 0;
    let best = Infinity;
    for (const a of altStarts[r]) {
      let sum = 0;
      for (let q = a; kind[q] !== END && sum < Infinity; q++) sum += kind[q] === TERM ? 1 : minLen[arg[q]];
      if (sum < best) best = sum;
    }
    if (best < minLen[r]) {
      minLen[r] = best;
      for (const u of users[r])
        if (!queued[u]) {
          queued[u] = 1;
          queue.push(u);
        }
    }
  }
  for (let r = 0; r < nRules; r++)
    if (reachable[r] && minLen[r] === Infinity) fail(`rule "${low.names[r]}" can never finish (every alternative recurses into itself)`);
  const minRest = new Float64Array(nPos);
  for (let r = 0; r < nRules; r++)
    for (const a of altStarts[r]) {
      let end = a;
      while (kind[end] !== END) end++;
      let sum = 0;
      for (let q = end; q >= a; q--) {
        if (kind[q] === TERM) sum += 1;
        else if (kind[q] === RULE) sum += minLen[arg[q]];
        minRest[q] = sum;
      }
    }
  const nullable = (r: number) => minLen[r] === 0;

  checkLeftRecursion(kind, arg, altStarts, reachable, nullable, low.names);

  // FIRST and FOLLOW as byte sets.
  const sets = low.packedSets();
  const first = new Uint32Array(nRules * 8);
  const follow = new Uint32Array(nRules * 8);
  const orInto = (dst: Uint32Array, di: number, src: Uint32Array, si: number): boolean => {
    let changed = false;
    for (let w = 0; w < 8; w++) {
      const v = (dst[di + w] | src[si + w]) >>> 0;
      if (v !== dst[di + w]) {
        dst[di + w] = v;
        changed = true;
      }
    }
    return changed;
  };
  for (let changed = true; changed; ) {
    changed = false;
    for (let r = 0; r < nRules; r++)
      for (const a of altStarts[r])
        for (let q = a; kind[q] !== END; q++) {
          if (kind[q] === TERM) {
            changed = orInto(first, r * 8, sets, arg[q] * 8) || changed;
            break;
          }
          changed = orInto(first, r * 8, first, arg[q] * 8) || changed;
          if (!nullable(arg[q])) break;
        }
  }
  for (let changed = true; changed; ) {
    changed = false;
    for (let r = 0; r < nRules; r++)
      for (const a of altStarts[r])
        for (let q = a; kind[q] !== END; q++) {
          if (kind[q] !== RULE) continue;
          const b = arg[q];
          let restNullable = true;
          for (let n = q + 1; kind[n] !== END; n++) {
            if (kind[n] === TERM) {
              changed = orInto(follow, b * 8, sets, arg[n] * 8) || changed;
              restNullable = false;
              break;
            }
            changed = orInto(follow, b * 8, first, arg[n] * 8) || changed;
            if (!nullable(arg[n])) {
              restNullable = false;
              break;
            }
          }
          if (restNullable) changed = orInto(follow, b * 8, follow, r * 8) || changed;
        }
  }

  return { kind, arg, ruleOf, alts: altStarts, ruleNames: low.names, sets, root, minRest, follow, positions: nPos };
}

/**
 * Expanding a rule pushes a frame for what follows the reference, unless the reference ends
 * its alternative (then the frame is reused). A cycle of leftmost references (through nullable
 * prefixes) with one such push grows the stack without consuming a byte: left recursion.
 * Cycles of tail references only revisit the same frames, which the automaton handles.
 */
function checkLeftRecursion(
  kind: Uint8Array,
  arg: Int32Array,
  alts: Int32Array[],
  reachable: Uint8Array,
  nullable: (r: number) => boolean,
  names: string[],
): void {
  const n = alts.length;
  const edges: Array<Array<[number, boolean]>> = Array.from({ length: n }, () => []);
  for (let r = 0; r < n; r++) {
    if (!reachable[r]) continue;
    for (const a of alts[r])
      for (let q = a; kind[q] !== END; q++) {
        if (kind[q] === TERM) break;
        edges[r].push([arg[q], kind[q + 1] !== END]);
        if (!nullable(arg[q])) break;
      }
  }
  // Tarjan's strongly connected components, iteratively.
  const index = new Int32Array(n).fill(-1);
  const low = new Int32Array(n);
  const comp = new Int32Array(n).fill(-1);
  const onStack = new Uint8Array(n);
  const stack: number[] = [];
  let counter = 0;
  let comps = 0;
  for (let s = 0; s < n; s++) {
    if (!reachable[s] || index[s] >= 0) continue;
    const work: Array<[number, number]> = [[s, 0]];
    index[s] = low[s] = counter++;
    stack.push(s);
    onStack[s] = 1;
    while (work.length) {
      const top = work[work.length - 1];
      const [v, i] = top;
      if (i < edges[v].length) {
        top[1]++;
        const w = edges[v][i][0];
        if (index[w] < 0) {
          index[w] = low[w] = counter++;
          stack.push(w);
          onStack[w] = 1;
          work.push([w, 0]);
        } else if (onStack[w]) low[v] = Math.min(low[v], index[w]);
      } else {
        work.pop();
        if (work.length) {
          const u = work[work.length - 1][0];
          low[u] = Math.min(low[u], low[v]);
        }
        if (low[v] === index[v]) {
          let w: number;
          do {
            w = stack.pop()!;
            onStack[w] = 0;
            comp[w] = comps;
          } while (w !== v);
          comps++;
        }
      }
    }
  }
  for (let r = 0; r < n; r++)
    for (const [s, grows] of edges[r])
      if (grows && comp[r] === comp[s]) fail(`rule "${names[r]}" is left-recursive (through "${names[s]}"); rewrite it to recurse on the right`);
}
