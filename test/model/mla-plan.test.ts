/**
 * deepseek2 (multi-head latent attention) files that are incomplete or inconsistent fail in
 * lib/model/plan.ts with ERR_MODEL_INCOMPATIBLE and a message naming the problem, before
 * anything reaches C++; a consistent file plans the latent cache as MQA over kv_lora + rope.
 */
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { architecture } from "../../lib/arch/registry.js";
import { isTesseraError } from "../../lib/errors.js";
import { readGGUF } from "../../lib/gguf/reader.js";
import { GGUFValueType, type GGUFFile } from "../../lib/gguf/types.js";
import { kv } from "../../lib/gguf/writer.js";
import { loadModel } from "../../lib/index.js";
import { buildPlan } from "../../lib/model/plan.js";
import { writeSyntheticModel, type ModelShape } from "../../dev/synthetic-model.js";
import { hasShared, tempDir } from "../helpers/paths.js";

const V3_STYLE: ModelShape = {
  architecture: "deepseek2", nLayer: 2, nEmbd: 128, nHead: 2, nHeadKv: 1, nFf: 256, contextLength: 163840,
  mla: { qLoraRank: 64, kvLoraRank: 64, headDimNope: 32, headDimRope: 16, headDimV: 32, yarnLogMultiplier: 0.1 },
  ropeScaling: { type: "yarn", factor: 40, originalContext: 4096 },
  moe: { nExpert: 8, nExpertUsed: 2, nFfExp: 64, nSharedExpert: 1, nFfShexp: 64, leadingDenseBlocks: 1, gating: "sigmoid", selectionBias: true, nGroup: 4, nGroupUsed: 2, normTopK: true, weightsScale: 2.5 },
};

function expectIncompatible(file: GGUFFile, messagePart: RegExp): void {
  try {
    buildPlan(file, architecture("deepseek2"));
  } catch (e) {
    expect(isTesseraError(e), String(e)).toBe(true);
    expect((e as { code: string }).code).toBe("ERR_MODEL_INCOMPATIBLE");
    expect((e as Error).message).toMatch(messagePart);
    return;
  }
  throw new Error("expected ERR_MODEL_INCOMPATIBLE, the plan was built");
}

describe.runIf(hasShared)("deepseek2 plans", () => {
  let file = "";
  const fresh = () => readGGUF(file);
  const setU32 = (f: GGUFFile, key: string, v: number) => f.metadata.set(key, { ...kv.u32(v), type: GGUFValueType.UINT32 } as never);

  beforeAll(() => {
    file = path.join(tempDir("mla-plan"), "v3.gguf");
    writeSyntheticModel(file, V3_STYLE, { weights: "F32", vocab: "stories", seed: 7 });
  });

  it("plans the latent cache as one KV head of kv_lora + rope, values of kv_lora", () => {
    const { plan } = buildPlan(fresh(), architecture("deepseek2"));
    expect([plan.nHeadKv, plan.headDim, plan.headDimV, plan.rope.nDims]).toEqual([1, 80, 64, 16]);
    expect(plan.mla).toEqual({ qLoraRank: 64, kvLoraRank: 64, headDimNope: 32, headDimRope: 16, headDimV: 32 });
    // DeepSeek YaRN: softmax scale (1 + 0.1 * mscale_all_dim * ln 40)² / sqrt(nope + rope); RoPE itself unscaled.
    const mscale = 1 + 0.1 * Math.log(40);
    expect(plan.attnScale).toBeCloseTo((mscale * mscale) / Math.sqrt(48), 6);
    expect(plan.rope.yarnAttnFactor * mscale).toBeCloseTo(1, 6);
    expect(plan.layers[0].ffnKind).toBe("dense");
    expect(plan.layers[1].ffnKind).toBe("moe");
    expect(plan.layers[1].ffnExpProbsB).toBeGreaterThanOrEqual(0);
    expect(plan.moe).toMatchObject({ gating: "sigmoid", normTopK: true, weightsScale: 2.5, nGroup: 4, nGroupUsed: 2 });
  });

  it("a missing latent tensor", () => {
    for (const name of ["blk.1.attn_kv_a_mqa.weight", "blk.0.attn_k_b.weight", "blk.1.attn_q_a_norm.weight", "blk.0.attn_v_b.weight"]) {
      const f = fresh();
      f.tensors = f.tensors.filter((t) => t.name !== name);
      expectIncompatible(f, new RegExp(name.replace(/\./g, "\\.")));
    }
  });

  it("ranks that contradict the tensors or each other", () => {
    let f = fresh();
    setU32(f, "deepseek2.attention.kv_lora_rank", 48);
    expectIncompatible(f, /key_length = 80 .* kv_lora_rank/);
    f = fresh();
    setU32(f, "deepseek2.attention.q_lora_rank", 32);
    expectIncompatible(f, /attn_q_a\.weight has shape \[128,64\], expected \[128,32\]/);
    f = fresh();
    setU32(f, "deepseek2.attention.key_length_mla", 40);
    expectIncompatible(f, /attn_q_b\.weight .* expected/);
    f = fresh();
    setU32(f, "deepseek2.attention.value_length_mla", 16);
    expectIncompatible(f, /attn_v_b\.weight .* expected/);
    f = fresh();
    setU32(f, "deepseek2.attention.head_count_kv", 2);
    expectIncompatible(f, /head_count_kv = 1/);
    f = fresh();
    setU32(f, "deepseek2.attention.key_length_mla", 16);
    expectIncompatible(f, /must exceed rope\.dimension_count/);
    f = fresh();
    f.metadata.delete("deepseek2.attention.kv_lora_rank");
    expectIncompatible(f, /kv_lora_rank/);
  });

  it("a legacy file with the unsplit attn_kv_b is refused with what to do", () => {
    const f = fresh();
    f.metadata.delete("deepseek2.attention.key_length_mla");
    f.metadata.delete("deepseek2.attention.value_length_mla");
    const kb = f.tensors.find((t) => t.name === "blk.0.attn_k_b.weight")!;
    f.tensors.push({ ...kb, name: "blk.0.attn_kv_b.weight" });
    expectIncompatible(f, /legacy unsplit attn_kv_b .* re-convert/);
  });

  it("a consistent file evaluates the same on 1, 2 and 3 threads, batched or token by token", async () => {
    // Every MLA step splits work by whole rows, heads or (token, head) pairs, so the thread
    // count must not change a bit; a missing barrier would.
    const tokens = [1, 5, 9, 200, 17, 3, 88, 400, 2, 9, 31];
    const runs: Float32Array[] = [];
    for (const threads of [1, 2, 3]) {
      const model = await loadModel(file, { backend: "cpu", threads, contextSize: 32 });
      const session = model.createSession();
      runs.push(Float32Array.from(await session.evaluateAll(tokens)));
      session.reset();
      const last: number[] = [];
      for (const t of tokens) last.splice(0, last.length, ...(await session.evaluate([t])));
      expect(Float32Array.from(last)).toEqual(runs[runs.length - 1].subarray((tokens.length - 1) * 512));
      model.dispose();
    }
    expect(runs[0].length).toBe(tokens.length * 512);
    expect(runs[0].every(Number.isFinite)).toBe(true);
    expect(runs[1]).toEqual(runs[0]);
    expect(runs[2]).toEqual(runs[0]);
  });
});
