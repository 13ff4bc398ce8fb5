/**
 * Token masks against brute force, and masked sampling against the unmasked sampler.
 *
 * - Along random constrained walks, every mask equals the set of tokens whose bytes a
 *   separately compiled automaton can read from the same state (end-of-generation tokens
 *   exactly when the grammar may end; special and empty tokens never), on SentencePiece
 *   (byte fallback) and byte-level BPE vocabularies of 512 to 128k tokens.
 * - Sampling with a mask draws exactly what the unmasked sampler draws, with the same seed,
 *   on logits with every disallowed token at -Infinity (greedy, top-k, top-p without top-k,
 *   min-p, penalties, logit bias; sparse and dense masks).
 * - A budget of remaining tokens is always enough: every allowed token leaves output that
 *   can be finished in what is left, and walks given exactly the fewest tokens finish.
 */
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { Automaton, DEAD } from "../../lib/grammar/automaton.js";
import { compileGrammar } from "../../lib/grammar/compile.js";
import { grammarSource, tokenAutomaton } from "../../lib/grammar/constraint.js";
import { parseGbnf } from "../../lib/grammar/gbnf.js";
import type { Grammar } from "../../lib/grammar/ir.js";
import { jsonSchemaGrammar } from "../../lib/grammar/json-schema.js";
import type { TokenMask } from "../../lib/sampling/constraint.js";
import { Rng } from "../../lib/sampling/rng.js";
import { Sampler, type SamplingOptions } from "../../lib/sampling/sampler.js";
import type { Tokenizer } from "../../lib/tokenizer/index.js";
import { hasShared, repoRoot, sharedDir } from "../helpers/paths.js";
import { ggufMetadataVocab, ggufVocab } from "../tokenizer/vocabs.js";

const fixture = (name: string) => fs.readFileSync(path.join(repoRoot, "test/fixtures/grammars", `${name}.gbnf`), "utf8");

const SCHEMA = {
  type: "object",
  properties: {
    name: { type: "string", maxLength: 8 },
    n: { type: "integer", minimum: -20, maximum: 300 },
    x: { type: "number", minimum: 0, maximum: 1 },
    tags: { type: "array", items: { enum: ["a", "bc", "日本"] }, maxItems: 3 },
    inner: { type: "object", properties: { ok: { type: "boolean" }, s: { type: "string" } }, required: ["ok"] },
  },
  required: ["name", "inner"],
};

const GRAMMARS: Array<[string, { jsonSchema: object } | { grammar: string }, () => Grammar]> = [
  ["json schema", { jsonSchema: SCHEMA }, () => jsonSchemaGrammar(SCHEMA)],
  ["json.gbnf", { grammar: fixture("json") }, () => parseGbnf(fixture("json"))],
  ["c.gbnf", { grammar: fixture("c") }, () => parseGbnf(fixture("c"))],
  ["list.gbnf", { grammar: fixture("list") }, () => parseGbnf(fixture("list"))],
];

function tokenBytes(tok: Tokenizer): Array<Uint8Array | undefined> {
  return Array.from({ length: tok.vocabSize }, (_, id) =>
    tok.isSpecial(id) || tok.isEndOfGeneration(id) ? undefined : tok.tokenBytes(id).length ? tok.tokenBytes(id) : undefined,
  );
}

function bruteForce(a: Automaton, state: number, bytes: Array<Uint8Array | undefined>, tok: Tokenizer): Set<number> {
  const out = new Set<number>();
  for (let id = 0; id < bytes.length; id++) {
    if (tok.isEndOfGeneration(id)) {
      if (a.isAccepting(state)) out.add(id);
      continue;
    }
    const b = bytes[id];
    if (b && a.walk(state, b) !== DEAD) out.add(id);
  }
  return out;
}

function maskIds(mask: TokenMask): Set<number> {
  const out = new Set<number>();
  for (let w = 0; w < mask.bits.length; w++) for (let b = 0; b < 32; b++) if (mask.bits[w] & (1 << b)) out.add(w * 32 + b);
  return out;
}

describe.runIf(hasShared)("token masks", () => {
  const vocabs: Array<[string, () => Tokenizer, number]> = [
    ["stories260K (SentencePiece, 512)", ggufVocab(path.join(sharedDir, "models/stories260K.gguf")), 60],
    ["llama-spm (SentencePiece, 32k)", ggufVocab(path.join(sharedDir, "tokenizers/vocab/ggml-vocab-llama-spm.gguf")), 25],
    ["llama3 (byte-level BPE, 128k)", ggufMetadataVocab("llama3"), 12],
  ];
  for (const [vname, load, steps] of vocabs) {
    it(`equal brute force along random walks: ${vname}`, () => {
      const tok = load();
      const bytes = tokenBytes(tok);
      const rng = new Rng(99);
      for (const [gname, options, grammar] of GRAMMARS) {
        const ta = tokenAutomaton(tok, grammarSource(options)!);
        const ref = new Automaton(compileGrammar(grammar()));
        for (let walk = 0; walk < 2; walk++) {
          const m = ta.matcher();
          let state = ref.startState();
          for (let step = 0; step < steps; step++) {
            const mask = m.allowed();
            const got = maskIds(mask);
            const want = bruteForce(ref, state, bytes, tok);
            expect(got.size, `${gname} step ${step}`).toBe(mask.count);
            expect([...got].filter((id) => !want.has(id)), `${gname} step ${step}: allowed but unreadable`).toEqual([]);
            expect([...want].filter((id) => !got.has(id)), `${gname} step ${step}: readable but left out`).toEqual([]);
            expect(m.isComplete).toBe(ref.isAccepting(state));
            // Walk on: mostly short tokens, so that walks go deep into the grammar.
            const ids = [...got].filter((id) => !tok.isEndOfGeneration(id));
            if (ids.length === 0) break;
            const short = ids.filter((id) => bytes[id]!.length <= 2);
            const pool = short.length && rng.next() < 0.7 ? short : ids;
            const id = pool[Math.floor(rng.next() * pool.length)];
            m.accept(id);
            state = ref.walk(state, bytes[id]!);
          }
        }
      }
    });
  }

  it("a parse carries over when the automaton renews its tables", () => {
    const tok = ggufVocab(path.join(sharedDir, "models/stories260K.gguf"))();
    const bytes = tokenBytes(tok);
    const ta = tokenAutomaton(tok, grammarSource({ grammar: fixture("json") })!);
    const ref = new Automaton(compileGrammar(parseGbnf(fixture("json"))));
    const rng = new Rng(8);
    const m = ta.matcher();
    let state = ref.startState();
    for (let step = 0; step < 80; step++) {
      if (step % 10 === 5) expect(ta.automaton.maybeReset(0, 0)).toBe(true);
      const got = maskIds(m.allowed());
      expect([...got].sort((a, b) => a - b)).toEqual([...bruteForce(ref, state, bytes, tok)].sort((a, b) => a - b));
      const ids = [...got].filter((id) => !tok.isEndOfGeneration(id));
      if (ids.length === 0) break;
      const id = ids[Math.floor(rng.next() * ids.length)];
      m.accept(id);
      state = ref.walk(state, bytes[id]!);
    }
  });

  it("refuse tokens that are not allowed, and end-of-generation before the grammar may end", () => {
    const tok = ggufVocab(path.join(sharedDir, "models/stories260K.gguf"))();
    const m = tokenAutomaton(tok, grammarSource({ jsonSchema: { type: "object" } })!).matcher();
    const a = tok.encode("a", { addSpecial: false })[0];
    expect(() => m.accept(a)).toThrow(/not allowed/);
    expect(() => m.accept(tok.eos!)).toThrow(/not allowed before/);
    expect(() => m.accept(tok.bos!)).toThrow(/not grammar text/);
  });
});

describe("masked sampling", () => {
  const V = 3000;
  function logits(rng: Rng): Float32Array {
    const l = new Float32Array(V);
    for (let i = 0; i < V; i++) l[i] = 3 * (rng.next() - 0.5) + (rng.next() < 0.01 ? 6 : 0);
    // Ties, to check that the lowest id wins among equals in both.
    l[10] = l[11] = l[12] = 9;
    return l;
  }
  function randomMask(rng: Rng, density: number): TokenMask {
    const bits = new Uint32Array((V + 31) >>> 5);
    let count = 0;
    for (let id = 0; id < V; id++)
      if (rng.next() < density) {
        bits[id >>> 5] |= 1 << (id & 31);
        count++;
      }
    if (count === 0) {
      bits[0] |= 1;
      count = 1;
    }
    return { bits, count };
  }
  const optionSets: SamplingOptions[] = [
    { temperature: 0 },
    {},
    { temperature: 1.3, topK: 5 },
    { topK: 0, topP: 0.9, minP: 0 },
    { topK: 0, topP: 1, minP: 0.2, temperature: 0.5 },
    { repeatPenalty: 1.3, frequencyPenalty: 0.2, presencePenalty: 0.1 },
    { logitBias: { 11: -Infinity, 40: 5 } },
  ];
  for (const density of [0.001, 0.02, 0.4, 0.7, 0.999])
    it(`equals the unmasked sampler on blanked logits (density ${density})`, () => {
      const rng = new Rng(Math.round(density * 1000));
      for (const options of optionSets)
        for (let seed = 0; seed < 6; seed++) {
          const masked = new Sampler({ ...options, seed });
          const plain = new Sampler({ ...options, seed });
          for (let draw = 0; draw < 8; draw++) {
            const l = logits(rng);
            const mask = randomMask(rng, density);
            const history = Array.from({ length: 20 }, () => Math.floor(rng.next() * V));
            const blanked = l.slice();
            for (let id = 0; id < V; id++) if (!(mask.bits[id >>> 5] & (1 << (id & 31)))) blanked[id] = -Infinity;
            const a = masked.sample(l.slice(), history, mask);
            const b = plain.sample(blanked, history);
            expect(a, `${JSON.stringify(options)} seed ${seed} draw ${draw}`).toBe(b);
            expect(mask.bits[a >>> 5] & (1 << (a & 31))).not.toBe(0);
          }
        }
    });

  it("a mask listing its ids samples the same as one without the list", () => {
    const rng = new Rng(5);
    for (let k = 0; k < 50; k++) {
      const l = logits(rng);
      const mask = randomMask(rng, 0.05);
      const ids: number[] = [];
      for (let id = 0; id < V; id++) if (mask.bits[id >>> 5] & (1 << (id & 31))) ids.push(id);
      const withIds = { ...mask, ids: Int32Array.from(ids) };
      expect(new Sampler({ seed: k }).sample(l.slice(), [], withIds)).toBe(new Sampler({ seed: k }).sample(l.slice(), [], mask));
    }
  });
});

describe.runIf(hasShared)("token budget", () => {
  it("allowed tokens always leave output that can be finished in the remaining tokens", () => {
    const tok = ggufVocab(path.join(sharedDir, "models/stories260K.gguf"))();
    const bytes = tokenBytes(tok);
    const rng = new Rng(3);
    for (const [gname, options] of GRAMMARS) {
      const ta = tokenAutomaton(tok, grammarSource(options)!);
      const a = ta.automaton;
      for (let walk = 0; walk < 15; walk++) {
        const m = ta.matcher();
        // A random prefix, then a budget of exactly what is needed plus a little slack.
        const prefix = 3 + Math.floor(rng.next() * 25);
        for (let i = 0; i < prefix; i++) {
          const ids = [...maskIds(m.allowed())].filter((id) => !tok.isEndOfGeneration(id));
          if (ids.length === 0) break;
          m.accept(ids[Math.floor(rng.next() * ids.length)]);
        }
        let budget = m.bytesToFinish + Math.floor(rng.next() * 3);
        for (;;) {
          if (m.isComplete && (budget === 0 || rng.next() < 0.5)) break;
          expect(budget, `${gname} walk ${walk}: out of budget`).toBeGreaterThan(0);
          const mask = m.allowed(budget);
          const ids = [...maskIds(mask)].filter((id) => !tok.isEndOfGeneration(id));
          if (ids.length === 0) {
            expect(m.isFinished).toBe(true);
            break;
          }
          const state = (m as unknown as { state: number }).state;
          for (const id of ids) {
            const after = a.walk(state, bytes[id]!);
            expect(a.stateMin(after), `${gname}: token ${id} leaves too much`).toBeLessThanOrEqual(Math.max(budget - 1, a.stateMin(state) - 1));
          }
          m.accept(ids[Math.floor(rng.next() * ids.length)]);
          budget--;
        }
      }
    }
  });
});
