/**
 * Acceptance (issue 22): model.embed equals llama.cpp's embeddings (node-llama-cpp's
 * createEmbeddingContext().getEmbeddingFor) on synthetic Qwen3-style embedders (causal qwen3
 * blocks, as Qwen3-Embedding) for every pooling type the file can name, in F32, F16, Q8_0
 * and Q4_0. llama.cpp returns the pooled vector unnormalized (normalization is left to its
 * callers), so Tessera's is taken with normalize: false; with pooling "none" it returns the
 * last token's state, which is compared with the last row of Tessera's per-token states.
 */
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadModel } from "../../lib/index.js";
import { writeSyntheticModel, type ModelShape, type WeightScheme } from "../../dev/synthetic-model.js";
import { cosine, llamaCppEmbeddings } from "../helpers/llama-embeddings.js";
import { hasShared, tempDir } from "../helpers/paths.js";

const THREADS = 2;
const TEXTS = ["Once upon a time there was a little girl.", "The dog ran to the park", "Hello"];
const QWEN3: ModelShape = { architecture: "qwen3", nLayer: 2, nEmbd: 256, nHead: 8, nHeadKv: 2, headDim: 64, nFf: 512, contextLength: 4096, ropeFreqBase: 1e6, normEps: 1e-6, qkNorm: true };
/** Lowest cosine per weight type: fp32 noise for float weights; both engines quantize activations alike for Q8_0/Q4_0. */
const MIN_COSINE: Partial<Record<WeightScheme, number>> = { F32: 0.9999, F16: 0.9999, Q8_0: 0.9999, Q4_0: 0.9995 };
const CASES: Array<{ pooling: number; weights: WeightScheme }> = [
  { pooling: 0, weights: "F32" },
  { pooling: 1, weights: "F32" },
  { pooling: 2, weights: "F32" },
  { pooling: 3, weights: "F32" },
  { pooling: 1, weights: "F16" },
  { pooling: 1, weights: "Q8_0" },
  { pooling: 3, weights: "Q4_0" },
];
const NAMES = ["none", "mean", "cls", "last"];

describe.skipIf(!hasShared)("embeddings against llama.cpp (qwen3-style embedder)", () => {
  const dir = tempDir("embed-conformance");
  let disposeLlama: (() => Promise<void>) | undefined;
  afterAll(async () => disposeLlama?.());

  it.each(CASES)("pooling_type $pooling, $weights", async ({ pooling, weights }) => {
    const file = path.join(dir, `qwen3-embed-${pooling}-${weights}.gguf`);
    writeSyntheticModel(file, { ...QWEN3, poolingType: pooling }, { weights, vocab: "stories", seed: 7 + pooling });
    const peer = await llamaCppEmbeddings(file, TEXTS, THREADS);
    const theirs = peer.vectors;
    disposeLlama = peer.disposeLlama;

    const model = await loadModel(file, { backend: "cpu", threads: THREADS, contextSize: 128 });
    const ours = await model.embed(TEXTS, { normalize: false });
    const nEmbd = model.info.nEmbd;
    // Another pooling of the same text is far from llama.cpp's (the comparison can fail).
    const [other] = await model.embed(TEXTS[0], { normalize: false, pooling: pooling === 3 ? "mean" : "last" });
    model.dispose();
    for (let i = 0; i < TEXTS.length; i++) {
      const mine = NAMES[pooling] === "none" ? ours[i].subarray(ours[i].length - nEmbd) : ours[i];
      expect(mine.length).toBe(theirs[i].length);
      const c = cosine(mine, theirs[i]);
      if (c < 1 - 1e-7) console.log(`${NAMES[pooling]} ${weights} text ${i}: cosine ${c}`);
      expect(c).toBeGreaterThanOrEqual(MIN_COSINE[weights]!);
    }
    if (pooling !== 0) expect(cosine(other, theirs[0])).toBeLessThan(0.99);
  }, 120_000);
});
