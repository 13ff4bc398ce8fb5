/**
 * The exact vector index: top-k identical to a float64 brute force over 100k random 384-d
 * vectors for each metric, on both kernel ISAs; removal, replacement, save/load, and a bad
 * file as a coded error.
 */
import fs from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { createVectorIndex, loadVectorIndex, type VectorIndex, type VectorMetric } from "../../lib/embeddings/vector-index.js";
import { native } from "../../lib/native.js";
import { Gaussian } from "../helpers/random.js";
import { Rng } from "../../lib/sampling/rng.js";
import { tempDir } from "../helpers/paths.js";

const N = 100_000;
const D = 384;
const K = 10;

/** Top-k rows by a float64 score (higher better; l2 as minus the distance), ties lower row first. */
function bruteForce(data: Float32Array, n: number, q: Float32Array, metric: VectorMetric, k: number, skip = new Set<number>()): number[] {
  let qn = 0;
  for (let j = 0; j < D; j++) qn += q[j] * q[j];
  qn = Math.sqrt(qn);
  const best: Array<{ row: number; score: number }> = [];
  for (let r = 0; r < n; r++) {
    if (skip.has(r)) continue;
    const o = r * D;
    let s = 0, nn = 0;
    if (metric === "l2") for (let j = 0; j < D; j++) s -= (data[o + j] - q[j]) ** 2;
    else for (let j = 0; j < D; j++) { s += data[o + j] * q[j]; nn += data[o + j] * data[o + j]; }
    if (metric === "cosine") s /= Math.sqrt(nn) * qn;
    if (best.length < k || s > best[best.length - 1].score) {
      best.push({ row: r, score: s });
      best.sort((a, b) => b.score - a.score || a.row - b.row);
      if (best.length > k) best.pop();
    }
  }
  return best.map((b) => b.row);
}

describe("vector index", () => {
  const g = new Gaussian(1234);
  // Uniform values (cheaper to draw than Gaussian ones; the index does not care).
  const rng = new Rng(1234);
  const data = new Float32Array(N * D);
  for (let i = 0; i < data.length; i++) data[i] = 2 * rng.next() - 1;
  const ids = Array.from({ length: N }, (_, i) => `doc-${i}`);
  const queries = Array.from({ length: 4 }, () => g.array(D));
  const dir = tempDir("vector-index");
  const indexes = new Map<VectorMetric, VectorIndex>();
  const isa = native().systemInfo().cpu.isa;
  afterAll(() => native().setCpuIsa(isa));

  for (const metric of ["cosine", "dot", "l2"] as const) {
    it(`${metric}: top-${K} of ${N} x ${D} equals a float64 brute force, AVX2 and scalar`, () => {
      const index = createVectorIndex({ dimensions: D, metric, threads: 2 });
      index.add(ids, data);
      if (metric === "cosine") indexes.set(metric, index);
      expect(index.size).toBe(N);
      for (const [qi, q] of queries.slice(0, 2).entries()) {
        const want = bruteForce(data, N, q, metric, K).map((r) => ids[r]);
        const hits = index.search(q, K);
        expect(hits.map((h) => h.id)).toEqual(want);
        for (let i = 1; i < K; i++) expect(metric === "l2" ? hits[i].score >= hits[i - 1].score : hits[i].score <= hits[i - 1].score).toBe(true);
        if (qi > 0) continue;
        native().setCpuIsa("scalar");
        expect(index.search(q, K).map((h) => h.id)).toEqual(want);
        native().setCpuIsa(isa);
      }
    });
  }

  it("scores are the metric's values (cosine similarity, dot product, Euclidean distance)", () => {
    const idx = createVectorIndex({ dimensions: 3, metric: "cosine" });
    idx.add(["a", 7], [[1, 0, 0], [1, 1, 0]]);
    const hits = idx.search([2, 0, 0], 2);
    expect(hits.map((h) => h.id)).toEqual(["a", 7]);
    expect(hits[0].score).toBeCloseTo(1, 6);
    expect(hits[1].score).toBeCloseTo(Math.SQRT1_2, 6);
    const l2 = createVectorIndex({ dimensions: 3, metric: "l2" });
    l2.add(["x", "y"], [[0, 0, 0], [3, 4, 0]]);
    expect(l2.search([0, 0, 0], 5)).toEqual([{ id: "x", score: 0 }, { id: "y", score: 5 }]);
    const dot = createVectorIndex({ dimensions: 2, metric: "dot" });
    dot.add([1, 2], [[1, 2], [3, -1]]);
    expect(dot.search([1, 1], 2)).toEqual([{ id: 1, score: 3 }, { id: 2, score: 2 }]);
  });

  it("removes and replaces vectors, then searches as a brute force over what is left", () => {
    const index = indexes.get("cosine")!;
    const q = queries[0];
    const top = bruteForce(data, N, q, "cosine", 3);
    expect(index.remove([ids[top[0]], ids[top[2]], "not-there"])).toBe(2);
    expect(index.size).toBe(N - 2);
    expect(index.search(q, K).map((h) => h.id)).toEqual(bruteForce(data, N, q, "cosine", K, new Set([top[0], top[2]])).map((r) => ids[r]));
    // Replacing a vector with the query itself makes it the nearest, at similarity 1.
    index.add([ids[5]], [q]);
    expect(index.size).toBe(N - 2);
    const [first] = index.search(q, 1);
    expect(first.id).toBe(ids[5]);
    expect(first.score).toBeCloseTo(1, 5);
  });

  it("saves and loads to the same results; a damaged file is ERR_INDEX_MALFORMED", () => {
    // A 20k-vector slice keeps the file I/O short; the format does not depend on the count.
    const index = createVectorIndex({ dimensions: D, metric: "l2", threads: 2 });
    index.add(ids.slice(0, 20_000), data.subarray(0, 20_000 * D));
    const file = path.join(dir, "index.tsv");
    index.save(file);
    const loaded = loadVectorIndex(file, { threads: 2 });
    expect(loaded.size).toBe(20_000);
    expect(loaded.metric).toBe("l2");
    for (const q of queries.slice(0, 2)) expect(loaded.search(q, K)).toEqual(index.search(q, K));
    const bytes = fs.readFileSync(file);
    const variants: Array<[string, Buffer]> = [
      ["empty", Buffer.alloc(0)],
      ["truncated", bytes.subarray(0, bytes.length - 100)],
      ["wrong magic", Buffer.concat([Buffer.from("NOTINDEX"), bytes.subarray(8)])],
      ["flipped vector byte", Buffer.from(bytes).fill(0x7f, 1000, 1001)],
      ["garbage", Buffer.from(new Gaussian(9).array(4096).buffer)],
    ];
    for (const [name, b] of variants) {
      const f = path.join(dir, `bad-${name.replaceAll(" ", "-")}.tsv`);
      fs.writeFileSync(f, b);
      expect(() => loadVectorIndex(f), name).toThrow(expect.objectContaining({ code: "ERR_INDEX_MALFORMED" }));
    }
    expect(() => loadVectorIndex(path.join(dir, "missing.tsv"))).toThrow(expect.objectContaining({ code: "ERR_IO" }));
    // Mixed id types and an empty index round-trip.
    const small = createVectorIndex({ dimensions: 2, metric: "dot" });
    small.save(path.join(dir, "empty.tsv"));
    expect(loadVectorIndex(path.join(dir, "empty.tsv")).size).toBe(0);
    small.add([1, "one", 2.5], [[1, 0], [0, 1], [1, 1]]);
    small.save(path.join(dir, "small.tsv"));
    expect(loadVectorIndex(path.join(dir, "small.tsv")).search([1, 1], 3).map((h) => h.id)).toEqual([2.5, 1, "one"]);
  });

  it("refuses bad input with coded errors and stays unchanged", () => {
    const idx = createVectorIndex({ dimensions: 3 });
    idx.add(["a"], [[1, 2, 3]]);
    const bad = (f: () => unknown) => expect(f).toThrow(expect.objectContaining({ code: "ERR_INVALID_ARGUMENT" }));
    bad(() => createVectorIndex({ dimensions: 0 }));
    bad(() => createVectorIndex({ dimensions: 3, metric: "manhattan" as never }));
    bad(() => idx.add(["b"], [[1, 2]]));
    bad(() => idx.add(["b", "c"], [[1, 2, 3], [1, NaN, 3]]));
    bad(() => idx.add(["b"], [[0, 0, 0]]));
    bad(() => idx.add([{} as never], [[1, 2, 3]]));
    bad(() => idx.search([1, 2, 3], 0));
    bad(() => idx.search([1, 2], 1));
    expect(idx.size).toBe(1);
    expect(idx.has("b")).toBe(false);
  });
});
