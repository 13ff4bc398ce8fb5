/**
 * Many sequences on one model (issue 19): concurrent generations give exactly what each
 * gives alone, on the synchronous path (stories260K) and the worker-thread path (a synthetic
 * model over 32 MiB), dense and mixture of experts; the KV block pool returns every block
 * when requests end or abort; a session belongs to the generation running on it; the
 * prefix cache, preemption under a small pool, forks and KV memory accounting behave; and
 * the native step refuses tables and positions outside the pool.
 */
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isTesseraError, loadModel, type Completion, type GenerateOptions, type Model } from "../../lib/index.js";
import type { NativeEngine } from "../../lib/native.js";
import { writeSyntheticModel, syntheticTokens, type ModelShape } from "../../dev/synthetic-model.js";
import { hasShared, stories260K, tempDir } from "../helpers/paths.js";

async function expectCode(p: Promise<unknown> | (() => unknown), code: string): Promise<void> {
  try {
    await (typeof p === "function" ? p() : p);
  } catch (e) {
    if (!isTesseraError(e)) throw e;
    expect(e.code).toBe(code);
    return;
  }
  throw new Error(`expected ${code}, but the call succeeded`);
}

/** Options of request i: greedy for even i, seeded sampling for odd i. */
function requestOptions(i: number, maxTokens: number): GenerateOptions {
  return i % 2 === 0 ? { maxTokens, temperature: 0, ignoreEos: true } : { maxTokens, temperature: 0.9, topK: 40, seed: 100 + i, ignoreEos: true };
}

async function soloAndConcurrent(model: Model, prompts: Array<string | number[]>, maxTokens: number): Promise<[Completion[], Completion[]]> {
  const solo: Completion[] = [];
  for (let i = 0; i < prompts.length; i++) solo.push(await model.complete(prompts[i], requestOptions(i, maxTokens)));
  const together = await Promise.all(prompts.map((p, i) => model.complete(p, requestOptions(i, maxTokens))));
  return [solo, together];
}

const dir = tempDir("engine");
/** Over 32 MiB of weights: steps run on a worker thread (the synchronous path is below that). */
const ASYNC_SHAPE: ModelShape = { architecture: "llama", nLayer: 6, nEmbd: 768, nHead: 12, nHeadKv: 4, nFf: 2048, contextLength: 4096 };
const MOE_SHAPE: ModelShape = { architecture: "qwen3moe", nLayer: 2, nEmbd: 256, nHead: 8, nHeadKv: 2, headDim: 64, nFf: 512, contextLength: 4096, ropeFreqBase: 1e6, normEps: 1e-6, qkNorm: true, moe: { nExpert: 16, nExpertUsed: 4, nFfExp: 256, normTopK: true } };

describe.runIf(hasShared)("continuous batching", () => {
  let stories: Model;
  beforeAll(async () => {
    stories = await loadModel(stories260K, { backend: "cpu", threads: 2, contextSize: 2048 });
  });
  afterAll(() => stories?.dispose());

  const PROMPTS = ["Once upon a time", "Lily", "The cat", "Tom went to", "A little bird", "One day", "Sara and Ben", "The sun was"];

  it("8 concurrent generations on stories260K equal their solo runs (greedy and seeded)", async () => {
    const [solo, together] = await soloAndConcurrent(stories, PROMPTS, 48);
    for (let i = 0; i < PROMPTS.length; i++) {
      expect(together[i].tokens).toEqual(solo[i].tokens);
      expect(together[i].text).toBe(solo[i].text);
    }
    // The seeded ones really sample (they differ from greedy on the same prompt).
    const greedy = await stories.complete(PROMPTS[1], { maxTokens: 48, temperature: 0, ignoreEos: true });
    expect(greedy.tokens).not.toEqual(solo[1].tokens);
    expect(stories.stats().inUse).toBe(0);
  });

  it("a prompt's logits are bit-identical alone, in chunks and batched with other sequences", async () => {
    const prompt = syntheticTokens(100, 512, 5);
    const alone = stories.createSession();
    const whole = await alone.evaluateAll(prompt);
    const chunked = stories.createSession({ batchSize: 7 });
    const others = Array.from({ length: 3 }, () => stories.createSession());
    const [inChunks] = await Promise.all([
      chunked.evaluateAll(prompt),
      ...others.map((s, i) => s.evaluate(syntheticTokens(37 + i, 512, 9 + i))),
    ]);
    expect(Buffer.from(inChunks.buffer).equals(Buffer.from(whole.buffer))).toBe(true);
    for (const s of [alone, chunked, ...others]) s.dispose();
  });

  it("64 concurrent requests with random aborts end with every block back in the pool", async () => {
    const before = stories.stats();
    expect(before.inUse).toBe(0);
    const outcomes = await Promise.allSettled(
      Array.from({ length: 64 }, async (_, i) => {
        const ac = new AbortController();
        if (i % 3 === 0) setTimeout(() => ac.abort(), 1 + (i % 7) * 3);
        const gen = stories.generate(PROMPTS[i % 8] + " and", { ...requestOptions(i, 24 + (i % 5) * 8), signal: ac.signal });
        let n = 0;
        for await (const chunk of gen) {
          n += chunk.tokens.length;
          if (i % 5 === 1 && n >= 5) ac.abort();
        }
        return n;
      }),
    );
    const rejected = outcomes.filter((o): o is PromiseRejectedResult => o.status === "rejected");
    for (const r of rejected) expect(isTesseraError(r.reason, "ERR_ABORTED")).toBe(true);
    expect(rejected.length).toBeGreaterThan(0);
    expect(outcomes.length - rejected.length).toBeGreaterThan(0);
    const after = stories.stats();
    expect(after.inUse).toBe(0);
    expect(after.free + after.cached).toBe(after.total);
  });

  it("a session is owned by the generation running on it", async () => {
    const s = stories.createSession();
    const gen = stories.generate("Once upon a time", { session: s, maxTokens: 30, temperature: 0 });
    const it = gen[Symbol.asyncIterator]();
    await it.next();
    await expectCode(s.evaluate([1]), "ERR_BUSY");
    await expectCode(() => s.reset(), "ERR_BUSY");
    await expectCode(() => s.truncate(1), "ERR_BUSY");
    await expectCode(() => s.fork(), "ERR_BUSY");
    await expectCode(stories.complete("Lily", { session: s, maxTokens: 3 }), "ERR_BUSY");
    while (!(await it.next()).done);
    // Free again once the generation ended.
    s.truncate(1);
    expect((await s.evaluate([5])).length).toBe(512);
    s.dispose();
  });

  it("two evaluations of one session at once: the second gets ERR_BUSY", async () => {
    const s = stories.createSession();
    const first = s.evaluate(syntheticTokens(50, 512, 1));
    await expectCode(s.evaluate([3]), "ERR_BUSY");
    await first;
    expect(s.tokens.length).toBe(50);
    s.dispose();
  });

  it("a session of another model is rejected", async () => {
    const other = await loadModel(stories260K, { backend: "cpu", threads: 1, contextSize: 64 });
    const foreign = other.createSession();
    await expectCode(() => stories.generate("Once", { session: foreign }), "ERR_INVALID_ARGUMENT");
    await expectCode(() => stories.generate("Once", { session: {} as never }), "ERR_INVALID_ARGUMENT");
    other.dispose();
  });

  it("all-token logits written into the caller's array equal a fresh array's; a short array is refused", async () => {
    const tokens = stories.tokenizer.encode("Once upon a time, there was", { addSpecial: true });
    const first = stories.createSession();
    const fresh = await first.evaluateAll(tokens);
    first.dispose();
    const s = stories.createSession();
    const out = new Float32Array(fresh.length + 7).fill(NaN);
    const res = await s.run(undefined, tokens, true, undefined, out);
    expect(res.logits.buffer).toBe(out.buffer);
    expect(res.logits.length).toBe(fresh.length);
    expect(res.logits).toEqual(fresh);
    // Reused for the next tokens: the same array again, holding the new rows.
    const next = await s.run(undefined, [13, 14], true, undefined, out);
    expect(next.logits.buffer).toBe(out.buffer);
    expect(next.logits.length).toBe(2 * stories.tokenizer.vocabSize);
    await expectCode(s.run(undefined, [15, 16], true, undefined, new Float32Array(stories.tokenizer.vocabSize)), "ERR_INVALID_ARGUMENT");
    // The refused request left the session as it was.
    expect(s.tokens.length).toBe(tokens.length + 2);
    s.dispose();
  });

  it("a second request reuses a ~1000-token shared prefix from the cache, after another prompt ran in between", async () => {
    const shared = syntheticTokens(1000, 512, 77);
    const a = [...shared, 10, 11, 12];
    const b = [...shared, 20, 21];
    const cold = await stories.complete(a, { maxTokens: 16, temperature: 0, ignoreEos: true });
    expect(cold.stats.cachedTokens).toBe(0);
    await stories.complete(syntheticTokens(300, 512, 3), { maxTokens: 4, temperature: 0 });
    const warm = await stories.complete(b, { maxTokens: 16, temperature: 0, ignoreEos: true });
    expect(warm.stats.cachedTokens).toBe(Math.floor(1000 / 32) * 32);
    // The same prompt again reuses its full blocks (its last, partial one was never published).
    const again = await stories.complete(a, { maxTokens: 16, temperature: 0, ignoreEos: true });
    expect(again.stats.cachedTokens).toBe(992);
    expect(again.tokens).toEqual(cold.tokens);
    // A prompt of whole blocks, all published, runs one row (its last token, into a copy of
    // its last block) and continues identically.
    const whole = shared.slice(0, 960);
    const first = await stories.complete(whole, { maxTokens: 8, temperature: 0, ignoreEos: true });
    const second = await stories.complete(whole, { maxTokens: 8, temperature: 0, ignoreEos: true });
    expect(second.stats.cachedTokens).toBe(959);
    expect(second.tokens).toEqual(first.tokens);
    // Reference without any cache: a fresh model.
    const fresh = await loadModel(stories260K, { backend: "cpu", threads: 2, contextSize: 2048 });
    const ref = await fresh.complete(b, { maxTokens: 16, temperature: 0, ignoreEos: true });
    fresh.dispose();
    expect(warm.tokens).toEqual(ref.tokens);
  });

  it("a session's history and a fork share blocks, and the fork continues identically", async () => {
    const s = stories.createSession();
    await s.evaluate(syntheticTokens(80, 512, 8));
    const used = stories.stats().inUse;
    const f = s.fork();
    expect(stories.stats().inUse).toBe(used);
    expect(f.tokens).toEqual(s.tokens);
    const [x, y] = await Promise.all([s.evaluate([40, 41]), f.evaluate([40, 41])]);
    expect(Buffer.from(x.buffer).equals(Buffer.from(y.buffer))).toBe(true);
    // Writing into the shared partial block copied it for one of them.
    expect(stories.stats().inUse).toBe(used + 1);
    const a = await stories.complete("x", { session: s, maxTokens: 20, temperature: 0 });
    s.dispose();
    f.truncate(80);
    const b = await stories.complete("x", { session: f, maxTokens: 20, temperature: 0 });
    expect(b.tokens).toEqual(a.tokens);
    f.dispose();
  });

  it("KV memory grows with the tokens held; q8_0 stores about half the bytes of f16", async () => {
    // 8 sequences of 100 tokens against 8 x a 4096-token context.
    const sessions = Array.from({ length: 8 }, () => stories.createSession());
    await Promise.all(sessions.map((s, i) => s.evaluate(syntheticTokens(100, 512, 20 + i))));
    const st = stories.stats();
    expect(st.inUse).toBe(8 * Math.ceil(100 / 32));
    const perToken = st.blockBytes / 32;
    expect(st.kvBytesInUse).toBeLessThanOrEqual((8 * 4096 * perToken) / 10);
    for (const s of sessions) s.dispose();
    expect(stories.stats().inUse).toBe(0);
    // Quantized blocks hold 32-value groups: stories260K's head size 8 cannot use them.
    await expectCode(loadModel(stories260K, { backend: "cpu", threads: 1, contextSize: 64, kvCacheType: "q8_0" }), "ERR_MODEL_INCOMPATIBLE");
    await expectCode(loadModel(stories260K, { kvCacheType: "q5" as never }), "ERR_INVALID_ARGUMENT");
  });

  it("the native step refuses block ids, positions and arrays outside the pool", () => {
    const engine = (stories as unknown as { engine: { native: NativeEngine } }).engine.native;
    const i32 = (...v: number[]) => Int32Array.from(v);
    const logits = new Float32Array(512);
    const step = (tables: Int32Array, positions: Int32Array, extra: Partial<{ copies: Int32Array; logitRows: Int32Array; out: Float32Array }> = {}) => () =>
      engine.stepSync(i32(1), positions, i32(0), i32(0, tables.length), tables, extra.logitRows ?? i32(0), extra.copies ?? i32(), extra.out ?? logits);
    const blocks = engine.blocks;
    expect(() => step(i32(blocks), i32(0))()).toThrow(/outside the pool/);
    expect(() => step(i32(-1), i32(0))()).toThrow(/outside the pool/);
    expect(() => step(i32(0), i32(32))()).toThrow(/has no block/);
    expect(() => step(i32(0), i32(-1))()).toThrow(/exceeds the context|position/);
    expect(() => step(i32(0), i32(engine.maxContext))()).toThrow(/exceeds the context/);
    expect(() => step(i32(0), i32(0), { copies: i32(0, blocks) })()).toThrow(/invalid block copy/);
    expect(() => step(i32(0), i32(0), { copies: i32(1) })()).toThrow(/pairs/);
    expect(() => step(i32(0), i32(0), { logitRows: i32(1) })()).toThrow(/ascending/);
    expect(() => step(i32(0), i32(0), { out: new Float32Array(10) })()).toThrow(/too small/);
    for (const f of [step(i32(blocks), i32(0)), step(i32(0), i32(engine.maxContext))])
      try {
        f();
      } catch (e) {
        expect((e as { code?: string }).code).toMatch(/^ERR_(INVALID_ARGUMENT|OUT_OF_CONTEXT)$/);
      }
  });
});

describe.runIf(hasShared)("continuous batching on larger synthetic models", () => {
  const asyncFile = path.join(dir, "llama-async-Q8_0.gguf");
  const moeFile = path.join(dir, "qwen3moe-Q8_0.gguf");
  beforeAll(() => {
    writeSyntheticModel(asyncFile, ASYNC_SHAPE, { weights: "Q8_0", vocab: "stories", seed: 11 });
    writeSyntheticModel(moeFile, MOE_SHAPE, { weights: "Q8_0", vocab: "stories", seed: 12 });
  }, 120_000);

  for (const [name, file] of [
    ["a llama model stepping on a worker thread (Q8_0, GQA)", () => asyncFile],
    ["a mixture-of-experts model (qwen3moe, top-4 of 16)", () => moeFile],
  ] as const) {
    it(`8 concurrent generations on ${name} equal their solo runs`, async () => {
      const model = await loadModel(file(), { backend: "cpu", threads: 2, contextSize: 512 });
      const prompts = Array.from({ length: 8 }, (_, i) => syntheticTokens(5 + 9 * i, 512, 30 + i));
      const [solo, together] = await soloAndConcurrent(model, prompts, 24);
      for (let i = 0; i < prompts.length; i++) expect(together[i].tokens).toEqual(solo[i].tokens);
      expect(model.stats().inUse).toBe(0);
      model.dispose();
    });
  }

  it("a small pool preempts the newest sequence and recomputes it, with unchanged output", async () => {
    // 6 blocks of 32 positions: four 60-token generations cannot all hold their blocks.
    const model = await loadModel(asyncFile, { backend: "cpu", threads: 2, contextSize: 128, kvCacheTokens: 6 * 32 });
    const prompts = Array.from({ length: 4 }, (_, i) => syntheticTokens(20 + i, 512, 50 + i));
    const [solo, together] = await soloAndConcurrent(model, prompts, 40);
    for (let i = 0; i < prompts.length; i++) expect(together[i].tokens).toEqual(solo[i].tokens);
    expect(model.stats().preemptions).toBeGreaterThan(0);
    expect(model.stats().inUse).toBe(0);
    // A sequence the whole pool cannot hold is refused up front.
    await expectCode(model.complete(syntheticTokens(7 * 32, 512, 1), { maxTokens: 1 }), "ERR_OUT_OF_CONTEXT");
    model.dispose();
  });

  it("two models with the same thread count share one thread pool: concurrent work on both equals solo runs", async () => {
    // The worker-thread path (the synthetic model) and the synchronous one (stories260K)
    // take turns on the pool's threads; neither may see the other's rows.
    const a = await loadModel(asyncFile, { backend: "cpu", threads: 2, contextSize: 256 });
    const b = await loadModel(stories260K, { backend: "cpu", threads: 2, contextSize: 256 });
    const aPrompts = Array.from({ length: 4 }, (_, i) => syntheticTokens(6 + 5 * i, 512, 70 + i));
    const bPrompts = ["Once upon a time", "Lily", "The cat", "One day"];
    const aSolo: Completion[] = [];
    const bSolo: Completion[] = [];
    for (let i = 0; i < 4; i++) aSolo.push(await a.complete(aPrompts[i], requestOptions(i, 20)));
    for (let i = 0; i < 4; i++) bSolo.push(await b.complete(bPrompts[i], requestOptions(i, 20)));
    const [aTogether, bTogether] = await Promise.all([
      Promise.all(aPrompts.map((p, i) => a.complete(p, requestOptions(i, 20)))),
      Promise.all(bPrompts.map((p, i) => b.complete(p, requestOptions(i, 20)))),
    ]);
    for (let i = 0; i < 4; i++) {
      expect(aTogether[i].tokens).toEqual(aSolo[i].tokens);
      expect(bTogether[i].tokens).toEqual(bSolo[i].tokens);
    }
    // One model disposed, the other keeps generating on the pool.
    a.dispose();
    expect((await b.complete(bPrompts[0], requestOptions(0, 20))).tokens).toEqual(bSolo[0].tokens);
    b.dispose();
  });

  it("two models stepping from the pool at once: one step starts on the pool, the other waits its turn on a worker thread", async () => {
    // A one-region step starts on the shared pool from the JS thread and ends from the pool
    // (Executor::try_step_async); while it runs, the other model's step finds the pool taken
    // and goes through a libuv thread that waits for it. Every output equals its solo run.
    const a = await loadModel(asyncFile, { backend: "cpu", threads: 2, contextSize: 256 });
    const b = await loadModel(asyncFile, { backend: "cpu", threads: 2, contextSize: 256 });
    const prompts = Array.from({ length: 3 }, (_, i) => syntheticTokens(4 + 3 * i, 512, 90 + i));
    const solo: Completion[] = [];
    for (let i = 0; i < prompts.length; i++) solo.push(await a.complete(prompts[i], requestOptions(i, 24)));
    const [fromA, fromB] = await Promise.all([
      Promise.all(prompts.map((p, i) => a.complete(p, requestOptions(i, 24)))),
      Promise.all(prompts.map((p, i) => b.complete(p, requestOptions(i, 24)))),
    ]);
    for (let i = 0; i < prompts.length; i++) {
      expect(fromA[i].tokens).toEqual(solo[i].tokens);
      expect(fromB[i].tokens).toEqual(solo[i].tokens);
    }
    // Disposed with a step in flight: the step ends, the other model runs on.
    const pending = a.complete(prompts[0], requestOptions(0, 200)).catch((e: { code?: string }) => e.code);
    await new Promise((r) => setTimeout(r, 5));
    a.dispose();
    expect(await pending).toMatch(/^ERR_(DISPOSED|ABORTED)$/);
    expect((await b.complete(prompts[1], requestOptions(1, 24))).tokens).toEqual(solo[1].tokens);
    b.dispose();
  });

  it("q8_0 KV blocks take about half the bytes of f16 ones and q4_0 about a quarter", async () => {
    const bytes: Record<string, number> = {};
    for (const kvCacheType of ["f16", "q8_0", "q4_0"] as const) {
      const model = await loadModel(asyncFile, { backend: "cpu", threads: 2, contextSize: 64, kvCacheType });
      bytes[kvCacheType] = model.stats().blockBytes;
      const out = await model.complete(syntheticTokens(20, 512, 2), { maxTokens: 8, temperature: 0 });
      expect(out.tokens.length).toBeGreaterThan(0);
      model.dispose();
    }
    expect(bytes.q8_0 / bytes.f16).toBeCloseTo(34 / 64, 5);
    expect(bytes.q4_0 / bytes.f16).toBeCloseTo(18 / 64, 5);
  });
});

describe.runIf(hasShared)("generateMany: branches of one prompt", () => {
  let model: Model;
  beforeAll(async () => {
    model = await loadModel(stories260K, { backend: "cpu", threads: 2, contextSize: 512 });
  });
  afterAll(() => model?.dispose());

  it("n branches share the prompt's blocks, and branch i equals a solo run with seed + i", async () => {
    const prompt = syntheticTokens(150, 512, 44);
    const opts = { maxTokens: 24, temperature: 0.8, topK: 40, seed: 500, ignoreEos: true };
    const gens = model.generateMany(prompt, { ...opts, n: 4 });
    expect(gens.length).toBe(4);
    const its = gens.map((g) => g[Symbol.asyncIterator]());
    const firsts = await Promise.all(its.map((it) => it.next()));
    // 149 shared prompt positions (4 full blocks + 21) and each branch's own copy of the
    // partial block: 4 shared + 4 private = 8 blocks instead of 4 x 5.
    const during = model.stats().inUse;
    expect(during).toBeLessThanOrEqual(4 + 4 + 4);
    const branches: number[][] = [];
    for (let i = 0; i < 4; i++) {
      const first = firsts[i];
      const tokens: number[] = first.done ? [] : [...first.value.tokens];
      for (;;) {
        const r = await its[i].next();
        if (r.done) break;
        tokens.push(...r.value.tokens);
      }
      branches.push(tokens);
    }
    const solo = await Promise.all([0, 1, 2, 3].map((i) => model.complete(prompt, { ...opts, seed: 500 + i })));
    for (let i = 0; i < 4; i++) expect(branches[i]).toEqual(solo[i].tokens);
    expect(new Set(branches.map((b) => b.join(","))).size).toBeGreaterThan(1);
    expect(model.stats().inUse).toBe(0);
  });

  it("completeMany returns n completions; bad n is refused", async () => {
    const out = await model.completeMany("Once upon a time", { n: 3, maxTokens: 10, temperature: 0 });
    expect(out.length).toBe(3);
    for (const c of out) expect(c.tokens).toEqual(out[0].tokens);
    expect(() => model.generateMany("x", { n: 0 })).toThrow(/n must be/);
  });
});
