/**
 * Bugs the structure-aware model fuzzer (dev/fuzz-models.ts) found, each pinned by the
 * smallest file that showed it. test/sanitize runs this file under ASan + UBSan as well.
 */
import path from "node:path";
import { describe, expect, it } from "vitest";
import { isTesseraError } from "../../lib/errors.js";
import { kv } from "../../lib/gguf/writer.js";
import { loadModel } from "../../lib/index.js";
import { modelIR, smallShape, writeCase, type ModelIR } from "../../dev/fuzz-models.js";
import { evaluateIsolated } from "../helpers/isolated-eval.js";
import { tempDir } from "../helpers/paths.js";

const dir = tempDir("fuzz-regressions");

function write(name: string, ir: ModelIR): string {
  const file = path.join(dir, name);
  writeCase(file, ir);
  return file;
}

async function outcome(file: string, run: (m: Awaited<ReturnType<typeof loadModel>>) => Promise<unknown>): Promise<{ code: string; message: string } | "ok"> {
  let model;
  try {
    model = await loadModel(file, { backend: "cpu", threads: 2, contextSize: 32 });
    await run(model);
    return "ok";
  } catch (e) {
    if (!isTesseraError(e)) throw e;
    return { code: e.code, message: e.message };
  } finally {
    model?.dispose();
  }
}

const evaluate = (m: Awaited<ReturnType<typeof loadModel>>) => m.createSession().evaluate([1, 5, 9, 200]);

describe("general.alignment below 8 (TESSERA_FUZZ_SEED=13 cases 625, 1456, 1776, 2464)", () => {
  // Before: alignment 1 put tensors at odd addresses; get_rows read Q8_0/Q6_K fp16 scales and
  // the F32 matmul read floats misaligned (UBSan: "load of misaligned address", UB in C++).
  for (const alignment of [1, 2, 4])
    it(`alignment ${alignment} is refused as malformed`, async () => {
      const ir = modelIR(smallShape("llama", { type: 8 /* Q8_0 */ }));
      ir.alignment = alignment;
      ir.metadata.push(["general.alignment", kv.u32(alignment)]);
      const r = await outcome(write(`align-${alignment}.gguf`, ir), evaluate);
      expect(r).toMatchObject({ code: "ERR_GGUF_MALFORMED" });
      expect((r as { message: string }).message).toContain("general.alignment");
    });

  it("alignment 8, the smallest the GGUF spec allows, loads and evaluates", async () => {
    const ir = modelIR(smallShape("llama", { type: 8 }));
    ir.alignment = 8;
    ir.metadata.push(["general.alignment", kv.u32(8)]);
    const file = write("align-8.gguf", ir);
    expect(await outcome(file, evaluate)).toBe("ok");
    // The same logits as the default alignment of 32: only the layout differs.
    const again = modelIR(smallShape("llama", { type: 8 }));
    const a = evaluateIsolated(file, [1, 5, 9, 200]);
    const b = evaluateIsolated(write("align-32.gguf", again), [1, 5, 9, 200]);
    expect(a.kind).toBe("logits");
    expect(a).toEqual(b);
  });

  it("C++ refuses a plan with tensor data off 8-byte alignment", () => {
    const file = write("align-plan.gguf", modelIR(smallShape("llama")));
    const r = evaluateIsolated(file, [1, 2], 2, (plan) => {
      const t = plan.tensors.find((x) => x.name === "blk.0.attn_norm.weight")!;
      t.offset += 2;
    });
    expect(r).toMatchObject({ kind: "error", code: "ERR_INVALID_ARGUMENT" });
    expect((r as { message: string }).message).toContain("not aligned to 8 bytes");
  });
});

describe("token_embd.weight rows must equal the tokenizer's token count (TESSERA_FUZZ_SEED=11 case 2440)", () => {
  // Before: a file with more embedding rows than tokens loaded; generation then sampled an id
  // with no token text and failed mid-stream ("token id 315 is not in the vocabulary").
  // llama.cpp sizes token_embd and the LM head by the token count and refuses such files.
  it("more rows than tokens is refused, naming the tensor", async () => {
    const r = await outcome(write("vocab-rows.gguf", modelIR(smallShape("qwen3", { nVocab: 356, nTokens: 292 }))), evaluate);
    expect(r).toMatchObject({ code: "ERR_MODEL_INCOMPATIBLE" });
    expect((r as { message: string }).message).toContain("token_embd.weight has 356 rows");
  });

  it("equal counts load", async () => {
    expect(await outcome(write("vocab-equal.gguf", modelIR(smallShape("qwen3", { nVocab: 292, nTokens: 292 }))), evaluate)).toBe("ok");
  });
});

describe("RoPE scaling values that overflow fp32 (TESSERA_FUZZ_SEED=17 case 2351)", () => {
  // Before: rope.scale_linear = 1e-45 (a denormal, in range) made 1 / factor infinite in fp32.
  // On llama the model loaded and rotated by infinite angles; on deepseek2 the softmax scale
  // became infinite and C++ refused the plan as ERR_INVALID_ARGUMENT, the code for a caller's
  // mistake, not the file's.
  for (const key of ["rope.scaling.factor", "rope.scale_linear"])
    it(`llama ${key} = 1e-45 is refused as malformed, naming the key`, async () => {
      const ir = modelIR(smallShape("llama"));
      ir.metadata.push([`llama.${key}`, kv.f32(1e-45)]);
      const r = await outcome(write("scale-denormal.gguf", ir), evaluate);
      expect(r).toMatchObject({ code: "ERR_GGUF_MALFORMED" });
      expect((r as { message: string }).message).toContain(`llama.${key}`);
    });

  it("deepseek2 with a YaRN attn_factor whose square overflows is refused as incompatible", async () => {
    const mla = { qLoraRank: 0, kvLoraRank: 32, nope: 16, rope: 8, v: 16 };
    const shape = smallShape("deepseek2", { mla, nHeadKv: 1, headDim: 40, ropeDims: 8, keyLength: true, ropeScaling: { type: "yarn", factor: 4, orig: 256 } });
    const ok = modelIR(shape);
    expect(await outcome(write("mla-ok.gguf", ok), evaluate)).toBe("ok");
    const ir = modelIR(shape);
    ir.metadata.push(["deepseek2.rope.scaling.attn_factor", kv.f32(1e29)]);
    const r = await outcome(write("mla-attn-factor.gguf", ir), evaluate);
    expect(r).toMatchObject({ code: "ERR_MODEL_INCOMPATIBLE" });
    expect((r as { message: string }).message).toContain("softmax scale");
  });
});

describe("a quantized KV cache on a model with no attention block (TESSERA_FUZZ_SEED=101 case 22 of --archs mamba2,granitehybrid)", () => {
  // Before: kvCacheType "q8_0" or "q4_0" on mamba2 (head size 0) killed the process with
  // SIGFPE: the cache's rotation size (the largest power of two dividing the head size, at
  // least 64) doubled forever on 0 until it overflowed to 0 and was divided by.
  const ssm = { dConv: 4, dInner: 128, dState: 16, nGroup: 2, nHead: 4, convBias: true };
  const shape = smallShape("mamba2", { nHead: 0, nHeadKv: 0, headDim: 0, ropeDims: 0, nFf: 0, ssm });

  it("q8_0 and q4_0 load and evaluate, with f16's logits (there is nothing to cache)", async () => {
    const file = write("mamba2-kv.gguf", modelIR(shape));
    const logits = async (kvCacheType: "f16" | "q8_0" | "q4_0") => {
      const m = await loadModel(file, { backend: "cpu", threads: 2, contextSize: 32, kvCacheType });
      try {
        return Array.from(await m.createSession().evaluate([1, 5, 9, 200]));
      } finally {
        m.dispose();
      }
    };
    const f16 = await logits("f16");
    expect(f16.every(Number.isFinite)).toBe(true);
    for (const type of ["q8_0", "q4_0"] as const) expect(await logits(type), type).toEqual(f16);
  });
});
