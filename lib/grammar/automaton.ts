/**
 * The pushdown automaton of a byte grammar, run on bytes. A parse is a stack of frames; a
 * frame is a position in the grammar (the next element of an alternative). The top frame of
 * every stack points at a terminal: after each byte, stacks are expanded ("closure") until
 * their top is a terminal again, popping finished alternatives and pushing a frame for what
 * follows a rule reference (none when the reference ends its alternative, so right
 * recursion runs in constant stack). Ambiguous grammars keep several stacks: a state is the
 * set of them.
 *
 * Stacks are hash-consed: a node is (position, parent node), interned, so a stack is one
 * integer and equal stacks are equal integers. States (sorted node sets) are interned too,
 * and transitions state × byte → state are memoized: walking the bytes of 128k tokens from a
 * state is then mostly table lookups, which is what makes token masks cheap.
 *
 * Two node ids are reserved: EMPTY (0), the bottom of the root's stack (the root rule has
 * finished; nothing more can be read), and CUT (1), the bottom of a stack that was cut off
 * below some depth (token-masks.ts computes masks that depend only on a stack's top frames;
 * popping into CUT means the rest of the stack would have to decide).
 */
import { END, MAX_POSITIONS, RULE, TERM, type ByteGrammar } from "./compile.js";

export const NODE_EMPTY = 0;
export const NODE_CUT = 1;
/** A placeholder parent: expansions computed once per position and reused on any stack. */
const NODE_HOLE = 2;
export const DEAD = -1;
const UNKNOWN = -2;

export const FLAG_EMPTY = 1;
export const FLAG_CUT = 2;

function grow<T extends Int32Array | Float64Array | Uint8Array>(a: T, need: number, fill?: number): T {
  if (a.length >= need) return a;
  const b = new (a.constructor as new (n: number) => T)(Math.max(need, a.length * 2));
  b.set(a);
  if (fill !== undefined) b.fill(fill, a.length);
  return b;
}

/**
 * Interned nodes and states with their memoized transitions. An Automaton replaces its tables
 * when they grow past a bound (long generations with deep, ever-new stacks); holders of a
 * state id from old tables (matchers) carry it over with `translate`.
 */
export class Tables {
  nodePos = new Int32Array(1024);
  nodeParent = new Int32Array(1024);
  nodeCount = 3;
  readonly nodeMap = new Map<number, number>();
  /** What continuing below each node expands to (see Automaton.popClosure). */
  readonly popClosures: Array<Int32Array | undefined> = [];
  /** Fewest bytes that finish a stack, per node (-1: not yet known). */
  nodeMin = new Float64Array(1024).fill(-1);

  readonly stateNodes: Int32Array[] = [];
  readonly stateMap = new Map<string, number>();
  /** States of one stack, by its node (most states). */
  readonly singleStates = new Map<number, number>();
  stateFlags = new Uint8Array(1024);
  stateMin = new Float64Array(1024).fill(-1);
  readonly trans: Array<Int32Array | undefined> = [];
  /** The start state in these tables (-1 until asked for). */
  initial = -1;

  constructor() {
    this.nodeMin[NODE_EMPTY] = 0;
    this.nodeMin[NODE_CUT] = 0;
    this.nodeMin[2] = 0;
  }
}

export class Automaton {
  t = new Tables();
  private readonly kind: Uint8Array;
  private readonly arg: Int32Array;
  private readonly sets: Uint32Array;
  private readonly alts: Int32Array[];
  private readonly minRest: Float64Array;
  /** Scratch for closures. */
  private readonly seen = new Set<number>();
  private readonly out: number[] = [];
  private readonly work: number[] = [];
  /**
   * Per position: the stacks that continuing there expands to, as chains of positions over
   * a placeholder parent, and whether the expansion can finish the alternative and pop into
   * the parent. Stepping a stack is then instantiating one template on its parent.
   */
  private readonly templates: Array<{ chains: Int32Array[]; pops: boolean } | undefined> = [];

  constructor(readonly grammar: ByteGrammar) {
    this.kind = grammar.kind;
    this.arg = grammar.arg;
    this.sets = grammar.sets;
    this.alts = grammar.alts;
    this.minRest = grammar.minRest;
  }

  /** The state of a fresh parse (the root rule's alternatives, nothing read). */
  startState(): number {
    if (this.t.initial >= 0) return this.t.initial;
    this.out.length = 0;
    this.seen.clear();
    for (const a of this.alts[this.grammar.root]) this.expand(a, NODE_EMPTY);
    return (this.t.initial = this.intern(this.out));
  }

  node(pos: number, parent: number): number {
    const t = this.t;
    const key = parent * MAX_POSITIONS + pos;
    let id = t.nodeMap.get(key);
    if (id === undefined) {
      id = t.nodeCount++;
      if (id >= t.nodePos.length) {
        t.nodePos = grow(t.nodePos, id + 1);
        t.nodeParent = grow(t.nodeParent, id + 1);
        t.nodeMin = grow(t.nodeMin, id + 1, -1);
      }
      t.nodePos[id] = pos;
      t.nodeParent[id] = parent;
      t.nodeMap.set(key, id);
    }
    return id;
  }

  /** Adds the stacks that (pos, parent) expands to, tops at terminals, to `out`. */
  private expand(pos: number, parent: number, out: number[] = this.out, seen: Set<number> = this.seen): void {
    const { kind, arg, alts } = this;
    const work: number[] = out === this.out ? this.work : [];
    const t = this.t;
    work.push(pos, parent);
    while (work.length) {
      parent = work.pop()!;
      pos = work.pop()!;
      for (;;) {
        const key = parent * MAX_POSITIONS + pos;
        if (seen.has(key)) break;
        seen.add(key);
        const k = kind[pos];
        if (k === TERM) {
          out.push(this.node(pos, parent));
          break;
        }
        if (k === RULE) {
          const next = pos + 1;
          const cont = kind[next] === END ? parent : this.node(next, parent);
          const starts = alts[arg[pos]];
          for (let i = starts.length - 1; i >= 0; i--) work.push(starts[i], cont);
          break;
        }
        // END: the alternative is finished; continue where the parent frame left off.
        if (parent <= NODE_HOLE) {
          out.push(parent);
          break;
        }
        pos = t.nodePos[parent];
        parent = t.nodeParent[parent];
      }
    }
  }

  private template(pos: number): { chains: Int32Array[]; pops: boolean } {
    let tpl = this.templates[pos];
    if (tpl) return tpl;
    const out: number[] = [];
    this.expand(pos, NODE_HOLE, out, new Set());
    const t = this.t;
    const chains: Int32Array[] = [];
    let pops = false;
    for (const n of out) {
      if (n === NODE_HOLE) {
        pops = true;
        continue;
      }
      const positions: number[] = [];
      for (let m = n; m !== NODE_HOLE; m = t.nodeParent[m]) positions.push(t.nodePos[m]);
      chains.push(Int32Array.from(positions));
    }
    tpl = { chains, pops };
    this.templates[pos] = tpl;
    return tpl;
  }

  /** Adds to `out` the stacks that continuing at `pos` over `parent` expands to. */
  private instantiate(pos: number, parent: number, out: number[]): void {
    const tpl = this.template(pos);
    for (const chain of tpl.chains) {
      let n = parent;
      for (let i = chain.length - 1; i >= 0; i--) n = this.node(chain[i], n);
      out.push(n);
    }
    if (!tpl.pops) return;
    if (parent <= NODE_CUT) {
      out.push(parent);
      return;
    }
    for (const n of this.popClosure(parent)) out.push(n);
  }

  /** The stacks that popping into `node` (continuing at its position over its parent) expands to; memoized. */
  private popClosure(node: number): Int32Array {
    const t = this.t;
    let c = t.popClosures[node];
    if (c) return c;
    const out: number[] = [];
    this.instantiate(t.nodePos[node], t.nodeParent[node], out);
    c = Int32Array.from(out);
    t.popClosures[node] = c;
    return c;
  }

  /** The state of these stacks (DEAD for none). Sorts `nodes` in place. */
  intern(nodes: number[]): number {
    if (nodes.length === 0) return DEAD;
    const t = this.t;
    let n = nodes.length;
    let id: number | undefined;
    let key = "";
    if (n === 1) id = t.singleStates.get(nodes[0]);
    else {
      nodes.sort((a, b) => a - b);
      n = 1;
      for (let i = 1; i < nodes.length; i++) if (nodes[i] !== nodes[n - 1]) nodes[n++] = nodes[i];
      nodes.length = n;
      if (n === 1) id = t.singleStates.get(nodes[0]);
      else {
        key = nodes.join(",");
        id = t.stateMap.get(key);
      }
    }
    if (id === undefined) {
      id = t.stateNodes.length;
      t.stateNodes.push(Int32Array.from(nodes));
      // Filled in when the state is first stepped; pushed now so the array never has holes.
      t.trans.push(undefined);
      if (n === 1) t.singleStates.set(nodes[0], id);
      else t.stateMap.set(key, id);
      if (id >= t.stateFlags.length) {
        t.stateFlags = grow(t.stateFlags, id + 1);
        t.stateMin = grow(t.stateMin, id + 1, -1);
      }
      let flags = 0;
      if (nodes[0] === NODE_EMPTY) flags |= FLAG_EMPTY;
      if (nodes[0] === NODE_CUT || (n > 1 && nodes[1] === NODE_CUT)) flags |= FLAG_CUT;
      t.stateFlags[id] = flags;
    }
    return id;
  }

  /** The state after one byte (DEAD if no stack reads it); memoized. */
  step(state: number, byte: number): number {
    const t = this.t;
    let row = t.trans[state];
    if (row === undefined) {
      row = new Int32Array(256).fill(UNKNOWN);
      t.trans[state] = row;
    }
    const next = row[byte];
    if (next !== UNKNOWN) return next;
    return (row[byte] = this.computeStep(state, byte));
  }

  private computeStep(state: number, byte: number): number {
    const t = this.t;
    const { kind, arg, sets } = this;
    const out: number[] = [];
    const word = byte >> 5;
    const bit = 1 << (byte & 31);
    for (const n of t.stateNodes[state]) {
      if (n <= NODE_CUT) continue;
      const p = t.nodePos[n];
      if (kind[p] === TERM && sets[arg[p] * 8 + word] & bit) this.instantiate(p + 1, t.nodeParent[n], out);
    }
    return this.intern(out);
  }

  /** The state after `bytes[from..to)`, DEAD as soon as no stack reads a byte. */
  walk(state: number, bytes: Uint8Array, from = 0, to = bytes.length): number {
    for (let i = from; i < to && state !== DEAD; i++) state = this.step(state, bytes[i]);
    return state;
  }

  isAccepting(state: number): boolean {
    return (this.t.stateFlags[state] & FLAG_EMPTY) !== 0;
  }

  /** No stack can read another byte: only the end of the text may follow. */
  isFinished(state: number): boolean {
    const nodes = this.t.stateNodes[state];
    return nodes.length === 1 && nodes[0] <= NODE_CUT;
  }

  /** Fewest bytes that finish the parse from this node's stack (CUT counts as finished). */
  nodeMin(n: number): number {
    const t = this.t;
    let v = t.nodeMin[n];
    if (v >= 0) return v;
    // Walk down to a known node, then fill in on the way back.
    const chain: number[] = [];
    while (t.nodeMin[n] < 0) {
      chain.push(n);
      n = t.nodeParent[n];
    }
    v = t.nodeMin[n];
    for (let i = chain.length - 1; i >= 0; i--) {
      v += this.minRest[t.nodePos[chain[i]]];
      t.nodeMin[chain[i]] = v;
    }
    return v;
  }

  stateMin(state: number): number {
    const t = this.t;
    let v = t.stateMin[state];
    if (v >= 0) return v;
    v = Infinity;
    for (const n of t.stateNodes[state]) v = Math.min(v, this.nodeMin(n));
    t.stateMin[state] = v;
    return v;
  }

  /** The node of `n`'s stack with everything below its top `depth` frames replaced by CUT. */
  truncate(n: number, depth: number): number {
    if (n <= NODE_CUT) return n;
    if (depth === 0) return NODE_CUT;
    const t = this.t;
    const parent = this.truncate(t.nodeParent[n], depth - 1);
    return parent === t.nodeParent[n] ? n : this.node(t.nodePos[n], parent);
  }

  /** The positions of `n`'s stack, top first, and its bottom (EMPTY or CUT). */
  chain(n: number, tables: Tables = this.t): { positions: number[]; bottom: number } {
    const positions: number[] = [];
    while (n > NODE_CUT) {
      positions.push(tables.nodePos[n]);
      n = tables.nodeParent[n];
    }
    return { positions, bottom: n };
  }

  fromChain(positions: readonly number[], bottom: number): number {
    let n = bottom;
    for (let i = positions.length - 1; i >= 0; i--) n = this.node(positions[i], n);
    return n;
  }

  /** A state id of `old` tables as a state of the current ones. */
  translate(state: number, old: Tables): number {
    if (old === this.t || state === DEAD) return state;
    const nodes = Array.from(old.stateNodes[state], (n) => {
      const c = this.chain(n, old);
      return this.fromChain(c.positions, c.bottom);
    });
    return this.intern(nodes);
  }

  /** Drops every interned node and state once the tables pass these sizes. */
  maybeReset(maxStates = 30_000, maxNodes = 300_000): boolean {
    if (this.t.stateNodes.length < maxStates && this.t.nodeCount < maxNodes) return false;
    this.t = new Tables();
    return true;
  }

  /** The state of `n` alone. */
  stateOfNode(n: number): number {
    return this.intern([n]);
  }
}
