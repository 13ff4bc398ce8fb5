/**
 * Acceptance (issue 22), encoders: model.embed equals llama.cpp's embeddings (node-llama-cpp's
 * createEmbeddingContext().getEmbeddingFor) on synthetic `bert` (BGE-like: position and
 * token-type embeddings, GELU FFN, biases) and `nomic-bert` (RoPE, SwiGLU, fused qkv) files
 * with BGE's WordPiece vocabulary, for every pooling type across the cases and in F32, F16,
 * Q8_0 and Q4_0; the texts tokenize as llama.cpp tokenizes them. llama.cpp returns the
 * pooled vector unnormalized, so Tessera's is taken with normalize: false; with pooling
 * "none" llama.cpp gives the last token's state, compared with Tessera's last row.
 */
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadModel } from "../../lib/index.js";
import { writeSyntheticModel, type ModelShape, type WeightScheme } from "../../dev/synthetic-model.js";
import { cosine, llamaCppEmbeddings } from "../helpers/llama-embeddings.js";
import { hasShared, tempDir } from "../helpers/paths.js";

const THREADS = 2;
const TEXTS = ["Once upon a time there was a little girl.", "Héllo, WORLD! naïve café — 東京 don't stop", "Hello"];
const BASE = { nLayer: 2, nEmbd: 384, nHead: 12, nHeadKv: 12, nFf: 1536, normEps: 1e-12 };
const BERT: ModelShape = { ...BASE, architecture: "bert", contextLength: 512, encoder: { positionEmbeddings: true, fusedQkv: false, ffn: "gelu", biases: true } };
const NOMIC: ModelShape = { ...BASE, architecture: "nomic-bert", contextLength: 2048, ropeFreqBase: 1000, encoder: { positionEmbeddings: false, fusedQkv: true, ffn: "swiglu", biases: false } };
/** Lowest cosine per weight type: fp32 noise for float weights; both engines quantize activations alike for Q8_0/Q4_0. */
const MIN_COSINE: Partial<Record<WeightScheme, number>> = { F32: 0.9999, F16: 0.9999, Q8_0: 0.9999, Q4_0: 0.9995 };
const NAMES = ["none", "mean", "cls", "last"];
interface Case {
  name: string;
  shape: ModelShape;
  pooling: number;
  weights: WeightScheme;
}
const CASES: Case[] = [
  { name: "bert", shape: BERT, pooling: 2, weights: "F32" },
  { name: "bert", shape: BERT, pooling: 0, weights: "F32" },
  { name: "bert", shape: BERT, pooling: 3, weights: "F32" },
  { name: "bert", shape: BERT, pooling: 2, weights: "F16" },
  // llama.cpp takes a fused qkv for bert too (create_tensor_qkv).
  { name: "bert (fused qkv)", shape: { ...BERT, encoder: { ...BERT.encoder!, fusedQkv: true } }, pooling: 1, weights: "Q8_0" },
  { name: "bert", shape: BERT, pooling: 2, weights: "Q4_0" },
  { name: "nomic-bert", shape: NOMIC, pooling: 1, weights: "F32" },
  // ...and separate q/k/v for nomic-bert.
  { name: "nomic-bert (separate qkv)", shape: { ...NOMIC, encoder: { ...NOMIC.encoder!, fusedQkv: false } }, pooling: 1, weights: "F16" },
  { name: "nomic-bert", shape: NOMIC, pooling: 2, weights: "Q8_0" },
  { name: "nomic-bert", shape: NOMIC, pooling: 1, weights: "Q4_0" },
];

describe.skipIf(!hasShared)("encoder embeddings against llama.cpp (bert, nomic-bert)", () => {
  const dir = tempDir("encoder-embed-conformance");
  let disposeLlama: (() => Promise<void>) | undefined;
  afterAll(async () => disposeLlama?.());

  it.each(CASES)("$name, pooling_type $pooling, $weights", async ({ shape, pooling, weights }) => {
    const file = path.join(dir, `${shape.architecture}-${pooling}-${weights}-${shape.encoder!.fusedQkv}.gguf`);
    writeSyntheticModel(file, { ...shape, poolingType: pooling }, { weights, vocab: "bert-bge", seed: 11 + pooling });
    // llama.cpp's embedding input: the text's WordPiece tokens between [CLS] and [SEP].
    const peer = await llamaCppEmbeddings(file, TEXTS, THREADS, (lmodel) =>
      TEXTS.map((t) => [lmodel.tokens.bos, ...lmodel.tokenize(t), (lmodel.tokens as { sep?: number }).sep].map(Number)),
    );
    const theirs = peer.vectors;
    const theirTokens = peer.extra;
    disposeLlama = peer.disposeLlama;

    const model = await loadModel(file, { backend: "cpu", threads: THREADS, contextSize: 128 });
    expect(TEXTS.map((t) => model.tokenizer.encode(t))).toEqual(theirTokens);
    const ours = await model.embed(TEXTS, { normalize: false });
    const nEmbd = model.info.nEmbd;
    // Another pooling of the same text is far from llama.cpp's (the comparison can fail).
    const [other] = await model.embed(TEXTS[0], { normalize: false, pooling: pooling === 2 ? "mean" : "cls" });
    model.dispose();
    for (let i = 0; i < TEXTS.length; i++) {
      const mine = NAMES[pooling] === "none" ? ours[i].subarray(ours[i].length - nEmbd) : ours[i];
      expect(mine.length).toBe(theirs[i].length);
      const c = cosine(mine, theirs[i]);
      console.log(`${shape.architecture} ${NAMES[pooling]} ${weights} text ${i}: cosine ${c.toFixed(8)}`);
      expect(c).toBeGreaterThanOrEqual(MIN_COSINE[weights]!);
    }
    if (pooling !== 0) expect(cosine(other, theirs[0])).toBeLessThan(0.99);
  }, 120_000);
});
