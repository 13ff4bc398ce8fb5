/**
 * Strict model validation (issue 25): FFN widths come from the tensors, never from metadata
 * alone (a missing or 0 feed_forward_length used to size the scratch at 0 and write past it);
 * metadata is read by its GGUF type and range; every tensor a file holds is either applied as
 * llama.cpp applies it (llama FFN biases, the qwen2 LM head bias, qwen3 q/k/v biases) or
 * refused with a coded error naming it; rope.scaling.factor without a type is linear scaling.
 */
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { isTesseraError } from "../../lib/errors.js";
import { readGGUF } from "../../lib/gguf/reader.js";
import { GGUFValueType, type GGMLType, type GGUFKV } from "../../lib/gguf/types.js";
import { encodeGGUF, kv } from "../../lib/gguf/writer.js";
import { loadModel } from "../../lib/index.js";
import { writeSyntheticModel, type ModelShape, type WeightScheme } from "../../dev/synthetic-model.js";
import { compareWithLlamaCpp, randomTokens } from "../helpers/compare-llama-cpp.js";
import { evaluateIsolated } from "../helpers/isolated-eval.js";
import { expectBitIdentical, llamaCppRunsAvx2Variant } from "../helpers/llama-cpp-variant.js";
import { hasShared, stories260K, tempDir } from "../helpers/paths.js";

type TensorEdit = { name: string; type: GGMLType; dims: number[]; data: Uint8Array };

/** The GGUF at `from` re-encoded to `to` with edits to its metadata and tensors. */
function variant(from: string, to: string, edit: (meta: Map<string, GGUFKV>, tensors: TensorEdit[]) => void): string {
  const file = readGGUF(from);
  const bytes = fs.readFileSync(from);
  const meta = new Map(file.metadata);
  const tensors = file.tensors.map((t) => ({ name: t.name, type: t.type, dims: [...t.dims], data: bytes.subarray(t.offset, t.offset + t.byteLength) }));
  edit(meta, tensors);
  fs.writeFileSync(to, encodeGGUF({ metadata: meta, tensors }));
  return to;
}

async function loadError(file: string): Promise<unknown> {
  try {
    const m = await loadModel(file, { backend: "cpu", threads: 2, contextSize: 16 });
    const s = m.createSession();
    await s.evaluate([1, 2, 3]);
    m.dispose();
  } catch (e) {
    return e;
  }
  return undefined;
}

/** Loading fails with `code` and a message naming `key` (a metadata key or tensor name). */
async function expectRefused(file: string, code: string, key: string): Promise<void> {
  const e = await loadError(file);
  expect(isTesseraError(e), `expected ${code} naming ${key}, got ${String(e)}`).toBe(true);
  expect((e as { code: string }).code, String(e)).toBe(code);
  expect((e as Error).message).toContain(key);
}

const TOKENS = [1, 5, 9, 200, 17, 3, 88, 400, 2, 31, 77, 150];

function logitsOf(file: string): Float32Array {
  const r = evaluateIsolated(file, TOKENS);
  if (r.kind !== "logits") throw new Error(`${path.basename(file)}: ${r.kind === "crash" ? `crashed (${r.detail})` : `${r.code}: ${r.message}`}`);
  return r.logits;
}

describe.runIf(hasShared)("FFN widths come from the tensors", () => {
  const dir = tempDir("valid-ffn");

  // Before: a dense width of 0 passed the native shape check as "any" and sized the FFN
  // scratch at one float per token; evaluation wrote the whole width past it (SIGSEGV, glibc
  // "malloc(): corrupted top size") or, at 4096, returned heap garbage.
  for (const nFf of [4096, 16384])
    it(`llama with feed_forward_length missing or 0, FFN width ${nFf}: evaluates as with the key`, () => {
      const shape: ModelShape = { architecture: "llama", nLayer: 2, nEmbd: 64, nHead: 4, nHeadKv: 2, nFf, contextLength: 512 };
      const good = path.join(dir, `ffn-${nFf}.gguf`);
      writeSyntheticModel(good, shape, { weights: "F32", vocab: "stories", seed: nFf });
      const want = logitsOf(good);
      expect(want.every(Number.isFinite)).toBe(true);
      const missing = variant(good, path.join(dir, `ffn-${nFf}-missing.gguf`), (m) => m.delete("llama.feed_forward_length"));
      const zero = variant(good, path.join(dir, `ffn-${nFf}-zero.gguf`), (m) => m.set("llama.feed_forward_length", kv.u32(0)));
      expect(logitsOf(missing)).toEqual(want);
      expect(logitsOf(zero)).toEqual(want);
    }, 120_000);

  it("a feed_forward_length that contradicts the tensors is refused, naming the key", async () => {
    const good = path.join(dir, "ffn-256.gguf");
    writeSyntheticModel(good, { architecture: "llama", nLayer: 1, nEmbd: 64, nHead: 4, nHeadKv: 2, nFf: 256, contextLength: 512 }, { weights: "F32", vocab: "stories", seed: 3 });
    const wrong = variant(good, path.join(dir, "ffn-wrong.gguf"), (m) => m.set("llama.feed_forward_length", kv.u32(512)));
    await expectRefused(wrong, "ERR_MODEL_INCOMPATIBLE", "llama.feed_forward_length");
  });

  // The native check on its own (a plan built elsewhere): every FFN tensor against the plan's
  // widths, none taken as "any"; before, a width of 0 passed and the scratch was sized by it.
  it("C++ refuses a plan whose FFN width is 0 or contradicts the tensors", () => {
    const good = path.join(dir, "ffn-native.gguf");
    writeSyntheticModel(good, { architecture: "llama", nLayer: 1, nEmbd: 64, nHead: 4, nHeadKv: 2, nFf: 4096, contextLength: 512 }, { weights: "F32", vocab: "stories", seed: 9 });
    for (const nFf of [0, 1024]) {
      const r = evaluateIsolated(good, TOKENS, 2, (plan) => (plan.nFf = nFf));
      expect(r.kind === "error" && r.code, r.kind === "crash" ? r.detail : JSON.stringify(r.kind)).toBe("ERR_MODEL_INCOMPATIBLE");
    }
    const moe = path.join(dir, "moe-native.gguf");
    writeSyntheticModel(moe, { architecture: "qwen3moe", nLayer: 1, nEmbd: 64, nHead: 4, nHeadKv: 2, headDim: 16, nFf: 512, contextLength: 512, qkNorm: true, moe: { nExpert: 8, nExpertUsed: 4, nFfExp: 128 } }, { weights: "F32", vocab: "stories", seed: 9 });
    const r = evaluateIsolated(moe, TOKENS, 2, (plan) => (plan.nFfExp = 0));
    expect(r.kind === "error" && r.code, r.kind === "crash" ? r.detail : JSON.stringify(r.kind)).toBe("ERR_MODEL_INCOMPATIBLE");
  }, 120_000);

  // Before: without expert_feed_forward_length the expert width fell back to
  // feed_forward_length (refusing qwen3moe's layout, where that is n_ff_exp * n_expert_used)
  // or, without both, to 0 = "any", and the experts ran at width 0: silent garbage.
  it("MoE without expert_feed_forward_length: evaluates as with the key", () => {
    const shape: ModelShape = { architecture: "qwen3moe", nLayer: 2, nEmbd: 64, nHead: 4, nHeadKv: 2, headDim: 16, nFf: 512, contextLength: 512, qkNorm: true, moe: { nExpert: 8, nExpertUsed: 4, nFfExp: 128, normTopK: true } };
    const good = path.join(dir, "moe.gguf");
    writeSyntheticModel(good, shape, { weights: "F32", vocab: "stories", seed: 5 });
    const want = logitsOf(good);
    const noExpertKey = variant(good, path.join(dir, "moe-no-exp.gguf"), (m) => m.delete("qwen3moe.expert_feed_forward_length"));
    const noKeys = variant(noExpertKey, path.join(dir, "moe-no-keys.gguf"), (m) => m.delete("qwen3moe.feed_forward_length"));
    expect(logitsOf(noExpertKey)).toEqual(want);
    expect(logitsOf(noKeys)).toEqual(want);
  }, 120_000);
});

describe.runIf(hasShared)("metadata is read by GGUF type and range", () => {
  const dir = tempDir("valid-meta");
  let n = 0;
  const storiesWith = (edit: (meta: Map<string, GGUFKV>) => void) => variant(stories260K, path.join(dir, `v${n++}.gguf`), (m) => edit(m));

  it("block_count stored as a bool (read as one block before)", async () => {
    await expectRefused(storiesWith((m) => m.set("llama.block_count", kv.bool(true))), "ERR_GGUF_MALFORMED", "llama.block_count");
  });

  it("a one-element string array where a number belongs (read as the number before)", async () => {
    await expectRefused(storiesWith((m) => m.set("llama.embedding_length", kv.strArray(["64"]))), "ERR_GGUF_MALFORMED", "llama.embedding_length");
    await expectRefused(storiesWith((m) => m.set("llama.attention.head_count", kv.strArray(["8"]))), "ERR_GGUF_MALFORMED", "llama.attention.head_count");
  });

  it("norm epsilons that are negative, zero or huge", async () => {
    for (const eps of [-1e-5, 0, 1e30])
      await expectRefused(storiesWith((m) => m.set("llama.attention.layer_norm_rms_epsilon", kv.f32(eps))), "ERR_GGUF_MALFORMED", "llama.attention.layer_norm_rms_epsilon");
  });

  it("other type and range errors: a float count, an integer epsilon, a per-block array of the wrong length, a bool as a number", async () => {
    await expectRefused(storiesWith((m) => m.set("llama.context_length", kv.f32(2048))), "ERR_GGUF_MALFORMED", "llama.context_length");
    await expectRefused(storiesWith((m) => m.set("llama.attention.layer_norm_rms_epsilon", kv.u32(0))), "ERR_GGUF_MALFORMED", "llama.attention.layer_norm_rms_epsilon");
    await expectRefused(storiesWith((m) => m.set("llama.attention.head_count_kv", kv.u32Array(Uint32Array.from([4, 4])))), "ERR_GGUF_MALFORMED", "llama.attention.head_count_kv");
    await expectRefused(storiesWith((m) => m.set("llama.rope.freq_base", kv.bool(true))), "ERR_GGUF_MALFORMED", "llama.rope.freq_base");
    await expectRefused(storiesWith((m) => m.set("llama.block_count", kv.u32(0))), "ERR_GGUF_MALFORMED", "llama.block_count");
    await expectRefused(storiesWith((m) => m.set("llama.rope.scaling.type", kv.u32(1))), "ERR_GGUF_MALFORMED", "llama.rope.scaling.type");
  });

  it("still reads per-block INT32/UINT32 arrays (as llama.cpp does) and counts of any integer type", async () => {
    const file = storiesWith((m) => {
      m.set("llama.attention.head_count", kv.i32Array(Int32Array.from([8, 8, 8, 8, 8])));
      m.set("llama.feed_forward_length", kv.u32Array(Uint32Array.from([172, 172, 172, 172, 172])));
      m.set("llama.context_length", { type: GGUFValueType.UINT64, value: 2048n });
    });
    const model = await loadModel(file, { backend: "cpu", threads: 2, contextSize: 16 });
    expect([model.info.nHead, model.info.nFf, model.info.nCtxTrain]).toEqual([8, 172, 2048]);
    model.dispose();
  });
});

describe.runIf(hasShared)("every tensor is used or refused", () => {
  const dir = tempDir("valid-tensors");

  it("an unknown tensor, and a block past block_count, are refused by name", async () => {
    const extra = variant(stories260K, path.join(dir, "extra.gguf"), (_, t) => {
      const norm = t.find((x) => x.name === "blk.0.attn_norm.weight")!;
      t.push({ ...norm, name: "blk.0.attn_sinks.weight" });
    });
    await expectRefused(extra, "ERR_MODEL_INCOMPATIBLE", "blk.0.attn_sinks.weight");
    const block = variant(stories260K, path.join(dir, "block.gguf"), (_, t) => {
      const norm = t.find((x) => x.name === "blk.4.ffn_norm.weight")!;
      t.push({ ...norm, name: "blk.5.ffn_norm.weight" });
    });
    await expectRefused(block, "ERR_MODEL_INCOMPATIBLE", "blk.5.ffn_norm.weight");
  });

  it("a tensor another architecture would apply: FFN biases on qwen3, rope_freqs on qwen2", async () => {
    const qwen3 = path.join(dir, "qwen3-ffn-bias.gguf");
    writeSyntheticModel(qwen3, { architecture: "qwen3", nLayer: 1, nEmbd: 64, nHead: 4, nHeadKv: 2, headDim: 16, nFf: 128, contextLength: 512, qkNorm: true, ffnBias: true }, { weights: "F32", vocab: "stories", seed: 1 });
    await expectRefused(qwen3, "ERR_MODEL_INCOMPATIBLE", "blk.0.ffn_gate.bias");
    const qwen2 = path.join(dir, "qwen2-rope-freqs.gguf");
    writeSyntheticModel(qwen2, { architecture: "qwen2", nLayer: 1, nEmbd: 64, nHead: 4, nHeadKv: 2, nFf: 128, contextLength: 512, qkvBias: true, ropeFreqFactors: true }, { weights: "F32", vocab: "stories", seed: 1 });
    await expectRefused(qwen2, "ERR_MODEL_INCOMPATIBLE", "rope_freqs.weight");
  });

  it("a bias of the wrong length is refused by name", async () => {
    const good = path.join(dir, "llama-bias.gguf");
    writeSyntheticModel(good, { architecture: "llama", nLayer: 1, nEmbd: 64, nHead: 4, nHeadKv: 2, nFf: 128, contextLength: 512, ffnBias: true }, { weights: "F32", vocab: "stories", seed: 1 });
    const short = variant(good, path.join(dir, "llama-bias-short.gguf"), (_, t) => {
      const b = t.find((x) => x.name === "blk.0.ffn_up.bias")!;
      b.dims = [64];
      b.data = b.data.subarray(0, 64 * 4);
    });
    await expectRefused(short, "ERR_MODEL_INCOMPATIBLE", "blk.0.ffn_up.bias");
  });
});

/**
 * The tensors and keys llama.cpp applies, applied the same way: logits against llama.cpp on
 * the same file, held to the architecture conformance test's F32 budget (bit-identical where
 * llama.cpp runs its AVX2 variant). Before, each of these was ignored and the logits moved far.
 */
describe.runIf(hasShared)("applied as llama.cpp applies them", () => {
  const dir = tempDir("valid-llama-cpp");
  const SEQ = 48;
  const BUDGET: Partial<Record<WeightScheme, number>> = { F32: 1e-3, Q8_0: 4e-2 };
  const CASES: Array<[string, ModelShape, WeightScheme]> = [
    ["llama FFN biases (ffn_gate/up/down.bias)", { architecture: "llama", nLayer: 2, nEmbd: 256, nHead: 4, nHeadKv: 2, nFf: 512, contextLength: 4096, ffnBias: true }, "F32"],
    ["llama FFN biases, Q8_0 (biases before the int8 activations)", { architecture: "llama", nLayer: 2, nEmbd: 256, nHead: 4, nHeadKv: 2, nFf: 512, contextLength: 4096, ffnBias: true }, "Q8_0"],
    ["qwen2 LM head bias (output.bias)", { architecture: "qwen2", nLayer: 2, nEmbd: 256, nHead: 4, nHeadKv: 2, nFf: 512, contextLength: 4096, ropeFreqBase: 1e6, normEps: 1e-6, qkvBias: true, lmHeadBias: true }, "F32"],
    ["qwen3 q/k/v biases", { architecture: "qwen3", nLayer: 2, nEmbd: 256, nHead: 8, nHeadKv: 2, headDim: 64, nFf: 512, contextLength: 4096, ropeFreqBase: 1e6, normEps: 1e-6, qkNorm: true, qkvBias: true }, "F32"],
    ["llama rope.scaling.factor 4 without rope.scaling.type (linear)", { architecture: "llama", nLayer: 2, nEmbd: 256, nHead: 4, nHeadKv: 2, nFf: 512, contextLength: 16384, ropeScaling: { factor: 4 } }, "F32"],
  ];
  for (const [name, shape, scheme] of CASES)
    it(`${name}, ${scheme}`, async () => {
      const seed = process.env.TESSERA_TEST_SEED ? Number(process.env.TESSERA_TEST_SEED) : (Date.now() >>> 0) ^ name.length;
      const file = path.join(dir, `${name.replace(/[^a-z0-9]+/gi, "-")}-${scheme}.gguf`);
      writeSyntheticModel(file, shape, { weights: scheme, vocab: "stories", seed });
      const budget = BUDGET[scheme]!;
      const r = await compareWithLlamaCpp(file, randomTokens(SEQ, 512, seed), 512, budget);
      console.log(`${name} ${scheme} (seed ${seed}): rel ${r.maxRel.toExponential(2)} batched ${r.maxBatchRel.toExponential(2)} top-1 ${r.top1}/${SEQ} (+${r.nearTies} near-ties)`);
      if (llamaCppRunsAvx2Variant) expectBitIdentical(r);
      // Int8 activations: one moved quantum may cascade through one position (as in
      // test/conformance/architectures.test.ts); a missing bias moves nearly all of them.
      const off = r.positions.filter((p) => p.rel >= budget || p.batchRel >= budget || !(p.top1 || p.nearTie)).length;
      expect(off).toBeLessThanOrEqual(scheme === "F32" ? 0 : 1);
    }, 180_000);
});
