/**
 * Embedding space (issue 23): a token's embedding is its dequantized row of token_embd
 * (compared with the GGUF bytes decoded independently, F32 and Q8_0); nearest tokens by
 * cosine rank the vocabulary (a token's own vector finds itself first when not excluded,
 * similarities sorted, k honoured); arithmetic combines rows.
 */
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dequantize } from "../../lib/gguf/quantize.js";
import { readGGUF } from "../../lib/gguf/reader.js";
import { isTesseraError, loadModel, type Model } from "../../lib/index.js";
import { writeSyntheticModel } from "../../dev/synthetic-model.js";
import { hasShared, stories260K, tempDir } from "../helpers/paths.js";

function rowOf(file: string, id: number): Float64Array {
  const g = readGGUF(file);
  const t = g.tensors.find((x) => x.name === "token_embd.weight")!;
  const bytes = fs.readFileSync(file).subarray(t.offset, t.offset + t.byteLength);
  return dequantize(t.type, bytes, t.elementCount).subarray(id * t.dims[0], (id + 1) * t.dims[0]);
}

describe.runIf(hasShared)("token embeddings", () => {
  let model: Model;
  beforeAll(async () => {
    model = await loadModel(stories260K, { backend: "cpu", threads: 1, contextSize: 64 });
  });
  afterAll(() => model?.dispose());

  it("a token's embedding is its row of token_embd (F32 and Q8_0 files)", async () => {
    for (const id of [0, 1, 100, 511]) expect(Array.from(model.tokenEmbedding(id))).toEqual(Array.from(rowOf(stories260K, id), Math.fround));
    const file = path.join(tempDir("emb"), "q8.gguf");
    writeSyntheticModel(file, { architecture: "llama", nLayer: 1, nEmbd: 64, nHead: 2, nHeadKv: 1, nFf: 128, contextLength: 4096 }, { weights: "Q8_0", vocab: "stories", seed: 2 });
    const q = await loadModel(file, { backend: "cpu", threads: 1, contextSize: 64 });
    expect(Array.from(q.tokenEmbedding(77))).toEqual(Array.from(rowOf(file, 77), Math.fround));
    q.dispose();
  });

  it("nearest tokens by cosine: sorted, k of them, the query's own tokens left out; a vector finds its token first", () => {
    const near = model.nearestTokens(model.tokenEmbedding(300), 5);
    expect(near[0].token).toBe(300);
    expect(near[0].similarity).toBeCloseTo(1, 6);
    const byId = model.nearestTokens(300, 5);
    expect(byId.map((n) => n.token)).toEqual(near.slice(1).map((n) => n.token).concat(byId[4].token).slice(0, 5));
    expect(byId.every((n) => n.token !== 300)).toBe(true);
    for (let i = 1; i < byId.length; i++) expect(byId[i - 1].similarity).toBeGreaterThanOrEqual(byId[i].similarity);
    // Brute-force check of the top one.
    const v = model.tokenEmbedding(300);
    let best = -2, arg = -1;
    for (let t = 0; t < model.info.nVocab; t++) {
      if (t === 300) continue;
      const r = model.tokenEmbedding(t);
      let dot = 0, a = 0, b = 0;
      for (let i = 0; i < r.length; i++) {
        dot += r[i] * v[i];
        a += r[i] * r[i];
        b += v[i] * v[i];
      }
      const c = dot / Math.sqrt(a * b);
      if (c > best) (best = c), (arg = t);
    }
    expect(byId[0].token).toBe(arg);
    expect(byId[0].similarity).toBeCloseTo(best, 5);
  });

  it("arithmetic: plus and minus of token embeddings; bad queries refused", () => {
    const [a, b, c] = [model.tokenEmbedding(10), model.tokenEmbedding(20), model.tokenEmbedding(30)];
    const sum = Array.from(a, (x, i) => x - b[i] + c[i]);
    const near = model.nearestTokens({ plus: [10, 30], minus: [20] }, 3);
    const direct = model.nearestTokens(sum, 6).filter((n) => ![10, 20, 30].includes(n.token)).slice(0, 3);
    expect(near.map((n) => n.token)).toEqual(direct.map((n) => n.token));
    for (const bad of [-1, 512, 1.5]) expect(() => model.tokenEmbedding(bad)).toThrow();
    expect(() => model.nearestTokens([1, 2, 3])).toThrow(expect.objectContaining({ code: "ERR_INVALID_ARGUMENT" }));
    expect(() => model.nearestTokens({ plus: [] })).toThrow(expect.objectContaining({ code: "ERR_INVALID_ARGUMENT" }));
    expect(isTesseraError(new Error("x"))).toBe(false);
  });
});
