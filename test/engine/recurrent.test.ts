/**
 * Recurrent state in the engine (issue 28): a Mamba-2 model's per-sequence state lives in the
 * KV blocks as checkpoints (native/core/kv_cache.h), so every engine feature that moves
 * blocks around must leave each sequence's logits exactly what a fresh evaluation of its
 * tokens gives: chunked prefill across block boundaries, forks (copy-on-write), truncation
 * into a block (recomputed from the block's start), the prefix cache, aborted steps,
 * speculative decoding's rollbacks, and many sequences batched in one step. The same for a
 * hybrid (granitehybrid), whose blocks hold keys and values for its attention layers and
 * state checkpoints for its Mamba-2 layers.
 */
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadModel, type GenerateOptions, type Model } from "../../lib/index.js";
import { writeSyntheticModel, syntheticTokens, type ModelShape } from "../../dev/synthetic-model.js";
import { hasShared, tempDir } from "../helpers/paths.js";

const SHAPES: Record<string, ModelShape> = {
  mamba2: {
    architecture: "mamba2",
    nLayer: 2,
    nEmbd: 64,
    nHead: 0,
    nHeadKv: 0,
    nFf: 0,
    contextLength: 4096,
    ssm: { dConv: 4, dInner: 128, dState: 16, nGroup: 2, nHead: 4 },
  },
  granitehybrid: {
    architecture: "granitehybrid",
    nLayer: 3,
    nEmbd: 64,
    nHead: 4,
    nHeadKv: 2,
    nFf: 128,
    contextLength: 4096,
    multipliers: { embedding: 12, residual: 0.22, attention: 0.0625, logit: 8 },
    ssm: { dConv: 4, dInner: 128, dState: 16, nGroup: 1, nHead: 4 },
    ssmLayers: [true, false, true],
  },
};

const N_VOCAB = 512;
const tokens = (n: number, seed: number) => syntheticTokens(n, N_VOCAB, seed);

describe.runIf(hasShared).each(Object.keys(SHAPES))("recurrent state (%s) in the engine", (arch) => {
  const file = path.join(tempDir("recurrent"), `${arch}.gguf`);
  let model: Model;
  beforeAll(async () => {
    writeSyntheticModel(file, SHAPES[arch], { weights: "F32", vocab: "stories", seed: 11 });
    model = await loadModel(file, { backend: "cpu", threads: 2, contextSize: 512 });
  });
  afterAll(() => model?.dispose());

  /** The last token's logits of `t` evaluated on a fresh session, one request. */
  async function fresh(t: number[]): Promise<Float32Array> {
    const s = model.createSession();
    const out = Float32Array.from(await s.evaluate(t));
    s.dispose();
    return out;
  }

  it("a prompt's logits are bit-identical as one prefill, in 7-row chunks and token by token", async () => {
    const t = tokens(75, 1);
    const all = await fresh(t);
    const chunked = await loadModel(file, { backend: "cpu", threads: 2, contextSize: 512, batchSize: 7 });
    const s = chunked.createSession();
    expect(Float32Array.from(await s.evaluate(t))).toEqual(all);
    chunked.dispose();
    const one = model.createSession();
    let last = new Float32Array(0);
    for (const x of t) last = Float32Array.from(await one.evaluate([x]));
    one.dispose();
    expect(last).toEqual(all);
  });

  it("a fork mid-block continues on its own state; the parent is unchanged", async () => {
    const prefix = tokens(45, 2);
    const a = model.createSession();
    await a.evaluate(prefix);
    const b = a.fork();
    const x = tokens(9, 3).slice(1), y = tokens(30, 4).slice(1);
    const la = Float32Array.from(await a.evaluate(x));
    const lb = Float32Array.from(await b.evaluate(y));
    expect(la).toEqual(await fresh([...prefix, ...x]));
    expect(lb).toEqual(await fresh([...prefix, ...y]));
    a.dispose();
    b.dispose();
  });

  it("truncate() into a block and at a block boundary, then new tokens: as if evaluated fresh", async () => {
    const t = tokens(70, 5);
    const more = tokens(12, 6).slice(1);
    for (const keep of [37, 64, 32, 1]) {
      const s = model.createSession();
      await s.evaluate(t);
      s.truncate(keep);
      expect(Float32Array.from(await s.evaluate(more))).toEqual(await fresh([...t.slice(0, keep), ...more]));
      s.dispose();
    }
  });

  it("a second request reuses the first's published blocks (whole blocks of state) with the same logits", async () => {
    const prompt = tokens(100, 7);
    const first = await model.complete(prompt, { maxTokens: 4, temperature: 0, ignoreEos: true });
    const second = await model.complete(prompt, { maxTokens: 4, temperature: 0, ignoreEos: true });
    // 3 full blocks of 32 are published; the last 4 prompt tokens run again.
    expect(second.stats.cachedTokens).toBe(96);
    expect(second.tokens).toEqual(first.tokens);
  });

  it("8 concurrent generations equal their solo runs (greedy and seeded)", async () => {
    const prompts = Array.from({ length: 8 }, (_, i) => tokens(5 + 9 * i, 20 + i));
    const opts = (i: number): GenerateOptions => (i % 2 ? { maxTokens: 40, temperature: 0.9, seed: i, ignoreEos: true } : { maxTokens: 40, temperature: 0, ignoreEos: true });
    const solo = [];
    for (let i = 0; i < prompts.length; i++) solo.push(await model.complete(prompts[i], opts(i)));
    const together = await Promise.all(prompts.map((p, i) => model.complete(p, opts(i))));
    for (let i = 0; i < prompts.length; i++) expect(together[i].tokens).toEqual(solo[i].tokens);
  });

  it("an aborted generation leaves its session resumable with exact state", async () => {
    const prompt = tokens(40, 8);
    const s = model.createSession();
    const controller = new AbortController();
    const g = model.generate(prompt, { session: s, maxTokens: 200, temperature: 0, ignoreEos: true, signal: controller.signal });
    let n = 0;
    await expect(
      (async () => {
        for await (const _ of g) if (++n === 5) controller.abort();
      })(),
    ).rejects.toMatchObject({ code: "ERR_ABORTED" });
    const next = tokens(6, 9).slice(1);
    const held = [...s.tokens];
    expect(Float32Array.from(await s.evaluate(next))).toEqual(await fresh([...held, ...next]));
    s.dispose();
  });

  it("speculative decoding (prompt lookup, rolled back on rejection) gives plain greedy decoding's tokens", async () => {
    // A repetitive prompt so that lookup proposes, and some proposals are rejected.
    const base = tokens(12, 10);
    const prompt = [...base, ...base.slice(1), ...base.slice(1, 8)];
    const plain = await model.complete(prompt, { maxTokens: 48, temperature: 0, ignoreEos: true });
    const spec = await model.complete(prompt, { maxTokens: 48, temperature: 0, ignoreEos: true, speculative: { promptLookup: true } });
    expect(spec.tokens).toEqual(plain.tokens);
    expect(spec.stats.speculative!.proposed).toBeGreaterThan(0);
  });

  it("every block returns to the pool when the sequences end", () => {
    const stats = model.stats();
    expect(stats.inUse).toBe(0);
  });
});
