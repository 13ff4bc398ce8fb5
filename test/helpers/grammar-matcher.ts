/**
 * An independent recognizer for grammars in the code-point form the GBNF parser and the JSON
 * Schema translator produce (lib/grammar/ir.ts): plain recursive matching over code points
 * that returns every position an expression can end at, memoized per rule and start. It
 * shares nothing with the byte automaton (no UTF-8 lowering, no stacks, no masks), so tests
 * can check what generation produced against the grammar itself.
 */
import { Automaton, DEAD } from "../../lib/grammar/automaton.js";
import { compileGrammar } from "../../lib/grammar/compile.js";
import type { Expr, Grammar } from "../../lib/grammar/ir.js";

/** Whether the compiled byte automaton (the thing under test) reads all of `text` and may end there. */
export function automatonAccepts(g: Grammar, text: string): boolean {
  const a = new Automaton(compileGrammar(g));
  const s = a.walk(a.startState(), new TextEncoder().encode(text));
  return s !== DEAD && a.isAccepting(s);
}

export function matchesGrammar(g: Grammar, text: string): boolean {
  const cps = Array.from(text, (c) => c.codePointAt(0)!);
  const memo = new Map<string, Set<number>>();
  const inProgress = new Set<string>();

  const classHas = (ranges: number[], negated: boolean, cp: number): boolean => {
    if (cp >= 0xd800 && cp <= 0xdfff) return false;
    let inside = false;
    for (let i = 0; i < ranges.length; i += 2) if (cp >= ranges[i] && cp <= ranges[i + 1]) inside = true;
    return inside !== negated;
  };

  const ends = (e: Expr, at: number): Set<number> => {
    switch (e.type) {
      case "lit": {
        const want = Array.from(e.text, (c) => c.codePointAt(0)!);
        for (let i = 0; i < want.length; i++) if (cps[at + i] !== want[i]) return new Set();
        return new Set([at + want.length]);
      }
      case "class":
        return at < cps.length && classHas(e.ranges, e.negated, cps[at]) ? new Set([at + 1]) : new Set();
      case "ref": {
        const key = `${e.name}@${at}`;
        const known = memo.get(key);
        if (known) return known;
        if (inProgress.has(key)) throw new Error(`left recursion through ${e.name}`);
        inProgress.add(key);
        const r = ends(g.rules.get(e.name)!, at);
        inProgress.delete(key);
        memo.set(key, r);
        return r;
      }
      case "seq": {
        let cur = new Set([at]);
        for (const item of e.items) {
          const next = new Set<number>();
          for (const p of cur) for (const q of ends(item, p)) next.add(q);
          cur = next;
          if (cur.size === 0) break;
        }
        return cur;
      }
      case "alt": {
        const out = new Set<number>();
        for (const item of e.items) for (const q of ends(item, at)) out.add(q);
        return out;
      }
      case "rep": {
        const out = new Set<number>();
        let cur = new Set([at]);
        const seen = new Set<number>();
        for (let k = 0; cur.size > 0 && k <= Math.min(e.max, cps.length + 1); k++) {
          if (k >= e.min) for (const p of cur) out.add(p);
          if (k === e.max) break;
          const next = new Set<number>();
          for (const p of cur) for (const q of ends(e.item, p)) if (k < e.min || !seen.has(q)) next.add(q);
          if (k >= e.min) for (const p of cur) seen.add(p);
          cur = next;
        }
        return out;
      }
    }
  };
  return ends({ type: "ref", name: g.root }, 0).has(cps.length);
}
