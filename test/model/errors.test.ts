/**
 * Bad input never kills the process: every failure below must surface as a TesseraError
 * with the documented code, both before the native boundary (TS validation) and after it.
 */
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadModel, type Model } from "../../lib/index.js";
import { isTesseraError } from "../../lib/errors.js";
import { readGGUF } from "../../lib/gguf/reader.js";
import { GGMLType, type GGUFKV } from "../../lib/gguf/types.js";
import { encodeGGUF, kv } from "../../lib/gguf/writer.js";
import { Rng } from "../../lib/sampling/rng.js";
import { hasShared, stories260K, tempDir } from "../helpers/paths.js";

async function expectCode(p: Promise<unknown> | (() => unknown), code: string): Promise<void> {
  try {
    await (typeof p === "function" ? p() : p);
  } catch (e) {
    expect(isTesseraError(e), String(e)).toBe(true);
    expect((e as { code: string }).code, (e as Error).message).toBe(code);
    expect((e as Error).message.length).toBeGreaterThan(20);
    return;
  }
  throw new Error(`expected ${code}, nothing was thrown`);
}

/** stories260K re-encoded with edits to its metadata or tensors. */
function storiesVariant(edit: (meta: Map<string, GGUFKV>, tensors: Array<{ name: string; type: GGMLType; dims: number[]; data: Uint8Array }>) => void): Uint8Array {
  const file = readGGUF(stories260K);
  const bytes = fs.readFileSync(stories260K);
  const meta = new Map(file.metadata);
  const tensors = file.tensors.map((t) => ({ name: t.name, type: t.type, dims: [...t.dims], data: bytes.subarray(t.offset, t.offset + t.byteLength) }));
  edit(meta, tensors);
  return encodeGGUF({ metadata: meta, tensors });
}

describe.runIf(hasShared)("coded errors from loadModel and sessions", () => {
  const dir = tempDir("errors");
  const write = (name: string, bytes: Uint8Array) => {
    const f = path.join(dir, name);
    fs.writeFileSync(f, bytes);
    return f;
  };

  it("missing file, directory, bad magic, truncated file", async () => {
    await expectCode(loadModel(path.join(dir, "nope.gguf")), "ERR_IO");
    await expectCode(loadModel(dir), "ERR_IO");
    await expectCode(loadModel(write("magic.gguf", new Uint8Array(64).fill(7))), "ERR_GGUF_MALFORMED");
    const bytes = fs.readFileSync(stories260K);
    await expectCode(loadModel(write("trunc.gguf", bytes.subarray(0, bytes.length - 100))), "ERR_GGUF_MALFORMED");
  });

  it("unknown architecture", async () => {
    const f = write("arch.gguf", storiesVariant((m) => m.set("general.architecture", kv.str("transformer-xyz"))));
    await expectCode(loadModel(f), "ERR_UNKNOWN_ARCHITECTURE");
    // The refusal names what does run and what does not yet.
    await expect(loadModel(f)).rejects.toThrow(/Tessera runs llama, .*gemma2.*Not supported yet, among others: .*nemotron_h/);
  });

  it("a weight type the kernels cannot compute", async () => {
    const f = write(
      "quant.gguf",
      storiesVariant((_, tensors) => {
        const t = tensors.find((x) => x.name === "blk.0.attn_q.weight")!;
        t.type = GGMLType.IQ2_XXS;
        t.dims = [256, 16];
        t.data = new Uint8Array(16 * 66).fill(3);
      }),
    );
    await expectCode(loadModel(f), "ERR_UNSUPPORTED_QUANT_TYPE");
    await expect(loadModel(f)).rejects.toThrow(/is IQ2_XXS, which Tessera cannot compute with; .*Not supported yet: .*IQ2_XXS/);
  });

  it("a missing tensor and a wrong shape", async () => {
    const missing = write("missing.gguf", storiesVariant((_, t) => t.splice(t.findIndex((x) => x.name === "blk.2.ffn_up.weight"), 1)));
    await expectCode(loadModel(missing), "ERR_MODEL_INCOMPATIBLE");
    const shape = write(
      "shape.gguf",
      storiesVariant((_, tensors) => {
        const t = tensors.find((x) => x.name === "blk.1.attn_k.weight")!;
        t.dims = [64, 16];
        t.data = t.data.subarray(0, 64 * 16 * 4);
      }),
    );
    await expectCode(loadModel(shape), "ERR_MODEL_INCOMPATIBLE");
  });

  it("bad options", async () => {
    await expectCode(loadModel(stories260K, { threads: 0 }), "ERR_INVALID_ARGUMENT");
    await expectCode(loadModel(stories260K, { backend: "tpu" as never }), "ERR_INVALID_ARGUMENT");
    // 2^32 + 16 would wrap to 16 in a native uint32.
    await expectCode(loadModel(stories260K, { contextSize: 2 ** 32 + 16 }), "ERR_INVALID_ARGUMENT");
    await expectCode(loadModel(stories260K, { kvCacheTokens: 2 ** 32 + 16 }), "ERR_INVALID_ARGUMENT");
    await expectCode(loadModel(stories260K, { batchSize: 2 ** 32 + 1 }), "ERR_INVALID_ARGUMENT");
    // Each wrong type is a coded error naming the option, never a TypeError or a truthy string.
    for (const bad of [
      null,
      [],
      "cpu",
      { signal: "abort" },
      { signal: {} },
      { onProgress: 5 },
      { mmap: "false" },
      { checkTensors: 1 },
      { kvCacheType: 5 },
      { kvCacheBytes: "1e9" },
      { contextSize: "512" },
    ]) {
      await expectCode(loadModel(stories260K, bad as never), "ERR_INVALID_ARGUMENT");
    }
    await expectCode(loadModel(42 as never), "ERR_INVALID_ARGUMENT");
    const ac = new AbortController();
    ac.abort();
    await expectCode(loadModel(stories260K, { signal: ac.signal }), "ERR_ABORTED");
  });

  describe("on a loaded model", () => {
    let model: Model;
    beforeAll(async () => {
      model = await loadModel(stories260K, { backend: "cpu", threads: 2, contextSize: 32 });
    });
    afterAll(() => model?.dispose());

    it("out-of-vocabulary tokens and empty input", async () => {
      const s = model.createSession();
      await expectCode(s.evaluate([1, 512]), "ERR_INVALID_ARGUMENT");
      await expectCode(s.evaluate([-1]), "ERR_INVALID_ARGUMENT");
      await expectCode(s.evaluate([1.5]), "ERR_INVALID_ARGUMENT");
      await expectCode(s.evaluate([]), "ERR_INVALID_ARGUMENT");
      s.dispose();
    });

    it("out of context, then recovery after reset", async () => {
      const s = model.createSession();
      await s.evaluate(Array.from({ length: 30 }, (_, i) => 1 + i));
      await expectCode(s.evaluate([5, 6, 7]), "ERR_OUT_OF_CONTEXT");
      expect(s.tokens.length).toBe(30);
      s.reset();
      const logits = await s.evaluate([1]);
      expect(logits.length).toBe(512);
      await expectCode(model.complete("Once upon a time ".repeat(20), { maxTokens: 4 }), "ERR_OUT_OF_CONTEXT");
      s.dispose();
      await expectCode(s.evaluate([1]), "ERR_DISPOSED");
    });

    it("aborted generation stops with a coded error", async () => {
      const ac = new AbortController();
      const gen = model.generate("Once", { maxTokens: 20, temperature: 0, signal: ac.signal });
      let chunks = 0;
      await expectCode(
        (async () => {
          for await (const _ of gen) {
            chunks++;
            ac.abort();
          }
        })(),
        "ERR_ABORTED",
      );
      expect(chunks).toBe(1);
    });

    it("invalid sampling options", async () => {
      await expectCode(model.complete("Once", { temperature: -1 }), "ERR_INVALID_ARGUMENT");
      await expectCode(model.complete("Once", { topP: 2 }), "ERR_INVALID_ARGUMENT");
    });

    it("every generate, session and evaluate option of the wrong type is a coded error", async () => {
      for (const bad of [
        { stop: "abc" },
        { stop: [""] },
        { stop: [1] },
        { maxTokens: "5" },
        { maxTokens: -1 },
        { signal: "x" },
        { addSpecial: "yes" },
        { parseSpecial: 1 },
        { ignoreEos: "true" },
        { session: {} },
        { seed: 1.5 },
        { topK: "40" },
        { repeatPenalty: 0 },
      ]) {
        await expectCode(model.complete("Once", bad as never), "ERR_INVALID_ARGUMENT");
      }
      for (const bad of [null, [], "opts"]) {
        await expectCode(model.complete("Once", bad as never), "ERR_INVALID_ARGUMENT");
        await expectCode(() => model.generate("Once", bad as never), "ERR_INVALID_ARGUMENT");
        await expectCode(() => model.createSession(bad as never), "ERR_INVALID_ARGUMENT");
      }
      for (const prompt of [null, undefined, 5, {}]) await expectCode(model.complete(prompt as never), "ERR_INVALID_ARGUMENT");
      await expectCode(() => model.createSession({ contextSize: 2 ** 32 + 16 }), "ERR_INVALID_ARGUMENT");
      await expectCode(() => model.createSession({ batchSize: 0 }), "ERR_INVALID_ARGUMENT");
      const s = model.createSession();
      for (const bad of [null, "x", { signal: 1 }]) {
        await expectCode(s.evaluate([1], bad as never), "ERR_INVALID_ARGUMENT");
        await expectCode(s.evaluateAll([1], bad as never), "ERR_INVALID_ARGUMENT");
      }
      for (const tokens of [null, "abc", 3, [1, "2"], [NaN]]) await expectCode(s.evaluate(tokens as never), "ERR_INVALID_ARGUMENT");
      for (const n of [-1, 1.5, "0", 99]) await expectCode(() => s.truncate(n as never), "ERR_INVALID_ARGUMENT");
      expect(s.tokens.length).toBe(0);
      s.dispose();
      // None of it disturbed the model.
      const { tokens } = await model.complete("Once", { maxTokens: 3, temperature: 0, ignoreEos: true });
      expect(tokens.length).toBe(3);
    });
  });

  it("300 randomly mutated model files never crash the loader", async () => {
    const base = fs.readFileSync(stories260K);
    const header = readGGUF(stories260K).dataOffset;
    // A fresh seed each run widens coverage over time; TESSERA_FUZZ_SEED replays a failure.
    const seed = Number(process.env.TESSERA_FUZZ_SEED ?? Date.now() >>> 0);
    const rng = new Rng(seed);
    const outcomes = new Map<string, number>();
    for (let i = 0; i < 300; i++) {
      const b = Uint8Array.from(base);
      const dv = new DataView(b.buffer);
      for (let k = 0; k < 1 + Math.floor(rng.next() * 3); k++) {
        const at = Math.floor(rng.next() * (header - 8));
        if (rng.next() < 0.5) b[at] ^= 1 << Math.floor(rng.next() * 8);
        else dv.setUint32(at, [0, 1, 0xffffffff, 0x7fffffff, 64, 512][Math.floor(rng.next() * 6)], true);
      }
      const f = write(`fuzz${i % 4}.gguf`, b);
      let code = "ok";
      try {
        const m = await loadModel(f, { backend: "cpu", threads: 1, contextSize: 16 });
        const s = m.createSession();
        await s.evaluate([1, 2, 3]);
        m.dispose();
      } catch (e) {
        if (!isTesseraError(e)) throw new Error(`mutated model ${i} of TESSERA_FUZZ_SEED=${seed}: uncoded ${String(e)}`, { cause: e });
        code = e.code;
      }
      outcomes.set(code, (outcomes.get(code) ?? 0) + 1);
    }
    expect([...outcomes.keys()].every((c) => c === "ok" || c.startsWith("ERR_"))).toBe(true);
    expect(outcomes.size).toBeGreaterThan(1);
  });
});
