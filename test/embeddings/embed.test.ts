/**
 * model.embed on stories260K: the hidden states the step returns are the LM head's input
 * (hidden · output.weight reproduces the logits), pooling and normalization do what they
 * say, many texts per pass give what each gives alone, and decoding beside it is unchanged.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadModel, readGGUF, type Model } from "../../lib/index.js";
import { TokenEmbeddings } from "../../lib/inspect/embeddings.js";
import { hasShared, stories260K } from "../helpers/paths.js";

const TEXTS = ["Once upon a time", "The cat sat on the mat.", "Lily liked to play in the park with her dog.", "A", "Tom was sad."];

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe.skipIf(!hasShared)("model.embed", () => {
  let model: Model;
  beforeAll(async () => {
    model = await loadModel(stories260K, { backend: "cpu", threads: 2, contextSize: 64, batchSize: 64 });
  });
  afterAll(() => model?.dispose());

  it("returns the final-norm hidden state: through output.weight it gives the logits", async () => {
    const tokens = model.tokenizer.encode(TEXTS[2]);
    const [perToken] = await model.embed([tokens], { pooling: "none", normalize: false });
    const nEmbd = model.info.nEmbd;
    expect(perToken.length).toBe(tokens.length * nEmbd);
    const file = readGGUF(stories260K);
    const head = new TokenEmbeddings(stories260K, file.tensors.find((t) => t.name === "output.weight")!, model.tokenizer);
    const session = model.createSession();
    const logits = await session.evaluateAll(tokens);
    session.dispose();
    const nVocab = model.info.nVocab;
    let worst = 0;
    for (const t of [0, 3, tokens.length - 1]) {
      const h = perToken.subarray(t * nEmbd, (t + 1) * nEmbd);
      for (let id = 0; id < nVocab; id += 7) {
        const w = head.get(id);
        let dot = 0;
        for (let j = 0; j < nEmbd; j++) dot += h[j] * w[j];
        worst = Math.max(worst, Math.abs(dot - logits[t * nVocab + id]));
      }
    }
    expect(worst).toBeLessThan(1e-3);
  });

  it("pools mean, cls and last over the per-token states, and normalizes to unit length", async () => {
    const nEmbd = model.info.nEmbd;
    const [rows] = await model.embed(TEXTS[1], { pooling: "none", normalize: false });
    const n = rows.length / nEmbd;
    const [mean] = await model.embed(TEXTS[1], { pooling: "mean", normalize: false });
    const [cls] = await model.embed(TEXTS[1], { pooling: "cls", normalize: false });
    const [last] = await model.embed(TEXTS[1], { pooling: "last", normalize: false });
    const want = new Float64Array(nEmbd);
    for (let t = 0; t < n; t++) for (let j = 0; j < nEmbd; j++) want[j] += rows[t * nEmbd + j] / n;
    expect(maxAbsDiff(mean, want)).toBeLessThan(1e-5);
    expect(maxAbsDiff(cls, rows.subarray(0, nEmbd))).toBe(0);
    expect(maxAbsDiff(last, rows.subarray((n - 1) * nEmbd))).toBe(0);
    // No pooling_type in the file: a decoder defaults to last-token pooling, normalized.
    const [d] = await model.embed(TEXTS[1]);
    const norm = Math.hypot(...last);
    expect(maxAbsDiff(d, last.map((x) => x / norm))).toBeLessThan(1e-6);
    expect(Math.hypot(...d)).toBeCloseTo(1, 5);
  });

  it("gives each text in a batch what it gives alone, and leaves decoding beside it unchanged", async () => {
    const alone: Float32Array[] = [];
    for (const t of TEXTS) alone.push((await model.embed(t, { pooling: "mean" }))[0]);
    const reference = await model.complete("Once upon a time", { maxTokens: 20, temperature: 0 });
    const many = [...TEXTS, ...TEXTS, ...TEXTS];
    const [batched, text] = await Promise.all([model.embed(many, { pooling: "mean" }), model.complete("Once upon a time", { maxTokens: 20, temperature: 0 })]);
    expect(text.text).toBe(reference.text);
    expect(batched.length).toBe(many.length);
    for (let i = 0; i < many.length; i++) expect(maxAbsDiff(batched[i], alone[i % TEXTS.length])).toBe(0);
    // Different texts give different vectors (the check above would pass on a constant).
    expect(maxAbsDiff(alone[0], alone[1])).toBeGreaterThan(1e-3);
  });

  it("refuses bad input with coded errors, and truncates on request", async () => {
    await expect(model.embed([[]])).rejects.toMatchObject({ code: "ERR_INVALID_ARGUMENT" });
    await expect(model.embed("x", { pooling: "max" as never })).rejects.toMatchObject({ code: "ERR_INVALID_ARGUMENT" });
    await expect(model.embed([[1, 99999]])).rejects.toMatchObject({ code: "ERR_INVALID_ARGUMENT" });
    await expect(model.embed("x", { bogus: 1 } as never)).rejects.toMatchObject({ code: "ERR_INVALID_ARGUMENT" });
    const long = "the dog ran and ran ".repeat(40);
    await expect(model.embed(long)).rejects.toMatchObject({ code: "ERR_OUT_OF_CONTEXT" });
    const [v] = await model.embed(long, { truncate: true, pooling: "none", normalize: false });
    expect(v.length).toBe(64 * model.info.nEmbd);
  });
});
