/**
 * Encoder models (bert, nomic-bert; issue 22): what they refuse and how. A malformed file is
 * a coded error (from the plan in TypeScript or from C++'s shape checks), text generation on
 * an encoder is ERR_UNSUPPORTED pointing to embed, and the inputs of one step never see each
 * other (bidirectional attention stays inside each sequence).
 */
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadModel, type Model } from "../../lib/index.js";
import { native, type NativePlan } from "../../lib/native.js";
import { fromNativeError } from "../../lib/errors.js";
import { architecture } from "../../lib/arch/registry.js";
import { buildPlan } from "../../lib/model/plan.js";
import { readGGUF } from "../../lib/gguf/reader.js";
import { GGMLType, type GGUFKV } from "../../lib/gguf/types.js";
import { encodeGGUF } from "../../lib/gguf/writer.js";
import { writeSyntheticModel, type ModelShape } from "../../dev/synthetic-model.js";
import { code } from "../helpers/error-code.js";
import { evaluateIsolated } from "../helpers/isolated-eval.js";
import { hasShared, tempDir } from "../helpers/paths.js";

const SHAPE: ModelShape = {
  architecture: "bert", nLayer: 1, nEmbd: 64, nHead: 4, nHeadKv: 4, nFf: 128, contextLength: 512, normEps: 1e-12, poolingType: 2,
  encoder: { positionEmbeddings: true, fusedQkv: false, ffn: "gelu", biases: true },
};
type Tensor = { name: string; type: GGMLType; dims: number[]; data: Uint8Array };

describe.runIf(hasShared)("encoder models", () => {
  const dir = tempDir("encoder");
  const file = path.join(dir, "bert.gguf");
  const fused = path.join(dir, "bert-fused.gguf");
  let model: Model;

  /** The file re-encoded with edits to its tensors. */
  const variant = (name: string, source: string, edit: (tensors: Tensor[], meta: Map<string, GGUFKV>) => void): string => {
    const g = readGGUF(source);
    const bytes = fs.readFileSync(source);
    const meta = new Map(g.metadata);
    const tensors = g.tensors.map((t) => ({ name: t.name, type: t.type, dims: [...t.dims], data: bytes.subarray(t.offset, t.offset + t.byteLength) }));
    edit(tensors, meta);
    const out = path.join(dir, name);
    fs.writeFileSync(out, encodeGGUF({ metadata: meta, tensors }));
    return out;
  };
  const f32 = (n: number) => new Uint8Array(new Float32Array(n).fill(0.01).buffer);

  beforeAll(async () => {
    writeSyntheticModel(file, SHAPE, { weights: "F32", vocab: "bert-bge", seed: 5 });
    writeSyntheticModel(fused, { ...SHAPE, encoder: { ...SHAPE.encoder!, fusedQkv: true } }, { weights: "F32", vocab: "bert-bge", seed: 5 });
    model = await loadModel(file, { backend: "cpu", threads: 2, contextSize: 128 });
  });
  afterAll(() => model?.dispose());

  it("embeds with the file's pooling, normalized by default", async () => {
    const [v] = await model.embed("a small test");
    expect(v.length).toBe(64);
    expect(Math.hypot(...v)).toBeCloseTo(1, 5);
    const [cls] = await model.embed("a small test", { pooling: "cls" });
    expect([...cls]).toEqual([...v]);
    const [mean] = await model.embed("a small test", { pooling: "mean" });
    expect([...mean]).not.toEqual([...v]);
  });

  it("inputs batched in one step give what each gives alone (no attention across inputs)", async () => {
    const texts = Array.from({ length: 12 }, (_, i) => `text number ${i} ${"and more words ".repeat(i % 4)}`);
    const together = await model.embed(texts, { pooling: "mean" });
    for (let i = 0; i < texts.length; i += 5) {
      const [alone] = await model.embed(texts[i], { pooling: "mean" });
      expect([...together[i]]).toEqual([...alone]);
    }
  });

  it("text generation, sessions and chat are ERR_UNSUPPORTED, pointing to embed", async () => {
    let message = "";
    try {
      model.generate("hello");
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toMatch(/encoder.*embed/);
    expect(await code(() => model.generate("hello"))).toBe("ERR_UNSUPPORTED");
    expect(await code(() => model.complete("hello"))).toBe("ERR_UNSUPPORTED");
    expect(await code(() => model.completeMany("hello", { n: 2 }))).toBe("ERR_UNSUPPORTED");
    expect(await code(() => model.createSession())).toBe("ERR_UNSUPPORTED");
    expect(await code(() => model.chat([{ role: "user", content: "hi" }]))).toBe("ERR_UNSUPPORTED");
  });

  it("an input longer than a step is ERR_OUT_OF_CONTEXT", async () => {
    const small = await loadModel(file, { backend: "cpu", threads: 1, contextSize: 128, batchSize: 8 });
    try {
      expect(await code(() => small.embed("one two three four five six seven eight nine ten"))).toBe("ERR_OUT_OF_CONTEXT");
      expect((await small.embed("one two"))[0].length).toBe(64);
    } finally {
      small.dispose();
    }
  });

  it("a context past the position embeddings is ERR_INVALID_ARGUMENT", async () => {
    expect(await code(() => loadModel(file, { backend: "cpu", threads: 1, contextSize: 1024 }))).toBe("ERR_INVALID_ARGUMENT");
  });

  it("malformed files are coded errors", async () => {
    const noTypes = variant("no-types.gguf", file, (t) => t.splice(t.findIndex((x) => x.name === "token_types.weight"), 1));
    expect(await code(() => loadModel(noTypes, { backend: "cpu" }))).toBe("ERR_MODEL_INCOMPATIBLE");
    const shortPositions = variant("positions.gguf", file, (t) => {
      const p = t.find((x) => x.name === "position_embd.weight")!;
      p.dims = [64, 100];
      p.data = f32(64 * 100);
    });
    expect(await code(() => loadModel(shortPositions, { backend: "cpu" }))).toBe("ERR_MODEL_INCOMPATIBLE");
    const narrowPositions = variant("positions-narrow.gguf", file, (t) => {
      const p = t.find((x) => x.name === "position_embd.weight")!;
      p.dims = [32, 512];
      p.data = f32(32 * 512);
    });
    expect(await code(() => loadModel(narrowPositions, { backend: "cpu" }))).toBe("ERR_MODEL_INCOMPATIBLE");
    // The fused projection's rows are checked in C++ against q + k + v (TypeScript does not size it).
    const badQkv = variant("qkv.gguf", fused, (t) => {
      const p = t.find((x) => x.name === "blk.0.attn_qkv.weight")!;
      p.dims = [64, 64 * 3 - 32];
      p.data = f32(64 * (64 * 3 - 32));
      const b = t.find((x) => x.name === "blk.0.attn_qkv.bias")!;
      b.dims = [64 * 3 - 32];
      b.data = f32(64 * 3 - 32);
    });
    let message = "";
    try {
      await loadModel(badQkv, { backend: "cpu" });
    } catch (e) {
      message = `${(e as { code: string }).code}: ${(e as Error).message}`;
    }
    expect(message).toMatch(/^ERR_MODEL_INCOMPATIBLE: .*attn_qkv/);
    // Separate q/k/v beside a fused projection: llama.cpp uses the fused one, the others are refused as unused.
    const both = variant("both.gguf", fused, (t) => t.push({ name: "blk.0.attn_q.weight", type: GGMLType.F32, dims: [64, 64], data: f32(64 * 64) }));
    expect(await code(() => loadModel(both, { backend: "cpu" }))).toBe("ERR_MODEL_INCOMPATIBLE");
    // An encoder has no LM head: an output.weight is a tensor it would not use.
    const head = variant("head.gguf", file, (t) => t.push({ name: "output.weight", type: GGMLType.F32, dims: [64, 30522], data: f32(64 * 30522) }));
    expect(await code(() => loadModel(head, { backend: "cpu" }))).toBe("ERR_MODEL_INCOMPATIBLE");
    const finalNorm = variant("final-norm.gguf", file, (t) => t.push({ name: "output_norm.bias", type: GGMLType.F32, dims: [64], data: f32(64) }));
    expect(await code(() => loadModel(finalNorm, { backend: "cpu" }))).toBe("ERR_MODEL_INCOMPATIBLE");
    const noNormBias = variant("no-norm-bias.gguf", file, (t) => t.splice(t.findIndex((x) => x.name === "blk.0.layer_output_norm.bias"), 1));
    expect(await code(() => loadModel(noNormBias, { backend: "cpu" }))).toBe("ERR_MODEL_INCOMPATIBLE");
  });

  it("C++ checks an encoder plan on its own (each edit in a child process)", () => {
    const refused = (edit: (plan: NativePlan) => void) => {
      const r = evaluateIsolated(file, [101, 2023, 102], 1, edit);
      return r.kind === "error" ? `${r.code}: ${r.message}` : r.kind;
    };
    // The child asks for logits: an encoder's step refuses them.
    expect(refused(() => {})).toMatch(/^ERR_INVALID_ARGUMENT: .*without an LM head/);
    expect(refused((p) => (p.lmHead = true))).toMatch(/^ERR_MODEL_INCOMPATIBLE: .*output norm/);
    expect(refused((p) => (p.posEmbd = p.tokEmbdNorm))).toMatch(/^ERR_MODEL_INCOMPATIBLE: .*position embeddings/);
    expect(refused((p) => (p.tokEmbdNorm = -1))).toMatch(/^ERR_MODEL_INCOMPATIBLE: .*norm bias without its weight/);
    expect(refused((p) => (p.ffnGated = true))).toMatch(/^ERR_MODEL_INCOMPATIBLE: .*ffn gate/);
    expect(refused((p) => delete p.layers[0].attnOutNorm)).toMatch(/^ERR_MODEL_INCOMPATIBLE: .*attention output norm/);
    expect(refused((p) => (p.layers[0].attnNorm = p.layers[0].attnOutNorm))).toMatch(/^ERR_MODEL_INCOMPATIBLE: .*attention norm .*does not use/);
    expect(refused((p) => (p.postNorm = false))).toMatch(/^ERR_MODEL_INCOMPATIBLE: /);
  });

  it("the CUDA backend refuses an encoder with a coded error, before needing a GPU", async () => {
    const { plan } = buildPlan(readGGUF(file), architecture("bert"));
    let message = "";
    try {
      await native().loadModel(file, plan, { backend: "cuda", threads: 1, mmap: true, checkTensors: false, control: native().createLoadControl() });
    } catch (e) {
      const err = fromNativeError(e);
      message = `${err.code}: ${err.message}`;
    }
    expect(message).toMatch(/^ERR_BACKEND_UNAVAILABLE: .*encoder.*"cpu"/);
  });
});
