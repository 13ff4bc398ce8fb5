/**
 * gpt-oss on the CPU backend: the plan's reading (sinks, router and expert biases, the FFN
 * norm under its post_attention_norm name, the window on even blocks) and the files it
 * refuses. Agreement with llama.cpp is in test/conformance/architectures.test.ts; the
 * kernels (sinks, clamped SwiGLU) against float64 in test/kernels/ops.test.ts.
 */
import path from "node:path";
import { describe, expect, it } from "vitest";
import { loadModel } from "../../lib/index.js";
import { architecture } from "../../lib/arch/registry.js";
import { readGGUF } from "../../lib/gguf/reader.js";
import { buildPlan } from "../../lib/model/plan.js";
import { writeSyntheticModel, type ModelShape } from "../../dev/synthetic-model.js";
import { code } from "../helpers/error-code.js";
import { hasShared, tempDir } from "../helpers/paths.js";

const GPT_OSS: ModelShape = {
  architecture: "gpt-oss", nLayer: 2, nEmbd: 128, nHead: 4, nHeadKv: 2, headDim: 32, nFf: 128, contextLength: 4096, normEps: 1e-5,
  qkvBias: true, outputBias: true, attentionSinks: true, ffnNormName: "post_attention_norm.weight", slidingWindow: 8,
  moe: { nExpert: 4, nExpertUsed: 2, nFfExp: 64, biases: true },
};

describe.runIf(hasShared)("gpt-oss (CPU)", () => {
  const dir = tempDir("gpt-oss");
  let n = 0;
  const write = (shape: ModelShape) => {
    const file = path.join(dir, `gpt-oss-${n++}.gguf`);
    writeSyntheticModel(file, shape, { weights: "F32", vocab: "stories", seed: 4 });
    return file;
  };

  it("reads sinks, biases, the renamed FFN norm and softmax-weight routing; windows the even blocks", () => {
    const file = readGGUF(write(GPT_OSS));
    const { plan } = buildPlan(file, architecture("gpt-oss"));
    const name = (i: number | undefined) => (i === undefined ? undefined : file.tensors[i].name);
    const L = plan.layers[0];
    expect(name(L.attnSinks)).toBe("blk.0.attn_sinks.weight");
    expect(name(L.ffnNorm)).toBe("blk.0.post_attention_norm.weight");
    expect(name(L.ffnGateInpB)).toBe("blk.0.ffn_gate_inp.bias");
    expect(name(L.ffnDownExpsB)).toBe("blk.0.ffn_down_exps.bias");
    expect(plan.moe?.gating).toBe("softmax-weight");
    expect(plan.activation).toBe("swiglu-oai");
    expect(plan.layers.map((l) => l.slidingWindow)).toEqual([8, 0]);
  });

  it("evaluates a prompt to finite logits", async () => {
    const model = await loadModel(write(GPT_OSS), { backend: "cpu", threads: 2, contextSize: 64 });
    try {
      const logits = await model.createSession().evaluate([1, 20, 30, 40, 50]);
      expect(logits.every(Number.isFinite)).toBe(true);
    } finally {
      model.dispose();
    }
  });

  it("refuses a file without sinks, expert biases, attention.sliding_window or its own LM head", async () => {
    const load = (shape: ModelShape) => code(() => loadModel(write(shape), { backend: "cpu", threads: 1 }));
    expect(await load({ ...GPT_OSS, attentionSinks: false })).toBe("ERR_MODEL_INCOMPATIBLE");
    expect(await load({ ...GPT_OSS, moe: { ...GPT_OSS.moe!, biases: false } })).toBe("ERR_MODEL_INCOMPATIBLE");
    expect(await load({ ...GPT_OSS, slidingWindow: undefined })).toBe("ERR_MODEL_INCOMPATIBLE");
    expect(await load({ ...GPT_OSS, tiedEmbeddings: true })).toBe("ERR_MODEL_INCOMPATIBLE");
  });
});
