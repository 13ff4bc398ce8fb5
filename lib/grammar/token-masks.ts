/**
 * Token masks for a byte grammar on one vocabulary.
 *
 * Which tokens may come next depends on the whole parse state, but mostly only on its top
 * frames: inside a JSON string, any token of string characters is fine whatever object the
 * string sits in. So, as XGrammar does, masks are computed in two parts:
 *
 * - Per context (a stack's top frames, the rest cut off), once, by walking
 *   the whole vocabulary in sorted byte order (a trie walk: tokens sharing a prefix share its
 *   steps, and a dead prefix skips every token under it). Tokens read to their end without
 *   popping below the context are *accepted* whatever the rest of the stack is; tokens that
 *   die inside it are rejected; tokens that pop below the context with bytes left, and whose
 *   next byte can follow the popped rule at all (its FOLLOW set), are *uncertain*.
 * - Per parse state, at run time: the union of its stacks' accepted sets, plus each uncertain
 *   token checked against the real stacks (the same walk over the short uncertain list).
 *   The result is cached per state: a generation revisits the same states over and over (the
 *   inside of a string, the point after a key).
 *
 * Tokens are bytes (tokenizer.tokenBytes): byte-level BPE tokens and SentencePiece byte
 * tokens may end inside a UTF-8 character, which the byte automaton handles like any other
 * prefix. Special and control tokens are never allowed; end-of-generation tokens are allowed
 * exactly where the grammar may end.
 *
 * Closing in time: every stack knows the fewest bytes that finish it (compile.ts), and every
 * cached mask the most bytes any of its tokens can leave to finish. When a generation's
 * remaining token budget gets below that, the mask is filtered so that what is left can
 * always be finished (one byte per token at worst), and a generation cut by maxTokens still
 * ends with complete output.
 */
import { TesseraError } from "../errors.js";
import type { TokenConstraint, TokenMask } from "../sampling/constraint.js";
import type { Tokenizer } from "../tokenizer/index.js";
import { Automaton, DEAD, FLAG_CUT, NODE_CUT, type Tables } from "./automaton.js";
import type { ByteGrammar } from "./compile.js";

/** Most frames of a stack a context mask depends on. */
const MAX_CONTEXT_DEPTH = 4;
/** A context leaving more tokens uncertain than this is replaced by a deeper one. */
const MAX_UNCERTAIN = 512;
/** Masks with at most this many tokens also list them (the sampler gathers them directly). */
const LIST_MAX = 4096;
const UNKNOWN = -2;

// ---------------------------------------------------------------- the vocabulary, sorted

/** A tokenizer's tokens as bytes, sorted, with the common prefix of each with the one before. */
export class VocabIndex {
  /** Token ids a mask covers (the tokenizer's vocabulary). */
  readonly size: number;
  readonly words: number;
  /** Grammar-text tokens (non-special, non-empty, not end-of-generation) in byte order. */
  readonly order: Int32Array;
  readonly bytes: Uint8Array;
  /** order[i]'s bytes are bytes[start[i] .. start[i + 1]). */
  readonly start: Int32Array;
  /** Bytes order[i] shares with order[i - 1]. */
  readonly lcp: Int32Array;
  readonly maxLength: number;
  /** Sorted position of each token id, -1 for tokens that are never grammar text. */
  readonly rank: Int32Array;
  readonly endOfGeneration: Int32Array;
  /** Sorted positions [lo, hi) of the tokens whose first byte is a space. */
  readonly spaceRange: [number, number];
  /** The first sorted position after i that does not share i's first byte (two first bytes). */
  readonly blockEnd1: Int32Array;
  readonly blockEnd2: Int32Array;

  constructor(tokenizer: Tokenizer) {
    const size = tokenizer.vocabSize;
    this.size = size;
    this.words = (size + 31) >>> 5;
    const eog: number[] = [];
    const pieces = new Array<Uint8Array>(size);
    const ids: number[] = [];
    let total = 0;
    for (let id = 0; id < size; id++) {
      if (tokenizer.isEndOfGeneration(id)) {
        eog.push(id);
        continue;
      }
      if (tokenizer.isSpecial(id)) continue;
      const b = tokenizer.tokenBytes(id);
      if (b.length === 0) continue;
      pieces[id] = b;
      ids.push(id);
      total += b.length;
    }
    const n = ids.length;
    const order = Int32Array.from(ids);
    sortByBytes(order, pieces);
    this.order = order;
    this.start = new Int32Array(n + 1);
    this.lcp = new Int32Array(n);
    this.rank = new Int32Array(size).fill(-1);
    this.bytes = new Uint8Array(total);
    let at = 0;
    let maxLength = 0;
    let spaceLo = -1;
    let spaceHi = -1;
    for (let i = 0; i < n; i++) {
      const id = order[i];
      const p = pieces[id];
      this.rank[id] = i;
      this.start[i] = at;
      this.bytes.set(p, at);
      at += p.length;
      if (p.length > maxLength) maxLength = p.length;
      if (i > 0) {
        const prev = pieces[order[i - 1]];
        let l = 0;
        while (l < prev.length && l < p.length && prev[l] === p[l]) l++;
        this.lcp[i] = l;
      }
      if (p[0] === 0x20) {
        if (spaceLo < 0) spaceLo = i;
        spaceHi = i + 1;
      }
    }
    this.start[n] = at;
    this.maxLength = maxLength;
    this.endOfGeneration = Int32Array.from(eog);
    this.spaceRange = spaceLo < 0 ? [0, 0] : [spaceLo, spaceHi];
    // Where each first-byte and first-two-bytes block ends: a prefix that dies at depth 1 or
    // 2 skips its whole block at once (most of the vocabulary, for most grammar positions).
    this.blockEnd1 = new Int32Array(n);
    this.blockEnd2 = new Int32Array(n);
    let end1 = n;
    let end2 = n;
    for (let i = n - 1; i >= 0; i--) {
      this.blockEnd1[i] = end1;
      this.blockEnd2[i] = end2;
      if (this.lcp[i] < 1) end1 = i;
      if (this.lcp[i] < 2) end2 = i;
    }
  }

  bytesOf(rank: number, from = 0): Uint8Array {
    return this.bytes.subarray(this.start[rank] + from, this.start[rank + 1]);
  }
}

/** Sorts token ids by their bytes (most significant byte first radix sort; shorter first on ties). */
function sortByBytes(ids: Int32Array, pieces: Uint8Array[]): void {
  const tmp = new Int32Array(ids.length);
  const counts = new Int32Array(258);
  const sort = (lo: number, hi: number, depth: number): void => {
    if (hi - lo < 24) {
      for (let i = lo + 1; i < hi; i++) {
        const x = ids[i];
        const px = pieces[x];
        let j = i - 1;
        while (j >= lo && compareFrom(pieces[ids[j]], px, depth) > 0) {
          ids[j + 1] = ids[j];
          j--;
        }
        ids[j + 1] = x;
      }
      return;
    }
    counts.fill(0);
    // Bucket 0: tokens that end here; bucket b + 1: next byte b.
    for (let i = lo; i < hi; i++) {
      const p = pieces[ids[i]];
      counts[(depth < p.length ? p[depth] + 1 : 0) + 1]++;
    }
    for (let b = 1; b < 258; b++) counts[b] += counts[b - 1];
    const starts = counts.slice(0, 257);
    for (let i = lo; i < hi; i++) {
      const p = pieces[ids[i]];
      tmp[lo + counts[depth < p.length ? p[depth] + 1 : 0]++] = ids[i];
    }
    ids.set(tmp.subarray(lo, hi), lo);
    for (let b = 1; b < 257; b++) {
      const a = lo + starts[b];
      const z = lo + (b < 256 ? starts[b + 1] : hi - lo);
      if (z - a > 1) sort(a, z, depth + 1);
    }
  };
  sort(0, ids.length, 0);
}

function compareFrom(a: Uint8Array, b: Uint8Array, from: number): number {
  const n = Math.min(a.length, b.length);
  for (let i = from; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

const indexes = new WeakMap<Tokenizer, VocabIndex>();

export function vocabIndex(tokenizer: Tokenizer): VocabIndex {
  let v = indexes.get(tokenizer);
  if (!v) {
    v = new VocabIndex(tokenizer);
    indexes.set(tokenizer, v);
  }
  return v;
}

// ---------------------------------------------------------------- masks

interface ContextMask {
  /** Tokens accepted whatever is below the context: as bits, or as a sorted id list when few. */
  readonly bits: Uint32Array | undefined;
  readonly ids: Int32Array | undefined;
  /** Sorted positions of the uncertain tokens, and each one's common prefix with the one before. */
  readonly uncertain: Int32Array;
  readonly uncertainLcp: Int32Array;
  /** Most bytes an accepted token leaves to finish the context's frames. */
  readonly maxAfter: number;
}

export interface StateMask extends TokenMask {
  /** Most bytes any allowed token leaves to finish the parse. */
  readonly maxAfter: number;
}

export interface MaskStats {
  contexts: number;
  contextMs: number;
  stateMasks: number;
}

/** A grammar's automaton on one vocabulary, with the masks computed so far (shared by generations). */
export class TokenAutomaton {
  readonly automaton: Automaton;
  readonly stats: MaskStats = { contexts: 0, contextMs: 0, stateMasks: 0 };
  /** Context masks by their frames' positions (stable across table resets). */
  private readonly contexts = new Map<string, ContextMask>();
  /** Contexts (by name) that leave too many tokens uncertain: a deeper one is used instead. */
  private readonly tooUncertain = new Set<string>();
  /** The context mask of each node, and its depth, in the current tables. */
  private nodeContext: Array<ContextMask | undefined> = [];
  private nodeDepth: number[] = [];
  private nodeBelow: Float64Array = new Float64Array(0);
  private readonly stateMasks = new Map<number, StateMask>();
  private readonly maxCachedStates: number;
  private tables: Tables;
  // Walk scratch, one slot per depth.
  private readonly walkStates: Int32Array;
  private readonly walkUncertain: Uint8Array;

  constructor(
    grammar: ByteGrammar,
    readonly vocab: VocabIndex,
  ) {
    this.automaton = new Automaton(grammar);
    this.tables = this.automaton.t;
    this.walkStates = new Int32Array(vocab.maxLength + 2);
    this.walkUncertain = new Uint8Array(vocab.maxLength + 2);
    // About 8 MiB of cached state masks (500 on a 128k vocabulary).
    this.maxCachedStates = Math.max(64, Math.min(4096, Math.floor((8 << 20) / (vocab.words * 4))));
  }

  /** Starts a new table generation when the old one grew too large. Only between walks. */
  sync(): void {
    if (this.automaton.maybeReset() || this.tables !== this.automaton.t) {
      this.tables = this.automaton.t;
      this.nodeContext = [];
      this.nodeDepth = [];
      this.nodeBelow = new Float64Array(0);
      this.stateMasks.clear();
    }
  }

  matcher(options: MatcherOptions = {}): GrammarMatcher {
    return new GrammarMatcher(this, options);
  }

  // ------------------------------------------------------------ context masks

  private contextOf(node: number): ContextMask {
    let c = this.nodeContext[node];
    if (c) return c;
    const a = this.automaton;
    // The shallowest context that leaves few tokens uncertain: one frame is shared by every
    // stack with that top (an unbounded string's inside, wherever the string is), deeper
    // frames are needed where the top frame's rule is a small helper (one character of a
    // bounded string, a step of indentation) that most tokens run past.
    for (let depth = 1; ; depth++) {
      const key = a.truncate(node, depth);
      const { positions, bottom } = a.chain(key);
      const name = positions.join(",") + (bottom === NODE_CUT ? "|cut" : "|end");
      const last = bottom !== NODE_CUT || depth === MAX_CONTEXT_DEPTH;
      if (!last && this.tooUncertain.has(name)) continue;
      c = this.contexts.get(name);
      if (!c) {
        const t0 = performance.now();
        const cutRule = bottom === NODE_CUT ? a.grammar.ruleOf[positions[positions.length - 1]] : -1;
        const walked = this.walkAll(a.stateOfNode(key), cutRule, last ? Infinity : MAX_UNCERTAIN);
        this.stats.contexts++;
        this.stats.contextMs += performance.now() - t0;
        if (!walked) {
          this.tooUncertain.add(name);
          continue;
        }
        c = walked;
        this.contexts.set(name, c);
      }
      this.nodeContext[node] = c;
      this.nodeDepth[node] = depth;
      return c;
    }
  }

  /** Fewest bytes to finish what the context of `node` cut off. */
  private below(node: number): number {
    if (node >= this.nodeBelow.length) {
      const b = new Float64Array(Math.max(node + 1, this.nodeBelow.length * 2)).fill(-1);
      b.set(this.nodeBelow);
      this.nodeBelow = b;
    }
    let v = this.nodeBelow[node];
    if (v >= 0) return v;
    const t = this.automaton.t;
    this.contextOf(node);
    let n = node;
    for (let d = 0; d < this.nodeDepth[node] && n > NODE_CUT; d++) n = t.nodeParent[n];
    v = n > NODE_CUT ? this.automaton.nodeMin(n) : 0;
    this.nodeBelow[node] = v;
    return v;
  }

  /** The trie walk over the whole vocabulary from a context's state; null past maxUncertain uncertain tokens. */
  private walkAll(start: number, cutRule: number, maxUncertain: number): ContextMask | null {
    const v = this.vocab;
    const a = this.automaton;
    const follow = a.grammar.follow;
    const fo = cutRule * 8;
    const { order, bytes, start: offsets, lcp, blockEnd1, blockEnd2 } = v;
    const states = this.walkStates;
    const unc = this.walkUncertain;
    const accepted: number[] = [];
    const uncertain: number[] = [];
    const uncertainLcp: number[] = [];
    let runLcp = 0;
    let maxAfter = 0;
    states[0] = start;
    unc[0] = 0;
    let valid = 0;
    let dead = -1;
    const n = order.length;
    for (let i = 0; i < n; i++) {
      const l = lcp[i];
      if (l < runLcp) runLcp = l;
      if (dead >= 0) {
        if (l >= dead) {
          if (unc[dead]) {
            uncertain.push(i);
            uncertainLcp.push(runLcp);
            runLcp = 0x7fffffff;
            if (uncertain.length > maxUncertain) return null;
          }
          continue;
        }
        dead = -1;
      }
      let j = l < valid ? l : valid;
      const s0 = offsets[i];
      const len = offsets[i + 1] - s0;
      let s = states[j];
      const t = a.t;
      while (j < len) {
        const b = bytes[s0 + j];
        let u = unc[j];
        if (!u && cutRule >= 0 && t.stateFlags[s] & FLAG_CUT && follow[fo + (b >> 5)] & (1 << (b & 31))) u = 1;
        unc[j + 1] = u;
        const row = t.trans[s];
        let next = row === undefined ? UNKNOWN : row[b];
        if (next === UNKNOWN) next = a.step(s, b);
        s = next;
        j++;
        if (s === DEAD) break;
        states[j] = s;
      }
      if (s === DEAD) {
        dead = j;
        valid = j - 1;
        if (unc[j]) {
          uncertain.push(i);
          uncertainLcp.push(runLcp);
          runLcp = 0x7fffffff;
          if (uncertain.length > maxUncertain) return null;
        } else if (j <= 2) {
          // Every token of this one's first-byte (first-two-bytes) block dies the same way.
          i = (j === 1 ? blockEnd1[i] : blockEnd2[i]) - 1;
        }
      } else {
        valid = j;
        accepted.push(order[i]);
        const m = a.stateMin(s);
        if (m > maxAfter) maxAfter = m;
      }
    }
    if (uncertainLcp.length) uncertainLcp[0] = 0;
    let bits: Uint32Array | undefined;
    let ids: Int32Array | undefined;
    if (accepted.length > v.words) {
      bits = new Uint32Array(v.words);
      for (const id of accepted) bits[id >>> 5] |= 1 << (id & 31);
    } else ids = Int32Array.from(accepted).sort();
    return { bits, ids, uncertain: Int32Array.from(uncertain), uncertainLcp: Int32Array.from(uncertainLcp), maxAfter };
  }

  /**
   * Walks the listed tokens (sorted positions with common prefixes) from a real state, sets the
   * bits of those it reads to their end, and returns the most bytes one of them leaves to finish.
   */
  private walkList(state: number, list: Int32Array, listLcp: Int32Array, bits: Uint32Array): number {
    const v = this.vocab;
    const a = this.automaton;
    const { order, bytes, start: offsets } = v;
    const states = this.walkStates;
    states[0] = state;
    let valid = 0;
    let dead = -1;
    let maxAfter = 0;
    for (let k = 0; k < list.length; k++) {
      const i = list[k];
      const l = listLcp[k];
      if (dead >= 0) {
        if (l >= dead) continue;
        dead = -1;
      }
      let j = l < valid ? l : valid;
      const s0 = offsets[i];
      const len = offsets[i + 1] - s0;
      let s = states[j];
      while (j < len) {
        s = a.step(s, bytes[s0 + j]);
        j++;
        if (s === DEAD) break;
        states[j] = s;
      }
      if (s === DEAD) {
        dead = j;
        valid = j - 1;
      } else {
        valid = j;
        const id = order[i];
        bits[id >>> 5] |= 1 << (id & 31);
        const m = a.stateMin(s);
        if (m > maxAfter) maxAfter = m;
      }
    }
    return maxAfter;
  }

  // ------------------------------------------------------------ state masks

  /** The allowed tokens in a (real) state, end-of-generation tokens included when it may end. */
  stateMask(state: number): StateMask {
    const cached = this.stateMasks.get(state);
    if (cached) {
      // Refresh its place in the LRU order.
      this.stateMasks.delete(state);
      this.stateMasks.set(state, cached);
      return cached;
    }
    const a = this.automaton;
    const v = this.vocab;
    const bits = new Uint32Array(v.words);
    let maxAfter = 0;
    const nodes = a.t.stateNodes[state];
    const seen = new Set<ContextMask>();
    for (const n of nodes) {
      if (n <= NODE_CUT) continue;
      const c = this.contextOf(n);
      if (c.bits) {
        if (seen.size === 0 && nodes.length === 1) bits.set(c.bits);
        else for (let w = 0; w < bits.length; w++) bits[w] |= c.bits[w];
      } else for (const id of c.ids!) bits[id >>> 5] |= 1 << (id & 31);
      const after = c.maxAfter + this.below(n);
      if (after > maxAfter) maxAfter = after;
      seen.add(c);
    }
    for (const c of seen) {
      if (c.uncertain.length === 0) continue;
      const m = this.walkList(state, c.uncertain, c.uncertainLcp, bits);
      if (m > maxAfter) maxAfter = m;
    }
    if (a.isAccepting(state)) for (const id of v.endOfGeneration) bits[id >>> 5] |= 1 << (id & 31);
    const mask = finishMask(bits, maxAfter);
    this.stateMasks.set(state, mask);
    this.stats.stateMasks++;
    if (this.stateMasks.size > this.maxCachedStates) this.stateMasks.delete(this.stateMasks.keys().next().value!);
    return mask;
  }

  /**
   * The tokens of `mask` after which the parse can still be finished in `limit` bytes (kept:
   * end-of-generation tokens). Walks each allowed token: for the last stretch of a budget.
   */
  filterByBudget(state: number, mask: TokenMask, limit: number): TokenMask {
    const v = this.vocab;
    const a = this.automaton;
    const bits = mask.bits.slice();
    const { order, bytes, start: offsets, lcp } = v;
    const states = this.walkStates;
    states[0] = state;
    let valid = 0;
    let dead = -1;
    // Sorted order with prefix sharing, as walkAll, skipping the tokens the mask leaves out.
    let runLcp = 0;
    for (let i = 0; i < order.length; i++) {
      if (lcp[i] < runLcp) runLcp = lcp[i];
      const id = order[i];
      const bit = 1 << (id & 31);
      if (!(bits[id >>> 5] & bit)) continue;
      const l = runLcp;
      runLcp = 0x7fffffff;
      if (dead >= 0) {
        if (l >= dead) {
          bits[id >>> 5] &= ~bit;
          continue;
        }
        dead = -1;
      }
      let j = l < valid ? l : valid;
      const s0 = offsets[i];
      const len = offsets[i + 1] - s0;
      let s = states[j];
      while (j < len) {
        s = a.step(s, bytes[s0 + j]);
        j++;
        if (s === DEAD) break;
        states[j] = s;
      }
      if (s === DEAD) {
        dead = j;
        valid = j - 1;
        bits[id >>> 5] &= ~bit;
      } else {
        valid = j;
        if (a.stateMin(s) > limit) bits[id >>> 5] &= ~bit;
      }
    }
    return finishMask(bits, limit);
  }

  /**
   * The mask at the very start of a text whose decoder drops the first token's leading space
   * (SentencePiece): tokens starting with a space count as their bytes without it.
   */
  strippedStartMask(state: number): TokenMask {
    const v = this.vocab;
    const a = this.automaton;
    const bits = this.stateMask(state).bits.slice();
    const [lo, hi] = v.spaceRange;
    let maxAfter = 0;
    for (let r = lo; r < hi; r++) {
      const id = v.order[r];
      bits[id >>> 5] &= ~(1 << (id & 31));
      if (v.start[r + 1] - v.start[r] < 2) continue;
      const s = a.walk(state, v.bytes, v.start[r] + 1, v.start[r + 1]);
      if (s === DEAD) continue;
      bits[id >>> 5] |= 1 << (id & 31);
      maxAfter = Math.max(maxAfter, a.stateMin(s));
    }
    return finishMask(bits, Math.max(maxAfter, this.stateMask(state).maxAfter));
  }
}

function finishMask(bits: Uint32Array, maxAfter: number): StateMask {
  let count = 0;
  for (let w = 0; w < bits.length; w++) {
    let x = bits[w];
    if (x === 0) continue;
    x -= (x >>> 1) & 0x55555555;
    x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
    count += (((x + (x >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
  }
  let ids: Int32Array | undefined;
  if (count <= LIST_MAX) {
    ids = setBitIds(bits, count);
  }
  return { bits, count, ids, maxAfter };
}

// ---------------------------------------------------------------- one generation's matcher

export interface MatcherOptions {
  /** Never allow end-of-generation tokens (the generation's ignoreEos). */
  ignoreEos?: boolean;
  /** The first token's leading space is dropped from the text (SentencePiece at the start of a text). */
  stripLeadingSpace?: boolean;
}

/** The parse of one generation: implements TokenConstraint over a shared TokenAutomaton. */
export class GrammarMatcher implements TokenConstraint {
  private tables: Tables;
  private state: number;
  private atStart: boolean;
  private readonly ignoreEos: boolean;
  private readonly eog: Set<number>;

  constructor(
    private readonly ta: TokenAutomaton,
    options: MatcherOptions,
  ) {
    ta.sync();
    this.tables = ta.automaton.t;
    this.state = ta.automaton.startState();
    this.atStart = options.stripLeadingSpace ?? false;
    this.ignoreEos = options.ignoreEos ?? false;
    this.eog = new Set(ta.vocab.endOfGeneration);
  }

  private current(): number {
    this.ta.sync();
    const a = this.ta.automaton;
    if (this.tables !== a.t) {
      this.state = a.translate(this.state, this.tables);
      this.tables = a.t;
    }
    return this.state;
  }

  get isComplete(): boolean {
    return this.ta.automaton.isAccepting(this.current());
  }

  get isFinished(): boolean {
    return this.ta.automaton.isFinished(this.current());
  }

  /** Fewest bytes that would finish the output from here. */
  get bytesToFinish(): number {
    return this.ta.automaton.stateMin(this.current());
  }

  allowed(remaining = Infinity): TokenMask {
    const state = this.current();
    const ta = this.ta;
    let mask: TokenMask & { maxAfter: number } = this.atStart ? (ta.strippedStartMask(state) as StateMask) : ta.stateMask(state);
    if (this.ignoreEos && ta.automaton.isAccepting(state)) mask = withoutIds(mask, ta.vocab.endOfGeneration);
    // Keep the output finishable: after this token, remaining - 1 tokens are left, at least
    // one byte each; past the point of no return, each token must at least make progress.
    const limit = Math.max(remaining - 1, ta.automaton.stateMin(state) - 1);
    if (mask.maxAfter > limit && !this.atStart) {
      const filtered = ta.filterByBudget(state, mask, limit);
      if (filtered.count > 0) return filtered;
    }
    return mask;
  }

  accept(token: number): void {
    const state = this.current();
    const ta = this.ta;
    const v = ta.vocab;
    if (this.eog.has(token)) {
      if (!ta.automaton.isAccepting(state) || this.ignoreEos)
        throw new TesseraError("ERR_INVALID_ARGUMENT", `end-of-generation token ${token} is not allowed before the grammar is complete`);
      return;
    }
    const r = Number.isInteger(token) && token >= 0 && token < v.size ? v.rank[token] : -1;
    if (r < 0) throw new TesseraError("ERR_INVALID_ARGUMENT", `token ${token} is not grammar text (special, empty or not in the vocabulary)`);
    let from = v.start[r];
    if (this.atStart && v.bytes[from] === 0x20) from++;
    const next = from === v.start[r + 1] ? DEAD : ta.automaton.walk(state, v.bytes, from, v.start[r + 1]);
    if (next === DEAD) throw new TesseraError("ERR_INVALID_ARGUMENT", `token ${token} is not allowed by the grammar here`);
    this.state = next;
    this.atStart = false;
  }

  /**
   * Advances past text that does not come as one grammar token: a special token whose text
   * the grammar spells (a tool-call marker), or a trigger that started a lazy grammar.
   * Throws where the grammar does not allow it.
   */
  readBytes(bytes: Uint8Array): void {
    const next = this.ta.automaton.walk(this.current(), bytes);
    if (next === DEAD) throw new TesseraError("ERR_INVALID_ARGUMENT", `the text ${JSON.stringify(new TextDecoder().decode(bytes))} is not allowed by the grammar here`);
    this.state = next;
    this.atStart = false;
  }

  /** The automaton state of the parse (valid while `ta.automaton.t` stays the same tables). */
  currentState(): number {
    return this.current();
  }

  /** Fewest bytes that finish the output after `bytes` (not read), Infinity where the grammar does not allow them. */
  finishAfter(bytes: Uint8Array): number {
    const a = this.ta.automaton;
    const next = a.walk(this.current(), bytes);
    return next === DEAD ? Infinity : a.stateMin(next);
  }
}

function withoutIds(mask: StateMask, ids: Int32Array): StateMask {
  const bits = mask.bits.slice();
  for (const id of ids) bits[id >>> 5] &= ~(1 << (id & 31));
  return finishMask(bits, mask.maxAfter);
}

/** The ids of the `count` set bits of `bits` (bit i of word w is id 32w + i), ascending. */
export function setBitIds(bits: Uint32Array, count: number): Int32Array {
  const ids = new Int32Array(count);
  let k = 0;
  for (let w = 0; w < bits.length; w++) {
    let word = bits[w];
    while (word !== 0) {
      const low = word & -word;
      word ^= low;
      ids[k++] = (w << 5) + 31 - Math.clz32(low);
    }
  }
  return ids;
}
