/**
 * NaN and Infinity (issue 25): a model whose weights hold non-finite values loads, but every
 * step's logits are checked natively, so evaluate and generation fail with ERR_NON_FINITE
 * instead of returning NaN logits or greedy token 0 until "length"; in a step shared with
 * other sequences only the request whose rows went bad fails, and the engine keeps serving.
 * checkTensors finds the bad tensor at load, for every weight type. The sampler never throws
 * ERR_INTERNAL on such logits.
 */
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isTesseraError, loadModel, type Model } from "../../lib/index.js";
import { readGGUF } from "../../lib/gguf/reader.js";
import { GGMLType } from "../../lib/gguf/types.js";
import { Sampler } from "../../lib/sampling/sampler.js";
import { writeSyntheticModel, type ModelShape, type WeightScheme } from "../../dev/synthetic-model.js";
import { hasShared, stories260K, tempDir } from "../helpers/paths.js";

async function expectCode(p: Promise<unknown> | (() => unknown), code: string, message?: RegExp): Promise<void> {
  try {
    await (typeof p === "function" ? p() : p);
  } catch (e) {
    expect(isTesseraError(e), String(e)).toBe(true);
    expect((e as { code: string }).code, (e as Error).message).toBe(code);
    if (message) expect((e as Error).message).toMatch(message);
    return;
  }
  throw new Error(`expected ${code}, nothing was thrown`);
}

const dir = tempDir("nonfinite");

/**
 * A copy of `file` with bytes of tensor `name` overwritten at byte `at` of its data: the
 * float32 `value` for an F32 tensor, else the 16-bit pattern `half` (an fp16/bf16 value or
 * a quantized block's fp16 scale).
 */
function poke(file: string, out: string, name: string, at: number, value: { f32?: number; half?: number }): string {
  const bytes = fs.readFileSync(file);
  const t = readGGUF(file).tensors.find((x) => x.name === name);
  if (!t) throw new Error(`no tensor ${name}`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (value.f32 !== undefined) dv.setFloat32(t.offset + at, value.f32, true);
  else dv.setUint16(t.offset + at, value.half!, true);
  const f = path.join(dir, out);
  fs.writeFileSync(f, bytes);
  return f;
}

/** Token 100's embedding row of stories260K (F32, 64 wide) set to NaN at one element. */
const BAD_TOKEN = 100;

describe.runIf(hasShared)("non-finite weights", () => {
  let bad: string;
  let model: Model;
  beforeAll(async () => {
    bad = poke(stories260K, "nan-embd.gguf", "token_embd.weight", (BAD_TOKEN * 64 + 3) * 4, { f32: NaN });
    model = await loadModel(bad, { backend: "cpu", threads: 2, contextSize: 128 });
  });
  afterAll(() => model?.dispose());

  it("evaluate fails with ERR_NON_FINITE, with a message that says what to do", async () => {
    const s = model.createSession();
    await expectCode(s.evaluate([1, BAD_TOKEN]), "ERR_NON_FINITE", /checkTensors/);
    expect(s.tokens.length).toBe(0); // rolled back, as any failed evaluation
    const ok = await s.evaluate([1, 5, 9]);
    expect(ok.every(Number.isFinite)).toBe(true);
    s.dispose();
  });

  it("greedy and sampled generation fail with ERR_NON_FINITE, not token 0 until length", async () => {
    const prompt = [1, 7, BAD_TOKEN];
    await expectCode(model.complete(prompt, { maxTokens: 8, temperature: 0 }), "ERR_NON_FINITE");
    await expectCode(model.complete(prompt, { maxTokens: 8, temperature: 0.8, seed: 3 }), "ERR_NON_FINITE");
    await expectCode(model.complete(prompt, { maxTokens: 8, temperature: 0.8, topK: 0, seed: 3 }), "ERR_NON_FINITE");
  });

  it("in a step with other sequences only the bad one fails; the engine keeps serving", async () => {
    const clean = await loadModel(stories260K, { backend: "cpu", threads: 2, contextSize: 128 });
    const goodPrompts = [[1, 5, 9, 22], [1, 300, 17], [1, 44]];
    const expected = [];
    for (const p of goodPrompts) expected.push(await clean.complete(p, { maxTokens: 12, temperature: 0, ignoreEos: true }));
    clean.dispose();

    const before = model.stats().steps;
    const results = await Promise.allSettled([
      model.complete([1, 2, BAD_TOKEN], { maxTokens: 12, temperature: 0 }),
      ...goodPrompts.map((p) => model.complete(p, { maxTokens: 12, temperature: 0, ignoreEos: true })),
      model.createSession().evaluate([1, 8, BAD_TOKEN, 9]),
    ]);
    expect(model.stats().steps - before).toBeLessThan(20); // they shared steps
    const failed = results.filter((r) => r.status === "rejected");
    expect(failed.length).toBe(2);
    for (const r of failed) expect((r as PromiseRejectedResult).reason.code).toBe("ERR_NON_FINITE");
    for (let i = 0; i < goodPrompts.length; i++) {
      const r = results[1 + i];
      expect(r.status).toBe("fulfilled");
      expect((r as PromiseFulfilledResult<{ tokens: number[] }>).value.tokens).toEqual(expected[i].tokens);
    }
    // Later requests run as usual.
    const after = await model.complete(goodPrompts[0], { maxTokens: 12, temperature: 0, ignoreEos: true });
    expect(after.tokens).toEqual(expected[0].tokens);
    expect(model.stats().running).toBe(0);
  });

  it("checkTensors refuses the file at load, naming the tensor", async () => {
    await expectCode(loadModel(bad, { backend: "cpu", threads: 1, checkTensors: true }), "ERR_NON_FINITE", /token_embd\.weight.*element 6403/);
    const inf = poke(stories260K, "inf-norm.gguf", "blk.3.ffn_norm.weight", 8, { f32: -Infinity });
    await expectCode(loadModel(inf, { backend: "cpu", threads: 1, checkTensors: true }), "ERR_NON_FINITE", /blk\.3\.ffn_norm\.weight/);
    // The clean file passes the check.
    (await loadModel(stories260K, { backend: "cpu", threads: 1, checkTensors: true })).dispose();
  });
});

describe.runIf(hasShared)("checkTensors on every weight type", () => {
  const SHAPE: ModelShape = { architecture: "llama", nLayer: 1, nEmbd: 256, nHead: 4, nHeadKv: 2, nFf: 512, contextLength: 256 };
  // Per scheme: where the first block's fp16 scale sits (or the first value), and a NaN of
  // its width. Q4_K also has dmin at byte 2; Q6_K's d is the block's last two bytes.
  const CASES: Array<{ scheme: WeightScheme; at: number; half: number }> = [
    { scheme: "F16", at: 2 * 17, half: 0x7e00 },
    { scheme: "BF16", at: 2 * 17, half: 0x7fc0 },
    { scheme: "Q8_0", at: 34 * 5, half: 0x7c00 },
    { scheme: "Q4_0", at: 18 * 5, half: 0x7e00 },
    { scheme: "Q4_K", at: 144 * 2 + 2, half: 0xfc00 },
    { scheme: "Q6_K", at: 210 * 3 + 208, half: 0x7e00 },
    // Blocks of 32 (issue 28).
    { scheme: "Q5_0", at: 22 * 5, half: 0x7e00 },
    { scheme: "Q4_1", at: 20 * 2 + 2, half: 0xfc00 }, // the minimum m
    { scheme: "Q5_1", at: 24 * 3, half: 0x7e00 },
    { scheme: "IQ4_NL", at: 18 * 4, half: 0x7c00 },
    // The E8M0 byte 0xFF (NaN in the MX format); the byte after it is a quant.
    { scheme: "MXFP4", at: 17 * 3, half: 0x00ff },
  ];
  for (const c of CASES) {
    it(c.scheme, async () => {
      const file = path.join(dir, `${c.scheme}.gguf`);
      writeSyntheticModel(file, SHAPE, { weights: c.scheme, vocab: "stories", seed: 4 });
      const t = readGGUF(file).tensors.find((x) => x.name === "blk.0.ffn_up.weight")!;
      expect(GGMLType[t.type]).toBe(c.scheme);
      (await loadModel(file, { backend: "cpu", threads: 1, checkTensors: true })).dispose();
      const bad = poke(file, `${c.scheme}-bad.gguf`, "blk.0.ffn_up.weight", c.at, { half: c.half });
      await expectCode(loadModel(bad, { backend: "cpu", threads: 1, checkTensors: true }), "ERR_NON_FINITE", /blk\.0\.ffn_up\.weight/);
      // Unchecked, a float model's first step fails instead. In a quantized one the NaN can
      // vanish where activations are quantized for the next product (a NaN rounds to an
      // integer), leaving finite but wrong logits: what checkTensors is for.
      if (c.scheme === "F16" || c.scheme === "BF16") {
        const m = await loadModel(bad, { backend: "cpu", threads: 1 });
        await expectCode(m.createSession().evaluate([1, 5, 9]), "ERR_NON_FINITE");
        m.dispose();
      }
    });
  }
});

describe("the sampler on non-finite logits", () => {
  const nan = () => new Float32Array(64).fill(NaN);
  const masked = () => new Float32Array(64).fill(-Infinity);
  const inf = () => {
    const l = new Float32Array(64).fill(1);
    l[9] = Infinity;
    return l;
  };
  for (const [name, options] of [
    ["greedy", { temperature: 0 }],
    ["top-k", { temperature: 0.8, topK: 40, seed: 1 }],
    ["whole vocabulary", { temperature: 0.8, topK: 0, seed: 1 }],
  ] as const) {
    it(`${name}: ERR_NON_FINITE, never ERR_INTERNAL`, async () => {
      await expectCode(() => new Sampler(options).sample(nan()), "ERR_NON_FINITE");
      await expectCode(() => new Sampler(options).sample(masked()), "ERR_NON_FINITE");
      if (name !== "greedy") await expectCode(() => new Sampler(options).sample(inf()), "ERR_NON_FINITE");
    });
  }
  it("NaN entries among finite logits are never drawn", () => {
    const l = new Float32Array(64).fill(NaN);
    l[5] = 2;
    l[6] = 1;
    for (const o of [{ temperature: 0 }, { temperature: 1, topK: 10, seed: 2 }, { temperature: 1, topK: 0, seed: 2 }]) {
      const s = new Sampler(o);
      for (let i = 0; i < 20; i++) expect([5, 6]).toContain(s.sample(l.slice()));
    }
  });
});
