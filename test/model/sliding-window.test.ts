/**
 * Sliding-window attention end to end on the CPU backend: the window must change the logits
 * (so a backend that ignored it would fail here), and with a KV cache many times longer than
 * the window, decoding must see exactly the receptive field the window allows — with every
 * block windowed, the logits at position p depend only on the tokens at p - L·(w - 1) ..= p.
 * Agreement with llama.cpp is in test/conformance/architectures.test.ts.
 */
import path from "node:path";
import { describe, expect, it } from "vitest";
import { loadModel } from "../../lib/index.js";
import { isTesseraError } from "../../lib/errors.js";
import { readGGUF } from "../../lib/gguf/reader.js";
import { readHyperparameters } from "../../lib/model/hparams.js";
import { architecture } from "../../lib/arch/registry.js";
import { writeSyntheticModel, type ModelShape } from "../../dev/synthetic-model.js";
import { randomTokens } from "../helpers/compare-llama-cpp.js";
import { relativeError } from "../../dev/kernels/harness.js";
import { hasShared, tempDir } from "../helpers/paths.js";

const WINDOW = 8;
const N_LAYER = 2;
/** Every block windowed: position p sees tokens back to p - N_LAYER·(WINDOW - 1). */
const REACH = N_LAYER * (WINDOW - 1);
const SHAPE: ModelShape = {
  architecture: "mellum", nLayer: N_LAYER, nEmbd: 128, nHead: 4, nHeadKv: 2, headDim: 32, nFf: 256, contextLength: 4096,
  ropeFreqBase: 1e6, normEps: 1e-6, qkNorm: true, slidingWindow: WINDOW, slidingWindowPattern: 0,
  moe: { nExpert: 4, nExpertUsed: 2, nFfExp: 128 },
};
const SEED = 5;
const N_VOCAB = 512;

describe.runIf(hasShared)("sliding-window attention (mellum, CPU)", () => {
  const dir = tempDir("swa");
  const write = (name: string, shape: ModelShape) => {
    const file = path.join(dir, `${name}.gguf`);
    writeSyntheticModel(file, shape, { weights: "F32", vocab: "stories", seed: SEED });
    return file;
  };

  async function decode(file: string, tokens: number[]): Promise<Float32Array[]> {
    const model = await loadModel(file, { backend: "cpu", threads: 2, contextSize: 192 });
    try {
      const session = model.createSession();
      const out: Float32Array[] = [];
      for (const t of tokens) out.push(Float32Array.from(await session.evaluate([t])));
      return out;
    } finally {
      model.dispose();
    }
  }

  it("the window changes the logits from position WINDOW on, and only from there", async () => {
    const tokens = randomTokens(40, N_VOCAB, 3);
    const windowed = await decode(write("windowed", SHAPE), tokens);
    const full = await decode(write("full", { ...SHAPE, slidingWindow: undefined }), tokens);
    for (let p = 0; p < tokens.length; p++) {
      const rel = relativeError(windowed[p], full[p]);
      if (p < WINDOW) expect(rel, `position ${p}`).toBeLessThan(1e-6);
      else expect(rel, `position ${p}`).toBeGreaterThan(1e-2);
    }
  }, 60_000);

  it("over 160 decode steps, only the window's receptive field reaches the logits", async () => {
    const a = randomTokens(160, N_VOCAB, 11);
    // b differs from a in positions 1..20 only.
    const b = a.map((t, i) => (i >= 1 && i <= 20 ? 3 + ((t + 101) % (N_VOCAB - 3)) : t));
    const firstUnreached = 20 + REACH + 1;
    const windowedFile = write("reach", SHAPE);
    const la = await decode(windowedFile, a);
    const lb = await decode(windowedFile, b);
    for (let p = 1; p < a.length; p++) {
      const rel = relativeError(lb[p], la[p]);
      if (p <= 20) expect(rel, `position ${p}`).toBeGreaterThan(1e-2);
      if (p >= firstUnreached) expect(rel, `position ${p}`).toBeLessThan(1e-6);
    }
    // A global block (the file's per-block pattern) lets the early tokens reach every position.
    const mixed = write("mixed", { ...SHAPE, slidingWindowPattern: [true, false] });
    const ma = await decode(mixed, a);
    const mb = await decode(mixed, b);
    for (let p = firstUnreached; p < a.length; p += 16) expect(relativeError(mb[p], ma[p]), `position ${p}`).toBeGreaterThan(1e-4);
  }, 120_000);

  it("reads the pattern as data: default period, scalar period, per-block flags", () => {
    const blocks = (shape: ModelShape) => {
      const file = write(`hp-${Math.random().toString(36).slice(2)}`, shape);
      return readHyperparameters(readGGUF(file), architecture("mellum")).windowedBlocks;
    };
    const eight = { ...SHAPE, nLayer: 8, slidingWindowPattern: undefined };
    expect(blocks(eight)).toEqual([true, true, true, false, true, true, true, false]);
    expect(blocks({ ...eight, slidingWindowPattern: 2 })).toEqual([true, false, true, false, true, false, true, false]);
    expect(blocks({ ...eight, slidingWindowPattern: 0 })).toEqual(new Array(8).fill(true));
    const flags = [false, true, true, false, false, true, false, true];
    expect(blocks({ ...eight, slidingWindowPattern: flags })).toEqual(flags);
    expect(blocks({ ...eight, slidingWindow: undefined })).toEqual(new Array(8).fill(false));
  });

  it("rejects a pattern of the wrong length and RoPE scaling it can't apply per block", async () => {
    const expectIncompatible = async (shape: ModelShape, message: RegExp) => {
      const err = await loadModel(write(`bad-${Math.random().toString(36).slice(2)}`, shape), { backend: "cpu" }).then(
        (m) => (m.dispose(), undefined),
        (e: unknown) => e,
      );
      expect(isTesseraError(err) && err.code, String(err)).toBe("ERR_MODEL_INCOMPATIBLE");
      expect(String((err as Error).message)).toMatch(message);
    };
    await expectIncompatible({ ...SHAPE, slidingWindowPattern: [true, false, true] }, /3 entries for 2 blocks/);
    await expectIncompatible({ ...SHAPE, ropeScaling: { type: "linear", factor: 4 } }, /RoPE scaling/);
  }, 60_000);
});
