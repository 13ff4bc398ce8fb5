/**
 * Mamba-2 files that are damaged or inconsistent (issue 28): every ssm.* size is range-checked
 * and refused with a coded error naming its key; a missing or wrongly typed or shaped SSM
 * tensor is refused by name; a plan whose SSM sizes C++ cannot run is refused natively; the
 * CUDA backend refuses the model with a coded error. (dev/fuzz-models.ts fuzzes mamba2 and
 * granitehybrid too, ssmMutation among its mutations; these are the checks pinned by name.)
 */
import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { isTesseraError } from "../../lib/errors.js";
import { readGGUF } from "../../lib/gguf/reader.js";
import { GGMLType, type GGUFKV } from "../../lib/gguf/types.js";
import { encodeGGUF, kv } from "../../lib/gguf/writer.js";
import { loadModel } from "../../lib/index.js";
import { writeSyntheticModel, type ModelShape } from "../../dev/synthetic-model.js";
import { evaluateIsolated } from "../helpers/isolated-eval.js";
import { hasShared, tempDir } from "../helpers/paths.js";

type TensorEdit = { name: string; type: GGMLType; dims: number[]; data: Uint8Array };

const SHAPE: ModelShape = {
  architecture: "mamba2",
  nLayer: 2,
  nEmbd: 64,
  nHead: 0,
  nHeadKv: 0,
  nFf: 0,
  contextLength: 4096,
  ssm: { dConv: 4, dInner: 128, dState: 16, nGroup: 2, nHead: 4 },
};

function variant(from: string, to: string, edit: (meta: Map<string, GGUFKV>, tensors: TensorEdit[]) => void): string {
  const file = readGGUF(from);
  const bytes = fs.readFileSync(from);
  const meta = new Map(file.metadata);
  const tensors = file.tensors.map((t) => ({ name: t.name, type: t.type, dims: [...t.dims], data: bytes.subarray(t.offset, t.offset + t.byteLength) }));
  edit(meta, tensors);
  fs.writeFileSync(to, encodeGGUF({ metadata: meta, tensors }));
  return to;
}

async function loadError(file: string, backend: "cpu" | "cuda" = "cpu"): Promise<unknown> {
  try {
    const m = await loadModel(file, { backend, threads: 2, contextSize: 16 });
    const s = m.createSession();
    await s.evaluate([1, 2, 3]);
    m.dispose();
  } catch (e) {
    return e;
  }
  return undefined;
}

async function expectRefused(file: string, code: string, text: string | RegExp): Promise<void> {
  const e = await loadError(file);
  expect(isTesseraError(e), `expected ${code}, got ${String(e)}`).toBe(true);
  expect((e as { code: string }).code, String(e)).toBe(code);
  expect((e as Error).message).toMatch(text);
}

describe.runIf(hasShared)("malformed mamba2 files", () => {
  const dir = tempDir("mamba2-bad");
  const good = path.join(dir, "good.gguf");
  writeSyntheticModel(good, SHAPE, { weights: "F32", vocab: "stories", seed: 4 });
  let n = 0;
  const edited = (edit: (meta: Map<string, GGUFKV>, tensors: TensorEdit[]) => void) => variant(good, path.join(dir, `bad-${n++}.gguf`), edit);

  it("the unedited file evaluates", async () => {
    expect(await loadError(good)).toBeUndefined();
  });

  it("each ssm.* size out of range or inconsistent is refused, naming its key", async () => {
    const cases: Array<[string, number, string]> = [
      ["mamba2.ssm.conv_kernel", 1, "ERR_GGUF_MALFORMED"],
      ["mamba2.ssm.conv_kernel", 17, "ERR_GGUF_MALFORMED"],
      ["mamba2.ssm.state_size", 0, "ERR_GGUF_MALFORMED"],
      ["mamba2.ssm.inner_size", 0, "ERR_GGUF_MALFORMED"],
      ["mamba2.ssm.inner_size", 130, "ERR_GGUF_MALFORMED"],  // not a multiple of 4 heads
      ["mamba2.ssm.group_count", 3, "ERR_GGUF_MALFORMED"],  // does not divide 4 heads
      ["mamba2.ssm.time_step_rank", 0, "ERR_GGUF_MALFORMED"],
      ["mamba2.attention.head_count", 4, "ERR_GGUF_MALFORMED"],  // attention a mamba2 file cannot have
    ];
    for (const [key, value, code] of cases) await expectRefused(edited((m) => m.set(key, kv.u32(value))), code, key);
    await expectRefused(edited((m) => m.delete("mamba2.ssm.state_size")), "ERR_MODEL_INCOMPATIBLE", "mamba2.ssm.state_size");
  });

  it("a missing, F16 or misshapen SSM tensor is refused by name", async () => {
    await expectRefused(edited((_, t) => t.splice(t.findIndex((x) => x.name === "blk.1.ssm_a"), 1)), "ERR_MODEL_INCOMPATIBLE", "blk.1.ssm_a");
    await expectRefused(
      edited((_, t) => {
        const c = t.find((x) => x.name === "blk.0.ssm_conv1d.weight")!;
        c.type = GGMLType.F16;
        c.data = c.data.subarray(0, c.data.length / 2);
      }),
      "ERR_MODEL_INCOMPATIBLE",
      "blk.0.ssm_conv1d.weight",
    );
    // The state size the metadata gives no longer matches the tensors: C++'s shape check.
    await expectRefused(edited((m) => m.set("mamba2.ssm.state_size", kv.u32(8))), "ERR_MODEL_INCOMPATIBLE", /ssm input projection|ssm_in/);
  });

  it("granitehybrid: head_count_kv must give each block's KV heads (0: a Mamba-2 block), one count for the attention blocks", async () => {
    const file = path.join(dir, "hybrid.gguf");
    const hybrid: ModelShape = { ...SHAPE, architecture: "granitehybrid", nHead: 4, nHeadKv: 2, nFf: 128, multipliers: { logit: 8 }, ssmLayers: [true, false] };
    writeSyntheticModel(file, hybrid, { weights: "F32", vocab: "stories", seed: 5 });
    expect(await loadError(file)).toBeUndefined();
    const key = "granitehybrid.attention.head_count_kv";
    const redo = (v: GGUFKV) => variant(file, path.join(dir, `hybrid-${n++}.gguf`), (m) => m.set(key, v));
    await expectRefused(redo(kv.u32(0)), "ERR_GGUF_MALFORMED", key);
    await expectRefused(redo(kv.i32Array(Int32Array.of(0, 0))), "ERR_GGUF_MALFORMED", key);
    await expectRefused(redo(kv.i32Array(Int32Array.of(0, 2, 2))), "ERR_GGUF_MALFORMED", key);
    await expectRefused(redo(kv.f32Array(Float32Array.of(0, 2))), "ERR_GGUF_MALFORMED", key);
    // Without the mixer's KV-head entry the block is an attention block, and its tensors are missing.
    await expectRefused(redo(kv.i32Array(Int32Array.of(2, 2))), "ERR_MODEL_INCOMPATIBLE", "blk.0.attn_q.weight");
  });

  it("C++ refuses a plan with SSM sizes it cannot run", () => {
    for (const edit of [(s: { dConv: number }) => (s.dConv = 40), (s: { nGroup: number }) => (s.nGroup = 3)]) {
      const r = evaluateIsolated(good, [1, 2, 3], 2, (plan) => edit(plan.ssm as never));
      expect(r.kind === "error" && r.code, r.kind === "crash" ? r.detail : JSON.stringify(r)).toBe("ERR_MODEL_INCOMPATIBLE");
    }
  });

  // Where the CUDA library loads, the native check refuses the model (its message is checked
  // on the emulated build, test/cuda/emulated-backend.test.ts); elsewhere the library's absence.
  it("backend \"cuda\" refuses a state-space model with a coded error", async () => {
    const e = await loadError(good, "cuda");
    expect(isTesseraError(e), String(e)).toBe(true);
    expect((e as { code: string }).code).toBe("ERR_BACKEND_UNAVAILABLE");
    // With a GPU: the state-space refusal; without one (CI), the backend's own.
    expect((e as Error).message).toMatch(/state-space models \(mamba2\)|CUDA backend library|no NVIDIA driver/);
  });
});
